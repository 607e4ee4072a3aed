//! The AR objective and its controls (`ar_masked`, `ar_dropout`): shifted targets,
//! causal attention, mean next-token cross-entropy.

use crate::model::layers::ForwardOptions;
use crate::model::transformer::{Output, Transformer};
use crate::objectives::loss::TrainingLoss;
use crate::objectives::vocab::{Vocab, token_cross_entropy};
use tch::{Kind, Tensor};

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

pub(super) fn ar_loss_on(
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
