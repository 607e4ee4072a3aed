#!/usr/bin/env bash
# The headers the trainer's NCCL process group compiles against (trainer/build.rs):
# nccl.h and the CUDA 13.0 headers ProcessGroupNCCL.hpp reaches, from the same wheels
# torch 2.11.0's CUDA build depends on (its metadata pins nvidia-nccl-cu13 2.28.9 and
# cuda-toolkit 13.0.2). Only include/ folders are kept (about 40 MB of the 1 GB of
# wheels, which are deleted after). Cached; a second run returns at once.
#
# Prints the two variables build.rs reads, for `eval` or `env`:
#   CROSSOVER_NCCL_INCLUDE=<cache>/nccl-headers-.../nvidia/nccl/include
#   CROSSOVER_CUDA_INCLUDE=<...>/nvidia/cu13/include:<...>/nvidia/cu13/include/cccl
set -euo pipefail

NCCL_VERSION=2.28.9
cache=${CROSSOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossover}
root="$cache/nccl-headers-$NCCL_VERSION-cu130"
# The wheels, pinned as torch 2.11.0's dependencies pin them (cuda-toolkit 13.0.2's
# cublas, cudart, cusolver, cusparse extras; crt and cccl carry host_config.h and
# nv/target, which the runtime headers include).
wheels=(
  "nvidia-nccl-cu13==$NCCL_VERSION"
  "nvidia-cuda-runtime==13.0.96"
  "nvidia-cuda-crt==13.0.88"
  "nvidia-cuda-cccl==13.0.85"
  "nvidia-cublas==13.1.0.3"
  "nvidia-cusparse==12.6.3.3"
  "nvidia-cusolver==12.0.4.66"
)

print() {
  echo "CROSSOVER_NCCL_INCLUDE=$root/nvidia/nccl/include"
  echo "CROSSOVER_CUDA_INCLUDE=$root/nvidia/cu13/include:$root/nvidia/cu13/include/cccl"
}

if [ -f "$root/.complete" ]; then
  print
  exit 0
fi
command -v python3 >/dev/null || { echo "setup-nccl: install Python 3 with pip" >&2; exit 1; }
command -v unzip >/dev/null || { echo "setup-nccl: 'unzip' is required (apt-get install unzip)" >&2; exit 1; }
mkdir -p "$cache"
work=$(mktemp -d "$cache/.nccl-headers.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "setup-nccl: downloading the NCCL and CUDA 13.0 header wheels (about 1 GB, once; only their include/ folders are kept)" >&2
python3 -m pip download --quiet --disable-pip-version-check --no-deps \
  --dest "$work/wheels" "${wheels[@]}" >&2 || {
  echo "setup-nccl: pip could not download ${wheels[*]} (is the Python package index reachable?)" >&2
  exit 1
}
mkdir -p "$work/tree"
for wheel in "$work"/wheels/*.whl; do
  unzip -q -o "$wheel" 'nvidia/*/include/*' -d "$work/tree"
done
for header in nvidia/nccl/include/nccl.h nvidia/cu13/include/cuda_runtime_api.h \
  nvidia/cu13/include/crt/host_config.h nvidia/cu13/include/cccl/nv/target \
  nvidia/cu13/include/cublas_v2.h nvidia/cu13/include/cusparse.h nvidia/cu13/include/cusolverDn.h; do
  [ -e "$work/tree/$header" ] || { echo "setup-nccl: $header is missing from the wheels" >&2; exit 1; }
done
touch "$work/tree/.complete"
rm -rf "$root"
mv "$work/tree" "$root"
du -sh "$root" >&2
print
