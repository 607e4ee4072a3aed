//! `trainer bench`: training throughput, MFU and peak memory for AR and DLM, beside
//! the same model and batch in PyTorch (`bench/reference.py`, eager and optionally
//! `torch.compile`). Each configuration runs in its own process so its peak memory is
//! its own. `trainer bench-check`: the harness and the PyTorch reference compute the
//! same losses and gradient norms from the same weights and batch.

use crate::device;
use crate::model::Transformer;
use crate::objectives::{Vocab, ar_loss, dlm_draw, dlm_loss_on, training_loss_parts};
use crate::train::optim::{AdamW, AdamWConfig};
use jobspec::{DeviceSpec, DlmConfig, ModelShape, Objective, Precision, padded_vocab};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// One benchmark configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchCase {
    pub preset: String,
    pub objective: String,
    pub batch_size: usize,
    pub seq_len: usize,
    pub vocab: usize,
    pub steps: usize,
    pub warmup_steps: usize,
    pub threads: usize,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// `fp32` or `bf16` (`auto` resolves on the device).
    pub precision: Precision,
    /// Peak TFLOP/s for MFU (default: the GPU's data sheet; none on CPU).
    pub peak_tflops: Option<f64>,
    /// Train with activation checkpointing (the reference does not).
    #[serde(default)]
    pub activation_checkpointing: bool,
}

/// One measurement of the harness or of the PyTorch reference.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Measurement {
    pub tokens_per_s: f64,
    /// A typical step: `typical_step_seconds` of the per-step times on the CPU, the
    /// mean over the timed window on a GPU.
    pub step_ms: f64,
    /// Peak resident memory (CPU) or the process's GPU memory per nvidia-smi (CUDA).
    pub peak_mem_mib: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchResult {
    pub case: BenchCase,
    pub params: u64,
    pub flops_per_token: f64,
    pub precision: Precision,
    pub harness: Measurement,
    /// What `harness plan` would estimate for one GPU training this case
    /// (jobspec::memory), to set beside the CUDA allocator's measured peak.
    #[serde(default)]
    pub estimate_mib: f64,
    pub mfu: Option<f64>,
    /// PyTorch eager and torch.compile on the same case, when asked for.
    pub eager: Option<Measurement>,
    pub compiled: Option<Measurement>,
    /// harness / PyTorch tokens/s of each repeat, the two measured back to back (a
    /// paired comparison: both see the same moment of a noisy machine).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eager_ratios: Vec<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compiled_ratios: Vec<f64>,
}

/// What the PyTorch reference needs to rebuild a case: the resolved shape and sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReferenceCase {
    pub shape: ModelShape,
    pub vocab: usize,
    pub vocab_rows: usize,
    pub objective: String,
    pub batch_size: usize,
    pub seq_len: usize,
    pub steps: usize,
    pub warmup_steps: usize,
    pub threads: usize,
    pub device: String,
    pub precision: Precision,
    pub compile: bool,
    pub lr: f64,
    pub weight_decay: f64,
    pub grad_clip: f64,
    pub dlm_eps: f64,
}

impl ReferenceCase {
    pub fn new(case: &BenchCase, precision: Precision, compile: bool) -> Result<Self, String> {
        let shape = ModelShape::preset(&case.preset)
            .ok_or_else(|| format!("unknown preset `{}`", case.preset))?;
        let device = match case.device.parse::<DeviceSpec>()? {
            DeviceSpec::Cuda(index) => format!("cuda:{index}"),
            _ => "cpu".into(),
        };
        Ok(Self {
            shape,
            vocab: case.vocab,
            vocab_rows: padded_vocab(case.vocab),
            objective: case.objective.clone(),
            batch_size: case.batch_size,
            seq_len: case.seq_len,
            steps: case.steps,
            warmup_steps: case.warmup_steps,
            threads: case.threads,
            device,
            precision,
            compile,
            lr: LR,
            weight_decay: WEIGHT_DECAY,
            grad_clip: GRAD_CLIP,
            dlm_eps: DlmConfig::default().eps,
        })
    }
}

fn parse_objective(name: &str) -> Result<Objective, String> {
    match name {
        "ar" => Ok(Objective::Ar),
        "dlm" => Ok(Objective::Dlm),
        other => Err(format!("unknown objective `{other}` (ar or dlm)")),
    }
}

