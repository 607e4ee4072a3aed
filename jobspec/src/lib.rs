//! Job configuration for the crossover harness: the schema of `job.yaml`, model
//! presets, parameter and FLOPs accounting, and sweep expansion with stable job ids.
//!
//! It also holds the job side of the run folder contract (`status`, `store`): the
//! files both the trainer and the harness read and write.
//!
//! From a sweep file to a job, in order:
//!
//! 1. `sweep`   - a sweep file expanded into jobs with stable ids (`yamlpos` places
//!    each error at its file, line and key)
//! 2. `config/` - one job's `job.yaml`, one file per section (data, train, dlm, eval)
//! 3. `model`   - model presets and shapes, parameter and FLOPs accounting; `memory`
//!    the per-GPU memory estimate; `count` token counts as people write them
//! 4. `store`, `status` - the run folder both the harness and the trainer write
//!
//! This crate is pure (no LibTorch, no processes) so that planning, validation and
//! accounting are shared by the `harness` CLI and the `trainer` worker and tested as
//! tables of cases.

mod config;
mod count;
mod error;
pub mod memory;
mod model;
pub mod status;
pub mod store;
mod sweep;
mod yamlpos;

pub use config::{
    DataConfig, DecayScope, DeviceSpec, DlmConfig, DlmPad, DlmScorer, DlmWeighting, DocumentOrder,
    EvalConfig, JobConfig, KNOWN_TASKS, Keep, Milestones, Objective, Precision, Schedule,
    TokenizerSpec, TrainConfig, ValWindows, Warmup, WindowMode, milestone_steps,
};
pub use count::TokenCount;
pub use error::{Error, Result, chain_text};
pub use model::{Capacity, ModelConfig, ModelShape, MoeConfig, MoeShape, padded_vocab};
pub use sweep::{Job, SlurmSection, Sweep, job_id};

use std::path::PathBuf;

/// The cache folder: `$CROSSOVER_CACHE`, else `$XDG_CACHE_HOME/crossover`, else
/// `$HOME/.cache/crossover` (the same rule as the scripts in `scripts/`).
pub fn cache_root() -> PathBuf {
    let non_empty = |name: &str| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    if let Some(root) = non_empty("CROSSOVER_CACHE") {
        return root;
    }
    if let Some(xdg) = non_empty("XDG_CACHE_HOME") {
        return xdg.join("crossover");
    }
    non_empty("HOME")
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".cache")
        .join("crossover")
}
