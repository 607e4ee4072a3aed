//! The trainer: one job per process. Reads a resolved `job.yaml`, trains with LibTorch,
//! evaluates at milestones and writes the run folder (design.md, "Run folder contract").

pub mod bench;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod fused;
pub mod init;
pub mod model;
pub mod objectives;
pub mod parallel;
pub mod runfolder;
pub mod train;

pub use error::{Result, TrainerError};
pub use train::{Outcome, RunOptions, run};
