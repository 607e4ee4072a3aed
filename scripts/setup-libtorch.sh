#!/usr/bin/env bash
# Prepare a CPU LibTorch 2.11.0 (the version tch 0.24 pins) from the torch wheel on
# the Python package index, cache it outside the work tree, and link it as .libtorch
# so cargo (through .cargo/config.toml) and the binaries (through an rpath) find it.
#
# Why from the wheel: the official LibTorch archives live on a host these machines
# cannot reach; the wheel carries the same headers and libraries (see docs/setup.md, "LibTorch").
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
# CROSSOVER_LIBTORCH_LINK moves the link (scripts/check-fresh-setup.sh uses it so a
# check against an empty cache leaves the work tree's .libtorch alone).
link=${CROSSOVER_LIBTORCH_LINK:-$repo/.libtorch}

if [ -f "$target/.complete" ]; then
  ln -sfn "$target" "$link"
  exit 0
fi

need() { command -v "$1" >/dev/null || { echo "setup-libtorch: '$1' is required ($2)" >&2; exit 1; }; }
need python3 "install Python 3 with pip"
need gcc "apt-get install gcc"

downloads="$cache/downloads"
mkdir -p "$downloads"

# shellcheck source=lib/fetch-wheel.sh
. "$repo/scripts/lib/fetch-wheel.sh"
fetch() { fetch_wheel "$1" "$2" "$3" "$downloads" setup-libtorch; }
fetch "$TORCH_WHEEL" "$TORCH_SHA256" "torch==$TORCH_VERSION"
fetch "$CUDART_WHEEL" "$CUDART_SHA256" "nvidia-cuda-runtime==13.0.96"
fetch "$CUPTI_WHEEL" "$CUPTI_SHA256" "nvidia-cuda-cupti==13.0.85"

staging=$(mktemp -d "$cache/.libtorch-staging.XXXXXX")
trap 'rm -rf "$staging"' EXIT
echo "setup-libtorch: unpacking headers and CPU libraries" >&2
# Python's zipfile rather than unzip: Python is a prerequisite anyway, unzip is not.
python3 - "$staging/out" "$downloads/$TORCH_WHEEL" "$downloads/$CUDART_WHEEL" "$downloads/$CUPTI_WHEEL" <<'PYTHON'
import os, shutil, sys, zipfile
out, torch_wheel, cudart_wheel, cupti_wheel = sys.argv[1:]
libraries = {"libtorch_cpu.so", "libc10.so", "libgomp.so.1", "libshm.so", "libtorch_global_deps.so"}

def copy(archive, member, destination):
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    with archive.open(member) as source, open(destination, "wb") as target:
        shutil.copyfileobj(source, target, 1 << 20)
    os.chmod(destination, 0o755 if destination.endswith((".so", ".so.1", ".so.13")) else 0o644)

with zipfile.ZipFile(torch_wheel) as wheel:
    for member in wheel.namelist():
        if member.endswith("/"):
            continue
        if member.startswith("torch/include/"):
            copy(wheel, member, os.path.join(out, "include", member[len("torch/include/"):]))
        elif member.startswith("torch/lib/") and member[len("torch/lib/"):] in libraries:
            copy(wheel, member, os.path.join(out, "lib", member[len("torch/lib/"):]))
for path, library in ((cudart_wheel, "libcudart.so.13"), (cupti_wheel, "libcupti.so.13")):
    with zipfile.ZipFile(path) as wheel:
        copy(wheel, "nvidia/cu13/lib/" + library, os.path.join(out, "lib", library))
missing = [name for name in libraries if not os.path.isfile(os.path.join(out, "lib", name))]
if missing:
    sys.exit(f"setup-libtorch: the torch wheel lacks {missing}")
PYTHON

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
