//! What the ranks share after each backward pass: gradients, the step's statistics and
//! the stop and checkpoint flags, in one collective.

use crate::model::mixture::RouterStats;
use crate::objectives::loss::TrainingLoss;
use crate::train::optim::AdamW;
use tch::{Device, Tensor};

/// What the ranks agree on after each step: any rank's stop request stops all of
/// them, and rank 0's checkpoint timer makes all of them take part in a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Flags {
    pub(crate) stop: bool,
    pub(crate) checkpoint: bool,
}

/// Average the gradients (in place) and the step's statistics over the ranks, and
/// agree on the flags: one collective per step (the statistics and flags ride with
/// the gradients). Alone, nothing happens.
pub(crate) fn reduce_step(
    ranks: &crate::parallel::ranks::Ranks,
    optimizer: &AdamW,
    loss: TrainingLoss,
    flags: Flags,
) -> std::result::Result<(TrainingLoss, Flags), String> {
    if ranks.world <= 1 {
        return Ok((loss, flags));
    }
    let device = loss.total.device();
    let flag = |on: bool| if on { 1.0f32 } else { 0.0 };
    let flag_values =
        Tensor::from_slice(&[flag(flags.stop), flag(flags.checkpoint)]).to_device(device);
    let mut parts = vec![
        loss.total.reshape([1]),
        loss.objective.reshape([1]),
        flag_values,
    ];
    if let Some(router) = &loss.router {
        parts.extend([
            router.balance.reshape([1]),
            router.z.reshape([1]),
            router.load.reshape([-1]),
        ]);
    }
    let stats = Tensor::cat(&parts, 0).to_kind(tch::Kind::Float);
    let mut tensors = optimizer.gradients();
    tensors.push(stats.shallow_clone());
    ranks.mean(&tensors)?;
    // A mean above 0: at least one rank raised the flag (one read from the device).
    let raised = Vec::<f32>::try_from(stats.narrow(0, 2, 2).to_device(Device::Cpu))
        .map_err(|error| format!("reading the ranks' flags: {error}"))?;
    let agreed = Flags {
        stop: raised[0] > 0.0,
        checkpoint: raised[1] > 0.0,
    };
    let router = loss.router.map(|router| RouterStats {
        balance: stats.get(4),
        z: stats.get(5),
        load: stats
            .narrow(0, 6, router.load.numel() as i64)
            .view_as(&router.load),
    });
    Ok((
        TrainingLoss {
            total: stats.get(0),
            objective: stats.get(1),
            router,
            checkpoints: None,
        },
        agreed,
    ))
}
