//! Job configuration for the crossover harness: the schema of `job.yaml`, model
//! presets, parameter and FLOPs accounting, and sweep expansion with stable job ids.
//!
//! It also holds the job side of the run folder contract (`status`, `store`): the
//! files both the trainer and the harness read and write.
//!
//! This crate is pure (no LibTorch, no processes) so that planning, validation and
//! accounting are shared by the `harness` CLI and the `trainer` worker and tested as
//! tables of cases.

mod config;
mod count;
mod error;
mod model;
pub mod status;
pub mod store;
mod sweep;
mod yamlpos;

pub use config::{
    DataConfig, DecayScope, DeviceSpec, DlmConfig, DlmPad, DlmScorer, DlmWeighting, DocumentOrder,
    EvalConfig, JobConfig, KNOWN_TASKS, Milestones, Objective, Precision, Schedule, TokenizerSpec,
    TrainConfig, ValWindows, Warmup, WindowMode,
};
pub use count::TokenCount;
pub use error::{Error, Result};
pub use model::{ModelConfig, ModelShape, padded_vocab};
pub use sweep::{Job, SlurmSection, Sweep, job_id};
