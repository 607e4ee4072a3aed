//! Synthetic results folders with known answers, for tests, the benchmark and demos:
//! real `job.yaml` files (a serialized `JobConfig`), status.json, train.csv, eval.csv
//! and (when a job has per-item scores) eval_items.csv, as the trainer writes them.

use crate::error::{Result, io_error};
use jobspec::status::{EVAL_HEADER, State, Status, TRAIN_HEADER, write_status};
use jobspec::{JobConfig, Objective, TokenCount, job_id};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One evaluation row to write: at `epoch`, `task`/`metric` = `value` ± `stderr`.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalPoint {
    pub epoch: f64,
    pub task: String,
    pub metric: String,
    pub value: f64,
    pub stderr: f64,
}

/// One evaluation's per-item scores (a row each in eval_items.csv).
#[derive(Clone, Debug, PartialEq)]
pub struct ItemPoint {
    pub epoch: f64,
    pub task: String,
    pub metric: String,
    /// Score of item i at index i.
    pub scores: Vec<f64>,
}

/// A job to write.
#[derive(Clone, Debug)]
pub struct SyntheticJob {
    pub objective: Objective,
    pub seed: u64,
    pub preset: String,
    pub unique_tokens: u64,
    pub epochs: f64,
    pub state: State,
    pub error: Option<String>,
    pub evals: Vec<EvalPoint>,
    pub items: Vec<ItemPoint>,
    /// expert_load.csv rows (mixtures of experts): (epoch, block, expert, share).
    pub expert_load: Vec<(f64, u32, u32, f64)>,
}

impl SyntheticJob {
    pub fn new(objective: Objective, seed: u64, preset: &str, unique_tokens: u64) -> Self {
        Self {
            objective,
            seed,
            preset: preset.into(),
            unique_tokens,
            epochs: 16.0,
            state: State::Done,
            error: None,
            evals: Vec::new(),
            items: Vec::new(),
            expert_load: Vec::new(),
        }
    }

    /// Add one metric's values at the given epochs.
    pub fn metric(
        mut self,
        task: &str,
        metric: &str,
        epochs: &[f64],
        values: &[f64],
        stderr: f64,
    ) -> Self {
        for (&epoch, &value) in epochs.iter().zip(values) {
            let point = EvalPoint {
                epoch,
                task: task.into(),
                metric: metric.into(),
                value,
                stderr,
            };
            self.evals.push(point);
        }
        self
    }

    /// Add one metric's per-item scores at the given epochs (`scores[k][i]`: item i at
    /// epochs[k]); eval.csv gets their mean and its standard error, as the trainer
    /// writes them (the contract: the metric is the mean over items).
    pub fn item_metric(
        mut self,
        task: &str,
        metric: &str,
        epochs: &[f64],
        scores: &[Vec<f64>],
    ) -> Self {
        for (&epoch, scores) in epochs.iter().zip(scores) {
            let n = scores.len().max(1) as f64;
            let mean = scores.iter().sum::<f64>() / n;
            let variance =
                scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            self.evals.push(EvalPoint {
                epoch,
                task: task.into(),
                metric: metric.into(),
                value: mean,
                stderr: (variance / n).sqrt(),
            });
            self.items.push(ItemPoint {
                epoch,
                task: task.into(),
                metric: metric.into(),
                scores: scores.clone(),
            });
        }
        self
    }

    pub fn state(mut self, state: State, error: Option<&str>) -> Self {
        self.state = state;
        self.error = error.map(str::to_string);
        self
    }

    /// The job's resolved config (a small byte-level model on the demo corpus).
    pub fn config(&self) -> Result<JobConfig> {
        let yaml = format!(
            "objective: ar\nseed: {}\nmodel: {{preset: {}}}\ndata: {{corpus: demo, tokenizer: bytes, seq_len: 64, unique_tokens: {}, val_tokens: 20000}}\ntrain: {{epochs: {}, batch_size: 16, lr: 0.003, log_every: 2}}\neval: {{tasks: [val_loss, hellaswag]}}\n",
            self.seed, self.preset, self.unique_tokens, self.epochs
        );
        let path = Path::new("synthetic.yaml");
        let invalid = |error: jobspec::Error| crate::error::AnalysisError::Write {
            path: path.to_owned(),
            message: error.to_string(),
        };
        let mut config = JobConfig::from_yaml(&yaml, path).map_err(invalid)?;
        config.objective = self.objective;
        config.data.unique_tokens = TokenCount(self.unique_tokens);
        config.resolved(path).map_err(invalid)
    }
}

