# Sourced by the setup and fetch scripts: download one pinned wheel from the Python
# package index into a downloads folder and check it against its sha256.
#
#   fetch_wheel WHEEL SHA256 REQUIREMENT DOWNLOADS WHO
#
# Works with pip 21 to the newest (checked with 21.3.1, 23.2.1 and 26.3), whatever
# the local Python is: the wheel is asked for as a CPython 3.11 binary, with one
# `--platform` per platform tag its file name carries. A single newer tag is not
# enough: pip before 24 does not count a manylinux2014 or manylinux_2_25 wheel as
# compatible with `--platform manylinux_2_28_x86_64`.

# wheel_platform_args WHEEL: `--platform TAG` lines for each tag in WHEEL's name (the
# last dash-separated field, tags joined by dots); nothing for a pure-Python wheel.
wheel_platform_args() {
  local tags=${1%.whl}
  tags=${tags##*-}
  local tag
  for tag in ${tags//./ }; do
    [ "$tag" = any ] && continue
    printf -- '--platform\n%s\n' "$tag"
  done
}

fetch_wheel() {
  local wheel=$1 sha=$2 requirement=$3 downloads=$4 who=$5
  if [ ! -f "$downloads/$wheel" ]; then
    command -v python3 >/dev/null || { echo "$who: 'python3' is required (install Python 3 with pip)" >&2; exit 1; }
    echo "$who: downloading $requirement (once; cached in $downloads)" >&2
    local platforms
    mapfile -t platforms < <(wheel_platform_args "$wheel")
    PIP_ROOT_USER_ACTION=ignore python3 -m pip download --quiet --no-deps \
      --disable-pip-version-check --only-binary=:all: --python-version 3.11 \
      "${platforms[@]}" "$requirement" -d "$downloads" >&2 || {
      echo "$who: pip could not download $requirement; check that pip reaches its index (pip config list) and re-run" >&2
      exit 1
    }
    [ -f "$downloads/$wheel" ] || {
      echo "$who: pip fetched $requirement but not as $wheel (see $downloads); the pin needs updating" >&2
      exit 1
    }
  fi
  echo "$sha  $downloads/$wheel" | sha256sum --check --quiet - || {
    echo "$who: checksum mismatch for $downloads/$wheel; delete it and re-run" >&2
    exit 1
  }
}
