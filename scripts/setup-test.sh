#!/usr/bin/env bash
# The system packages `just test` needs beyond the demo's prerequisites:
#   chromium           the HTML report is checked in a real headless browser
#   munge + Slurm      the Slurm backend's tests start a real single-node cluster
#                      (skip them, and these packages, with CROSSOVER_SKIP_SLURM=1)
#
#   scripts/setup-test.sh          install what is missing (root: apt-get), or say
#                                  exactly what to install and stop
#   scripts/setup-test.sh --check  only say what is missing (exit 1 if anything is)
#
# `just setup-test` runs the first form and `just test` runs it before the suite, so
# a fresh machine fails here with one clear line instead of in the middle of a test.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "setup-test: $*" >&2; }

missing=()
have_browser=0
for browser in chromium chromium-browser google-chrome; do
  command -v "$browser" >/dev/null && have_browser=1
done
((have_browser)) || missing+=(chromium)
slurm_missing=0
if [[ -z ${CROSSOVER_SKIP_SLURM:-} ]]; then
  for path in /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch; do
    [[ -x $path ]] || slurm_missing=1
  done
  ((slurm_missing)) && missing+=(munge slurmctld slurmd slurm-client)
fi
((${#missing[@]} == 0)) && exit 0

if [[ ${1:-} == --check || $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
  say "missing for the tests: ${missing[*]}"
  say "install them with: sudo just setup-test   (Debian/Ubuntu: apt-get install ${missing[*]})"
  ((slurm_missing)) && say "or skip the Slurm tests (and those packages) with CROSSOVER_SKIP_SLURM=1"
  exit 1
fi
if ((have_browser == 0)); then
  say "installing chromium (Debian package)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
# Slurm's packages must not start their own daemons: slurm-local.sh knows how.
((slurm_missing)) && "$repo/scripts/slurm-local.sh" install
say "test prerequisites installed"
