//! What `trainer bench` measures: a case, its measurements and result, the defaults,
//! and how per-step seconds become one number.

use jobspec::{ModelShape, Precision, padded_vocab};
use serde::{Deserialize, Serialize};

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
}