/// Learning rate, weight decay and clipping of every benchmark and check step (the
/// reference is given the same through `ReferenceCase`).
const LR: f64 = 1e-3;
const WEIGHT_DECAY: f64 = 0.1;
const GRAD_CLIP: f64 = 1.0;

/// A model with AdamW on `device` (torch.optim.AdamW's defaults of the study).
fn model_and_optimizer(
    shape: &ModelShape,
    rows: usize,
    device: Device,
    precision: Precision,
) -> (tch::nn::VarStore, Transformer, AdamW) {
    tch::manual_seed(0);
    let (variables, model) =
        Transformer::build(shape, rows, device, device::compute_kind(precision));
    let optimizer = AdamW::new(
        crate::train::named_parameters(&variables, jobspec::DecayScope::Matrices),
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: WEIGHT_DECAY,
        },
    );
    (variables, model, optimizer)
}

/// Wait for the device to finish its queued work.
fn synchronize(device: Device) {
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}

/// Train `case` on random tokens and measure it (run in a child process).
pub fn measure(case: &BenchCase) -> Result<BenchResult, String> {
    tch::set_num_threads(case.threads as i32);
    let objective = parse_objective(&case.objective)?;
    let shape = ModelShape::preset(&case.preset)
        .ok_or_else(|| format!("unknown preset `{}`", case.preset))?;
    let device = device::select(case.device.parse()?)?;
    let precision = case.precision.resolve(device.is_cuda());
    let rows = padded_vocab(case.vocab);
    let (_variables, mut model, mut optimizer) =
        model_and_optimizer(&shape, rows, device, precision);
    model.activation_checkpointing = case.activation_checkpointing;
    let vocab = Vocab {
        size: case.vocab as i64,
    };
    // Full-length rows, as the PyTorch reference trains (no 1% truncation).
    let dlm = DlmConfig {
        truncate_prob: 0.0,
        ..DlmConfig::default()
    };
    let windows = Tensor::randint(
        case.vocab as i64,
        [case.batch_size as i64, case.seq_len as i64 + 1],
        (Kind::Int64, device),
    );
    let mut step = || -> Result<(), String> {
        let loss = training_loss_parts(&model, &objective, &windows, vocab, &dlm);
        optimizer.zero_grad().map_err(|error| error.to_string())?;
        loss.backward(&model, 1.0)
            .map_err(|error| error.to_string())?;
        let _norm = optimizer
            .clip_gradients(GRAD_CLIP)
            .map_err(|error| error.to_string())?;
        optimizer.step(LR).map_err(|error| error.to_string())
    };
    for _ in 0..case.warmup_steps {
        step()?;
    }
    synchronize(device);
    // CPU steps are synchronous: time each one. A GPU queues work, so time the window.
    let mut step_seconds = Vec::with_capacity(case.steps);
    let clock = Instant::now();
    for _ in 0..case.steps {
        let started = Instant::now();
        step()?;
        if !device.is_cuda() {
            step_seconds.push(started.elapsed().as_secs_f64());
        }
    }
    synchronize(device);
    if device.is_cuda() {
        step_seconds.push(clock.elapsed().as_secs_f64() / case.steps.max(1) as f64);
    }
    let seconds = typical_step_seconds(&step_seconds).ok_or("no timed steps (--steps 0)")?;
    let tokens_per_s = (case.batch_size * case.seq_len) as f64 / seconds;
    let flops_per_token = shape.train_flops_per_token(rows, case.seq_len);
    let mfu = device::peak_flops(device, precision, case.peak_tflops)
        .map(|peak| tokens_per_s * flops_per_token / peak);
    Ok(BenchResult {
        params: shape.total_params(rows),
        flops_per_token,
        precision,
        harness: Measurement {
            tokens_per_s,
            step_ms: 1e3 * seconds,
            peak_mem_mib: peak_memory_mib(device),
        },
        estimate_mib: jobspec::memory::memory_per_gpu(
            &shape,
            rows,
            (case.batch_size * case.seq_len) as f64,
            jobspec::memory::Layout {
                checkpointing: case.activation_checkpointing,
                ..jobspec::memory::Layout::single(precision == Precision::Bf16)
            },
        )
        .total()
            / f64::from(1u32 << 20),
        mfu,
        eager: None,
        compiled: None,
        eager_ratios: Vec::new(),
        compiled_ratios: Vec::new(),
        case: case.clone(),
    })
}

