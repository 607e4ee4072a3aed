//! Llama-style decoder stack (Touvron et al. 2023, "LLaMA"): RMSNorm (Zhang & Sennrich
//! 2019), rotary position embeddings (Su et al. 2021, "RoFormer"), SwiGLU MLP
//! (Shazeer 2020), optional qk-norm (as in MegaDLMs' 1B), no biases, optional tied
//! embeddings. Attention goes through `scaled_dot_product_attention` with a causal or
//! bidirectional switch.
//!
//! The model knows nothing about objectives: callers choose the attention mode and the
//! dropout rate per forward pass (see `objectives.rs`).
//!
//! Glossary: B = batch, T = sequence length, C = d_model, nh = n_head, hs = head size.

use jobspec::ModelShape;
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

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
        let c = shape.d_model as i64;
        let d_ff = shape.d_ff as i64;
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
        // split, not two narrows: its backward is one concatenation, where each narrow's
        // would zero-fill a (B, T, 2 d_ff) gradient and the two would then be added.
        let gate_up = project(x, &self.gate_up, compute).split(self.d_ff, -1); // 2 x (B, T, d_ff)
        let hidden = gate_up[0].silu() * &gate_up[1];
        project(&hidden, &self.down, compute).dropout(options.dropout, options.train)
    }
}

#[derive(Debug)]
struct Block {
    attention_norm: RmsNorm,
    attention: Attention,
    mlp_norm: RmsNorm,
    mlp: Mlp,
}

impl Block {
    fn new(path: nn::Path, shape: &ModelShape) -> Self {
        let c = shape.d_model as i64;
        Self {
            attention_norm: RmsNorm::new(&path / "attention_norm", c, shape.norm_eps),
            attention: Attention::new(&path / "attention", shape),
            mlp_norm: RmsNorm::new(&path / "mlp_norm", c, shape.norm_eps),
            mlp: Mlp::new(&path / "mlp", shape),
        }
    }

    /// The residual stream `x` stays fp32; branch outputs in `compute` are added to it.
    fn forward(&self, x: &Tensor, rope: &Rope, options: ForwardOptions, compute: Kind) -> Tensor {
        let x = x + self
            .attention
            .forward(&self.attention_norm.forward(x), rope, options, compute);
        &x + self
            .mlp
            .forward(&self.mlp_norm.forward(&x), options, compute)
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
                .map(|i| Block::new(path / "blocks" / i, shape))
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
        let compute = self.compute;
        let mut x = self
            .embedding
            .forward(tokens)
            .dropout(options.dropout, options.train); // (B, T, C)
        for block in &self.blocks {
            x = block.forward(&x, &self.rope, options, compute);
        }
        let x = self.final_norm.forward(&x);
        // Untied head or, tied, the embedding table: (V_rows, C), of which the first
        // `outputs` rows are used.
        let table = self
            .head
            .as_ref()
            .map_or(&self.embedding.ws, |head| &head.ws);
        let table = table.narrow(0, 0, outputs.clamp(1, self.vocab_rows));
        x.to_kind(compute)
            .linear::<Tensor>(&table.to_kind(compute), None) // (B, T, outputs)
    }
}
