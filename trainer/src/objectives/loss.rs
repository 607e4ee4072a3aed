//! A training loss: the objective's loss, a mixture's auxiliary terms, and its
//! backward pass (through the checkpointed blocks when activation checkpointing is on).

use crate::model::mixture::RouterStats;
use crate::model::transformer::{Checkpoints, Transformer};
use tch::{TchError, Tensor};

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
    pub(super) fn of(
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
