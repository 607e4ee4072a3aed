//! What a command acts on: a sweep file or its results folder, and the jobs in it.

use anyhow::{Context, bail};
use jobspec::store::{JOBS_DIR, PLAN_FILE, load_sweep};
use jobspec::{JobConfig, Sweep};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A sweep file (when given one) and its results folder.
#[derive(Debug)]
pub struct Target {
    pub sweep: Option<Sweep>,
    pub results: PathBuf,
}

/// One job as the orchestrator and status see it.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: String,
    pub folder: PathBuf,
    pub values: Vec<(String, Value)>,
    /// Planned training tokens (for progress and the ETA).
    pub tokens: u64,
}

impl Target {
    /// `path` is a sweep file (results in `--results` or `results/<name>`) or a
    /// results folder (one holding plan.csv).
    pub fn resolve(path: &Path, results: Option<PathBuf>) -> anyhow::Result<Self> {
        if path.is_dir() {
            if !path.join(PLAN_FILE).exists() {
                bail!(
                    "{} is a folder without {PLAN_FILE}: give a sweep file or the results folder of one",
                    path.display()
                );
            }
            return Ok(Self {
                sweep: None,
                results: results.unwrap_or_else(|| path.to_owned()),
            });
        }
        let sweep = load_sweep(path)?;
        let results = results.unwrap_or_else(|| PathBuf::from("results").join(&sweep.name));
        Ok(Self {
            sweep: Some(sweep),
            results,
        })
    }

    /// The sweep's jobs: from the sweep file when given, else from plan.csv.
    pub fn jobs(&self) -> anyhow::Result<(Vec<String>, Vec<JobRow>)> {
        let jobs_dir = self.results.join(JOBS_DIR);
        if let Some(sweep) = &self.sweep {
            let rows = sweep
                .jobs
                .iter()
                .map(|job| JobRow {
                    id: job.id.clone(),
                    folder: jobs_dir.join(&job.id),
                    values: job.values.clone(),
                    tokens: job.config.planned_tokens(),
                })
                .collect();
            return Ok((sweep.axes.clone(), rows));
        }
        read_plan(&self.results.join(PLAN_FILE), &jobs_dir)
    }
}

fn read_plan(path: &Path, jobs_dir: &Path) -> anyhow::Result<(Vec<String>, Vec<JobRow>)> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let header = reader.headers()?.clone();
    let axes: Vec<String> = header.iter().skip(1).map(str::to_owned).collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("reading {}", path.display()))?;
        let id = record.get(0).unwrap_or_default().to_owned();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!("{}: `{id}` is not a job id", path.display());
        }
        let values = axes
            .iter()
            .zip(record.iter().skip(1))
            .map(|(axis, text)| {
                let value = serde_json::from_str(text).unwrap_or(Value::String(text.into()));
                (axis.clone(), value)
            })
            .collect();
        let folder = jobs_dir.join(&id);
        let tokens = JobConfig::from_file(&folder.join(jobspec::status::JOB_FILE))
            .map_or(0, |config| config.planned_tokens());
        rows.push(JobRow {
            id,
            folder,
            values,
            tokens,
        });
    }
    Ok((axes, rows))
}

/// `axis=value` pairs for messages, strings without their quotes.
pub fn describe(values: &[(String, Value)]) -> String {
    values
        .iter()
        .map(|(axis, value)| format!("{axis}={}", plain(value)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A value as a table shows it: strings without quotes.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}
