//! Reading the run folder (design.md, "Run folder contract") into plain records.
//!
//! The CSVs are parsed with the `csv` crate rather than Polars' reader so that one bad
//! file or one half-written last line (a running job appends line by line) is reported
//! by path and line and skipped, while every other row is kept. The records become
//! Polars tables in `tables.rs`.

use crate::error::{AnalysisError, Result, io_error};
use jobspec::status::{EVAL_LOG, JOB_FILE, TRAIN_LOG, read_status};
use jobspec::{JobConfig, padded_vocab};
use rayon::prelude::*;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// One train.csv row.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct TrainRow {
    pub step: u64,
    pub epoch: f64,
    pub tokens: f64,
    pub flops: f64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
    /// Model FLOPs utilisation; NaN when the trainer knew no peak (CPU) or the log
    /// predates the column.
    #[serde(default = "nan", deserialize_with = "lenient_f64")]
    pub mfu: f64,
}

fn nan() -> f64 {
    f64::NAN
}

/// One eval.csv row (stderr may be NaN; n may be empty).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct EvalRow {
    pub step: u64,
    pub epoch: f64,
    pub tokens: f64,
    pub flops: f64,
    pub task: String,
    pub metric: String,
    pub value: f64,
    #[serde(deserialize_with = "lenient_f64")]
    pub stderr: f64,
    pub n: Option<u64>,
}

/// One eval_items.csv row: one item's score at one evaluation (design.md, "Run folder
/// contract"). `item` names the same validation window or question in every job of a
/// sweep that shares the data config, so both objectives' scores of an item pair up;
/// the metric in eval.csv is the mean of `value` over items (per-window loss for
/// `val_loss`/`loss`, 0/1 per question for `acc` and `acc_norm`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ItemRow {
    pub step: u64,
    pub epoch: f64,
    pub tokens: f64,
    pub flops: f64,
    pub task: String,
    pub metric: String,
    pub item: u64,
    pub value: f64,
}

/// Per-item scores of a job; absent in jobs from trainers that predate them.
pub use jobspec::status::EVAL_ITEMS_LOG as ITEMS_LOG;

/// A float where an empty field or any unparsable text means "unknown" (NaN): stderr
/// is diagnostic, and a missing one should not cost the row its value.
fn lenient_f64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let text = String::deserialize(deserializer)?;
    Ok(text.trim().parse().unwrap_or(f64::NAN))
}

/// One job as read from its folder.
#[derive(Clone, Debug)]
pub struct Run {
    pub id: String,
    pub config: JobConfig,
    /// `Objective::label()`: ar, dlm, ar_masked(0.3), ...
    pub objective: String,
    /// status.json's state; `pending` when the file is absent, `unknown` when unreadable.
    pub state: String,
    pub attempts: u32,
    pub error: Option<String>,
    pub step: u64,
    pub total_steps: u64,
    pub params: Option<u64>,
    pub train: Vec<TrainRow>,
    pub eval: Vec<EvalRow>,
    /// eval_items.csv (empty when the job did not write it).
    pub items: Vec<ItemRow>,
}

/// A problem with one file that did not stop the analysis.
#[derive(Clone, Debug, PartialEq)]
pub struct Warning {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// Every job under `<results>/jobs`, sorted by id, plus what could not be read.
pub fn read_results(results: &Path) -> Result<(Vec<Run>, Vec<Warning>)> {
    let jobs = results.join("jobs");
    if !jobs.is_dir() {
        return Err(AnalysisError::NotAResultsFolder {
            path: results.to_owned(),
            message: "no jobs/ folder (run `harness run` first)".into(),
        });
    }
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&jobs)
        .map_err(io_error(&jobs))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    let read: Vec<(Option<Run>, Vec<Warning>)> = folders.par_iter().map(|f| read_job(f)).collect();
    let mut runs = Vec::with_capacity(read.len());
    let mut warnings = Vec::new();
    for (run, job_warnings) in read {
        runs.extend(run);
        warnings.extend(job_warnings);
    }
    Ok((runs, warnings))
}

