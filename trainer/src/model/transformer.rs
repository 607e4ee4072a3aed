//! The whole network: token embedding, the blocks, the final norm and the output head,
//! and the passes under activation checkpointing (blocks' inputs saved, recomputed one
//! at a time during backward).

use crate::model::block::Block;
use crate::model::layers::{ForwardOptions, RmsNorm, Rope};
use crate::model::mixture::RouterStats;
use jobspec::ModelShape;
use tch::nn::Module;
use tch::{Kind, TchError, Tensor, nn};

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
