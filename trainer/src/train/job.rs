//! How a job is run (options that are not part of its identity) and how a run ends.

use crate::parallel::ranks::Ranks;
use jobspec::{JobConfig, Precision};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tch::Device;

/// How to run a job (not part of its identity).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Stop (with a checkpoint) after this many completed steps; a later run resumes.
    pub max_steps: Option<u64>,
    /// LibTorch intra-op threads (default: LibTorch's choice).
    pub threads: Option<usize>,
    /// Set by a signal handler: checkpoint and stop at the end of the current step.
    pub stop: Arc<AtomicBool>,
    /// Print nothing but errors.
    pub quiet: bool,
    /// Where tokenized corpora are cached (default: `corpus::cache_root()`).
    pub cache_root: Option<std::path::PathBuf>,
    /// Device instead of job.yaml's `train.device` (not part of the job's identity).
    pub device: Option<jobspec::DeviceSpec>,
    /// Peak TFLOP/s of the device for MFU (default: `$CROSSOVER_PEAK_TFLOPS`, else the
    /// GPU's data sheet; none on CPU).
    pub peak_tflops: Option<f64>,
    /// How a data-parallel job's launcher starts its other local ranks (default: this
    /// executable with no extra arguments).
    pub launch: crate::parallel::launch::Launch,
}

/// How a run of a job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    AlreadyDone,
    Stopped { step: u64 },
}

/// One process's part of a job: what every step of the recipe reads.
#[derive(Debug)]
pub(crate) struct Job<'a> {
    /// The job folder (job.yaml, status.json, the logs, checkpoints/).
    pub dir: &'a Path,
    pub config: &'a JobConfig,
    pub options: &'a RunOptions,
    /// This rank's device.
    pub device: Device,
    /// `train.precision` resolved for the device.
    pub precision: Precision,
    pub ranks: &'a Ranks,
}

impl Job<'_> {
    /// Whether this process writes the run folder: status.json, logs and checkpoints
    /// (rank 0 only).
    pub fn writes(&self) -> bool {
        self.ranks.is_writer()
    }
}
