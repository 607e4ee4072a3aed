//! Llama-style decoder stack (Touvron et al. 2023, "LLaMA"): RMSNorm (Zhang & Sennrich
//! 2019), rotary position embeddings (Su et al. 2021, "RoFormer"), SwiGLU MLP
//! (Shazeer 2020), optional qk-norm (as in MegaDLMs' 1B), no biases, optional tied
//! embeddings. Attention goes through `scaled_dot_product_attention` with a causal or
//! bidirectional switch.
//!
//! The model knows nothing about objectives: callers choose the attention mode and the
//! dropout rate per forward pass (see `objectives/`).
//!
//! MLPs can be mixtures of experts (`model.moe`, see `Mixture`): token-choice top-k
//! routing as in Mixtral and OLMoE, with router statistics returned beside the logits
//! (`Output::router`) for the objective to add its auxiliary losses.
//!
//! Glossary: B = batch, T = sequence length, C = d_model, nh = n_head, hs = head size,
//! N = B x T tokens, E = experts, k = top_k, F = expert_ffn.

pub mod block;
pub mod init;
pub mod layers;
pub mod mixture;
pub mod transformer;