/// Peak memory of this process: VmHWM on the CPU; on CUDA the caching allocator's
/// peak reservation (`torch.cuda.max_memory_reserved`, which the PyTorch reference
/// reports too; the CUDA context's few hundred MiB are not in it). NaN when unknown.
pub fn peak_memory_mib(device: Device) -> f64 {
    match device {
        Device::Cuda(index) => crate::fused::cuda_peak_memory(index, false)
            .map_or(f64::NAN, |(reserved, _)| {
                reserved as f64 / f64::from(1u32 << 20)
            }),
        _ => peak_rss_mib(),
    }
}

/// Peak resident set size of this process (VmHWM), in MiB; NaN where /proc is absent.
pub fn peak_rss_mib() -> f64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return f64::NAN;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Where the PyTorch reference script is: `$CROSSOVER_REFERENCE`, `bench/reference.py`
/// under the working folder, or `reference.py` beside this executable (gpu-check).
pub fn reference_script() -> Option<PathBuf> {
    let explicit = std::env::var_os("CROSSOVER_REFERENCE").map(PathBuf::from);
    let local = PathBuf::from("bench/reference.py");
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("reference.py")));
    [explicit, Some(local), beside]
        .into_iter()
        .flatten()
        .find(|path| path.is_file())
}

/// Run the reference script: `python reference.py COMMAND ARG`, parsing its JSON.
pub fn run_reference<T: for<'de> Deserialize<'de>>(
    python: &Path,
    command: &str,
    argument: &str,
) -> Result<T, String> {
    let script = reference_script().ok_or(
        "bench/reference.py not found: run from the repository root or set CROSSOVER_REFERENCE",
    )?;
    let output = std::process::Command::new(python)
        .arg(&script)
        .arg(command)
        .arg(argument)
        .output()
        .map_err(|error| {
            format!(
                "cannot start {} ({error}); `just setup-torch` makes a PyTorch 2.11 virtual environment",
                python.display()
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "{} {} {command} failed:\n{}",
            python.display(),
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|error| {
        format!(
            "{} printed no result ({error}): {}",
            script.display(),
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The ratio cell: the median of the paired ratios with their range, e.g.
/// `0.98 [0.91, 1.05]`; the ratio of the medians when there are no pairs.
fn ratio(harness: f64, reference: Option<&Measurement>, pairs: &[f64]) -> String {
    let mut sorted = pairs.to_vec();
    sorted.sort_by(f64::total_cmp);
    match (sorted.as_slice(), reference) {
        ([], None) => "-".into(),
        ([], Some(reference)) => format!("{:.2}", harness / reference.tokens_per_s),
        ([only], _) => format!("{only:.2}"),
        ([low, .., high], _) => {
            let middle = sorted[(sorted.len() - 1) / 2];
            format!("{middle:.2} [{low:.2}, {high:.2}]")
        }
    }
}

fn tokens(reference: Option<&Measurement>) -> String {
    reference.map_or_else(
        || "-".into(),
        |reference| format!("{:.0}", reference.tokens_per_s),
    )
}

/// The table `trainer bench` prints: the harness, then PyTorch and the ratios
/// harness / PyTorch (above 1: the harness is faster): the median over repeats of each
/// back-to-back pair's ratio, with the lowest and highest.
pub fn table(results: &[BenchResult]) -> String {
    let mut out = String::from(
        "| preset | params | objective | device | precision | batch x seq | tokens/s | MFU | peak MiB | estimate MiB | PyTorch eager tokens/s | harness/eager | torch.compile tokens/s | harness/compile |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for result in results {
        let case = &result.case;
        let device = if case.device.starts_with("cuda") {
            case.device.clone()
        } else {
            format!("cpu x{}", case.threads)
        };
        out.push_str(&format!(
            "| {} | {:.1}M | {} | {} | {:?} | {} x {} | {:.0} | {} | {:.0} | {:.0} | {} | {} | {} | {} |\n",
            case.preset,
            result.params as f64 / 1e6,
            case.objective,
            device,
            result.precision,
            case.batch_size,
            case.seq_len,
            result.harness.tokens_per_s,
            result
                .mfu
                .map_or_else(|| "-".into(), |mfu| format!("{:.1}%", 100.0 * mfu)),
            result.harness.peak_mem_mib,
            result.estimate_mib,
            tokens(result.eager.as_ref()),
            ratio(
                result.harness.tokens_per_s,
                result.eager.as_ref(),
                &result.eager_ratios
            ),
            tokens(result.compiled.as_ref()),
            ratio(
                result.harness.tokens_per_s,
                result.compiled.as_ref(),
                &result.compiled_ratios
            ),
        ));
    }
    out
}

/// Result of `trainer bench-check` for one objective: per step, the loss and the
/// gradient norm of the harness and of PyTorch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckTrace {
    pub losses: Vec<f64>,
    pub grad_norms: Vec<f64>,
}

/// Write everything the reference needs to recompute `steps` training steps of
/// `objective` from the same weights and batch, and return the harness's own trace.
/// Files in `folder`: weights.safetensors, batch.safetensors (windows; for the DLM the
/// clean rows, mask and p_mask), case.json.
pub fn write_check(
    folder: &Path,
    objective: &str,
    preset: &str,
    (device, precision): (Device, Precision),
    steps: usize,
) -> Result<CheckTrace, String> {
    let shape = ModelShape::preset(preset).ok_or_else(|| format!("unknown preset `{preset}`"))?;
    let vocab_size = 250;
    let rows = padded_vocab(vocab_size);
    let (batch_size, seq_len) = (4, 32);
    let (variables, model, mut optimizer) = model_and_optimizer(&shape, rows, device, precision);
    let vocab = Vocab {
        size: vocab_size as i64,
    };
    let windows = Tensor::randint(
        vocab_size as i64,
        [batch_size, seq_len + 1],
        (Kind::Int64, device),
    );
    let dlm = DlmConfig {
        truncate_prob: 0.0,
        ..DlmConfig::default()
    };
    let draw = dlm_draw(&windows, &dlm);
    variables
        .save(folder.join("weights.safetensors"))
        .map_err(|error| error.to_string())?;
    let cpu = |t: &Tensor| t.to_device(Device::Cpu).contiguous();
    Tensor::write_safetensors(
        &[
            ("windows", cpu(&windows)),
            ("clean", cpu(&draw.clean)),
            ("mask", cpu(&draw.mask).to_kind(Kind::Uint8)),
            ("p_mask", cpu(&draw.p_mask)),
        ],
        folder.join("batch.safetensors"),
    )
    .map_err(|error| error.to_string())?;
    let case = ReferenceCase {
        shape,
        vocab: vocab_size,
        vocab_rows: rows,
        objective: objective.into(),
        batch_size: batch_size as usize,
        seq_len: seq_len as usize,
        steps,
        warmup_steps: 0,
        threads: tch::get_num_threads() as usize,
        device: match device {
            Device::Cuda(index) => format!("cuda:{index}"),
            _ => "cpu".into(),
        },
        precision,
        compile: false,
        lr: LR,
        weight_decay: WEIGHT_DECAY,
        grad_clip: GRAD_CLIP,
        dlm_eps: dlm.eps,
    };
    let json = serde_json::to_string_pretty(&case).map_err(|error| error.to_string())?;
    std::fs::write(folder.join("case.json"), json).map_err(|error| error.to_string())?;
    let mut trace = CheckTrace {
        losses: Vec::new(),
        grad_norms: Vec::new(),
    };
    for _ in 0..steps {
        let loss = match objective {
            "ar" => ar_loss(&model, &windows, vocab, 0.0, 0.0, true),
            "dlm" => dlm_loss_on(&model, &draw, vocab, &dlm),
            other => return Err(format!("unknown objective `{other}` (ar or dlm)")),
        };
        optimizer.zero_grad().map_err(|error| error.to_string())?;
        loss.backward();
        let norm = optimizer
            .clip_gradients(GRAD_CLIP)
            .map_err(|error| error.to_string())?;
        optimizer.step(LR).map_err(|error| error.to_string())?;
        trace.losses.push(loss.double_value(&[]));
        trace.grad_norms.push(norm.double_value(&[]));
    }
    Ok(trace)
}

/// Largest relative difference between two traces (NaN-safe: a NaN is infinite).
pub fn trace_difference(ours: &CheckTrace, theirs: &CheckTrace) -> f64 {
    let pairs = ours
        .losses
        .iter()
        .zip(&theirs.losses)
        .chain(ours.grad_norms.iter().zip(&theirs.grad_norms));
    let mut worst: f64 = if ours.losses.len() == theirs.losses.len()
        && ours.grad_norms.len() == theirs.grad_norms.len()
    {
        0.0
    } else {
        f64::INFINITY
    };
    for (a, b) in pairs {
        let difference = (a - b).abs() / a.abs().max(b.abs()).max(1e-12);
        worst = worst.max(if difference.is_nan() {
            f64::INFINITY
        } else {
            difference
        });
    }
    worst
}

/// Scoring throughput of one scorer on random questions.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScoringResult {
    pub scorer: String,
    pub draws: usize,
    pub items: usize,
    pub seconds: f64,
    pub items_per_s: f64,
}

/// `trainer bench-eval`: items/s for AR and DLM scoring with the `preset` model on
/// random 4-choice questions (48-token contexts, 12-token continuations).
pub fn measure_scoring(
    preset: &str,
    items: usize,
    draws: usize,
    threads: usize,
) -> Result<Vec<ScoringResult>, String> {
    use crate::eval::scoring::{Candidate, Question, ScoreSettings, Scorer, score};
    tch::set_num_threads(threads as i32);
    let shape = ModelShape::preset(preset).ok_or_else(|| format!("unknown preset `{preset}`"))?;
    let vocab = 2048;
    tch::manual_seed(0);
    let (_variables, model) =
        Transformer::build(&shape, padded_vocab(vocab), Device::Cpu, Kind::Float);
    let draw = |n: i64| {
        Vec::<i64>::try_from(Tensor::randint(
            vocab as i64,
            [n],
            (Kind::Int64, tch::Device::Cpu),
        ))
        .unwrap_or_default()
    };
    let questions: Vec<Question> = (0..items)
        .map(|i| {
            let context = draw(48);
            let candidates = (0..4)
                .map(|_| Candidate {
                    context: context.clone(),
                    continuation: draw(12),
                    bytes: 48,
                })
                .collect();
            Question {
                candidates,
                gold: i % 4,
            }
        })
        .collect();
    let mut results = Vec::new();
    for (name, scorer) in [
        ("ar", Scorer::Ar),
        ("dlm_elbo", Scorer::DlmElbo { draws }),
        ("dlm_chain_rule", Scorer::DlmChainRule),
    ] {
        let clock = Instant::now();
        let settings = ScoreSettings {
            vocab: Vocab { size: vocab as i64 },
            max_len: 128,
            batch_tokens: 16_384,
            seed: 0,
            eps: 1e-3,
            pad_to_max_len: false,
        };
        let _ = score(&model, &questions, scorer, &settings);
        let seconds = clock.elapsed().as_secs_f64();
        let draws = if matches!(scorer, Scorer::DlmElbo { .. }) {
            draws
        } else {
            1
        };
        results.push(ScoringResult {
            scorer: name.into(),
            draws,
            items,
            seconds,
            items_per_s: items as f64 / seconds,
        });
    }
    Ok(results)
}

pub fn scoring_table(results: &[ScoringResult], threads: usize) -> String {
    let ar = results
        .iter()
        .find(|r| r.scorer == "ar")
        .map_or(f64::NAN, |r| r.seconds);
    let mut out = String::from(
        "| scorer | draws | items | seconds | items/s | time / (draws x AR time) |\n|---|---|---|---|---|---|\n",
    );
    for result in results {
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.1} | {:.2} |\n",
            result.scorer,
            result.draws,
            result.items,
            result.seconds,
            result.items_per_s,
            result.seconds / (result.draws as f64 * ar)
        ));
    }
    out.push_str(&format!(
        "\n{threads} threads, 4 choices per item, 48-token contexts, 12-token continuations\n"
    ));
    out
}

/// Batch shape and vocabulary `trainer bench` uses when not told.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    pub batch_size: usize,
    pub seq_len: usize,
    pub vocab: usize,
}

