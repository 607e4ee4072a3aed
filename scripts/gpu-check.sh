#!/usr/bin/env bash
# The GPU check: runs from the folder `just gpu-check` packed (as run.sh), on a GPU
# node, with nothing downloaded: everything it needs is in the pack (bin/trainer and
# bin/trainer-worker, reference.py, corpus/demo) or on the node (the driver and, for
# the comparisons with PyTorch, a PyTorch 2.11 with CUDA).
#
#   run.sh                  on a GPU node (about 5-8 minutes on one H100/H200)
#   run.sh --cpu-rehearsal  every step the CPU can run, small models (a few minutes)
#
# Options: --out DIR (default: results/ beside this script), --python PY (PyTorch for
# the reference; default $CROSSOVER_TORCH_PYTHON, /opt/torch/.venv/bin/python, then
# ~/.cache/crossover/torch-venv/bin/python); --no-reference skips the steps that
# need PyTorch (they are SKIPped anyway when none is found).
#
# Steps (each writes <out>/<step>.log; <out>/summary.md is the pass/fail table):
#  1 environment   driver, CUDA, PyTorch, and the LibTorch the launcher chooses, with
#                  and without LD_LIBRARY_PATH (`trainer libtorch`)
#  2 check-fp32    trainer bench-check against PyTorch, fp32
#  3 check-bf16    the same in bf16 against PyTorch's autocast (tolerance 2e-2)
#  4 jobs          a 125m AR and a moe-tiny DLM job (tiny / moe-tiny on the CPU) through
#                  `trainer run` for about 60 steps with a milestone (val_loss, cloze)
#                  half-way, stopped at step 30 and resumed; status, MFU column,
#                  expert load, and no warning printed
#  5 speed         trainer bench 125m and moe-125m against PyTorch eager (and
#                  torch.compile on the GPU)
#  6 memory        one 1b step at 2048 x 8 (the study's sequence length): the CUDA
#                  allocator's peak against the planning estimate
#  7 nccl          a process group of one on the device (NCCL on a GPU), bucketed
#                  all-reduce, broadcast, barrier; two ranks when two GPUs are visible
# Exit status: 0 when nothing FAILed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=gpu
out="$here/results"
python=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-rehearsal) mode=cpu ;;
    --out) out=$2; shift ;;
    --python) python=$2; shift ;;
    --no-reference) python=none ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
bin="$here/bin"
[ -x "$bin/trainer" ] && [ -x "$bin/trainer-worker" ] || { echo "run.sh: $bin/trainer and trainer-worker are missing; pack with \`just gpu-check\`" >&2; exit 2; }

# Nothing outside the pack and the results folder: the cache (token store, the
# corpus) lives in the results folder.
export CROSSOVER_CACHE="$out/cache"
mkdir -p "$CROSSOVER_CACHE/corpora"
ln -sfn "$here/corpus/demo" "$CROSSOVER_CACHE/corpora/demo"

if [ "$python" = none ]; then
  python=""
elif [ -z "$python" ]; then
  for candidate in "${CROSSOVER_TORCH_PYTHON:-}" /opt/torch/.venv/bin/python "$HOME/.cache/crossover/torch-venv/bin/python"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import torch' 2>/dev/null; then
      python=$candidate
      break
    fi
  done
fi

export CROSSOVER_REFERENCE="$here/reference.py"
if [ -n "$python" ] && [ -z "${CROSSOVER_TORCH_LIB:-}" ]; then
  # The launcher takes every LibTorch library from this PyTorch when a GPU is shown.
  CROSSOVER_TORCH_LIB=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  export CROSSOVER_TORCH_LIB
fi

if [ "$mode" = gpu ]; then
  device=cuda
  job_presets="125m moe-tiny"; seq=1024; batch=16; unique=500k
  bench_presets=125m,moe-125m; bench_args=(--steps 50 --warmup 10)
  memory_args=(--presets 1b --seq-len 2048 --batch-size 8 --steps 2 --warmup 1 --repeat 1)
  peak_args=()
else
  device=cpu
  job_presets="tiny moe-tiny"; seq=64; batch=8; unique=15k
  bench_presets=tiny,moe-tiny; bench_args=(--steps 3 --warmup 1 --repeat 1 --batch-size 4 --seq-len 64)
  memory_args=(--presets tiny --seq-len 128 --batch-size 4 --steps 2 --warmup 1 --repeat 1)
  # The CPU has no data-sheet peak; a nominal one fills the MFU column to check it.
  peak_args=(--peak-tflops 1)
fi

