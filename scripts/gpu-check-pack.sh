#!/usr/bin/env bash
# Pack what a GPU node needs to measure the harness against PyTorch: the stripped
# release trainer (LibTorch is not packed: the node's PyTorch 2.11 provides it), the
# PyTorch reference and a runner. Output: target/gpu-check/ (a few tens of MiB).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
cargo build --release -p trainer
out=target/gpu-check
rm -rf "$out"
mkdir -p "$out"
cp target/release/trainer "$out/trainer"
strip "$out/trainer"
cp bench/reference.py "$out/reference.py"
cp scripts/gpu-check.sh "$out/run.sh"
chmod +x "$out/run.sh"
du -sh "$out" >&2
echo "gpu-check: packed $out; on a GPU node with PyTorch 2.11 (CUDA) run: $out/run.sh" >&2
