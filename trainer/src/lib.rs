//! The trainer: one job per process. Reads a resolved `job.yaml`, trains with LibTorch,
//! evaluates at milestones and writes the run folder (design.md, "Run folder contract").

pub mod bench;
pub mod checkpoint;
pub mod cloze;
pub mod device;
pub mod dist;
pub mod error;
pub mod eval;
pub mod evaluate;
pub mod fused;
pub mod init;
pub mod model;
pub mod objectives;
pub mod optim;
pub mod prepare;
mod progress;
pub mod ranks;
pub mod runfolder;
pub mod schedule;
pub mod scoring;
pub mod tasks;
pub mod train;

pub use error::{Result, TrainerError};
pub use train::{Outcome, RunOptions, run};
