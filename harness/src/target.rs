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
    /// Processes the job runs as (`train.devices` x `train.nodes`).
    pub shape: Shape,
}

/// How a job is spread over processes: `train.devices` per node on `train.nodes`
/// nodes (data parallel, issue 18). Left out of the job id, so a job folder can be
/// resumed with another shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub devices: usize,
    pub nodes: usize,
}

impl Shape {
    /// One process: every job before data parallelism.
    pub const SINGLE: Self = Self {
        devices: 1,
        nodes: 1,
    };

    pub fn of(config: &JobConfig) -> Self {
        Self {
            devices: config.train.devices.max(1),
            nodes: config.train.nodes.max(1),
        }
    }

    /// Processes (ranks) in all: devices x nodes.
    pub fn processes(self) -> usize {
        self.devices * self.nodes
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |count: usize| if count == 1 { "" } else { "s" };
        write!(
            f,
            "{} node{} x {} device{}",
            self.nodes,
            plural(self.nodes),
            self.devices,
            plural(self.devices)
        )
    }
}

/// The shape the trainer will run a job with: its job.yaml's, which is written once,
/// when the job is first planned, and which the trainer reads. The sweep may ask for
/// another (devices and nodes are not part of the id, so editing them keeps the
/// folder): then a note says which one runs. A job.yaml that does not parse leaves
/// the row's shape; the trainer reports that file itself.
pub fn folder_shape(row: &JobRow) -> (Shape, Option<String>) {
    let path = row.folder.join(jobspec::status::JOB_FILE);
    let Ok(config) = JobConfig::from_file(&path) else {
        return (row.shape, None);
    };
    let shape = Shape::of(&config);
    let note = (shape != row.shape).then(|| {
        format!(
            "note: job {} runs as {shape}, as its {} says (the sweep asks for {}; the file was edited by hand?)",
            row.id,
            path.display(),
            row.shape
        )
    });
    (shape, note)
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
                    shape: Shape::of(&job.config),
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
        let config = JobConfig::from_file(&folder.join(jobspec::status::JOB_FILE)).ok();
        rows.push(JobRow {
            id,
            folder,
            values,
            tokens: config.as_ref().map_or(0, JobConfig::planned_tokens),
            shape: config.as_ref().map_or(Shape::SINGLE, Shape::of),
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
