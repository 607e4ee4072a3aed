//! A run of one job: status.json kept up to date around it, the job's ranks joined
//! before training and finished after.

use crate::device;
use crate::error::{Result, TrainerError, torch_error};
use crate::runfolder::{self, State, Status, mark_stopped};
use crate::train::job::{Job, Outcome, RunOptions};
use crate::train::recipe::train;
use jobspec::JobConfig;
use std::path::Path;
use tch::Device;

/// Run the job in `job_dir`, keeping status.json up to date whatever happens. A
/// data-parallel job (`train.devices` x `train.nodes` > 1) joins or starts its ranks
/// first (`parallel/`); only rank 0 writes status.json, logs and checkpoints.
pub fn run(job_dir: &Path, options: &RunOptions) -> Result<Outcome> {
    let config = JobConfig::from_file(&job_dir.join(runfolder::JOB_FILE))?;
    let writes = crate::parallel::env::RankEnv::from_env(config.train.world_size())
        .map_err(TrainerError::Device)?
        .is_none_or(|env| env.rank == 0);
    let mut status = runfolder::read_status(job_dir)?.unwrap_or_else(Status::pending);
    if status.state == State::Done {
        return Ok(Outcome::AlreadyDone);
    }
    if writes {
        status.state = State::Running;
        status.attempts += 1;
        status.error = None;
        status.pid = Some(std::process::id());
        runfolder::write_status(job_dir, &status).map_err(|error| TrainerError::RunFolder {
            path: job_dir.to_owned(),
            message: format!(
                "cannot write the run folder ({error}); check that it exists and is writable"
            ),
        })?;
    }
    let result = join_and_train(job_dir, &config, options, &mut status);
    if !writes {
        return result;
    }
    status.pid = None;
    match &result {
        Ok(Outcome::Done | Outcome::AlreadyDone) => status.state = State::Done,
        Ok(Outcome::Stopped { step }) => mark_stopped(&mut status, *step),
        Err(error) => {
            status.state = State::Failed;
            status.error = Some(error.to_string());
        }
    }
    runfolder::write_status(job_dir, &status)?;
    result
}

/// Pick the device, join the job's ranks, train; on the launcher, wait for the ranks
/// it started (a rank that failed fails the job).
fn join_and_train(
    job_dir: &Path,
    config: &JobConfig,
    options: &RunOptions,
    status: &mut Status,
) -> Result<Outcome> {
    if let Some(threads) = options.threads {
        tch::set_num_threads(threads as i32);
    }
    let device = device::select(options.device.unwrap_or(config.train.device))
        .map_err(TrainerError::Device)?;
    let ranks = crate::parallel::ranks::Ranks::join(
        config.train.world_size(),
        config.train.nodes,
        job_dir,
        &options.launch,
        device.is_cuda(),
    )
    .map_err(TrainerError::Device)?;
    // One GPU per rank: the one `join` chose and made current (see Ranks::gpu).
    let device = match (device, ranks.gpu) {
        (Device::Cuda(_), Some(index)) => Device::Cuda(index),
        (other, _) => other,
    };
    // A single process makes its GPU current here (`join` did it for ranks).
    if let (Device::Cuda(index), None) = (device, ranks.gpu) {
        crate::fused::set_cuda_device(index).map_err(torch_error("selecting the rank's GPU"))?;
    }
    let job = Job {
        dir: job_dir,
        config,
        options,
        device,
        precision: config.train.precision.resolve(device.is_cuda()),
        ranks: &ranks,
    };
    let outcome = train(&job, status)?;
    let stopped = matches!(outcome, Outcome::Stopped { .. });
    ranks.finish(stopped).map_err(|message| {
        TrainerError::Device(format!(
            "the job's other ranks did not finish cleanly: {message}"
        ))
    })?;
    Ok(outcome)
}
