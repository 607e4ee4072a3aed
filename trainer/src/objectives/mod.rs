//! Training objectives (reference/recipes.md): what goes into the model, how it
//! attends, what it must predict, and how the loss is weighted.
//!
//! - `ar`: causal, inputs x[0..L], targets x[1..L+1], mean cross-entropy.
//! - `dlm`: masked diffusion (MDLM, Sahoo et al. 2024; SMDM, Nie et al. 2024):
//!   bidirectional, unshifted, linear schedule alpha_t = 1 - t, p_mask = (1 - eps) t + eps,
//!   loss = sum over masked positions of CE / p_mask, divided by B x L.
//! - `ar_masked(p)`: AR whose INPUT tokens are replaced by the mask id with probability
//!   p; targets stay the clean next tokens.
//! - `ar_dropout(p)`: AR with residual and attention dropout p.
//!
//! Every draw uses LibTorch's global generator, which the training loop reseeds from
//! (job seed, step) before each step, so runs are reproducible and resumable.
//! Softmaxes run over the tokenizer's ids only: the mask id and the padding rows are
//! never predicted (MDLM sets the mask logit to -inf; slicing does that and more).

pub mod ar;
pub mod dlm;
pub mod loss;
pub mod prepared;
pub mod vocab;