/// One job folder; None (with a warning) when its job.yaml is missing or invalid,
/// since without it the job cannot be placed in any comparison.
pub fn read_job(folder: &Path) -> (Option<Run>, Vec<Warning>) {
    let mut warnings = Vec::new();
    let config = match JobConfig::from_file(&folder.join(JOB_FILE)) {
        Ok(config) => config,
        Err(error) => {
            warnings.push(Warning {
                path: folder.join(JOB_FILE),
                message: format!("job skipped: {error}"),
            });
            return (None, warnings);
        }
    };
    let (state, attempts, error, step, total_steps) = match read_status(folder) {
        Ok(Some(s)) => (
            s.state.label().to_string(),
            s.attempts,
            s.error,
            s.step,
            s.total_steps,
        ),
        Ok(None) => ("pending".into(), 0, None, 0, 0),
        Err(error) => {
            warnings.push(Warning {
                path: folder.join(jobspec::status::STATUS_FILE),
                message: error.to_string(),
            });
            ("unknown".into(), 0, None, 0, 0)
        }
    };
    let train = read_csv::<TrainRow>(&folder.join(TRAIN_LOG), &state, &mut warnings);
    let eval = read_csv::<EvalRow>(&folder.join(EVAL_LOG), &state, &mut warnings);
    // Optional: only a file that exists but cannot be read is worth a warning.
    let items = read_csv::<ItemRow>(&folder.join(ITEMS_LOG), "optional", &mut warnings);
    let run = Run {
        id: folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        objective: config.objective.label(),
        params: params_of(&config),
        config,
        state,
        attempts,
        error,
        step,
        total_steps,
        train,
        eval,
        items,
    };
    (Some(run), warnings)
}

/// Total parameters, with the vocabulary padded as the trainer pads it (GPT-2's size is
/// assumed for a tokenizer file, as in `JobConfig::planned_flops`).
fn params_of(config: &JobConfig) -> Option<u64> {
    let shape = config.model.resolve().ok()?;
    let vocab = config.data.tokenizer.known_vocab().unwrap_or(50_257);
    Some(shape.total_params(padded_vocab(vocab)))
}

/// Rows of a CSV log. A missing file is normal before a job has logged anything
/// (pending jobs) and only a warning for jobs that should have written it; a bad
/// header skips the file; a bad row is skipped and reported by line.
fn read_csv<T: for<'de> Deserialize<'de>>(
    path: &Path,
    state: &str,
    warnings: &mut Vec<Warning>,
) -> Vec<T> {
    let warn = |message: String| Warning {
        path: path.to_owned(),
        message,
    };
    let mut reader = match csv::Reader::from_path(path) {
        Ok(reader) => reader,
        Err(error) => {
            if path.exists() || matches!(state, "done" | "failed") {
                warnings.push(warn(format!("skipped: {error}")));
            }
            return Vec::new();
        }
    };
    if let Err(error) = reader.headers() {
        warnings.push(warn(format!("skipped: unreadable header: {error}")));
        return Vec::new();
    }
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for (index, record) in reader.deserialize::<T>().enumerate() {
        match record {
            Ok(row) => rows.push(row),
            // Line numbers count the header as line 1.
            Err(error) => bad.push((index + 2, error.to_string())),
        }
    }
    if rows.is_empty() && !bad.is_empty() {
        warnings.push(warn(format!("skipped: no readable rows ({})", bad[0].1)));
    } else if let Some((line, message)) = bad.first() {
        let more = if bad.len() > 1 {
            format!(" and {} more", bad.len() - 1)
        } else {
            String::new()
        };
        warnings.push(warn(format!(
            "skipped bad row at line {line}{more}: {message}"
        )));
    }
    rows
}
