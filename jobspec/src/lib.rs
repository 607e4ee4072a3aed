//! Job configuration for the crossover harness: the schema of `job.yaml`, model
//! presets, parameter and FLOPs accounting, and sweep expansion with stable job ids.
//!
//! This crate is pure (no LibTorch, no processes) so that planning, validation and
//! accounting are shared by the `harness` CLI and the `trainer` worker and tested as
//! tables of cases.

mod config;
mod count;
mod error;
mod model;
mod sweep;

pub use config::{
    DataConfig, DlmConfig, DlmWeighting, EvalConfig, JobConfig, Milestones, Objective, Schedule,
    TokenizerSpec, TrainConfig, Warmup,
};
pub use count::TokenCount;
pub use error::{Error, Result};
pub use model::{ModelConfig, ModelShape, padded_vocab};
pub use sweep::{Job, Sweep, job_id};
