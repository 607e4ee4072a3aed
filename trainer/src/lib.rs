//! The trainer: one job per process. Reads a resolved `job.yaml`, trains with LibTorch,
//! evaluates at milestones and writes the run folder (design.md, "Run folder contract").
//!
//! The stages of a job, in order:
//! 1. `data`       - the job's tokens: `trainer prepare`, dataset and shape, batches on the device
//! 2. `model`      - the Llama-style transformer, mixtures of experts, weights from the job seed
//! 3. `objectives` - AR, the DLM and the AR controls: inputs, noise and losses
//! 4. `train`      - the run: the recipe, one step's gradient, AdamW, schedule, logs, checkpoints
//! 5. `eval`       - validation loss and ELBO, benchmark tasks and their scoring, `trainer eval`
//! 6. `parallel`   - the ranks of a data-parallel job and their process group
//! 7. `bench`      - `trainer bench`, `bench-check`, `bench-eval`, `bench-data`
//!
//! Under all of them: `device` and `fused` (LibTorch), `runfolder` (the run folder),
//! `error`.

pub mod bench;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod fused;
pub mod model;
pub mod objectives;
pub mod parallel;
pub mod runfolder;
pub mod train;

pub use error::{Result, TrainerError};
pub use train::job::{Outcome, RunOptions};
pub use train::run::run;
