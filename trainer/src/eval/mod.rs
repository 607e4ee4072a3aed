//! 5. Evaluation: validation loss and the DLM's validation ELBO, the benchmark tasks and
//! their multiple-choice scoring, and `trainer eval` on a saved checkpoint.

pub mod cloze;
pub mod command;
pub mod scoring;
pub mod tasks;
pub mod validation_loss;
