//! The run folder contract (design.md): job.yaml, status.json, train.csv, eval.csv,
//! checkpoints/. Files others read are replaced atomically (write, then rename); logs
//! are appended line by line and cut back to the last checkpoint on resume.

use crate::error::{Result, TrainerError, io_error};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Running,
    Done,
    Failed,
    Cancelled,
}

/// status.json: the job's state as the orchestrator and the user see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub state: State,
    pub attempts: u32,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub step: u64,
    #[serde(default)]
    pub total_steps: u64,
    #[serde(default)]
    pub pid: Option<u32>,
    /// Seconds since the Unix epoch.
    #[serde(default)]
    pub updated_at: u64,
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
];
pub const EVAL_HEADER: &[&str] = &[
    "step", "epoch", "tokens", "flops", "task", "metric", "value", "stderr", "n",
];

/// Replace `path` with `bytes` atomically: a temporary file in the same folder, then rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut temporary = tempfile::NamedTempFile::new_in(folder).map_err(io_error(folder))?;
    temporary.write_all(bytes).map_err(io_error(path))?;
    temporary.as_file().sync_all().map_err(io_error(path))?;
    temporary.persist(path).map_err(|error| TrainerError::Io {
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
        .map_err(|error| TrainerError::RunFolder {
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

/// An append-only CSV log whose first column is the step.
#[derive(Debug)]
pub struct CsvLog {
    path: PathBuf,
    file: File,
}

impl CsvLog {
    /// Open for appending, writing the header if the file is new or empty.
    pub fn open(path: &Path, header: &[&str]) -> Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_error(path))?;
        let empty = file.metadata().map_err(io_error(path))?.len() == 0;
        if empty {
            writeln!(file, "{}", header.join(",")).map_err(io_error(path))?;
        }
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    /// Append one row and flush it, so a crash loses at most the row being written.
    pub fn append(&mut self, fields: &[String]) -> Result<()> {
        writeln!(self.file, "{}", fields.join(",")).map_err(io_error(&self.path))?;
        self.file.flush().map_err(io_error(&self.path))
    }
}

/// Keep the header and the rows whose step is at most `last_step` (dropping any torn
/// last line), so a resumed job neither duplicates nor loses rows.
pub fn truncate_log(path: &Path, last_step: u64) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let file = File::open(path).map_err(io_error(path))?;
    let mut kept = String::new();
    let mut columns = 0;
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_error(path))?;
        if index == 0 {
            columns = line.split(',').count();
        }
        let step = line
            .split(',')
            .next()
            .and_then(|field| field.parse::<u64>().ok());
        let complete = line.split(',').count() == columns;
        let keep = match step {
            Some(step) => complete && step <= last_step,
            None => index == 0,
        };
        if keep {
            kept.push_str(&line);
            kept.push('\n');
        }
    }
    write_atomic(path, kept.as_bytes())
}

/// Format a float for the logs: enough digits to compare runs bitwise.
pub fn number(value: f64) -> String {
    format!("{value}")
}
