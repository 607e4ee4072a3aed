#!/usr/bin/env bash
# A real single-node Slurm cluster for the Slurm backend's tests and for trying it out
# (facts in shared/reference/slurm-local.md). Everything lives under one folder:
#   ${SLURM_LOCAL_ROOT:-${CROSSOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossover}/slurm}
#
#   scripts/slurm-local.sh up     install munge + Slurm if missing, start the daemons,
#                                 wait for a probe job; idempotent (a running cluster
#                                 returns at once). Prints the env file to source last.
#   scripts/slurm-local.sh down   cancel every job, then stop the daemons by pid file.
#   scripts/slurm-local.sh install  only install munge + Slurm (scripts/setup-test.sh).
#
# Needs root (Debian packages, daemons running as root). Without accounting: squeue and
# scontrol keep finished jobs for MinJobAge=3600 s, which is what the harness reads.
set -euo pipefail

root=${SLURM_LOCAL_ROOT:-${CROSSOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crossover}/slurm}
conf=$root/slurm.conf
export SLURM_CONF=$conf

say() { echo "slurm-local: $*" >&2; }
die() { say "$*"; exit 1; }

# --- installing -------------------------------------------------------------------

install_packages() {
  local wanted=(/usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch)
  local missing=0 path
  for path in "${wanted[@]}"; do [[ -x $path ]] || missing=1; done
  ((missing)) || return 0
  [[ $(id -u) == 0 ]] || die "munge and Slurm are missing and installing them needs root"
  # Packages must not start their own daemons (no systemd here, and ours live in $root):
  # policy-rc.d exit 101 tells invoke-rc.d "not allowed". Ours is removed afterwards.
  local made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  say "installing munge and Slurm from Debian packages"
  local status=0
  { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      munge slurmctld slurmd slurm-client >/dev/null; } || status=$?
  ((made_policy)) && rm -f /usr/sbin/policy-rc.d
  ((status == 0)) || die "apt-get failed (exit $status)"
}

# --- pid files: the only way daemons are found (never by name) ---------------------