summary="$out/summary.tsv"
: > "$summary"
# step NAME COMMAND...: run it, its output in NAME.log, PASS when it exits 0.
step() {
  local name=$1; shift
  local started=$SECONDS
  echo "== $name" >&2
  if "$@" > "$out/$name.log" 2>&1; then
    printf '%s\tPASS\t%s\t%s\n' "$name" "$((SECONDS - started))" "$(tail -n 1 "$out/$name.log" | cut -c1-160)" >> "$summary"
  else
    printf '%s\tFAIL\t%s\t%s\n' "$name" "$((SECONDS - started))" "$(tail -n 1 "$out/$name.log" | cut -c1-160)" >> "$summary"
  fi
}
skip() {
  printf '%s\tSKIP\t0\t%s\n' "$1" "$2" >> "$summary"
}

environment() {
  echo "mode: $mode; pack: $(cat "$here/BUILD.txt" 2>/dev/null | tr '\n' ' ')"
  if [ "$mode" = gpu ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || return 1
  fi
  local lib=""
  if [ -n "$python" ]; then
    "$python" -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda, "available", torch.cuda.is_available())'
    lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  else
    echo "PyTorch: none found (the reference steps are skipped)"
  fi
  echo "-- trainer libtorch (the launcher's choice; no LD_LIBRARY_PATH):"
  (unset LD_LIBRARY_PATH; "$bin/trainer" libtorch) | tee "$out/libtorch.txt" || return 1
  if [ -n "$lib" ]; then
    echo "-- trainer-worker libtorch with LD_LIBRARY_PATH=$lib (what the launcher sets up):"
    LD_LIBRARY_PATH="$lib" "$bin/trainer-worker" libtorch || return 1
  fi
  if [ "$mode" = gpu ]; then
    grep -q '^chosen: every LibTorch library from' "$out/libtorch.txt" || { echo "no CUDA LibTorch was chosen (see above)"; return 1; }
  else
    ! grep -q '^chosen: nothing' "$out/libtorch.txt" || return 1
    if [ -n "$lib" ] && [ -f "$lib/libtorch_cuda.so" ]; then
      # As far as a CPU goes: a GPU shown and a driver stated, the launcher runs the
      # worker on this PyTorch's libraries and its CUDA library loads on their core.
      echo "-- a GPU node as far as a CPU goes (CUDA_VISIBLE_DEVICES=0, driver stated):"
      local said
      said=$(CUDA_VISIBLE_DEVICES=0 CROSSOVER_NVIDIA_DRIVER=999.99 CROSSOVER_TORCH_LIB="$lib" "$bin/trainer" dist-check --device cuda 2>&1)
      echo "$said"
      grep -q "libtorch_cuda.so loaded, but LibTorch sees no CUDA device" <<< "$said" || return 1
    fi
  fi
  echo "environment ok"
}

# write_sweep FILE [DEVICES]: the check's sweep, its jobs on DEVICES ranks (default 1).
write_sweep() {
  local presets=($job_presets)
  cat > "$1" <<YAML
# Written by run.sh: two jobs of about 60 steps, a milestone half-way and at the end.
name: gpu-check
base:
  seed: 0
  model: { preset: ${presets[0]} }
  data:
    corpus: demo
    tokenizer: bytes
    seq_len: $seq
    unique_tokens: $unique
    val_tokens: 50k
  train:
    epochs: 2
    batch_size: $batch
    lr: 1e-3
    warmup: 5%
    log_every: 5
    device: $device
    devices: ${2:-1}
  eval:
    at: { points: 2 }
    tasks: [val_loss, cloze]
    val_loss_tokens: 16k
    cloze_items: 50
zip:
  model.preset: [${presets[0]}, ${presets[1]}]
  objective: [ar, dlm]
YAML
}

# Check a finished job folder (python3 without torch: reads CSV and JSON).
check_job() {
  python3 - "$1" "$mode" <<'PY'
import csv, json, os, sys
job, mode = sys.argv[1], sys.argv[2]
status = json.load(open(os.path.join(job, "status.json")))
assert status.get("state") == "done", f"status {status.get('state')}: {status.get('error')}"
rows = list(csv.DictReader(open(os.path.join(job, "train.csv"))))
assert rows, "train.csv is empty"
mfu = [float(r["mfu"]) for r in rows if r.get("mfu")]
assert mfu and all(0 < m < 1 for m in mfu), f"MFU column: {mfu[:5]}"
evals = list(csv.DictReader(open(os.path.join(job, "eval.csv"))))
steps = sorted({int(r["step"]) for r in evals})
tasks = {r["task"] for r in evals}
assert len(steps) >= 2, f"evaluated at steps {steps}: no milestone before the end"
assert {"val_loss", "cloze"} <= tasks, f"tasks {tasks}"
config = open(os.path.join(job, "job.yaml")).read()
if "moe" in config:
    load = os.path.join(job, "expert_load.csv")
    assert os.path.exists(load) and len(open(load).read().splitlines()) > 1, "no expert_load.csv"
print(f"{os.path.basename(job)}: done, {len(rows)} train rows, MFU {min(mfu):.3f}-{max(mfu):.3f}, evaluated at {steps}")
PY
}

