//! One step's gradient: the step's seeds, the batch split over ranks and micro-batches,
//! forward and backward.

use crate::model::mixture::RouterStats;
use crate::model::transformer::Transformer;
use crate::objectives::loss::TrainingLoss;
use crate::objectives::prepared::{prepare, prepared_loss};
use crate::objectives::vocab::Vocab;
use jobspec::JobConfig;
use tch::Tensor;

/// Seed of LibTorch's generator for step `step`: every draw of a step depends only on
/// (job seed, step), which makes resumed runs identical to uninterrupted ones.
pub fn step_seed(seed: u64, step: u64) -> i64 {
    let mut z = seed ^ step.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9); // splitmix64 finaliser
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 1) as i64
}

/// The batch's loss, with its gradient accumulated into the weights: in one pass, or
/// in `train.micro_batch_size` pieces each weighted by its share of the rows (so the
/// gradient is the whole batch's mean). Returns the loss and its parts (for a mixture
/// of experts, the routers' statistics likewise weighted) without waiting for them.
pub fn forward_backward(
    model: &Transformer,
    config: &JobConfig,
    batch: &Tensor,
    vocab: Vocab,
) -> std::result::Result<TrainingLoss, tch::TchError> {
    let single = Shard {
        rank: 0,
        world: 1,
        seed: 0,
    };
    forward_backward_shard(model, config, batch, vocab, single)
}

/// This process's part of a data-parallel step.
#[derive(Clone, Copy, Debug)]
pub struct Shard {
    pub rank: i64,
    pub world: i64,
    /// Generator seed for the draws inside the forward pass (dropout) of this rank,
    /// so ranks do not repeat each other's; unused in a single process.
    pub seed: i64,
}

/// Seed of the in-model draws (dropout) of `rank` at `step`: (seed, step, rank).
pub fn rank_seed(seed: u64, step: u64, rank: usize) -> i64 {
    step_seed(
        seed ^ (rank as u64).wrapping_mul(0xA24B_AED4_963E_E407),
        step,
    )
}

/// `forward_backward` for one rank: the objective's noise is drawn for the whole batch
/// (from the step's seed, the same on every rank), then the rank keeps its rows
/// `rank x B / world ..` and, in pieces of `train.micro_batch_size`, backpropagates
/// their mean loss. Averaged over the ranks, losses and gradients are the whole
/// batch's, whatever the number of ranks or pieces.
pub fn forward_backward_shard(
    model: &Transformer,
    config: &JobConfig,
    batch: &Tensor,
    vocab: Vocab,
    shard: Shard,
) -> std::result::Result<TrainingLoss, tch::TchError> {
    let prepared = prepare(&config.objective, batch, vocab, &config.dlm);
    let rows = prepared.rows() / shard.world.max(1);
    let mine = prepared.narrow(shard.rank * rows, rows);
    if shard.world > 1 {
        tch::manual_seed(shard.seed);
    }
    let micro = config
        .train
        .micro_batch_size
        .map_or(rows, |micro| micro as i64)
        .clamp(1, rows.max(1));
    if micro >= rows {
        let loss = prepared_loss(model, &mine, vocab, &config.dlm);
        loss.backward(model, 1.0)?;
        return Ok(detached(loss, 1.0));
    }
    let mut sum: Option<TrainingLoss> = None;
    let mut start = 0;
    while start < rows {
        let size = micro.min(rows - start);
        let piece = mine.narrow(start, size);
        let share = size as f64 / rows as f64;
        let loss = prepared_loss(model, &piece, vocab, &config.dlm);
        loss.backward(model, share)?;
        let part = detached(loss, share);
        sum = Some(match sum {
            None => part,
            Some(sum) => TrainingLoss {
                total: sum.total + part.total,
                objective: sum.objective + part.objective,
                router: match (sum.router, part.router) {
                    (Some(a), Some(b)) => Some(RouterStats {
                        balance: a.balance + b.balance,
                        z: a.z + b.z,
                        load: a.load + b.load,
                    }),
                    _ => None,
                },
                checkpoints: None,
            },
        });
        start += size;
    }
    Ok(sum.unwrap_or_else(|| {
        let zero = Tensor::zeros([], (tch::Kind::Float, batch.device()));
        TrainingLoss {
            total: zero.copy(),
            objective: zero,
            router: None,
            checkpoints: None,
        }
    }))
}

/// A loss's parts, detached from the graph and scaled by `share`.
pub(crate) fn detached(loss: TrainingLoss, share: f64) -> TrainingLoss {
    TrainingLoss {
        total: loss.total.detach() * share,
        objective: loss.objective.detach() * share,
        router: loss.router.map(|router| RouterStats {
            balance: router.balance.detach() * share,
            z: router.z.detach() * share,
            load: router.load.detach() * share,
        }),
        checkpoints: None,
    }
}