# The pid in a pid file when that process is alive and runs `program` (a recycled pid
# that now belongs to something else does not count).
live_pid() {
  local file=$1 program=$2 pid
  [[ -s $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$program" || return 1
  echo "$pid"
}

stop_daemon() {
  local file=$1 program=$2 pid waited=0
  pid=$(live_pid "$file" "$program") || return 0
  say "stopping $program (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  while [[ -d /proc/$pid ]] && ((waited < 100)); do sleep 0.1; waited=$((waited + 1)); done
  if [[ -d /proc/$pid ]]; then
    say "$program (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# --- configuration ----------------------------------------------------------------

write_config() {
  mkdir -p "$root"/{run,log,state/ctld,state/slurmd,fakegpu}
  chmod 755 "$root" "$root/run"
  # munged refuses a key readable by others.
  if [[ ! -s $root/munge.key ]]; then
    dd if=/dev/urandom of="$root/munge.key" bs=1024 count=1 status=none
  fi
  chmod 400 "$root/munge.key"
  # Fake GPUs for `--gres=gpu:N`: Slurm wants device files, and symlinks to /dev/null
  # pass (plain files and File-less counts do not).
  ln -sfn /dev/null "$root/fakegpu/nvidia0"
  ln -sfn /dev/null "$root/fakegpu/nvidia1"
  local memory
  memory=$(/usr/sbin/slurmd -C | tr ' ' '\n' | sed -n 's/^RealMemory=//p' | head -n1)
  [[ $memory =~ ^[0-9]+$ ]] || memory=1024
  cat >"$conf" <<EOF
# Written by scripts/slurm-local.sh: a single-node test cluster, no accounting.
ClusterName=localci
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$root/run/munge.socket
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$root/state/ctld
SlurmdSpoolDir=$root/state/slurmd
SlurmctldPidFile=$root/run/slurmctld.pid
SlurmdPidFile=$root/run/slurmd.pid
SlurmctldLogFile=$root/log/slurmctld.log
SlurmdLogFile=$root/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
# Start jobs about 0.5 s after sbatch instead of 3 s, and look at the queue every 5 s
# instead of 60 (a requeued task is started soon after its eligible time).
SchedulerParameters=batch_sched_delay=0,sched_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MailProg=/bin/true
KillWait=5
# Finished jobs stay visible to squeue/scontrol for an hour (there is no sacct here).
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# CPUs=4 on a 2-core machine: config_overrides lets more tasks than cores run.
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=4 RealMemory=$memory Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  echo "NodeName=localhost Name=gpu File=$root/fakegpu/nvidia[0-1]" >"$root/gres.conf"
  echo "export SLURM_CONF=$conf" >"$root/env"
}

# --- starting ---------------------------------------------------------------------

wait_for() {
  local what=$1 tries=$2
  shift 2
  local i
  for ((i = 0; i < tries; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "timed out waiting for $what (logs in $root/log)"
}

node_idle() {
  local state
  state=$(sinfo -h -n localhost -o %T 2>/dev/null) || return 1
  case $state in
    idle* | mixed* | allocated*) return 0 ;;
    *drain* | down* | *invalid* | *fail*)
      scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
      return 1 ;;
    *) return 1 ;;
  esac
}

running() {
  live_pid "$root/run/munged.pid" munged >/dev/null &&
    live_pid "$root/run/slurmctld.pid" slurmctld >/dev/null &&
    live_pid "$root/run/slurmd.pid" slurmd >/dev/null &&
    scontrol ping >/dev/null 2>&1 && node_idle
}

# Daemons get `9>&-`: they must not inherit the lock of `up` (munged would hold it forever).
start_daemons() {
  if ! live_pid "$root/run/munged.pid" munged >/dev/null; then
    rm -f "$root/run/munge.socket" "$root/run/munge.socket.lock"
    /usr/sbin/munged --key-file="$root/munge.key" --socket="$root/run/munge.socket" \
      --pid-file="$root/run/munged.pid" --log-file="$root/log/munged.log" \
      --seed-file="$root/state/munge.seed" --force 9>&-
  fi
  wait_for "munged" 50 test -S "$root/run/munge.socket"
  if ! live_pid "$root/run/slurmctld.pid" slurmctld >/dev/null; then
    /usr/sbin/slurmctld -f "$conf" 9>&-
  fi
  wait_for "slurmctld (scontrol ping)" 150 scontrol ping
  if ! live_pid "$root/run/slurmd.pid" slurmd >/dev/null; then
    /usr/sbin/slurmd -f "$conf" -N localhost 9>&-
  fi
  wait_for "the node to be idle" 150 node_idle
}

# The honest readiness check: the scheduler starts about 3 s after slurmctld, so a
# node that looks idle may not run jobs yet. A probe job that completes proves it.
probe() {
  timeout 60 sbatch --wait --quiet --job-name=probe --output=/dev/null --wrap=true ||
    die "the probe job did not complete (logs in $root/log)"
}

up() {
  mkdir -p "$root"
  # Two `up`s at once (parallel test binaries) must not both start daemons.
  exec 9>"$root/.lock"
  flock 9
  if [[ -s $root/env ]] && [[ -x /usr/bin/sbatch ]] && running; then
    echo "$root/env"
    return 0
  fi
  install_packages
  write_config
  start_daemons
  probe
  say "cluster up under $root (source $root/env)"
  echo "$root/env"
}

down() {
  [[ -d $root ]] || return 0
  exec 9>"$root/.lock"
  flock 9
  if live_pid "$root/run/slurmctld.pid" slurmctld >/dev/null; then
    # slurmstepd outlives slurmd: cancel the jobs first and let them end.
    scancel --user="$(id -un)" >/dev/null 2>&1 || true
    local i
    for ((i = 0; i < 50; i++)); do
      [[ -z $(squeue -h -t running,completing -o %i 2>/dev/null) ]] && break
      sleep 0.2
    done
  fi
  stop_daemon "$root/run/slurmd.pid" slurmd
  stop_daemon "$root/run/slurmctld.pid" slurmctld
  stop_daemon "$root/run/munged.pid" munged
  say "cluster down"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  install) install_packages ;;
  *) die "usage: $0 up|down|install" ;;
esac
