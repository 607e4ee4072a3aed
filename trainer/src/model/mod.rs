//! Llama-style decoder stack (Touvron et al. 2023, "LLaMA"): RMSNorm (Zhang & Sennrich
//! 2019), rotary position embeddings (Su et al. 2021, "RoFormer"), SwiGLU MLP
//! (Shazeer 2020), optional qk-norm (as in MegaDLMs' 1B), no biases, optional tied
//! embeddings. Attention goes through `scaled_dot_product_attention` with a causal or
//! bidirectional switch.
//!
//! The model knows nothing about objectives: callers choose the attention mode and the
//! dropout rate per forward pass (see `objectives.rs`).
//!
//! MLPs can be mixtures of experts (`model.moe`, see `Mixture`): token-choice top-k
//! routing as in Mixtral and OLMoE, with router statistics returned beside the logits
//! (`Output::router`) for the objective to add its auxiliary losses.
//!
//! Glossary: B = batch, T = sequence length, C = d_model, nh = n_head, hs = head size,
//! N = B x T tokens, E = experts, k = top_k, F = expert_ffn.

use jobspec::{Capacity, ModelShape, MoeShape};
use tch::nn::{self, Module};
use tch::{Kind, TchError, Tensor};

/// Root-mean-square layer norm with a learned gain.
#[derive(Debug)]
struct RmsNorm {
    weight: Tensor,
    size: i64,
    eps: f64,
}