jobs() {
  write_sweep "$out/gpu-check.yaml"
  "$bin/trainer" init "$out/gpu-check.yaml" --results "$out/jobs" || return 1
  local job
  for job in "$out"/jobs/jobs/*/; do
    job=${job%/}
    echo "-- $job: 30 steps, then stop"
    "$bin/trainer" run "$job" --max-steps 30 "${peak_args[@]}" 2> "$job.stderr-1"
    local code=$?
    cat "$job.stderr-1"
    [ "$code" = 3 ] || { echo "expected exit 3 (stopped with a checkpoint), got $code"; return 1; }
    echo "-- $job: resume to the end"
    "$bin/trainer" run "$job" "${peak_args[@]}" 2> "$job.stderr-2" || { cat "$job.stderr-2"; return 1; }
    cat "$job.stderr-2"
    if grep -i 'warning' "$job.stderr-1" "$job.stderr-2"; then
      echo "warnings printed (above)"
      return 1
    fi
    check_job "$job" || return 1
  done
  echo "jobs ok"
}

speed() {
  local compile=()
  [ "$mode" = gpu ] && compile=(--compile)
  "$bin/trainer" bench --device "$device" --presets "$bench_presets" "${bench_args[@]}" \
    --reference "$python" "${compile[@]}" --json "$out/speed.json"
}

memory() {
  "$bin/trainer" bench --device "$device" "${memory_args[@]}" --json "$out/memory.json" || return 1
  python3 - "$out/memory.json" "$mode" <<'PY'
import json, sys
results, mode = json.load(open(sys.argv[1])), sys.argv[2]
for r in results if isinstance(results, list) else results["results"]:
    peak, estimate = r["harness"]["peak_mem_mib"], r["estimate_mib"]
    ratio = peak / estimate if estimate else float("nan")
    print(f"{r['case']['preset']} {r['case']['objective']}: measured peak {peak:.0f} MiB, estimate {estimate:.0f} MiB, measured/estimate {ratio:.2f}")
    # On a GPU the estimate must not be exceeded by more than the fragmentation and
    # workspaces it leaves out; on the CPU the peak is the whole process' RSS.
    if mode == "gpu" and not ratio <= 1.25:
        sys.exit(f"the allocator's peak is {ratio:.2f}x the estimate: harness plan under-counts")
PY
}

nccl() {
  "$bin/trainer" dist-check --device "$device" || return 1
  if [ "$mode" = gpu ]; then
    grep -q '^Nccl group' "$out/nccl.log" || { echo "the pack was built without NCCL"; return 1; }
    local gpus
    gpus=$(nvidia-smi -L | grep -c '^GPU')
    if [ "$gpus" -ge 2 ]; then
      echo "-- $gpus GPUs: a two-rank job"
      local two="$out/two-ranks"
      rm -rf "$two"; mkdir -p "$two"
      write_sweep "$two/sweep.yaml" 2
      "$bin/trainer" init "$two/sweep.yaml" --results "$two/results" || return 1
      local first
      first=$(ls -d "$two"/results/jobs/*/ | head -n 1)
      "$bin/trainer" run "${first%/}" || return 1
      check_job "${first%/}" || return 1
    fi
  fi
}

step environment environment
if [ -n "$python" ]; then
  step check-fp32 "$bin/trainer" bench-check --device "$device" --reference "$python"
  step check-bf16 "$bin/trainer" bench-check --device "$device" --reference "$python" --precision bf16
else
  skip check-fp32 "no PyTorch (--python)"
  skip check-bf16 "no PyTorch (--python)"
fi
step jobs jobs
if [ -n "$python" ]; then
  step speed speed
else
  skip speed "no PyTorch (--python)"
fi
step memory memory
step nccl nccl

{
  echo "# gpu-check ($mode) $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "| step | result | seconds | last line |"
  echo "|---|---|---|---|"
  while IFS=$'\t' read -r name state seconds note; do
    echo "| $name | $state | $seconds | ${note//|/\\|} |"
  done < "$summary"
} > "$out/summary.md"
cat "$out/summary.md"
echo "(logs and figures: $out)"
! grep -q $'\tFAIL\t' "$summary"
