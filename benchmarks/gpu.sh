#!/usr/bin/env bash
# The GPU benchmark after a clean clone: find (or make) a Python whose torch sees the GPU, then run
# benchmarks/bench_gpu.py (under 8 minutes on one H200). Usage: bash benchmarks/gpu.sh [bench_gpu.py arguments]
# It installs anything only where nvidia-smi shows an NVIDIA GPU, and only when no Python there has CUDA torch:
# then it makes .venv-gpu with the CUDA build of torch 2.13.0 (PyPI's Linux wheel; ~2.5 GB, several minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "[gpu.sh] nvidia-smi not found: this machine has no NVIDIA driver, so nothing is installed or measured." >&2
  echo "[gpu.sh] To check the benchmark's code on the CPU instead:" \
       "bash scripts/setup.sh && .venv/bin/python benchmarks/bench_gpu.py --dry-run" >&2
  exit 2
fi
if ! nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; then
  echo "[gpu.sh] nvidia-smi is installed but sees no GPU (driver not loaded?): nothing measured." >&2
  exit 2
fi
has_cuda() { "$1" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; }
py=""
for cand in "${PYTHON:-}" .venv-gpu/bin/python .venv/bin/python python3; do
  if [ -n "$cand" ] && command -v "$cand" >/dev/null 2>&1 && has_cuda "$cand"; then py="$cand"; break; fi
done
if [ -z "$py" ]; then
  echo "[gpu.sh] no Python here has a CUDA build of torch: creating .venv-gpu with torch 2.13.0 from PyPI" \
       "(the CUDA build; ~2.5 GB to download, several minutes; pip prints nothing meanwhile)"
  python3 -m venv .venv-gpu
  # PyPI's Linux torch wheel is the CUDA build; local wheel folders or constraints set for CPU-only set-ups
  # (scripts/setup.sh) must not win here.
  PIP_FIND_LINKS="" PIP_CONSTRAINT="" .venv-gpu/bin/python -m pip install -q --disable-pip-version-check \
    --index-url https://pypi.org/simple "torch==2.13.0"
  echo "[gpu.sh] installing spikemllm and its dependencies into .venv-gpu (~1 min)"
  PIP_FIND_LINKS="" PIP_CONSTRAINT="" .venv-gpu/bin/python -m pip install -q --disable-pip-version-check \
    -c constraints.txt -e .
  py=.venv-gpu/bin/python
  if ! has_cuda "$py"; then
    echo "[gpu.sh] the installed torch does not see the GPU; check the driver (nvidia-smi) against torch's CUDA." >&2
    exit 2
  fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's spikemllm, even in a Python that lacks it
if ! "$py" -c "import spikemllm, transformers, safetensors, accelerate" 2>/dev/null; then
  echo "[gpu.sh] $py has CUDA torch but lacks spikemllm's dependencies; run: $py -m pip install -e ." \
       "(or set PYTHON to another interpreter)" >&2
  exit 2
fi
echo "[gpu.sh] python: $py ($("$py" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)'))"
exec "$py" benchmarks/bench_gpu.py "$@"
