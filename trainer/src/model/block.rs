//! One transformer block: attention, then a dense MLP or a mixture of experts, each
//! behind an RMSNorm and a residual connection.

use crate::model::layers::{Attention, ForwardOptions, Mlp, RmsNorm, Rope};
use crate::model::mixture::{Mixture, Routing};
use jobspec::ModelShape;
use tch::{Kind, Tensor, nn};

/// A block's MLP: dense SwiGLU or a mixture of experts.
#[derive(Debug)]
enum FeedForward {
    Dense(Mlp),
    Mixture(Mixture),
}

#[derive(Debug)]
pub(super) struct Block {
    attention_norm: RmsNorm,
    attention: Attention,
    mlp_norm: RmsNorm,
    mlp: FeedForward,
}

impl Block {
    /// Parameters are drawn from LibTorch's generator in the order they are created,
    /// so that order is part of what a job computes: attention, then the MLP, exactly
    /// as before mixtures existed (a dense job's id promises the same initial weights).
    /// Creating the MLP first silently re-seeded every dense model (issue 25).
    pub(super) fn new(path: nn::Path, shape: &ModelShape, index: usize) -> Self {
        let c = shape.d_model as i64;
        let attention_norm = RmsNorm::new(&path / "attention_norm", c, shape.norm_eps);
        let attention = Attention::new(&path / "attention", shape);
        let mlp_norm = RmsNorm::new(&path / "mlp_norm", c, shape.norm_eps);
        let mlp = match &shape.moe {
            Some(moe) if moe.is_moe_block(index) => {
                FeedForward::Mixture(Mixture::new(&path / "mlp", shape, moe))
            }
            _ => FeedForward::Dense(Mlp::new(&path / "mlp", shape)),
        };
        Self {
            attention_norm,
            attention,
            mlp_norm,
            mlp,
        }
    }

    pub(super) fn is_mixture(&self) -> bool {
        matches!(self.mlp, FeedForward::Mixture(_))
    }

    /// The residual stream `x` stays fp32; branch outputs in `compute` are added to it.
    pub(super) fn forward(
        &self,
        x: &Tensor,
        rope: &Rope,
        options: ForwardOptions,
        compute: Kind,
    ) -> (Tensor, Option<Routing>) {
        let x = x + self
            .attention
            .forward(&self.attention_norm.forward(x), rope, options, compute);
        let normed = self.mlp_norm.forward(&x);
        match &self.mlp {
            FeedForward::Dense(mlp) => (&x + mlp.forward(&normed, options, compute), None),
            FeedForward::Mixture(mixture) => {
                let (y, routing) = mixture.forward(&normed, options, compute);
                (&x + y, Some(routing))
            }
        }
    }
}
