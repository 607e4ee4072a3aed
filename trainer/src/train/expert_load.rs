//! The routers' load summed on the device since the last milestone (mixtures of experts
//! only): its mean goes to expert_load.csv at milestones, the sum into checkpoints.

use crate::model::mixture::RouterStats;
use crate::train::checkpoint::LoadSum;
use tch::{Device, Tensor};

/// Each mixture block's expert load summed over the steps since the last milestone,
/// with that number of steps; empty for a dense model and after each milestone.
#[derive(Debug, Default)]
pub(crate) struct ExpertLoad {
    sum: Option<(Tensor, u64)>,
}

impl ExpertLoad {
    /// The sum a checkpoint kept (none: empty), back on `device`.
    pub fn restored(saved: Option<LoadSum>, device: Device) -> Self {
        let sum = saved.map(|load| {
            let sums = Tensor::from_slice(&load.sums)
                .view([load.blocks, load.experts])
                .to_kind(tch::Kind::Float)
                .to_device(device);
            (sums, load.steps)
        });
        Self { sum }
    }

    /// Add one step's load (a dense model's step adds nothing).
    pub fn add(&mut self, router: Option<&RouterStats>) {
        if let Some(router) = router {
            self.sum = Some(match self.sum.take() {
                Some((sum, steps)) => (sum + &router.load, steps + 1),
                None => (router.load.copy(), 1),
            });
        }
    }

    /// The mean load since the last milestone; the sum starts again from empty.
    pub fn take_mean(&mut self) -> Option<Tensor> {
        self.sum.take().map(|(sum, steps)| sum / steps as f64)
    }

    /// The sum as a checkpoint keeps it (on the host, as f64).
    pub fn to_checkpoint(&self) -> Option<LoadSum> {
        self.sum.as_ref().map(|(sum, steps)| {
            let (blocks, experts) = sum.size2().unwrap_or_default();
            let sums = sum.to_device(Device::Cpu).to_kind(tch::Kind::Double);
            LoadSum {
                steps: *steps,
                blocks,
                experts,
                sums: Vec::<f64>::try_from(&sums.reshape([-1])).unwrap_or_default(),
            }
        })
    }
}