impl RmsNorm {
    fn new(path: nn::Path, size: i64, eps: f64) -> Self {
        Self {
            weight: path.var("weight", &[size], nn::Init::Const(1.0)),
            size,
            eps,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        x.rms_norm([self.size], Some(&self.weight), self.eps)
    }
}

/// Rotary tables for positions 0..max_seq_len (rotate-half convention, as in the
/// Hugging Face Llama code).
#[derive(Debug)]
struct Rope {
    cos: Tensor, // (max_seq_len, hs/2)
    sin: Tensor, // (max_seq_len, hs/2)
}

impl Rope {
    fn new(head_size: i64, max_seq_len: i64, base: f64, device: tch::Device) -> Self {
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
    fn apply(&self, x: &Tensor) -> Tensor {
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
struct Attention {
    qkv: nn::Linear,
    proj: nn::Linear,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    n_head: i64,
}

impl Attention {
    fn new(path: nn::Path, shape: &ModelShape) -> Self {
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

    fn forward(&self, x: &Tensor, rope: &Rope, options: ForwardOptions, compute: Kind) -> Tensor {
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
struct Mlp {
    gate_up: nn::Linear,
    down: nn::Linear,
    d_ff: i64,
}

impl Mlp {
    fn new(path: nn::Path, shape: &ModelShape) -> Self {
        Self::with_width(path, shape, shape.d_ff as i64)
    }

    fn with_width(path: nn::Path, shape: &ModelShape, d_ff: i64) -> Self {
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

    fn forward(&self, x: &Tensor, options: ForwardOptions, compute: Kind) -> Tensor {
        self.hidden(x, compute)
            .dropout(options.dropout, options.train)
    }

    /// The SwiGLU without dropout.
    fn hidden(&self, x: &Tensor, compute: Kind) -> Tensor {
        // split, not two narrows: its backward is one concatenation, where each narrow's
        // would zero-fill a (B, T, 2 d_ff) gradient and the two would then be added.
        let gate_up = project(x, &self.gate_up, compute).split(self.d_ff, -1); // 2 x (B, T, d_ff)
        let hidden = gate_up[0].silu() * &gate_up[1];
        project(&hidden, &self.down, compute)
    }
}

/// What one mixture block's router did in a forward pass.
#[derive(Debug)]
struct Routing {
    /// Load-balancing loss, scalar.
    balance: Tensor,
    /// Router z-loss, scalar.
    z: Tensor,
    /// (E,) share of the N x k assignments each expert received (detached).
    load: Tensor,
}

/// Router statistics of a forward pass: the auxiliary losses averaged over the mixture
/// blocks (so their weights do not depend on depth) and each block's expert load.
#[derive(Debug)]
pub struct RouterStats {
    /// Mean over mixture blocks of E x sum_e f_e P_e (Switch Transformer's
    /// load-balancing loss with f_e the share of the N x k assignments routed to expert
    /// e and P_e its mean router probability; 1 when routing is uniform), scalar.
    pub balance: Tensor,
    /// Mean over mixture blocks of mean_tokens logsumexp(router logits)^2 (ST-MoE's
    /// z-loss), scalar.
    pub z: Tensor,
    /// (mixture blocks, E): the share of assignments each expert received (rows sum to
    /// 1), detached.
    pub load: Tensor,
}

impl RouterStats {
    /// What the objective adds to its loss: aux_loss x balance + z_loss x z.
    pub fn penalty(&self, moe: &MoeShape) -> Tensor {
        &self.balance * moe.aux_loss + &self.z * moe.z_loss
    }

    fn collect(routings: Vec<Routing>) -> Option<Self> {
        if routings.is_empty() {
            return None;
        }
        let (mut balances, mut zs, mut loads) = (Vec::new(), Vec::new(), Vec::new());
        for routing in routings {
            balances.push(routing.balance);
            zs.push(routing.z);
            loads.push(routing.load);
        }
        Some(Self {
            balance: Tensor::stack(&balances, 0).mean(Kind::Float),
            z: Tensor::stack(&zs, 0).mean(Kind::Float),
            load: Tensor::stack(&loads, 0),
        })
    }
}

/// A routed mixture of SwiGLU experts (Shazeer et al. 2017; Fedus et al. 2021,
/// "Switch Transformers"; Jiang et al. 2024, "Mixtral"; Muennighoff et al. 2024,
/// "OLMoE"), token choice:
/// 1. router logits r = x W_r^T in fp32 (N, E); p = softmax(r); each token keeps its
///    k most probable experts, gates renormalised to sum to 1 over them when k > 1
///    (Mixtral) and the probability itself when k = 1 (Switch; see `route`);
/// 2. the N x k (token, expert) assignments are sorted by expert (stably, so each
///    expert's tokens stay in order), gathered into one contiguous (N k, C) matrix,
///    cut into one slice per expert, and each slice goes through its expert's SwiGLU
///    as two matmuls (no loop over tokens);
/// 3. outputs are scaled by their gates and scatter-added back to their tokens.
///
/// Dropless by default; with a capacity factor c each expert keeps only the first
/// ceil(c N k / E) tokens of its slice (in token order) and the rest get nothing from
/// it. Expert weights are (E, ...) tensors so the optimizer sees three parameters per
/// block whatever E is; `unbind` and `split_with_sizes` keep backward to one stack and
/// one concatenation instead of E zero-filled copies.
#[derive(Debug)]
struct Mixture {
    router: Tensor,  // (E, C)
    gate_up: Tensor, // (E, 2F, C)
    down: Tensor,    // (E, C, F)
    shared: Option<Mlp>,
    top_k: i64,
    capacity: Capacity,
}

impl Mixture {
    fn new(path: nn::Path, shape: &ModelShape, moe: &MoeShape) -> Self {
        let c = shape.d_model as i64;
        let (e, f) = (moe.experts as i64, moe.expert_ffn as i64);
        let randn = |stdev: f64| nn::Init::Randn { mean: 0.0, stdev };
        let down_std = shape.init_std / (2.0 * shape.n_layer as f64).sqrt();
        let shared = (moe.shared_experts > 0).then(|| {
            Mlp::with_width(
                &path / "shared",
                shape,
                (moe.shared_experts * moe.expert_ffn) as i64,
            )
        });
        Self {
            router: path.var("router", &[e, c], randn(shape.init_std)),
            gate_up: path.var("experts_gate_up", &[e, 2 * f, c], randn(shape.init_std)),
            down: path.var("experts_down", &[e, c, f], randn(down_std)),
            shared,
            top_k: moe.top_k as i64,
            capacity: moe.capacity_factor,
        }
    }

    fn forward(&self, x: &Tensor, options: ForwardOptions, compute: Kind) -> (Tensor, Routing) {
        let (b, t, c) = x.size3().unwrap_or_default();
        let n = b * t;
        let k = self.top_k;
        let flat = x.reshape([n, c]);
        // 1. Route in fp32.
        let logits = flat
            .to_kind(Kind::Float)
            .linear::<Tensor>(&self.router, None); // (N, E)
        let Route {
            gates,
            experts: chosen,
            balance,
            z,
            share,
            counts,
        } = route(&logits, k);
        let assignments = chosen.reshape([n * k]); // token-major: token = position / k
        // 2. Dispatch: sort assignments by expert.
        let order = assignments.argsort_stable(true, 0, false); // (N k)
        let mut token_of = order.divide_scalar_mode(k, "floor");
        let mut gate_of = gates.reshape([n * k]).index_select(0, &order);
        let mut inputs = flat.index_select(0, &token_of);
        let gate_up = self.gate_up.to_kind(compute);
        let down = self.down.to_kind(compute);
        let outputs = if self.capacity == Capacity::Dropless
            && x.device().is_cuda()
            && grouped_experts_work(x.device(), compute)
        {
            // One grouped matmul per projection, offsets counted on the device: no
            // host read, no loop over experts.
            Some(experts_grouped(
                &inputs.to_kind(compute),
                &counts,
                &gate_up,
                &down,
            ))
        } else {
            // Slice sizes on the host (one read), then one pair of matmuls per expert.
            let sizes =
                Vec::<i64>::try_from(&counts.to_device(tch::Device::Cpu)).unwrap_or_default();
            let kept = kept_sizes(&sizes, self.capacity, n * k);
            if kept != sizes {
                let rows = kept_rows(&sizes, &kept);
                let rows = Tensor::from_slice(&rows).to_device(x.device());
                inputs = inputs.index_select(0, &rows);
                token_of = token_of.index_select(0, &rows);
                gate_of = gate_of.index_select(0, &rows);
            }
            experts_looped(&inputs.to_kind(compute), &kept, &gate_up, &down)
        };
        // 3. Combine in fp32, gate-weighted, back at each token.
        let mut combined = Tensor::zeros([n, c], (Kind::Float, x.device()));
        if let Some(outputs) = outputs {
            let weighted = outputs.to_kind(Kind::Float) * gate_of.unsqueeze(1);
            combined = combined.index_add(0, &token_of, &weighted);
        }
        let routed = combined.view([b, t, c]);
        let y = match &self.shared {
            Some(shared) => routed + shared.hidden(x, compute).to_kind(Kind::Float),
            None => routed,
        };
        let routing = Routing {
            balance,
            z,
            load: share.detach(),
        };
        (y.dropout(options.dropout, options.train), routing)
    }
}

/// A router's decision for N tokens over E experts.
#[derive(Debug)]
pub struct Route {
    /// (N, k) gate of each chosen expert: softmax probabilities renormalised over the k
    /// when k > 1, the softmax probability itself when k = 1.
    pub gates: Tensor,
    /// (N, k) int64 chosen experts, most probable first.
    pub experts: Tensor,
    /// E x sum_e f_e P_e, scalar (f_e: share of the N k assignments to expert e; P_e:
    /// mean router probability of e).
    pub balance: Tensor,
    /// mean over tokens of logsumexp(logits)^2, scalar.
    pub z: Tensor,
    /// (E,) f_e.
    pub share: Tensor,
    /// (E,) int64 assignments per expert.
    pub counts: Tensor,
}

/// Softmax-then-top-k routing of (N, E) fp32 router logits (Mixtral for k > 1, gates
/// renormalised over the k; Switch for k = 1, the gate is the probability), with the
/// load-balancing loss (Fedus et al. 2021, eq. 4, its f_e counted over all k choices
/// so that it is 1 for uniform routing whatever k) and the z-loss (Zoph et al. 2022).
pub fn route(logits: &Tensor, top_k: i64) -> Route {
    let (n, experts) = logits.size2().unwrap_or_default();
    let probs = logits.softmax(-1, Kind::Float);
    let (top_p, chosen) = probs.topk(top_k, -1, true, true); // (N, k) each
    // Renormalising one gate would make it exactly 1 and cut the router off from the
    // language-model loss (its gradient through p / p is zero): at k = 1 the gate is
    // the softmax probability itself, as in Switch (Fedus et al. 2021, eq. 2).
    let gates = if top_k == 1 {
        top_p
    } else {
        &top_p / top_p.sum_dim_intlist(-1, true, Kind::Float)
    };
    let counts = chosen.reshape([-1]).bincount::<Tensor>(None, experts); // (E,)
    let share = counts.to_kind(Kind::Float) / (n * top_k).max(1) as f64;
    let balance =
        (&share * probs.mean_dim(0, false, Kind::Float)).sum(Kind::Float) * experts as f64;
    let z = logits.logsumexp(-1, false).square().mean(Kind::Float);
    Route {
        gates,
        experts: chosen,
        balance,
        z,
        share,
        counts,
    }
}

/// The experts' SwiGLUs over expert-sorted rows, one pair of matmuls per expert:
/// `inputs` (R, C) cut into slices of `sizes` rows (expert e's first), `gate_up`
/// (E, 2F, C), `down` (E, C, F) -> (R, C), or None when no row is kept. The CPU path,
/// and the reference the grouped one is tested against.
pub fn experts_looped(
    inputs: &Tensor,
    sizes: &[i64],
    gate_up: &Tensor,
    down: &Tensor,
) -> Option<Tensor> {
    let ffn = down.size().last().copied().unwrap_or(0);
    let slices = inputs.split_with_sizes(sizes, 0);
    let gate_ups = gate_up.unbind(0);
    let downs = down.unbind(0);
    let outputs: Vec<Tensor> = slices
        .iter()
        .enumerate()
        .filter(|(expert, _)| sizes[*expert] > 0)
        .map(|(expert, slice)| {
            let hidden = slice
                .linear::<Tensor>(&gate_ups[expert], None)
                .split(ffn, -1); // 2 x (n_e, F)
            let hidden = hidden[0].silu() * &hidden[1];
            hidden.linear::<Tensor>(&downs[expert], None) // (n_e, C)
        })
        .collect();
    (!outputs.is_empty()).then(|| Tensor::cat(&outputs, 0))
}

/// `experts_looped` as two grouped matmuls (`torch._grouped_mm`, one launch each)
/// with group ends from `counts` (E,) cumulated on the device: every row kept.
pub fn experts_grouped(
    inputs: &Tensor,
    counts: &Tensor,
    gate_up: &Tensor,
    down: &Tensor,
) -> Tensor {
    let ffn = down.size().last().copied().unwrap_or(0);
    let ends = counts.cumsum(0, Kind::Int);
    let none = None::<&Tensor>;
    let hidden = inputs
        .internal_grouped_mm(&gate_up.transpose(1, 2), Some(&ends), none, None) // (R, 2F)
        .split(ffn, -1);
    let hidden = hidden[0].silu() * &hidden[1];
    hidden.internal_grouped_mm(&down.transpose(1, 2), Some(&ends), none, None) // (R, C)
}

/// Whether this LibTorch's grouped matmul runs forward and backward on `device` in
/// `compute` (it needs recent GPUs and aligned shapes), checked once per process on a
/// small case against `experts_looped`; if not, mixtures keep the per-expert loop.
fn grouped_experts_work(device: tch::Device, compute: Kind) -> bool {
    static WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    // With gradients on whatever the caller's mode (a checkpointed pass routes
    // without them): the test backpropagates.
    *WORKS.get_or_init(|| tch::with_grad(|| grouped_self_test(device, compute)).is_ok())
}

fn grouped_self_test(device: tch::Device, compute: Kind) -> Result<(), tch::TchError> {
    // Values from sin, not the generator: the test must not move the job's draws.
    let values = |shape: &[i64]| {
        let count: i64 = shape.iter().product();
        Tensor::arange(count, (Kind::Float, device))
            .sin()
            .reshape(shape)
            .to_kind(compute)
    };
    let inputs = values(&[48, 32]).set_requires_grad(true);
    let gate_up = values(&[3, 64, 32]).set_requires_grad(true);
    let down = values(&[3, 32, 32]);
    let counts = Tensor::from_slice(&[16i64, 0, 32]).to_device(device);
    let ends = counts.f_cumsum(0, Kind::Int)?;
    let none = None::<&Tensor>;
    let hidden = inputs
        .f_internal_grouped_mm(&gate_up.f_transpose(1, 2)?, Some(&ends), none, None)?
        .split(32, -1);
    let hidden = hidden[0].silu() * &hidden[1];
    let out = hidden.f_internal_grouped_mm(&down.f_transpose(1, 2)?, Some(&ends), none, None)?;
    let weights = values(&[48, 32]);
    (out * weights).f_sum(Kind::Float)?.f_backward()
}

/// Rows each expert computes: all of its assignments (dropless), or at most
/// ceil(c x assignments / E) of them.
pub fn kept_sizes(sizes: &[i64], capacity: Capacity, assignments: i64) -> Vec<i64> {
    match capacity {
        Capacity::Dropless => sizes.to_vec(),
        Capacity::Factor(factor) => {
            let experts = sizes.len().max(1) as f64;
            let limit = (factor * assignments as f64 / experts).ceil() as i64;
            sizes.iter().map(|&size| size.min(limit)).collect()
        }
    }
}

/// Positions, in the expert-sorted order, of the rows that are kept: the first
/// `kept[e]` of each expert's `sizes[e]`.
pub fn kept_rows(sizes: &[i64], kept: &[i64]) -> Vec<i64> {
    let mut rows = Vec::with_capacity(kept.iter().sum::<i64>().max(0) as usize);
    let mut start = 0;
    for (&size, &keep) in sizes.iter().zip(kept) {
        rows.extend(start..start + keep);
        start += size;
    }
    rows
}

/// A block's MLP: dense SwiGLU or a mixture of experts.
#[derive(Debug)]
enum FeedForward {
    Dense(Mlp),
    Mixture(Mixture),
}

#[derive(Debug)]
struct Block {
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
    fn new(path: nn::Path, shape: &ModelShape, index: usize) -> Self {
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

    fn is_mixture(&self) -> bool {
        matches!(self.mlp, FeedForward::Mixture(_))
    }

    /// The residual stream `x` stays fp32; branch outputs in `compute` are added to it.
    fn forward(
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

/// The transformer. Tables have `vocab_rows` rows: the tokenizer's ids, the mask id
/// and padding to a multiple of 64 (`jobspec::padded_vocab`).
#[derive(Debug)]
pub struct Transformer {
    embedding: nn::Embedding,
    blocks: Vec<Block>,
    final_norm: RmsNorm,
    head: Option<nn::Linear>,
    rope: Rope,
    pub shape: ModelShape,
    pub vocab_rows: i64,
    /// Element type of matmuls and attention: `Kind::Float`, or `Kind::BFloat16` for
    /// bf16 mixed precision (weights, norms, softmax and losses stay fp32).
    pub compute: Kind,
    /// Training passes keep only each block's input and recompute the blocks during
    /// backward (`train.activation_checkpointing`; see `Checkpoints`).
    pub activation_checkpointing: bool,
}

impl Transformer {
    pub fn new(path: &nn::Path, shape: &ModelShape, vocab_rows: usize) -> Self {
        let c = shape.d_model as i64;
        let vocab_rows = vocab_rows as i64;
        let embedding_config = nn::EmbeddingConfig {
            ws_init: nn::Init::Randn {
                mean: 0.0,
                stdev: shape.init_std,
            },
            ..Default::default()
        };
        let head = (!shape.tied_embeddings).then(|| {
            let config = nn::LinearConfig {
                ws_init: nn::Init::Randn {
                    mean: 0.0,
                    stdev: shape.init_std,
                },
                bs_init: None,
                bias: false,
            };
            nn::linear(path / "head", c, vocab_rows, config)
        });
        Self {
            embedding: nn::embedding(path / "embedding", vocab_rows, c, embedding_config),
            blocks: (0..shape.n_layer)
                .map(|i| Block::new(path / "blocks" / i, shape, i))
                .collect(),
            final_norm: RmsNorm::new(path / "final_norm", c, shape.norm_eps),
            head,
            rope: Rope::new(
                shape.head_dim() as i64,
                shape.max_seq_len as i64,
                shape.rope_base,
                path.device(),
            ),
            shape: shape.clone(),
            vocab_rows,
            compute: Kind::Float,
            activation_checkpointing: false,
        }
    }

    /// The device the weights live on.
    pub fn device(&self) -> tch::Device {
        self.final_norm.weight.device()
    }

    /// A model and its variables, initialised on the CPU from LibTorch's CPU generator
    /// (so a seed gives the same weights whatever the device), then moved to `device`.
    pub fn build(
        shape: &ModelShape,
        vocab_rows: usize,
        device: tch::Device,
        compute: Kind,
    ) -> (nn::VarStore, Self) {
        let mut variables = nn::VarStore::new(tch::Device::Cpu);
        let mut model = Self::new(&variables.root(), shape, vocab_rows);
        if device != tch::Device::Cpu {
            variables.set_device(device);
            model.rope = Rope::new(
                shape.head_dim() as i64,
                shape.max_seq_len as i64,
                shape.rope_base,
                device,
            );
        }
        model.compute = compute;
        (variables, model)
    }

    /// # Shapes
    /// tokens: (B, T) int64 -> logits (B, T, vocab_rows), fp32 or `compute`.
    pub fn forward(&self, tokens: &Tensor, options: ForwardOptions) -> Tensor {
        self.logits(tokens, options, self.vocab_rows)
    }

    /// Logits for the first `outputs` rows of the output table only, usually the
    /// tokenizer's ids (the mask id and the padding rows are never predicted): the head
    /// multiplies by that slice of the table, so no wider tensor is made and then cut
    /// (which would cost a copy forward and a zero-filled scatter backward).
    ///
    /// # Shapes
    /// tokens: (B, T) int64 -> logits (B, T, outputs), fp32 or `compute`.
    pub fn logits(&self, tokens: &Tensor, options: ForwardOptions, outputs: i64) -> Tensor {
        self.output(tokens, options, outputs).logits
    }

    /// `logits` with the router statistics of the mixture blocks (None for a dense
    /// model): what training needs to add the auxiliary losses and log expert load.
    ///
    /// With `activation_checkpointing` and `options.train`, the blocks run without
    /// building a graph and the logits' graph ends at the last block's output: the
    /// caller must finish the backward with [`Transformer::backward_checkpointed`]
    /// (`TrainingLoss::backward` does).
    pub fn output(&self, tokens: &Tensor, options: ForwardOptions, outputs: i64) -> Output {
        if self.activation_checkpointing && options.train {
            return self.output_checkpointed(tokens, options, outputs);
        }
        let mut x = self.embed(tokens, options);
        let mut routings = Vec::new();
        for block in &self.blocks {
            let (next, routing) = block.forward(&x, &self.rope, options, self.compute);
            x = next;
            routings.extend(routing);
        }
        Output {
            logits: self.head(&x, outputs),
            router: RouterStats::collect(routings),
            checkpoints: None,
        }
    }

    /// Token embeddings with the residual dropout: the blocks' first input (B, T, C).
    fn embed(&self, tokens: &Tensor, options: ForwardOptions) -> Tensor {
        self.embedding
            .forward(tokens)
            .dropout(options.dropout, options.train)
    }

    /// Final norm and output table: (B, T, C) -> logits (B, T, outputs).
    fn head(&self, x: &Tensor, outputs: i64) -> Tensor {
        let x = self.final_norm.forward(x);
        // Untied head or, tied, the embedding table: (V_rows, C), of which the first
        // `outputs` rows are used.
        let table = self
            .head
            .as_ref()
            .map_or(&self.embedding.ws, |head| &head.ws);
        let table = table.narrow(0, 0, outputs.clamp(1, self.vocab_rows));
        x.to_kind(self.compute)
            .linear::<Tensor>(&table.to_kind(self.compute), None)
    }

    /// `output` under activation checkpointing: the blocks run without a graph,
    /// keeping each block's input (and, when dropout draws, the generator's state
    /// before it); the head runs with gradients from the last block's output taken
    /// as a leaf. Router statistics are values only (the walk back differentiates
    /// each block's own).
    fn output_checkpointed(
        &self,
        tokens: &Tensor,
        options: ForwardOptions,
        outputs: i64,
    ) -> Output {
        let draws = options.dropout > 0.0;
        let state = |like: &Tensor| draws.then(|| crate::fused::rng_state(like));
        let mut states = Vec::new();
        let mut inputs = Vec::with_capacity(self.blocks.len());
        let mut routings = Vec::new();
        let top = tch::no_grad(|| {
            states.push(state(tokens));
            let mut x = self.embed(tokens, options);
            for block in &self.blocks {
                states.push(state(tokens));
                let (next, routing) = block.forward(&x, &self.rope, options, self.compute);
                inputs.push(x);
                x = next;
                routings.extend(routing);
            }
            x
        });
        let after = state(tokens);
        let top = top.detach().set_requires_grad(true);
        let logits = self.head(&top, outputs);
        Output {
            logits,
            router: RouterStats::collect(routings),
            checkpoints: Some(Checkpoints {
                tokens: tokens.shallow_clone(),
                options,
                inputs,
                states: states.into_iter().chain([after]).collect(),
                top,
            }),
        }
    }

    /// The rest of a checkpointed backward, once the loss' backward (scaled by
    /// `scale`) has left the gradient of the last block's output in the saved leaf:
    /// from the last block down, each block runs again from its saved input with
    /// gradients (the same dropout masks: the generator is put back to its state
    /// before the block) and is backpropagated from its output's gradient, together
    /// with its share of the weighted auxiliary losses for a mixture block
    /// (`RouterStats::penalty` is their mean over mixture blocks); the input's
    /// gradient goes on to the block below, and the last one into the embedding. The
    /// generator ends where the forward pass left it. Only one block's activations
    /// exist at a time.
    pub fn backward_checkpointed(&self, saved: &Checkpoints, scale: f64) -> Result<(), TchError> {
        let like = &saved.tokens;
        let replay = |index: usize| match saved.states.get(index) {
            Some(Some(Ok(state))) => crate::fused::set_rng_state(like, state),
            Some(Some(Err(error))) => Err(TchError::Torch(error.to_string())),
            _ => Ok(()),
        };
        let top = saved.top.grad();
        let mut grad = if top.defined() {
            top
        } else {
            saved.top.zeros_like()
        };
        let mixtures = self
            .blocks
            .iter()
            .filter(|block| block.is_mixture())
            .count();
        let weights = self.shape.moe.as_ref().map(|moe| {
            let per_block = scale / mixtures.max(1) as f64;
            (moe.aux_loss * per_block, moe.z_loss * per_block)
        });
        for (index, block) in self.blocks.iter().enumerate().rev() {
            replay(index + 1)?;
            let input = saved.inputs[index].detach().set_requires_grad(true);
            let (output, routing) = block.forward(&input, &self.rope, saved.options, self.compute);
            let mut roots = vec![output];
            let mut seeds = vec![grad];
            if let (Some(routing), Some((aux, z))) = (routing, weights) {
                let scalar = |value: f64| Tensor::from(value as f32).to_device(input.device());
                roots.extend([routing.balance, routing.z]);
                seeds.extend([scalar(aux), scalar(z)]);
            }
            crate::fused::backward_from(&roots, &seeds)?;
            let below = input.grad();
            grad = if below.defined() {
                below
            } else {
                input.zeros_like()
            };
        }
        replay(0)?;
        let embedded = self.embed(like, saved.options);
        crate::fused::backward_from(&[embedded], &[grad])?;
        replay(self.blocks.len() + 1)
    }
}

/// What a forward pass under activation checkpointing keeps for its backward
/// (`train.activation_checkpointing`; Chen et al. 2016, "Training Deep Nets with
/// Sublinear Memory Cost"): each block's input (4 bytes a token and channel, fp32)
/// instead of everything the blocks save for backward (about 40), at the cost of
/// running the blocks' forward twice.
#[derive(Debug)]
pub struct Checkpoints {
    /// The input ids, to run the embedding again.
    tokens: Tensor,
    options: ForwardOptions,
    /// Each block's input, without a graph.
    inputs: Vec<Tensor>,
    /// When dropout draws: the generator's state before the embedding, before each
    /// block, and after the pass (n_layer + 2 entries); None entries otherwise.
    states: Vec<Option<Result<Tensor, TchError>>>,
    /// The last block's output as a leaf that requires its gradient.
    top: Tensor,
}

/// A forward pass: logits, and the routers' statistics for a mixture of experts.
#[derive(Debug)]
pub struct Output {
    pub logits: Tensor,
    pub router: Option<RouterStats>,
    /// Under activation checkpointing, what the backward needs to finish (see
    /// `Transformer::backward_checkpointed`); None otherwise.
    pub checkpoints: Option<Checkpoints>,
}
