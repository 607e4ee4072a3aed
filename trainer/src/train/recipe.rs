//! The recipe of one job's training run: the arithmetic, the data, the model and
//! optimizer, resuming, the logs; then the loop: step, log, evaluate at milestones,
//! checkpoint, stop when asked.

use crate::data::batches::TrainingData;
use crate::device;
use crate::error::{Result, torch_error};
use crate::eval::tasks::TaskSet;
use crate::runfolder::{self, Status};
use crate::train::job::{Job, Outcome};
use crate::train::learner::Learner;
use crate::train::logs::Logs;
use crate::train::progress::{Progress, process_age_s};
use crate::train::steps::TrainingRun;
use std::time::Instant;

/// Train the job on this process's device and rank, from its newest checkpoint if it
/// has one, until its last step or a stop.
pub(crate) fn train(job: &Job<'_>, status: &mut Status) -> Result<Outcome> {
    set_arithmetic(job)?;
    let data = TrainingData::prepare(job.dir, job.config, job.options.cache_root.clone())?;
    let tasks = evaluation_tasks(job, &data)?;
    let mut learner = Learner::build(job, &data);
    let resumed = learner.resume(job, &data)?;
    let logs = Logs::open(job, resumed.start, data.shape.moe.is_some())?;
    let progress = announce(job, &data, &learner, resumed.start);
    record_start(job, status, data.total_steps, resumed.start)?;
    let mut run = TrainingRun::new(job, &data, &tasks, learner, logs, progress, resumed);
    for step in run.first_step()..data.total_steps {
        let stepped = run.step(step)?;
        let at = run.log(&stepped)?;
        // A milestone evaluates, then keeps a checkpoint: their time is left out of the
        // next train.csv row's tokens/s and MFU, which measure training steps.
        let paused = Instant::now();
        if stepped.milestone {
            run.evaluate(at)?;
        }
        if run.checkpoint_due(&stepped) {
            run.checkpoint(status, at, stepped.milestone)?;
        }
        run.resume_clock(paused);
        if let Some(outcome) = run.stop_if_asked(status, &stepped)? {
            return Ok(outcome);
        }
    }
    Ok(run.finish(status))
}

/// Deterministic kernels if the job asks, LibTorch's defaults otherwise (so one process
/// can run both kinds of job); the precision is the job's, resolved for the device.
fn set_arithmetic(job: &Job<'_>) -> Result<()> {
    crate::fused::set_deterministic(job.config.train.deterministic)
        .map_err(torch_error("choosing deterministic kernels"))?;
    Ok(())
}

/// The evaluation tasks, prepared once (items tokenized, windows cut).
fn evaluation_tasks(job: &Job<'_>, data: &TrainingData) -> Result<TaskSet> {
    TaskSet::prepare(
        job.config,
        &data.dataset,
        &data.tokenizer,
        &job.config.eval.tasks,
        &benchmarks::benchmarks_root(),
    )
}

/// The progress bar, and the run's first notes: what is trained on what (`start_note`)
/// and, when AdamW's state is sharded, how much of it rank 0 keeps.
fn announce(job: &Job<'_>, data: &TrainingData, learner: &Learner, start: u64) -> Progress {
    let progress = Progress::new(data.total_steps, start, job.options.quiet || !job.writes());
    progress.note(&start_note(job, data, start));
    let world = job.ranks.world;
    if job.config.train.shard_optimizer && world > 1 {
        let (kept, whole) = learner.optimizer.state_bytes();
        let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
        progress.note(&format!(
            "AdamW state sharded over {} ranks: {:.1} MiB on rank 0 of {:.1} MiB",
            world,
            mib(kept),
            mib(whole),
        ));
    }
    progress
}

/// The objective and job folder, the model's size (active parameters too for a
/// mixture) and FLOPs per token, the data, the device(s) and precision, the step the
/// run resumes after, and how long after the process started training begins.
fn start_note(job: &Job<'_>, data: &TrainingData, start: u64) -> String {
    let (shape, rows, device) = (&data.shape, data.rows(), job.device);
    let params = shape.total_params(rows);
    let active = match shape.moe {
        Some(_) => format!(" ({:.2}M active)", shape.active_params(rows) as f64 / 1e6),
        None => String::new(),
    };
    let ready =
        process_age_s().map_or_else(String::new, |age| format!(", ready {age:.2} s after start"));
    format!(
        "{} {}: {:.2}M params{active}, {:.3e} FLOPs/token, {} unique tokens, {} windows/epoch, {} steps, {} {:?}{}{ready}",
        job.config.objective.label(),
        job.dir.display(),
        params as f64 / 1e6,
        data.flops_per_token(),
        data.tokens.len(),
        data.windows_per_epoch,
        data.total_steps,
        if job.ranks.world > 1 {
            format!("{} x {}", job.ranks.world, device::describe(device))
        } else {
            device::describe(device)
        },
        job.precision,
        if start > 0 {
            format!(", resuming after step {start}")
        } else {
            String::new()
        },
    )
}

/// status.json before the first step: the job's number of steps and where it starts.
fn record_start(job: &Job<'_>, status: &mut Status, total: u64, start: u64) -> Result<()> {
    status.total_steps = total;
    status.step = start;
    if job.writes() {
        runfolder::write_status(job.dir, status)?;
    }
    Ok(())
}