/// Write one job folder under `<results>/jobs/<id>/` and return it.
pub fn write_job(results: &Path, job: &SyntheticJob) -> Result<PathBuf> {
    let config = job.config()?;
    let folder = results.join("jobs").join(job_id(&config));
    std::fs::create_dir_all(&folder).map_err(io_error(&folder))?;
    let write = |name: &str, text: &str| -> Result<()> {
        let path = folder.join(name);
        std::fs::write(&path, text).map_err(io_error(&path))
    };
    write("job.yaml", &config.to_yaml())?;
    let at = Positions::of(job, &config);
    write("eval.csv", &eval_log(job, &at))?;
    if !job.items.is_empty() {
        write(crate::ingest::records::ITEMS_LOG, &items_log(job, &at))?;
    }
    let last_epoch = job.evals.iter().map(|p| p.epoch).fold(0.0, f64::max);
    write("train.csv", &train_log(last_epoch, &at))?;
    if !job.expert_load.is_empty() {
        write(jobspec::status::EXPERT_LOAD_LOG, &load_log(job, &at))?;
    }
    let status = status_of(job, &at, last_epoch);
    write_status(&folder, &status).map_err(|error| crate::error::AnalysisError::Write {
        path: folder.clone(),
        message: error.to_string(),
    })?;
    Ok(folder)
}

/// Where an epoch of a job falls: its step, tokens and FLOPs, as the trainer logs them.
struct Positions {
    tokens_per_epoch: f64,
    flops_per_token: f64,
    steps_per_epoch: f64,
}

impl Positions {
    fn of(job: &SyntheticJob, config: &JobConfig) -> Self {
        Self {
            tokens_per_epoch: job.unique_tokens as f64,
            flops_per_token: config.planned_flops().unwrap_or(0.0)
                / config.planned_tokens().max(1) as f64,
            steps_per_epoch: config.windows_per_epoch() as f64 / config.train.batch_size as f64,
        }
    }

    /// (step, tokens, FLOPs) at `epoch`.
    fn at(&self, epoch: f64) -> (u64, f64, f64) {
        let tokens = (epoch * self.tokens_per_epoch).round();
        (
            (epoch * self.steps_per_epoch).round() as u64,
            tokens,
            tokens * self.flops_per_token,
        )
    }
}

/// eval.csv: one row per evaluation point.
fn eval_log(job: &SyntheticJob, at: &Positions) -> String {
    let mut eval = EVAL_HEADER.join(",") + "\n";
    for point in &job.evals {
        let (step, tokens, flops) = at.at(point.epoch);
        let _ = writeln!(
            eval,
            "{step},{},{tokens},{flops},{},{},{},{},500",
            point.epoch, point.task, point.metric, point.value, point.stderr
        );
    }
    eval
}

/// eval_items.csv: one row per item of each evaluation with per-item scores.
fn items_log(job: &SyntheticJob, at: &Positions) -> String {
    let mut items = "step,epoch,tokens,flops,task,metric,item,value\n".to_string();
    for point in &job.items {
        let (step, tokens, flops) = at.at(point.epoch);
        for (item, score) in point.scores.iter().enumerate() {
            let _ = writeln!(
                items,
                "{step},{},{tokens},{flops},{},{},{item},{score}",
                point.epoch, point.task, point.metric
            );
        }
    }
    items
}

/// train.csv: 20 rows up to the last evaluation, the loss falling in log epochs.
fn train_log(last_epoch: f64, at: &Positions) -> String {
    let mut train = TRAIN_HEADER.join(",") + "\n";
    for i in 1..=20 {
        let epoch = last_epoch * f64::from(i) / 20.0;
        let (step, tokens, flops) = at.at(epoch);
        let _ = writeln!(
            train,
            "{step},{epoch},{tokens},{flops},{},0.003,1.0,10000,{},,,,,10000",
            4.0 - epoch.ln_1p(),
            f64::from(i)
        );
    }
    train
}

/// expert_load.csv: the job's (epoch, block, expert, share) rows.
fn load_log(job: &SyntheticJob, at: &Positions) -> String {
    let mut loads = jobspec::status::EXPERT_LOAD_HEADER.join(",") + "\n";
    for &(epoch, block, expert, share) in &job.expert_load {
        let (step, tokens, flops) = at.at(epoch);
        let _ = writeln!(
            loads,
            "{step},{epoch},{tokens},{flops},{block},{expert},{share}"
        );
    }
    loads
}

/// status.json: the job's state, at the end of its schedule when done, else at its
/// last evaluation.
fn status_of(job: &SyntheticJob, at: &Positions, last_epoch: f64) -> Status {
    let total_steps = at.at(job.epochs).0;
    Status {
        state: job.state,
        attempts: 1,
        error: job.error.clone(),
        step: if job.state == State::Done {
            total_steps
        } else {
            at.at(last_epoch).0
        },
        total_steps,
        ..Status::pending()
    }
}

/// Log2 milestones 1, 2, 4, ... up to `epochs`.
pub fn log2_epochs(epochs: f64) -> Vec<f64> {
    std::iter::successors(Some(1.0), |e| Some(e * 2.0))
        .take_while(|&e| e <= epochs)
        .collect()
}
