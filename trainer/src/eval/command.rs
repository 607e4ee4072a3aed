//! `trainer eval`: score a saved checkpoint on any tasks without touching the job's
//! training state. Rows go to `eval_adhoc.csv` (same columns as eval.csv).

use crate::data::job::prepare_job;
use crate::error::{Result, TrainerError, torch_error};
use crate::eval::result::EvalResult;
use crate::eval::result::{EvalPoint, write_eval_row};
use crate::eval::tasks::TaskSet;
use crate::model::init::build_model;
use crate::objectives::vocab::Vocab;
use crate::runfolder::{self, CsvLog};
use crate::train::checkpoint::{self, CheckpointState};
use jobspec::{JobConfig, KNOWN_TASKS, padded_vocab};
use std::path::{Path, PathBuf};

pub const ADHOC_LOG: &str = "eval_adhoc.csv";

#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    /// Checkpoint step (default: the newest).
    pub checkpoint: Option<u64>,
    /// Tasks (default: the job's `eval.tasks`).
    pub tasks: Option<Vec<String>>,
    pub threads: Option<usize>,
    pub cache_root: Option<PathBuf>,
    pub benchmarks_root: Option<PathBuf>,
    /// Override the job's `eval.dlm_scorer`.
    pub dlm_scorer: Option<jobspec::DlmScorer>,
    /// Override the job's `eval.score_draws`.
    pub score_draws: Option<usize>,
    /// Device instead of job.yaml's `train.device`.
    pub device: Option<jobspec::DeviceSpec>,
}

/// Evaluate one checkpoint; returns its state and the result rows.
pub fn evaluate(
    job_dir: &Path,
    options: &EvalOptions,
) -> Result<(CheckpointState, Vec<EvalResult>)> {
    if let Some(threads) = options.threads {
        tch::set_num_threads(threads as i32);
    }
    let job_path = job_dir.join(runfolder::JOB_FILE);
    let mut config = JobConfig::from_file(&job_path)?;
    if let Some(scorer) = options.dlm_scorer {
        config.eval.dlm_scorer = scorer;
    }
    if let Some(draws) = options.score_draws {
        config.eval.score_draws = draws.max(1);
    }
    let tasks = options
        .tasks
        .clone()
        .unwrap_or_else(|| config.eval.tasks.clone());
    if let Some(unknown) = tasks
        .iter()
        .find(|task| !KNOWN_TASKS.contains(&task.as_str()))
    {
        return Err(TrainerError::RunFolder {
            path: job_path,
            message: format!(
                "unknown task `{unknown}`; known tasks: {}",
                KNOWN_TASKS.join(", ")
            ),
        });
    }
    let device = crate::device::select(options.device.unwrap_or(config.train.device))
        .map_err(TrainerError::Device)?;
    let precision = config.train.precision.resolve(device.is_cuda());
    let (state, folder) = pick_checkpoint(job_dir, options.checkpoint)?;
    let (shape, dataset, tokenizer) = prepare_job(job_dir, &config, options.cache_root.clone())?;
    let benchmarks_root = options
        .benchmarks_root
        .clone()
        .unwrap_or_else(benchmarks::benchmarks_root);
    let task_set = TaskSet::prepare(&config, &dataset, &tokenizer, &tasks, &benchmarks_root)?;
    let rows = padded_vocab(dataset.vocab_size);
    let (mut variables, model) = build_model(&config, &shape, rows, device, precision);
    let weights = folder.join(checkpoint::MODEL_FILE);
    variables
        .load(&weights)
        .map_err(torch_error(format!("loading {}", weights.display())))?;
    let vocab = Vocab {
        size: dataset.vocab_size as i64,
    };
    let item_folder = job_dir.join("eval_items");
    let item_scores = config
        .eval
        .item_scores
        .then_some((item_folder.as_path(), state.step));
    let results = task_set.evaluate(&model, &config, vocab, item_scores)?;
    let mut log = CsvLog::open(&job_dir.join(ADHOC_LOG), runfolder::EVAL_HEADER)?;
    let at = EvalPoint {
        step: state.step,
        epoch: state.epoch,
        tokens: state.tokens,
        flops: state.flops,
    };
    for result in &results {
        write_eval_row(&mut log, at, result)?;
    }
    Ok((state, results))
}

fn pick_checkpoint(job_dir: &Path, step: Option<u64>) -> Result<(CheckpointState, PathBuf)> {
    let available = checkpoint::list(job_dir)?;
    let steps: Vec<String> = available
        .iter()
        .map(|(state, _)| state.step.to_string())
        .collect();
    let found = match step {
        Some(step) => available.into_iter().find(|(state, _)| state.step == step),
        None => available.into_iter().last(),
    };
    found.ok_or_else(|| TrainerError::Checkpoint {
        path: job_dir.join(runfolder::CHECKPOINTS),
        message: match step {
            Some(step) if !steps.is_empty() => {
                format!(
                    "no checkpoint at step {step}; available: {}",
                    steps.join(", ")
                )
            }
            _ => "no checkpoints yet: train the job first (`trainer run`)".into(),
        },
    })
}
