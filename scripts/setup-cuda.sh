#!/usr/bin/env bash
# Prepare a GPU node for `device: cuda`. The trainer is built against LibTorch's CPU
# libraries and loads LibTorch's CUDA library (libtorch_cuda.so) at run time; this
# script finds PyTorch 2.11 with CUDA that starts on this node's driver, or installs
# it, and links its torch/lib folder as <cache>/torch-cuda-lib, where the `trainer`
# launcher looks: on a GPU node every LibTorch library, core and CUDA, then comes from
# that one folder (docs/gpu.md, "One LibTorch per process").
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

# A driver answers here: then a candidate must also initialise CUDA (a CUDA 13 build
# on a driver older than 580 imports but cannot), so the trainer never gets a torch/lib
# its launcher would refuse (launcher/src/lib.rs checks version, CUDA and driver again
# at every start).
driver=no
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then driver=yes; fi

# usable PYTHON: prints torch/lib when PYTHON has torch 2.11 built with CUDA (and, with
# a driver, CUDA initialises); otherwise says why on stderr.
usable() {
  [ -x "$1" ] || return 1
  "$1" - "$driver" <<PY
import os, sys, warnings
try:
    import torch
except Exception as error:
    sys.exit(f"setup-cuda: $1 cannot import torch: {error}")
if not torch.__version__.startswith("$TORCH_VERSION"):
    sys.exit(f"setup-cuda: $1 has torch {torch.__version__}, not $TORCH_VERSION")
if not torch.version.cuda:
    sys.exit(f"setup-cuda: $1 has torch {torch.__version__}, a CPU-only build")
lib = os.path.join(os.path.dirname(torch.__file__), "lib")
if not os.path.isfile(os.path.join(lib, "libtorch_cuda.so")):
    sys.exit(f"setup-cuda: {lib} holds no libtorch_cuda.so")
if sys.argv[1] == "yes":
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok = torch.cuda.is_available()
    if not ok:
        why = "; ".join(str(w.message).splitlines()[0] for w in caught) or "torch.cuda.is_available() is False"
        sys.exit(f"setup-cuda: $1 has torch {torch.__version__} (CUDA {torch.version.cuda}) but CUDA does not start on this node: {why}")
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
if [ "$driver" = yes ]; then
  nvidia-smi -L >&2
  echo "setup-cuda: ready; jobs with device auto or cuda train on the GPU (\`trainer libtorch\` says what each start will use)" >&2
else
  echo "setup-cuda: libraries ready, but no NVIDIA driver answers here (nvidia-smi); CUDA jobs will fail on this machine" >&2
fi
