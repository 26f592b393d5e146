#!/usr/bin/env bash
# Set up (reusing .venv) and run the main job: the spiking demo on the bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/spikemllm demo "$@"