impl Defaults {
    pub fn for_device(cuda: bool) -> Self {
        if cuda {
            Self {
                batch_size: 16,
                seq_len: 1024,
                vocab: 50_257,
            }
        } else {
            Self {
                batch_size: 8,
                seq_len: 128,
                vocab: 2048,
            }
        }
    }
}

/// (warmup, timed) steps when not told: 10 and 50 on CUDA; on CPU about 400 GFLOP of
/// timed work, between 8 and 60 steps (enough for `typical_step_seconds`), after 1
/// warmup step (3 when steps are cheap).
pub fn auto_steps(case: &BenchCase, cuda: bool) -> Result<(usize, usize), String> {
    if cuda {
        return Ok((10, 50));
    }
    let shape = ModelShape::preset(&case.preset)
        .ok_or_else(|| format!("unknown preset `{}`", case.preset))?;
    let per_step = shape.train_flops_per_token(padded_vocab(case.vocab), case.seq_len)
        * (case.batch_size * case.seq_len) as f64;
    let steps = (400e9 / per_step).ceil().clamp(8.0, 60.0) as usize;
    Ok((if steps > 12 { 3 } else { 1 }, steps))
}

/// Which per-step time stands for a run: the 20th percentile (nearest rank). This VM
/// slows down by up to 30% for seconds at a time (other tenants); a low percentile
/// measures the code rather than the neighbours, and bench/reference.py applies the
/// same rule to PyTorch.
pub const STEP_QUANTILE: f64 = 0.2;

