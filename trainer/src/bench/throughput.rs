//! One harness measurement: train a case on random tokens with AdamW and time its steps,
//! with its peak memory.

use crate::bench::case::{BenchCase, BenchResult, Measurement, typical_step_seconds};
use crate::device;
use crate::model::transformer::Transformer;
use crate::objectives::prepared::training_loss_parts;
use crate::objectives::vocab::Vocab;
use crate::train::optim::{AdamW, AdamWConfig};
use jobspec::{DlmConfig, ModelShape, Objective, Precision, padded_vocab};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn parse_objective(name: &str) -> Result<Objective, String> {
    match name {
        "ar" => Ok(Objective::Ar),
        "dlm" => Ok(Objective::Dlm),
        other => Err(format!("unknown objective `{other}` (ar or dlm)")),
    }
}

/// Learning rate, weight decay and clipping of every benchmark and check step (the
/// reference is given the same through `ReferenceCase`).
pub(super) const LR: f64 = 1e-3;

pub(super) const WEIGHT_DECAY: f64 = 0.1;

pub(super) const GRAD_CLIP: f64 = 1.0;

/// A model with AdamW on `device` (torch.optim.AdamW's defaults of the study).
pub(super) fn model_and_optimizer(
    shape: &ModelShape,
    rows: usize,
    device: Device,
    precision: Precision,
) -> (tch::nn::VarStore, Transformer, AdamW) {
    tch::manual_seed(0);
    let (variables, model) =
        Transformer::build(shape, rows, device, device::compute_kind(precision));
    let optimizer = AdamW::new(
        crate::train::optim::named_parameters(&variables, jobspec::DecayScope::Matrices),
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
pub(super) fn synchronize(device: Device) {
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
