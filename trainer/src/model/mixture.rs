//! Mixtures of experts (`model.moe`): token-choice top-k routing as in Mixtral and
//! OLMoE, the experts run looped or grouped, capacity limits, and the routers'
//! statistics for the objective's auxiliary losses.

use crate::model::layers::{ForwardOptions, Mlp};
use jobspec::{Capacity, ModelShape, MoeShape};
use tch::{Kind, Tensor, nn};

/// What one mixture block's router did in a forward pass.
#[derive(Debug)]
pub(super) struct Routing {
    /// Load-balancing loss, scalar.
    pub(super) balance: Tensor,
    /// Router z-loss, scalar.
    pub(super) z: Tensor,
    /// (E,) share of the N x k assignments each expert received (detached).
    pub(super) load: Tensor,
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

    pub(super) fn collect(routings: Vec<Routing>) -> Option<Self> {
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
pub(super) struct Mixture {
    router: Tensor,  // (E, C)
    gate_up: Tensor, // (E, 2F, C)
    down: Tensor,    // (E, C, F)
    shared: Option<Mlp>,
    top_k: i64,
    capacity: Capacity,
}

impl Mixture {
    pub(super) fn new(path: nn::Path, shape: &ModelShape, moe: &MoeShape) -> Self {
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

    pub(super) fn forward(
        &self,
        x: &Tensor,
        options: ForwardOptions,
        compute: Kind,
    ) -> (Tensor, Routing) {
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
