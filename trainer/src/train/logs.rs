//! Rows of the training logs: train.csv's mixture columns and expert_load.csv.

use crate::error::Result;
use crate::eval::result::EvalPoint;
use crate::model::mixture::RouterStats;
use crate::runfolder::{CsvLog, number};
use tch::{Device, Tensor};

/// train.csv's mixture columns: aux_loss, z_loss, expert_load_max (empty when dense).
pub(crate) fn router_columns(router: Option<&RouterStats>) -> [String; 3] {
    match router {
        None => Default::default(),
        Some(router) => {
            let experts = router.load.size().last().copied().unwrap_or(1) as f64;
            [
                number(router.balance.double_value(&[])),
                number(router.z.double_value(&[])),
                number(router.load.max().double_value(&[]) * experts),
            ]
        }
    }
}

/// expert_load.csv rows: one per (mixture block, expert); `blocks` are the mixture
/// blocks' indices among all blocks (from 0), in the order of `load`'s rows.
pub(crate) fn write_load_rows(
    log: &mut CsvLog,
    at: EvalPoint,
    load: &Tensor,
    blocks: &[usize],
) -> Result<()> {
    let load = load.to_device(Device::Cpu).to_kind(tch::Kind::Double);
    let (rows, experts) = load.size2().unwrap_or_default();
    let values = Vec::<f64>::try_from(&load.reshape([-1])).unwrap_or_default();
    for (row, block) in blocks.iter().enumerate().take(rows as usize) {
        for expert in 0..experts {
            let share = values[row * experts as usize + expert as usize];
            log.append(&[
                at.step.to_string(),
                number(at.epoch),
                at.tokens.to_string(),
                number(at.flops),
                block.to_string(),
                expert.to_string(),
                number(share),
            ])?;
        }
    }
    Ok(())
}
