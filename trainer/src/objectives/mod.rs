//! Training objectives (reference/recipes.md): what goes into the model, how it
//! attends, what it must predict, and how the loss is weighted.
//!
//! - `ar`: causal, inputs x[0..L], targets x[1..L+1], mean cross-entropy.
//! - `dlm`: masked diffusion (MDLM, Sahoo et al. 2024; SMDM, Nie et al. 2024):
//!   bidirectional, unshifted, linear schedule alpha_t = 1 - t, p_mask = (1 - eps) t + eps,
//!   loss = sum over masked positions of CE / p_mask, divided by B x L.
//! - `ar_masked(p)`: AR whose INPUT tokens are replaced by the mask id with probability
//!   p; targets stay the clean next tokens.
//! - `ar_dropout(p)`: AR with residual and attention dropout p.
//!
//! Every draw uses LibTorch's global generator, which the training loop reseeds from
//! (job seed, step) before each step, so runs are reproducible and resumable.
//! Softmaxes run over the tokenizer's ids only: the mask id and the padding rows are
//! never predicted (MDLM sets the mask logit to -inf; slicing does that and more).

use crate::model::{Checkpoints, ForwardOptions, Output, RouterStats, Transformer};
use jobspec::{DlmConfig, DlmWeighting, Objective};
use tch::{Kind, Reduction, TchError, Tensor};

/// Token ids that objectives need: `vocab` tokenizer ids, the mask id right after.
#[derive(Clone, Copy, Debug)]
pub struct Vocab {
    pub size: i64,
}

impl Vocab {
    pub fn mask_id(&self) -> i64 {
        self.size
    }
}

/// A training loss and its parts.
#[derive(Debug)]
pub struct TrainingLoss {
    /// What is minimised: the objective's loss plus, for a mixture of experts, the
    /// weighted load-balancing and z-losses.
    pub total: Tensor,
    /// The objective's own loss (what a dense model of the same objective reports).
    pub objective: Tensor,
    /// The routers' statistics (None for a dense model).
    pub router: Option<RouterStats>,
    /// Under activation checkpointing, the blocks' saved inputs that `backward`
    /// needs; None otherwise (and once detached).
    pub checkpoints: Option<Checkpoints>,
}

impl TrainingLoss {
    /// Add the routers' auxiliary losses (training only) to an objective's loss.
    fn of(
        model: &Transformer,
        objective: Tensor,
        router: Option<RouterStats>,
        checkpoints: Option<Checkpoints>,
    ) -> Self {
        let total = match (&router, &model.shape.moe) {
            (Some(router), Some(moe)) => &objective + router.penalty(moe),
            _ => objective.shallow_clone(),
        };
        Self {
            total,
            objective,
            router,
            checkpoints,
        }
    }

    /// Accumulate the gradient of `scale` x `total` into the weights: the loss'
    /// backward, then, under activation checkpointing, the walk back through the
    /// recomputed blocks (without it the blocks would get no gradient).
    pub fn backward(&self, model: &Transformer, scale: f64) -> Result<(), TchError> {
        if scale == 1.0 {
            self.total.f_backward()?;
        } else {
            (&self.total * scale).f_backward()?;
        }
        match &self.checkpoints {
            Some(saved) => model.backward_checkpointed(saved, scale),
            None => Ok(()),
        }
    }
}

/// Training loss for one batch of windows (with a mixture's auxiliary losses).
///
/// # Shapes
/// windows: (B, L + 1) int64 -> scalar float loss.
pub fn training_loss(
    model: &Transformer,
    objective: &Objective,
    windows: &Tensor,
    vocab: Vocab,
    dlm: &DlmConfig,
) -> Tensor {
    training_loss_parts(model, objective, windows, vocab, dlm).total
}

/// `training_loss` with its parts: the objective's loss and the routers' statistics.
pub fn training_loss_parts(
    model: &Transformer,
    objective: &Objective,
    windows: &Tensor,
    vocab: Vocab,
    dlm: &DlmConfig,
) -> TrainingLoss {
    prepared_loss(model, &prepare(objective, windows, vocab, dlm), vocab, dlm)
}

/// A batch with its noise drawn (the DLM's times, masks and length; AR's input
/// masking): what a loss is computed on. Drawing for the whole batch and then cutting
/// rows out (`narrow`) is how data-parallel ranks and micro-batches share one batch
/// without changing its draws: every piece gets exactly the rows and noise it would
/// have had in one pass.
#[derive(Debug)]
pub enum Prepared {
    /// Inputs (possibly masked), next-token targets, dropout.
    Ar {
        inputs: Tensor,
        targets: Tensor,
        dropout: f64,
    },
    Dlm(DlmDraw),
}

impl Prepared {
    /// Rows (sequences) in the batch.
    pub fn rows(&self) -> i64 {
        match self {
            Self::Ar { inputs, .. } => inputs.size()[0],
            Self::Dlm(draw) => draw.clean.size()[0],
        }
    }

