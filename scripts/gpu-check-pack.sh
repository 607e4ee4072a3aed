#!/usr/bin/env bash
# Pack what a GPU node needs for the GPU check (scripts/gpu-check.sh, packed as
# run.sh), so nothing is downloaded or built there:
#   bin/trainer, bin/trainer-worker  the release build with the NCCL process group
#                                    (headers from scripts/setup-nccl.sh), stripped;
#                                    LibTorch is not packed: the launcher takes the
#                                    node's PyTorch 2.11 torch/lib (docs/gpu.md)
#   reference.py                     the PyTorch reference (bench/reference.py)
#   corpus/demo                      the demo corpus (18 MB of text; bytes tokenizer)
#   run.sh, BUILD.txt                the check, and what was packed
#
# Usage: gpu-check-pack.sh [--debug] [--out DIR]   (default DIR: target/gpu-check)
#   --debug packs target/debug's binaries as they are (no release build, no NCCL):
#   for rehearsing the pack on the CPU (`run.sh --cpu-rehearsal`) in tests.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
profile=release
out=target/gpu-check
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) profile=debug ;;
    --out) out=$2; shift ;;
    *) echo "gpu-check-pack: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
corpus="${CROSSOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossover}/corpora/demo"
[ -d "$corpus" ] || scripts/fetch-corpus.sh demo >&2
nccl=no
if [ "$profile" = release ]; then
  # The NCCL headers only change this release build (trainer/build.rs reads them).
  eval "$(scripts/setup-nccl.sh)"
  export CROSSOVER_NCCL_INCLUDE CROSSOVER_CUDA_INCLUDE
  cargo build --release -p launcher -p trainer
  nccl=yes
else
  [ -x target/debug/trainer ] && [ -x target/debug/trainer-worker ] || cargo build --workspace --bins
fi
rm -rf "$out"
mkdir -p "$out/bin" "$out/corpus"
cp "target/$profile/trainer" "target/$profile/trainer-worker" "$out/bin/"
if [ "$profile" = release ]; then
  strip "$out/bin/trainer" "$out/bin/trainer-worker"
fi
cp bench/reference.py "$out/reference.py"
cp -r "$corpus" "$out/corpus/demo"
cp scripts/gpu-check.sh "$out/run.sh"
chmod +x "$out/run.sh"
{
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo '+changes')"
  echo "profile $profile, NCCL $nccl"
  echo "packed $(date -u +%Y-%m-%dT%H:%MZ)"
} > "$out/BUILD.txt"
du -sh "$out" >&2
echo "gpu-check: packed $out ($profile, NCCL $nccl); on a GPU node run: $out/run.sh (or here: $out/run.sh --cpu-rehearsal)" >&2
