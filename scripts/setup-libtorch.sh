#!/usr/bin/env bash
# Prepare a CPU LibTorch 2.11.0 (the version tch 0.24 pins) from the torch wheel on
# the Python package index, cache it outside the work tree, and link it as .libtorch
# so cargo (through .cargo/config.toml) and the binaries (through an rpath) find it.
#
# Why from the wheel: the official LibTorch archives live on a host these machines
# cannot reach; the wheel carries the same headers and libraries (see README).
# A second run finds the cache and returns in well under a second.
set -euo pipefail

TORCH_VERSION=2.11.0
TORCH_WHEEL=torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl
TORCH_SHA256=7aa2f9bbc6d4595ba72138026b2074be1233186150e9292865e04b7a63b8c67a
# libtorch_cpu.so names libcudart.so.13 and libcupti.so.13 as NEEDED (the profiler);
# these two small wheels (pinned by torch's own metadata via cuda-toolkit 13.0.2)
# provide them, and they load fine on a machine without a GPU.
CUDART_WHEEL=nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
CUDART_SHA256=7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548
CUPTI_WHEEL=nvidia_cuda_cupti-13.0.85-py3-none-manylinux_2_25_x86_64.whl
CUPTI_SHA256=4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${CROSSOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossover}
target="$cache/libtorch-$TORCH_VERSION-cpu"
link="$repo/.libtorch"

if [ -f "$target/.complete" ]; then
  ln -sfn "$target" "$link"
  exit 0
fi

need() { command -v "$1" >/dev/null || { echo "setup-libtorch: '$1' is required ($2)" >&2; exit 1; }; }
need python3 "install Python 3 with pip"
need unzip "apt-get install unzip"
need gcc "apt-get install gcc"

downloads="$cache/downloads"
mkdir -p "$downloads"

# fetch WHEEL SHA256 REQUIREMENT: download once, verify the checksum every time.
fetch() {
  local wheel=$1 sha=$2 requirement=$3
  if [ ! -f "$downloads/$wheel" ]; then
    echo "setup-libtorch: downloading $requirement (once; cached in $downloads)" >&2
    python3 -m pip download --quiet --no-deps "$requirement" \
      --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11 \
      -d "$downloads" >&2
  fi
  echo "$sha  $downloads/$wheel" | sha256sum --check --quiet - || {
    echo "setup-libtorch: checksum mismatch for $downloads/$wheel; delete it and re-run" >&2
    exit 1
  }
}
fetch "$TORCH_WHEEL" "$TORCH_SHA256" "torch==$TORCH_VERSION"
fetch "$CUDART_WHEEL" "$CUDART_SHA256" "nvidia-cuda-runtime==13.0.96"
fetch "$CUPTI_WHEEL" "$CUPTI_SHA256" "nvidia-cuda-cupti==13.0.85"

staging=$(mktemp -d "$cache/.libtorch-staging.XXXXXX")
trap 'rm -rf "$staging"' EXIT
echo "setup-libtorch: unpacking headers and CPU libraries" >&2
unzip -q "$downloads/$TORCH_WHEEL" 'torch/include/*' \
  'torch/lib/libtorch_cpu.so' 'torch/lib/libc10.so' 'torch/lib/libgomp.so.1' \
  'torch/lib/libshm.so' 'torch/lib/libtorch_global_deps.so' -d "$staging/wheel"
mkdir -p "$staging/out"
mv "$staging/wheel/torch/include" "$staging/out/include"
mv "$staging/wheel/torch/lib" "$staging/out/lib"
unzip -q -j "$downloads/$CUDART_WHEEL" 'nvidia/cu13/lib/libcudart.so.13' -d "$staging/out/lib"
unzip -q -j "$downloads/$CUPTI_WHEEL" 'nvidia/cu13/lib/libcupti.so.13' -d "$staging/out/lib"

# The wheel's libtorch.so needs libtorch_cuda.so; torch-sys links -ltorch, so give it
# a tiny libtorch.so that only pulls in the CPU libraries.
echo 'void crossover_libtorch_cpu_stub(void) {}' > "$staging/stub.c"
gcc -shared -fPIC -o "$staging/out/lib/libtorch.so" "$staging/stub.c" \
  -Wl,--no-as-needed -L"$staging/out/lib" -ltorch_cpu -lc10 -Wl,-rpath,'$ORIGIN'
echo "$TORCH_VERSION" > "$staging/out/version.txt"
touch "$staging/out/.complete"

rm -rf "$target"
mv "$staging/out" "$target"
ln -sfn "$target" "$link"
echo "setup-libtorch: LibTorch $TORCH_VERSION (CPU) ready in $target" >&2
