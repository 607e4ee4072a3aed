#!/usr/bin/env bash
# One compiled set of dependencies (issue 31). Every recipe that builds binaries
# (`just demo`, `just build`, the `bench-*` recipes) runs `cargo build --workspace
# --bins`; the tests build `--workspace --all-targets`. If a crate's features differ
# between the two, Cargo compiles that crate, and everything above it, a second time
# (for Polars, minutes). This builds the first, then the second, and fails naming
# every registry crate the second compiled again (the tests' own dev-dependencies,
# compiled once, are fine). It compares compiled files, not what was compiled just
# now, so a second copy left by an earlier build is found too. `just test` runs it
# first: on a warm target both steps are no-ops, on a clean one they are the build
# the tests need anyway.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every registry crate's compiled files in cargo's JSON messages, one "name@version
# file" line each. A crate built with other features is another file (its hash).
registry_files() {
  python3 -c '
import json, sys
for line in sys.stdin:
    try:
        message = json.loads(line)
    except ValueError:
        continue
    if message.get("reason") != "compiler-artifact":
        continue
    package = message.get("package_id", "")
    if package.startswith("registry+"):
        for name in message.get("filenames", []):
            print(package.rsplit("#", 1)[-1], name.rsplit("/", 1)[-1])
' | sort -u
}

echo "build reuse: cargo build --workspace --bins" >&2
first=$(cargo build --workspace --bins --message-format=json-render-diagnostics | registry_files)
echo "build reuse: cargo build --workspace --all-targets (must use the same files)" >&2
second=$(cargo build --workspace --all-targets --message-format=json-render-diagnostics |
  registry_files)
# Crates of the first build that the second built as other files (a second copy).
again=$(comm -13 <(echo "$first") <(echo "$second") | cut -d' ' -f1 | sort -u |
  comm -12 - <(echo "$first" | cut -d' ' -f1 | sort -u) | sed '/^$/d')
if [ -n "$again" ]; then
  echo "error: the test build compiled these registry crates a second time:" >&2
  echo "$again" | sed 's/^/  /' >&2
  echo "A package or dev-dependency asks for other features of them (cargo tree -e features -i CRATE);" >&2
  echo "ask for the same features in workspace-hack/Cargo.toml so that both builds share one copy." >&2
  exit 1
fi
echo "build reuse: ok ($(echo "$first" | cut -d' ' -f1 | sort -u | sed '/^$/d' | wc -l) registry crates built once, reused by the tests)" >&2
