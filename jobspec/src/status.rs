//! The job side of the run folder contract (design.md): file names, status.json and
//! atomic writes. Shared by the trainer (which runs one job) and the harness (which
//! schedules many), so both read and write the same files the same way.

use crate::error::{Error, Result, io_error};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// status.json: the job's state as the orchestrator and the user see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub state: State,
    /// Trainer runs started on this job (each resume counts).
    pub attempts: u32,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub step: u64,
    #[serde(default)]
    pub total_steps: u64,
    /// The trainer process while it runs.
    #[serde(default)]
    pub pid: Option<u32>,
    /// Seconds since the Unix epoch.
    #[serde(default)]
    pub updated_at: u64,
    /// Failed runs counted by the harness against `--max-retries`; `harness clean
    /// --failed` resets it. Interrupted runs (cancelled, killed with the harness)
    /// do not count.
    #[serde(default)]
    pub failures: u32,
}

impl Status {
    pub fn pending() -> Self {
        Self {
            state: State::Pending,
            attempts: 0,
            error: None,
            step: 0,
            total_steps: 0,
            pid: None,
            updated_at: now(),
            failures: 0,
        }
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub const JOB_FILE: &str = "job.yaml";
pub const STATUS_FILE: &str = "status.json";
pub const TRAIN_LOG: &str = "train.csv";
pub const EVAL_LOG: &str = "eval.csv";
pub const CHECKPOINTS: &str = "checkpoints";
/// A checkpoint's AdamW moments (inside `checkpoints/step-N/`): needed to resume only.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

pub const TRAIN_HEADER: &[&str] = &[
    "step",
    "epoch",
    "tokens",
    "flops",
    "loss",
    "lr",
    "grad_norm",
    "tokens_per_s",
    "elapsed_s",
    "mfu",
    // Mixtures of experts only (empty for dense models): the routers' load-balancing
    // and z-losses, unweighted, averaged over mixture blocks; and the busiest expert's
    // share of assignments relative to an even share (1 = balanced; E / top_k = a
    // block whose every token goes to the same experts).
    "aux_loss",
    "z_loss",
    "expert_load_max",
    // Data-parallel jobs: tokens_per_s is the whole job's; this is one device's share
    // (equal to tokens_per_s for a single process). mfu is per device either way.
    "tokens_per_s_device",
];
pub const EVAL_HEADER: &[&str] = &[
    "step", "epoch", "tokens", "flops", "task", "metric", "value", "stderr", "n",
];

/// Per-item values behind eval.csv (validation windows, questions): the same `item`
/// index names the same window or question in every job on a corpus, and a metric's
/// value in eval.csv is the mean of its items. The analysis resamples items from it
/// (paired bootstrap).
pub const EVAL_ITEMS_LOG: &str = "eval_items.csv";
pub const EVAL_ITEMS_HEADER: &[&str] = &[
    "step", "epoch", "tokens", "flops", "task", "metric", "item", "value",
];

/// Mixtures of experts: at each milestone, each mixture block's share of the
/// (token, expert) assignments per expert, averaged over the training steps since the
/// previous milestone (rows of a block sum to 1).
pub const EXPERT_LOAD_LOG: &str = "expert_load.csv";
pub const EXPERT_LOAD_HEADER: &[&str] = &[
    "step", "epoch", "tokens", "flops", "block", "expert", "share",
];

/// Replace `path` with `bytes` atomically: a temporary file in the same folder, then rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut temporary = tempfile::NamedTempFile::new_in(folder).map_err(io_error(folder))?;
    temporary.write_all(bytes).map_err(io_error(path))?;
    temporary.as_file().sync_all().map_err(io_error(path))?;
    temporary.persist(path).map_err(|error| Error::Io {
        path: path.to_owned(),
        source: error.error,
    })?;
    Ok(())
}

pub fn read_status(job_dir: &Path) -> Result<Option<Status>> {
    let path = job_dir.join(STATUS_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| Error::RunFolder {
            path,
            message: format!("unreadable status: {error}"),
        })
}

pub fn write_status(job_dir: &Path, status: &Status) -> Result<()> {
    let mut status = status.clone();
    status.updated_at = now();
    let text = serde_json::to_string_pretty(&status).unwrap_or_default();
    write_atomic(&job_dir.join(STATUS_FILE), format!("{text}\n").as_bytes())
}
