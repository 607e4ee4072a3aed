//! How `trainer bench` compares: each case measured in a fresh process (`trainer
//! bench-one`) `repeat` times, back to back with the PyTorch reference (eager, and
//! `torch.compile` when asked), who goes first alternating; the medians and the pairs'
//! ratios are kept (shared machines are noisy).

use crate::bench::case::{BenchCase, BenchResult, Measurement, median};
use crate::bench::reference::{ReferenceCase, run_reference};
use anyhow::Context;
use jobspec::Precision;
use std::path::Path;

/// How each case is measured: how many times, and against which PyTorch.
#[derive(Clone, Copy, Debug)]
pub struct Rounds<'a> {
    /// Measurements of each side (at least 1).
    pub repeat: usize,
    /// Python with PyTorch 2.11 running bench/reference.py (None: the harness alone).
    pub reference: Option<&'a Path>,
    /// Also measure the reference under torch.compile.
    pub compile: bool,
}

/// Measure `case` `rounds.repeat` times, the harness and (with a reference) PyTorch
/// back to back, and keep the medians and the pairs' ratios; None when nothing ran.
pub fn measure_case(
    case: &BenchCase,
    cuda: bool,
    rounds: Rounds<'_>,
) -> anyhow::Result<Option<BenchResult>> {
    let repeat = rounds.repeat;
    eprintln!(
        "measuring {} {} ({} steps, {repeat} time(s)) ...",
        case.preset, case.objective, case.steps
    );
    let mut harness = Vec::new();
    let mut eager = Vec::new();
    let mut compiled = Vec::new();
    let (mut eager_ratios, mut compiled_ratios) = (Vec::new(), Vec::new());
    let mut first: Option<BenchResult> = None;
    // As the harness resolves it (`auto`: bf16 on CUDA, fp32 on CPU).
    let precision = case.precision.resolve(cuda);
    let references_of =
        |python: &std::path::Path| reference_runs(python, case, precision, rounds.compile);
    for round in 0..repeat {
        // Who goes first alternates, so a slow or fast spell of the machine does not
        // favour one side of a pair.
        let reference_first = round % 2 == 1;
        let mut references = match (rounds.reference, reference_first) {
            (Some(python), true) => references_of(python)?,
            _ => Vec::new(),
        };
        let result = harness_run(case)?;
        if let (Some(python), false) = (rounds.reference, reference_first) {
            references = references_of(python)?;
        }
        for (with_compile, measured) in references {
            let pair = result.harness.tokens_per_s / measured.tokens_per_s;
            if with_compile {
                compiled_ratios.push(pair);
                compiled.push(measured);
            } else {
                eager_ratios.push(pair);
                eager.push(measured);
            }
        }
        harness.push(result.harness.clone());
        first.get_or_insert(result);
    }
    let Some(mut result) = first else {
        return Ok(None);
    };
    let first_rate = result.harness.tokens_per_s;
    if let Some(median) = median(harness) {
        result.mfu = result.mfu.map(|mfu| mfu * median.tokens_per_s / first_rate);
        result.harness = median;
    }
    result.eager = median(eager);
    result.compiled = median(compiled);
    result.eager_ratios = eager_ratios;
    result.compiled_ratios = compiled_ratios;
    Ok(Some(result))
}

/// One harness measurement of `case`, in a fresh process of this executable (`trainer
/// bench-one`), so its peak memory is its own.
fn harness_run(case: &BenchCase) -> anyhow::Result<BenchResult> {
    let output = std::process::Command::new(std::env::current_exe()?)
        .arg("bench-one")
        .arg(serde_json::to_string(case)?)
        .output()
        .context("starting a benchmark process")?;
    anyhow::ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
            .trim()
            .trim_start_matches("error: ")
    );
    serde_json::from_slice(&output.stdout).context("reading a benchmark result")
}

/// The PyTorch reference on `case`: eager, then torch.compile when asked; each with
/// whether it was compiled.
fn reference_runs(
    python: &Path,
    case: &BenchCase,
    precision: Precision,
    compile: bool,
) -> anyhow::Result<Vec<(bool, Measurement)>> {
    let mut runs = Vec::new();
    for with_compile in [false, true] {
        if with_compile && !compile {
            continue;
        }
        let reference_case =
            ReferenceCase::new(case, precision, with_compile).map_err(anyhow::Error::msg)?;
        let measured = run_reference(python, "bench", &serde_json::to_string(&reference_case)?)
            .map_err(anyhow::Error::msg)?;
        runs.push((with_compile, measured));
    }
    Ok(runs)
}
