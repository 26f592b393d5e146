#!/usr/bin/env bash
# Set up (reusing .venv) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,hw
exec .venv/bin/python -m pytest "$@"
