//! The pieces of a block: RMSNorm, rotary position embeddings, attention and the
//! SwiGLU MLP, with the per-call options the objective chooses.

use jobspec::ModelShape;
use tch::{Kind, Tensor, nn};

/// Root-mean-square layer norm with a learned gain.
#[derive(Debug)]
pub(super) struct RmsNorm {
    pub(super) weight: Tensor,
    size: i64,
    eps: f64,
}

impl RmsNorm {
    pub(super) fn new(path: nn::Path, size: i64, eps: f64) -> Self {
        Self {
            weight: path.var("weight", &[size], nn::Init::Const(1.0)),
            size,
            eps,
        }
    }

    pub(super) fn forward(&self, x: &Tensor) -> Tensor {
        x.rms_norm([self.size], Some(&self.weight), self.eps)
    }
}

/// Rotary tables for positions 0..max_seq_len (rotate-half convention, as in the
/// Hugging Face Llama code).
#[derive(Debug)]
pub(super) struct Rope {
    cos: Tensor, // (max_seq_len, hs/2)
    sin: Tensor, // (max_seq_len, hs/2)
}

impl Rope {
    pub(super) fn new(head_size: i64, max_seq_len: i64, base: f64, device: tch::Device) -> Self {
        let half = head_size / 2;
        let exponents = Tensor::arange(half, (Kind::Float, device)) * (2.0 / head_size as f64);
        let inverse_frequency = Tensor::from(base)
            .to_device(device)
            .pow(&exponents)
            .reciprocal();
        let positions = Tensor::arange(max_seq_len, (Kind::Float, device));
        let angles = positions.unsqueeze(1) * inverse_frequency.unsqueeze(0); // (T_max, hs/2)
        Self {
            cos: angles.cos(),
            sin: angles.sin(),
        }
    }

    /// x: (B, nh, T, hs) -> same shape and kind, rotated by position (in fp32, as
    /// autocast would: the tables stay fp32).
    pub(super) fn apply(&self, x: &Tensor) -> Tensor {
        let (_, _, t, hs) = x.size4().unwrap_or_default();
        let cos = self.cos.narrow(0, 0, t); // (T, hs/2)
        let sin = self.sin.narrow(0, 0, t);
        // split (backward: one concatenation) rather than narrows (backward: zero-fill
        // and copy per use).
        let halves = x.to_kind(Kind::Float).split(hs / 2, -1);
        let (x1, x2) = (&halves[0], &halves[1]);
        Tensor::cat(&[x1 * &cos - x2 * &sin, x2 * &cos + x1 * &sin], -1).to_kind(x.kind())
    }
}

/// Per-call options chosen by the objective.
#[derive(Clone, Copy, Debug)]
pub struct ForwardOptions {
    /// Causal (AR) or bidirectional (DLM) attention.
    pub causal: bool,
    /// Residual and attention dropout probability (0 for no dropout).
    pub dropout: f64,
    /// Training mode: dropout is only applied when true.
    pub train: bool,
}

/// `x W^T` with x and W cast to `compute` (bf16 mixed precision keeps fp32 weights
/// and multiplies in bf16, as autocast does); plain fp32 otherwise.
fn project(x: &Tensor, layer: &nn::Linear, compute: Kind) -> Tensor {
    if compute == Kind::Float && x.kind() == Kind::Float {
        x.apply(layer)
    } else {
        x.to_kind(compute)
            .linear::<Tensor>(&layer.ws.to_kind(compute), None)
    }
}

#[derive(Debug)]
pub(super) struct Attention {
    qkv: nn::Linear,
    proj: nn::Linear,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    n_head: i64,
}

