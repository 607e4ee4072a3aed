//! `trainer bench-check`: the harness's trace of a few AdamW steps from exported
//! weights and batch, and its difference from PyTorch's.

use crate::bench::reference::ReferenceCase;
use crate::bench::throughput::{GRAD_CLIP, LR, WEIGHT_DECAY, model_and_optimizer};
use crate::objectives::ar::ar_loss;
use crate::objectives::dlm::{dlm_draw, dlm_loss_on};
use crate::objectives::vocab::Vocab;
use jobspec::{DlmConfig, ModelShape, Precision, padded_vocab};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{Device, Kind, Tensor};

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

#[cfg(test)]
mod tests {
    use super::*;

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