    /// Rows `start..start + size`, with their noise.
    pub fn narrow(&self, start: i64, size: i64) -> Self {
        match self {
            Self::Ar {
                inputs,
                targets,
                dropout,
            } => Self::Ar {
                inputs: inputs.narrow(0, start, size),
                targets: targets.narrow(0, start, size),
                dropout: *dropout,
            },
            Self::Dlm(draw) => Self::Dlm(DlmDraw {
                clean: draw.clean.narrow(0, start, size),
                mask: draw.mask.narrow(0, start, size),
                p_mask: draw.p_mask.narrow(0, start, size),
            }),
        }
    }
}

/// Draw an objective's noise for a batch of windows (LibTorch's generator, reseeded
/// per step by the training loop).
pub fn prepare(objective: &Objective, windows: &Tensor, vocab: Vocab, dlm: &DlmConfig) -> Prepared {
    let ar = |mask_p: f64, dropout: f64| {
        let (inputs, targets) = ar_batch(windows, mask_p, vocab.mask_id());
        Prepared::Ar {
            inputs,
            targets,
            dropout,
        }
    };
    match *objective {
        Objective::Ar => ar(0.0, 0.0),
        Objective::ArMasked(p) => ar(p, 0.0),
        Objective::ArDropout(p) => ar(0.0, p),
        Objective::Dlm => Prepared::Dlm(dlm_draw(windows, dlm)),
    }
}

/// The training loss of a prepared batch (the mean over its rows).
pub fn prepared_loss(
    model: &Transformer,
    prepared: &Prepared,
    vocab: Vocab,
    dlm: &DlmConfig,
) -> TrainingLoss {
    match prepared {
        Prepared::Ar {
            inputs,
            targets,
            dropout,
        } => ar_loss_on(model, inputs, targets, vocab, *dropout, true),
        Prepared::Dlm(draw) => dlm_loss_parts(model, draw, vocab, dlm),
    }
}

/// AR loss with optional input masking (probability `mask_p`) and dropout (in
/// training, plus a mixture's auxiliary losses).
pub fn ar_loss(
    model: &Transformer,
    windows: &Tensor,
    vocab: Vocab,
    mask_p: f64,
    dropout: f64,
    train: bool,
) -> Tensor {
    let (inputs, targets) = ar_batch(windows, mask_p, vocab.mask_id());
    ar_loss_on(model, &inputs, &targets, vocab, dropout, train).total
}

fn ar_loss_on(
    model: &Transformer,
    inputs: &Tensor,
    targets: &Tensor,
    vocab: Vocab,
    dropout: f64,
    train: bool,
) -> TrainingLoss {
    let Output {
        logits,
        router,
        checkpoints,
    } = model.output(
        inputs,
        ForwardOptions {
            causal: true,
            dropout,
            train,
        },
        vocab.size,
    );
    let loss = token_cross_entropy(&logits, targets, vocab).mean(Kind::Float);
    TrainingLoss::of(model, loss, router.filter(|_| train), checkpoints)
}

/// AR inputs and targets, inputs masked with probability `mask_p` (0 for none);
/// targets are always the clean next tokens.
pub fn ar_batch(windows: &Tensor, mask_p: f64, mask_id: i64) -> (Tensor, Tensor) {
    let (inputs, targets) = shift(windows);
    let inputs = if mask_p > 0.0 {
        mask_inputs(&inputs, mask_p, mask_id).0
    } else {
        inputs
    };
    (inputs, targets)
}

/// Inputs x[0..L] and next-token targets x[1..L+1] of (B, L + 1) windows.
pub fn shift(windows: &Tensor) -> (Tensor, Tensor) {
    let length = windows.size()[1] - 1;
    (windows.narrow(1, 0, length), windows.narrow(1, 1, length))
}

/// Replace each token by `mask_id` independently with probability p.
/// Returns (masked tokens, boolean mask).
pub fn mask_inputs(tokens: &Tensor, p: f64, mask_id: i64) -> (Tensor, Tensor) {
    let mask = Tensor::rand(tokens.size(), (Kind::Float, tokens.device())).lt(p);
    (tokens.masked_fill(&mask, mask_id), mask)
}

/// Per-token cross-entropy over the tokenizer's ids.
///
/// # Shapes
/// logits (B, T, V_rows >= vocab), targets (B, T) -> (B, T).
pub fn token_cross_entropy(logits: &Tensor, targets: &Tensor, vocab: Vocab) -> Tensor {
    let (b, t, width) = logits.size3().unwrap_or_default();
    // Logits of exactly the vocabulary (`Transformer::logits`) are used as they are: even
    // a full-width narrow would cost a zero-filled copy of their gradient.
    let logits = if width > vocab.size {
        logits.narrow(-1, 0, vocab.size)
    } else {
        logits.shallow_clone()
    };
    let logits = logits.reshape([b * t, vocab.size]).to_kind(Kind::Float);
    logits
        .cross_entropy_loss::<Tensor>(&targets.reshape([b * t]), None, Reduction::None, -100, 0.0)
        .view([b, t])
}

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

fn dlm_loss_parts(
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
