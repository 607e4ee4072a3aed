//! Stage 5, evaluation: validation loss and the DLM's validation ELBO
//! (`validation_loss`), the benchmark tasks (`tasks`, `cloze`) and their multiple-choice
//! scoring (`scoring`), what an evaluation writes (`result`), a rank's share of it
//! (`shard`), and `trainer eval` on a saved checkpoint (`command`).

pub mod cloze;
pub mod command;
pub mod result;
pub mod scoring;
pub mod shard;
pub mod tasks;
pub mod validation_loss;
