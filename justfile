# The runnable README. `just` lists the recipes; `just demo` and `just test` are the
# two a newcomer needs.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Prepare LibTorch 2.11 (CPU) in ~/.cache/crossover; instant once cached.
setup:
    scripts/setup-libtorch.sh

# Fetch a built-in corpus (sotu, moby, wiki or demo = all three) into the cache.
corpus name="demo":
    scripts/fetch-corpus.sh {{ name }}

# Build every crate (dev profile, the one tests use).
build: setup
    cargo build --workspace

# Run every test: unit, tensor, training and end-to-end (what CI runs).
test: setup (corpus "sotu")
    cargo test --workspace

# Train the smoke sweep (AR, DLM, AR-masked on a real corpus) with the trainer alone.
smoke: setup (corpus "sotu")
    cargo build -p trainer
    for job in $(target/debug/trainer init sweeps/smoke.yaml --results results/smoke); do target/debug/trainer run "$job"; done
    @echo "results in results/smoke/jobs/*/ (train.csv, eval.csv, status.json)"

# The CPU demo: the demo sweep on a real corpus (figures and report come with `harness analyze`).
demo: setup (corpus "demo")
    cargo build -p trainer
    for job in $(target/debug/trainer init sweeps/demo.yaml --results results/demo); do target/debug/trainer run "$job"; done
    @echo "results in results/demo/jobs/*/ (train.csv, eval.csv)"

# Training throughput and peak memory for AR and DLM at two sizes on this CPU.
bench-train: setup (corpus "sotu")
    cargo build --release -p trainer
    target/release/trainer bench

# Format, lint.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
