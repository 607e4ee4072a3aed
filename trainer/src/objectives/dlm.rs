//! The DLM objective (masked diffusion): diffusion times, masks, and the
//! cross-entropy over masked positions weighted by 1 / p_mask.

use crate::model::layers::ForwardOptions;
use crate::model::transformer::{Output, Transformer};
use crate::objectives::loss::TrainingLoss;
use crate::objectives::vocab::{Vocab, token_cross_entropy};
use jobspec::{DlmConfig, DlmWeighting};
use tch::{Kind, Tensor};

/// Diffusion times for a batch: stratified t_i = (u + i / B) mod 1 (MDLM's
/// low-discrepancy sampler) or independent uniforms.
pub fn diffusion_times(batch: i64, stratified: bool, device: tch::Device) -> Tensor {
    if stratified {
        let offset = Tensor::rand([1], (Kind::Float, device));
        (offset + Tensor::arange(batch, (Kind::Float, device)) / batch as f64).remainder(1.0)
    } else {
        Tensor::rand([batch], (Kind::Float, device))
    }
}

/// p_mask = (1 - eps) t + eps for the linear schedule.
pub fn mask_probability(times: &Tensor, eps: f64) -> Tensor {
    times * (1.0 - eps) + eps
}

/// One corruption of a DLM batch: the clean rows x0, which positions are masked, and
/// each row's masking probability.
#[derive(Debug)]
pub struct DlmDraw {
    /// (B, L) clean tokens.
    pub clean: Tensor,
    /// (B, L) bool, true where the input is the mask id.
    pub mask: Tensor,
    /// (B,) p_mask of each row.
    pub p_mask: Tensor,
}

/// Masked-diffusion loss for one batch of windows: the first L tokens of each window
/// are the clean sequence x0 (the same windows AR sees, unshifted).
pub fn dlm_loss(model: &Transformer, windows: &Tensor, vocab: Vocab, config: &DlmConfig) -> Tensor {
    dlm_loss_on(model, &dlm_draw(windows, config), vocab, config)
}

/// Draw times and masks for a batch (LibTorch's generators, reseeded per step).
pub fn dlm_draw(windows: &Tensor, config: &DlmConfig) -> DlmDraw {
    let (b, window) = windows.size2().unwrap_or_default();
    let mut length = window - 1;
    // MegaDLMs/SMDM: now and then train on a short prefix so short inputs are seen.
    // Decided on the CPU generator, so a GPU step never waits for it.
    let cpu = (Kind::Float, tch::Device::Cpu);
    if config.truncate_prob > 0.0
        && Tensor::rand([1], cpu).double_value(&[0]) < config.truncate_prob
    {
        // Strictly shorter: a length in [2, L - 1].
        if length > 2 {
            length = Tensor::randint_low(2, length, [1], (Kind::Int64, tch::Device::Cpu))
                .int64_value(&[0]);
        }
    }
    let clean = windows.narrow(1, 0, length); // (B, L)
    let times = diffusion_times(b, config.stratified, windows.device());
    let p_mask = mask_probability(&times, config.eps); // (B,)
    let mut mask =
        Tensor::rand([b, length], (Kind::Float, windows.device())).lt_tensor(&p_mask.unsqueeze(1));
    if config.weighting == DlmWeighting::MaskFraction {
        mask = ensure_one_masked(&mask);
    }
    DlmDraw {
        clean,
        mask,
        p_mask,
    }
}

/// The DLM loss of a given draw (plus a mixture's auxiliary losses).
pub fn dlm_loss_on(
    model: &Transformer,
    draw: &DlmDraw,
    vocab: Vocab,
    config: &DlmConfig,
) -> Tensor {
    dlm_loss_parts(model, draw, vocab, config).total
}

pub(super) fn dlm_loss_parts(
    model: &Transformer,
    draw: &DlmDraw,
    vocab: Vocab,
    config: &DlmConfig,
) -> TrainingLoss {
    let noisy = draw.clean.masked_fill(&draw.mask, vocab.mask_id());
    let Output {
        logits,
        router,
        checkpoints,
    } = model.output(
        &noisy,
        ForwardOptions {
            causal: false,
            dropout: 0.0,
            train: true,
        },
        vocab.size,
    );
    let weights = row_weights(&draw.mask, &draw.p_mask, config.weighting);
    let loss = dlm_loss_from_logits(&logits, &draw.clean, &draw.mask, &weights, vocab);
    TrainingLoss::of(model, loss, router, checkpoints)
}

/// Loss weight of each row: 1 / p_mask (unbiased ELBO) or L / masked count (MegaDLMs).
pub fn row_weights(mask: &Tensor, p_mask: &Tensor, weighting: DlmWeighting) -> Tensor {
    match weighting {
        DlmWeighting::InverseT => p_mask.reciprocal(),
        DlmWeighting::MaskFraction => {
            let length = mask.size()[1] as f64;
            (mask
                .to_kind(Kind::Float)
                .sum_dim_intlist(1, false, Kind::Float)
                / length)
                .reciprocal()
        }
    }
}

/// Rows with nothing masked get one random position masked (MegaDLMs).
fn ensure_one_masked(mask: &Tensor) -> Tensor {
    let (b, length) = mask.size2().unwrap_or_default();
    let empty = mask.any_dims(&[1i64][..], true).logical_not(); // (B, 1)
    let pick = Tensor::randint(length, [b, 1], (Kind::Int64, mask.device()));
    let one_hot =
        Tensor::zeros([b, length], (Kind::Bool, mask.device())).scatter_value(1, &pick, 1);
    mask.logical_or(&one_hot.logical_and(&empty))
}

/// sum over masked positions of CE(logits_i, x0_i) x weight(row), divided by B x L.
///
/// # Shapes
/// logits (B, L, V_rows), clean (B, L), mask (B, L) bool, weights (B,) -> scalar.
pub fn dlm_loss_from_logits(
    logits: &Tensor,
    clean: &Tensor,
    mask: &Tensor,
    weights: &Tensor,
    vocab: Vocab,
) -> Tensor {
    let (b, length) = clean.size2().unwrap_or_default();
    weighted_masked_cross_entropy(logits, clean, mask, weights, vocab).sum(Kind::Float)
        / (b * length) as f64
}

/// Each row's share of [`dlm_loss_from_logits`]: the sum over its masked positions of
/// CE x weight, divided by L (the batch loss is their mean).
///
/// # Shapes
/// logits (B, L, V_rows), clean (B, L), mask (B, L) bool, weights (B,) -> (B,).
pub fn dlm_row_losses(
    logits: &Tensor,
    clean: &Tensor,
    mask: &Tensor,
    weights: &Tensor,
    vocab: Vocab,
) -> Tensor {
    let length = clean.size()[1];
    weighted_masked_cross_entropy(logits, clean, mask, weights, vocab).sum_dim_intlist(
        1,
        false,
        Kind::Float,
    ) / length as f64
}

/// CE(logits_i, x0_i) x weight(row) at masked positions, 0 elsewhere: (B, L).
fn weighted_masked_cross_entropy(
    logits: &Tensor,
    clean: &Tensor,
    mask: &Tensor,
    weights: &Tensor,
    vocab: Vocab,
) -> Tensor {
    token_cross_entropy(logits, clean, vocab) * mask.to_kind(Kind::Float) * weights.unsqueeze(1)
}