/// The `STEP_QUANTILE` of per-step seconds (nearest rank); None when empty.
pub fn typical_step_seconds(seconds: &[f64]) -> Option<f64> {
    let mut sorted = seconds.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (STEP_QUANTILE * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// The measurement with the median tokens/s (the lower middle one for an even count).
pub fn median(mut measurements: Vec<Measurement>) -> Option<Measurement> {
    measurements.sort_by(|a, b| a.tokens_per_s.total_cmp(&b.tokens_per_s));
    let middle = measurements.len().checked_sub(1)? / 2;
    Some(measurements.swap_remove(middle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(tokens_per_s: f64) -> Measurement {
        Measurement {
            tokens_per_s,
            step_ms: 0.0,
            peak_mem_mib: 0.0,
        }
    }

    #[test]
    fn typical_step_is_the_twentieth_percentile_by_nearest_rank() {
        let cases: [(&[f64], Option<f64>); 5] = [
            (&[], None),
            (&[3.0], Some(3.0)),
            (&[5.0, 1.0, 4.0, 2.0, 3.0], Some(1.0)),
            (&[6.0, 1.0, 4.0, 2.0, 3.0, 5.0], Some(2.0)),
            (
                &[10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0],
                Some(2.0),
            ),
        ];
        for (seconds, expected) in cases {
            assert_eq!(typical_step_seconds(seconds), expected, "{seconds:?}");
        }
    }

    #[test]
    fn ratio_cell_prefers_paired_ratios_with_their_range() {
        let reference = at(50.0);
        let cases: [(Option<&Measurement>, &[f64], &str); 5] = [
            (None, &[], "-"),
            (Some(&reference), &[], "2.00"),
            (Some(&reference), &[0.97], "0.97"),
            (Some(&reference), &[1.05, 0.91, 0.98], "0.98 [0.91, 1.05]"),
            (None, &[1.2, 0.8, 1.0, 0.9], "0.90 [0.80, 1.20]"),
        ];
        for (reference, pairs, expected) in cases {
            assert_eq!(ratio(100.0, reference, pairs), expected, "{pairs:?}");
        }
    }

    #[test]
    fn median_of_measurements() {
        let cases: [(&[f64], Option<f64>); 4] = [
            (&[], None),
            (&[5.0], Some(5.0)),
            (&[9.0, 1.0, 5.0], Some(5.0)),
            (&[4.0, 1.0, 3.0, 2.0], Some(2.0)),
        ];
        for (rates, expected) in cases {
            let measured = median(rates.iter().copied().map(at).collect());
            assert_eq!(measured.map(|m| m.tokens_per_s), expected, "{rates:?}");
        }
    }

    #[test]
    fn traces_compare_relative_and_refuse_nan_or_missing_steps() {
        let trace = |losses: &[f64]| CheckTrace {
            losses: losses.to_vec(),
            grad_norms: vec![1.0; losses.len()],
        };
        let exact = trace_difference(&trace(&[2.0, 1.0]), &trace(&[2.0, 1.0]));
        assert_eq!(exact, 0.0);
        let close = trace_difference(&trace(&[2.0, 1.0]), &trace(&[2.0, 1.001]));
        assert!((close - 1e-3 / 1.001).abs() < 1e-12, "{close}");
        assert!(trace_difference(&trace(&[2.0]), &trace(&[f64::NAN])).is_infinite());
        assert!(trace_difference(&trace(&[2.0, 1.0]), &trace(&[2.0])).is_infinite());
    }
}
