//! What one GPU holds while it trains a job (issue 28): the estimate `harness plan`
//! prints as GiB/GPU and `trainer bench` sets beside the CUDA allocator's measured
//! peak. Pure arithmetic on the model's shape, so planning needs no LibTorch.

/// Bytes of training state one GPU of a job holds for `params` parameters: fp32
/// weights and gradients (4 + 4 bytes each) and AdamW's two fp32 moments (8 bytes),
/// the moments divided over the job's `processes` when `train.shard_optimizer` is on
/// (ZeRO stage 1). Activations are not counted: they depend on the micro-batch.
pub fn state_bytes_per_gpu(params: u64, processes: usize, sharded: bool) -> f64 {
    let moments = if sharded {
        8.0 / processes.max(1) as f64
    } else {
        8.0
    };
    params as f64 * (8.0 + moments)
}

/// What one GPU of a job holds at the peak of a training step, in bytes (issue 28):
/// the training state, the bf16 copies of the weights that backward keeps, one
/// micro-batch's activations and its logits. An estimate for planning: the caching
/// allocator's fragmentation and LibTorch's workspace come on top.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryEstimate {
    /// fp32 weights and gradients, AdamW moments (split when sharded).
    pub state: f64,
    /// The compute-type copies of the weights saved for backward (bf16: 2 bytes each).
    pub weight_copies: f64,
    /// Tensors the blocks save for backward, for one micro-batch.
    pub activations: f64,
    /// Logits in the compute type, their fp32 copy and the loss' log-softmax, with the
    /// gradient that backward starts from.
    pub logits: f64,
}

impl MemoryEstimate {
    pub fn total(&self) -> f64 {
        self.state + self.weight_copies + self.activations + self.logits
    }
}

/// How a job runs, as far as one GPU's memory is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// bf16 mixed precision (else fp32 compute).
    pub bf16: bool,
    /// Processes the job is spread over, and whether AdamW's moments are split among
    /// them (`train.shard_optimizer`).
    pub processes: usize,
    pub sharded: bool,
    /// `train.activation_checkpointing`.
    pub checkpointing: bool,
}

impl Layout {
    /// One process, no checkpointing.
    pub fn single(bf16: bool) -> Self {
        Self {
            bf16,
            processes: 1,
            sharded: false,
            checkpointing: false,
        }
    }
}

/// The peak memory of one GPU training `shape` on `tokens` = micro-batch rows x
/// seq_len per pass. Per token and block, what this trainer's block saves for backward
/// (bf16 compute): the fp32 residual at both norms (4d + 4d), the normed inputs in
/// bf16 (2d + 2d), q, k, v (6d) and rotated q, k (4d), the attention output (2d), and
/// the SwiGLU's gate-up, SiLU and product (4f + 2f + 2f, with f the active width);
/// fp32 compute doubles the non-fp32 terms. Logits per token: compute-type V, fp32 4V,
/// log-softmax 4V and its gradient 4V. (Korthikanti et al. 2022 count 34 d per token
/// and block for a GPT block with flash attention; this block's SwiGLU is wider.)
///
/// With activation checkpointing the blocks keep their fp32 inputs only (4d a token
/// and block), plus, while backward runs, the one block being recomputed (its full
/// count above, the widest block's) and three fp32 (B, T, d) tensors: the last
/// block's output as a leaf, its gradient and the gradient passed down.
pub fn memory_per_gpu(
    shape: &crate::ModelShape,
    vocab_rows: usize,
    tokens: f64,
    layout: Layout,
) -> MemoryEstimate {
    let (d, v) = (shape.d_model as f64, vocab_rows as f64);
    let compute = if layout.bf16 { 2.0 } else { 4.0 };
    let per_block = |ffn: f64| {
        8.0 * d + compute * (2.0 * d + 6.0 * d + 4.0 * d + 2.0 * d) + compute * 4.0 * ffn
    };
    let blocks: Vec<f64> = (0..shape.n_layer)
        .map(|block| {
            let ffn = match &shape.moe {
                Some(moe) if moe.is_moe_block(block) => {
                    ((moe.top_k + moe.shared_experts) * moe.expert_ffn) as f64
                }
                _ => shape.d_ff as f64,
            };
            per_block(ffn)
        })
        .collect();
    let per_token = if layout.checkpointing {
        let widest = blocks.iter().copied().fold(0.0, f64::max);
        4.0 * d * blocks.len() as f64 + widest + 3.0 * 4.0 * d
    } else {
        blocks.iter().sum()
    };
    let total = shape.total_params(vocab_rows);
    MemoryEstimate {
        state: state_bytes_per_gpu(total, layout.processes, layout.sharded),
        weight_copies: if layout.bf16 { 2.0 * total as f64 } else { 0.0 },
        activations: per_token * tokens,
        logits: (compute + 12.0) * v * tokens,
    }
}
