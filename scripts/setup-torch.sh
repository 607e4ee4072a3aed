#!/usr/bin/env bash
# A Python virtual environment with PyTorch 2.11.0 for the reference benchmark and the
# harness-vs-PyTorch loss check (bench/reference.py). PyPI's only torch 2.11.0 build
# for Linux is the CUDA one, so this is about 4.7 GB; it runs on CPU without a GPU.
# The torch wheel LibTorch came from (scripts/setup-libtorch.sh) is reused.
# Prints the venv's python on stdout; a second run returns at once.
set -euo pipefail

TORCH_VERSION=2.11.0
TORCH_WHEEL=torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl
cache=${CROSSOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossover}
venv="$cache/torch-venv"

# The marker names what is installed, so a changed recipe re-runs.
marker="$venv/.complete-torch-$TORCH_VERSION-numpy"
if [ -f "$marker" ]; then
  echo "$venv/bin/python"
  exit 0
fi
command -v python3 >/dev/null || { echo "setup-torch: install Python 3 with pip and venv" >&2; exit 1; }
[ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2 || {
  echo "setup-torch: python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2
  exit 1
}
requirement="torch==$TORCH_VERSION"
wheel="$cache/downloads/$TORCH_WHEEL"
if [ -f "$wheel" ] && "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  requirement="$wheel"
fi
echo "setup-torch: installing PyTorch $TORCH_VERSION into $venv (once, about 4.7 GB)" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement" numpy >&2
"$venv/bin/python" -c "import torch; assert torch.__version__.startswith('$TORCH_VERSION'), torch.__version__" >&2
touch "$marker"
echo "$venv/bin/python"
