//! One batch made ready for its objective (inputs, targets and noise drawn for the whole
//! batch), then the loss of all or part of it.

use crate::model::transformer::Transformer;
use crate::objectives::ar::{ar_batch, ar_loss_on};
use crate::objectives::dlm::{DlmDraw, dlm_draw, dlm_loss_parts};
use crate::objectives::loss::TrainingLoss;
use crate::objectives::vocab::Vocab;
use jobspec::{DlmConfig, Objective};
use tch::Tensor;

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
