#!/usr/bin/env bash
# Prepare a GPU node for `device: cuda`. The trainer is built against LibTorch's CPU
# libraries and loads LibTorch's CUDA library (libtorch_cuda.so) at run time; this
# script finds PyTorch 2.11 with CUDA, or installs it, and links its torch/lib folder
# as <cache>/torch-cuda-lib, where the trainer looks.
#
# Where PyTorch comes from, first found:
#   $CROSSOVER_TORCH_PYTHON (a python whose torch is 2.11 with CUDA)
#   /opt/torch/.venv/bin/python (the project's GPU nodes, which cannot download)
#   <cache>/torch-cuda/bin/python (a venv this script made before)
#   otherwise a new venv <cache>/torch-cuda with `pip install torch==2.11.0`
#   (the CUDA 13 build and its CUDA libraries, about 4.7 GB).
set -euo pipefail

TORCH_VERSION=2.11.0
cache=${CROSSOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossover}
mkdir -p "$cache"

# usable PYTHON: prints torch/lib when PYTHON has torch 2.11 built with CUDA.
usable() {
  [ -x "$1" ] || return 1
  "$1" - <<PY 2>/dev/null
import os, torch
assert torch.__version__.startswith("$TORCH_VERSION"), torch.__version__
assert torch.version.cuda, "CPU-only build"
lib = os.path.join(os.path.dirname(torch.__file__), "lib")
assert os.path.isfile(os.path.join(lib, "libtorch_cuda.so"))
print(lib)
PY
}

lib=""
for python in "${CROSSOVER_TORCH_PYTHON:-}" /opt/torch/.venv/bin/python "$cache/torch-cuda/bin/python"; do
  [ -n "$python" ] || continue
  if lib=$(usable "$python"); then
    echo "setup-cuda: using PyTorch from $python" >&2
    break
  fi
  lib=""
done
if [ -z "$lib" ]; then
  echo "setup-cuda: installing torch==$TORCH_VERSION with CUDA into $cache/torch-cuda (once, about 4.7 GB)" >&2
  python3 -m venv "$cache/torch-cuda"
  "$cache/torch-cuda/bin/python" -m pip install --quiet --disable-pip-version-check "torch==$TORCH_VERSION"
  lib=$(usable "$cache/torch-cuda/bin/python") || {
    echo "setup-cuda: the installed torch has no libtorch_cuda.so" >&2
    exit 1
  }
fi
ln -sfn "$lib" "$cache/torch-cuda-lib"
echo "setup-cuda: linked $cache/torch-cuda-lib -> $lib" >&2
if command -v nvidia-smi >/dev/null && nvidia-smi -L >&2; then
  echo "setup-cuda: ready; jobs with device auto or cuda train on the GPU" >&2
else
  echo "setup-cuda: libraries ready, but no NVIDIA driver answers here (nvidia-smi); CUDA jobs will fail on this machine" >&2
fi
