#!/usr/bin/env bash
# Set up (reusing .venv) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,hw
echo "[test] running the test suite with pytest (about 4-7 min on 2 CPU cores; tests that need a GPU or an" \
     "optional peer skip when it is missing)"
exec .venv/bin/python -m pytest "$@"
