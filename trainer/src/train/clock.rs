//! Where training is (epoch, tokens and FLOPs after n steps) and how fast it goes.

use crate::data::batches::TrainingData;
use crate::device;
use crate::eval::result::EvalPoint;
use crate::train::job::Job;
use std::time::Instant;

/// The run's position and speed: the sizes of one step, the wall clock since this run
/// started (plus the seconds of the runs it resumes), the last train.csv row and the
/// last checkpoint.
#[derive(Debug)]
pub(crate) struct Clock {
    tokens_per_step: u64,
    batch_size: usize,
    windows_per_epoch: u64,
    flops_per_token: f64,
    /// Peak FLOP/s of one device, for MFU (None: unknown, no MFU).
    peak_flops: Option<f64>,
    world: usize,
    started: Instant,
    elapsed_before: f64,
    /// (step, seconds since `started`) of the last train.csv row.
    last_row: (u64, f64),
    last_checkpoint: Instant,
}

impl Clock {
    /// Start the clock at step `start`, `elapsed_before` seconds into the job.
    pub fn start(job: &Job<'_>, data: &TrainingData, start: u64, elapsed_before: f64) -> Self {
        let peak_flops = device::peak_flops(job.device, job.precision, job.options.peak_tflops);
        let started = Instant::now();
        Self {
            tokens_per_step: (data.batch_size * data.seq_len) as u64,
            batch_size: data.batch_size,
            windows_per_epoch: data.windows_per_epoch,
            flops_per_token: data.flops_per_token(),
            peak_flops,
            world: job.ranks.world,
            started,
            elapsed_before,
            last_row: (start, started.elapsed().as_secs_f64()),
            last_checkpoint: Instant::now(),
        }
    }

    /// Where training is after `done` steps: epoch, tokens seen and FLOPs spent.
    pub fn at(&self, done: u64) -> EvalPoint {
        let epoch = (done * self.batch_size as u64) as f64 / self.windows_per_epoch as f64;
        let seen = done * self.tokens_per_step;
        EvalPoint {
            step: done,
            epoch,
            tokens: seen,
            flops: seen as f64 * self.flops_per_token,
        }
    }

    /// Seconds the job has trained, over all its runs.
    pub fn elapsed(&self) -> f64 {
        self.elapsed_before + self.started.elapsed().as_secs_f64()
    }

    /// Tokens/s of all ranks since the last train.csv row, and each device's MFU; the
    /// next row counts from `done`.
    pub fn throughput(&mut self, done: u64) -> (f64, Option<f64>) {
        let now = self.started.elapsed().as_secs_f64();
        let tokens_per_s = ((done - self.last_row.0) * self.tokens_per_step) as f64
            / (now - self.last_row.1).max(1e-9);
        self.last_row = (done, now);
        // The job's throughput over all its devices' peak: each device's MFU.
        let mfu = self
            .peak_flops
            .map(|peak| tokens_per_s * self.flops_per_token / (peak * self.world as f64));
        (tokens_per_s, mfu)
    }

    /// Whether `minutes` (`train.checkpoint_minutes`; 0: never) have passed since the
    /// last checkpoint.
    pub fn checkpoint_due(&self, minutes: f64) -> bool {
        minutes > 0.0 && self.last_checkpoint.elapsed().as_secs_f64() >= minutes * 60.0
    }

    /// A checkpoint was just taken: the timer starts again.
    pub fn checkpointed(&mut self) {
        self.last_checkpoint = Instant::now();
    }

    /// Leave the time since `paused` (a milestone's evaluation and checkpoint) out of
    /// the next row's tokens/s and MFU, which measure training steps.
    pub fn exclude_since(&mut self, paused: Instant) {
        self.last_row.1 += paused.elapsed().as_secs_f64();
    }
}
