#!/usr/bin/env bash
# Runs on a GPU node from the folder `just gpu-check` packed (trainer, reference.py,
# run.sh). Needs PyTorch 2.11 with CUDA: $CROSSOVER_TORCH_PYTHON or
# /opt/torch/.venv/bin/python. Checks the harness against PyTorch on the GPU, then
# trains AR and DLM at 125M in bf16 for a few hundred steps and prints tokens/s, MFU,
# peak memory and the harness/PyTorch ratios (eager and torch.compile).
# Environment: PRESETS (default 125m), STEPS (200), BATCH (16), SEQ (1024),
# OUT (folder for gpu-check.json and gpu-check.md; default: beside this script).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${CROSSOVER_TORCH_PYTHON:-/opt/torch/.venv/bin/python}
[ -x "$python" ] || { echo "gpu-check: no PyTorch python at $python; set CROSSOVER_TORCH_PYTHON" >&2; exit 1; }
lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CROSSOVER_TORCH_LIB="$lib" CROSSOVER_REFERENCE="$here/reference.py"
out=${OUT:-$here}
mkdir -p "$out"
{
  echo "# gpu-check $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/GPU: /'
  "$python" -c 'import torch; print("PyTorch:", torch.__version__, "CUDA", torch.version.cuda)'
  echo
  "$here/trainer" bench-check --device cuda --reference "$python"
  echo
  "$here/trainer" bench --device cuda --precision bf16 --presets "${PRESETS:-125m}" \
    --steps "${STEPS:-200}" --warmup 20 --batch-size "${BATCH:-16}" --seq-len "${SEQ:-1024}" \
    --reference "$python" --compile --json "$out/gpu-check.json"
} 2>&1 | tee "$out/gpu-check.md"
