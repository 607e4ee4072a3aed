//! The model a job trains, initialised from the job seed.

use crate::device;
use crate::model::transformer::Transformer;
use jobspec::{JobConfig, Precision};
use tch::Device;
use tch::nn::VarStore;

/// The model, initialised from the job seed (so every objective starts from the same
/// weights for a given seed and shape, on every device), with activation
/// checkpointing as the job asks.
pub fn build_model(
    config: &JobConfig,
    shape: &jobspec::ModelShape,
    rows: usize,
    device: Device,
    precision: Precision,
) -> (VarStore, Transformer) {
    tch::manual_seed(config.seed as i64);
    let (variables, mut model) =
        Transformer::build(shape, rows, device, device::compute_kind(precision));
    model.activation_checkpointing = config.train.activation_checkpointing;
    (variables, model)
}