impl Attention {
    pub(super) fn new(path: nn::Path, shape: &ModelShape) -> Self {
        let c = shape.d_model as i64;
        let hs = shape.head_dim() as i64;
        let init = |stdev: f64| nn::LinearConfig {
            ws_init: nn::Init::Randn { mean: 0.0, stdev },
            bs_init: None,
            bias: false,
        };
        // Output projections start smaller, scaled by 1/sqrt(2 n_layer) (GPT-2).
        let proj_std = shape.init_std / (2.0 * shape.n_layer as f64).sqrt();
        let (q_norm, k_norm) = if shape.qk_norm {
            (
                Some(RmsNorm::new(&path / "q_norm", hs, shape.norm_eps)),
                Some(RmsNorm::new(&path / "k_norm", hs, shape.norm_eps)),
            )
        } else {
            (None, None)
        };
        Self {
            qkv: nn::linear(&path / "qkv", c, 3 * c, init(shape.init_std)),
            proj: nn::linear(&path / "proj", c, c, init(proj_std)),
            q_norm,
            k_norm,
            n_head: shape.n_head as i64,
        }
    }

    pub(super) fn forward(
        &self,
        x: &Tensor,
        rope: &Rope,
        options: ForwardOptions,
        compute: Kind,
    ) -> Tensor {
        let (b, t, c) = x.size3().unwrap_or_default();
        let hs = c / self.n_head;
        let qkv = project(x, &self.qkv, compute); // (B, T, 3C)
        let parts = qkv.split(c, -1);
        let heads = |part: &Tensor| part.view([b, t, self.n_head, hs]).transpose(1, 2); // (B, nh, T, hs)
        let (mut q, mut k, v) = (heads(&parts[0]), heads(&parts[1]), heads(&parts[2]));
        if let (Some(q_norm), Some(k_norm)) = (&self.q_norm, &self.k_norm) {
            q = q_norm.forward(&q.to_kind(Kind::Float)).to_kind(compute);
            k = k_norm.forward(&k.to_kind(Kind::Float)).to_kind(compute);
        }
        let (q, k) = (rope.apply(&q), rope.apply(&k));
        let attention_dropout = if options.train { options.dropout } else { 0.0 };
        let y = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            attention_dropout,
            options.causal,
            None,
            false,
        ); // (B, nh, T, hs)
        let y = y.transpose(1, 2).contiguous().view([b, t, c]); // (B, T, C)
        project(&y, &self.proj, compute).dropout(options.dropout, options.train)
    }
}

/// SwiGLU: down(silu(gate(x)) * up(x)), gate and up fused into one matmul.
#[derive(Debug)]
pub(super) struct Mlp {
    gate_up: nn::Linear,
    down: nn::Linear,
    d_ff: i64,
}

impl Mlp {
    pub(super) fn new(path: nn::Path, shape: &ModelShape) -> Self {
        Self::with_width(path, shape, shape.d_ff as i64)
    }

    pub(super) fn with_width(path: nn::Path, shape: &ModelShape, d_ff: i64) -> Self {
        let c = shape.d_model as i64;
        let config = |stdev: f64| nn::LinearConfig {
            ws_init: nn::Init::Randn { mean: 0.0, stdev },
            bs_init: None,
            bias: false,
        };
        let down_std = shape.init_std / (2.0 * shape.n_layer as f64).sqrt();
        Self {
            gate_up: nn::linear(&path / "gate_up", c, 2 * d_ff, config(shape.init_std)),
            down: nn::linear(&path / "down", d_ff, c, config(down_std)),
            d_ff,
        }
    }

    pub(super) fn forward(&self, x: &Tensor, options: ForwardOptions, compute: Kind) -> Tensor {
        self.hidden(x, compute)
            .dropout(options.dropout, options.train)
    }

    /// The SwiGLU without dropout.
    pub(super) fn hidden(&self, x: &Tensor, compute: Kind) -> Tensor {
        // split, not two narrows: its backward is one concatenation, where each narrow's
        // would zero-fill a (B, T, 2 d_ff) gradient and the two would then be added.
        let gate_up = project(x, &self.gate_up, compute).split(self.d_ff, -1); // 2 x (B, T, d_ff)
        let hidden = gate_up[0].silu() * &gate_up[1];
        project(&hidden, &self.down, compute)
    }
}
