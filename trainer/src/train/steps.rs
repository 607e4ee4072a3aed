//! The loop's steps: one optimizer step, its train.csv row, a milestone's evaluation, a
//! checkpoint, and the end of the run (stopped early, or done).

use crate::data::batches::TrainingData;
use crate::error::{Result, TrainerError, torch_error};
use crate::eval::result::EvalPoint;
use crate::eval::shard::EvalShard;
use crate::eval::tasks::TaskSet;
use crate::objectives::loss::TrainingLoss;
use crate::objectives::vocab::Vocab;
use crate::runfolder::{self, Status, mark_stopped};
use crate::train::checkpoint::{self, CheckpointState};
use crate::train::clock::Clock;
use crate::train::expert_load::ExpertLoad;
use crate::train::gradient::{Shard, forward_backward_shard, rank_seed, step_seed};
use crate::train::job::{Job, Outcome};
use crate::train::learner::{Learner, Resumed};
use crate::train::logs::{Logs, TrainRow};
use crate::train::progress::Progress;
use crate::train::reduce::{Flags, reduce_step};
use crate::train::schedule::{learning_rate, milestone_steps};
use std::sync::atomic::Ordering;
use std::time::Instant;
use tch::Tensor;

/// Everything the loop over the steps reads and changes.
pub(crate) struct TrainingRun<'a> {
    job: &'a Job<'a>,
    data: &'a TrainingData,
    tasks: &'a TaskSet,
    learner: Learner,
    logs: Logs,
    progress: Progress,
    clock: Clock,
    load: ExpertLoad,
    vocab: Vocab,
    /// The steps after which the tasks are evaluated and a checkpoint is kept.
    milestones: Vec<u64>,
    start: u64,
}

/// What one optimizer step did; nothing of it has been read from the device yet.
pub(crate) struct Stepped {
    /// Steps done, this one included.
    done: u64,
    loss: TrainingLoss,
    grad_norm: Tensor,
    lr: f64,
    /// Any rank asked to stop, or `--max-steps` is reached.
    stop: bool,
    /// Rank 0's checkpoint timer ran out (every rank takes part in the checkpoint).
    timer_due: bool,
    /// `done` is an evaluation milestone.
    pub milestone: bool,
}

impl<'a> TrainingRun<'a> {
    /// The loop's state at the step the run resumes from; the clock starts now.
    pub fn new(
        job: &'a Job<'a>,
        data: &'a TrainingData,
        tasks: &'a TaskSet,
        learner: Learner,
        logs: Logs,
        progress: Progress,
        resumed: Resumed,
    ) -> Self {
        let milestones = milestone_steps(
            &job.config.eval.at,
            data.total_steps,
            data.windows_per_epoch,
            data.batch_size,
            data.seq_len,
        );
        Self {
            job,
            data,
            tasks,
            learner,
            logs,
            progress,
            clock: Clock::start(job, data, resumed.start, resumed.elapsed_before),
            load: resumed.expert_load,
            vocab: data.vocab(),
            milestones,
            start: resumed.start,
        }
    }

    /// The first step this run makes.
    pub fn first_step(&self) -> u64 {
        self.start
    }

    /// One optimizer step: seed it (every draw comes from (seed, step)), read its batch,
    /// forward and backward (this rank's rows, in micro-batches), average over the
    /// ranks, clip, update. No host synchronisation in here.
    pub fn step(&mut self, step: u64) -> Result<Stepped> {
        let (job, config, ranks) = (self.job, self.job.config, self.job.ranks);
        tch::manual_seed(step_seed(config.seed, step));
        let batch = self.data.batch(step, job.device)?;
        let optimizer = &mut self.learner.optimizer;
        optimizer
            .zero_grad()
            .map_err(torch_error("clearing gradients"))?;
        let shard = Shard {
            rank: ranks.rank as i64,
            world: ranks.world as i64,
            seed: rank_seed(config.seed, step, ranks.rank),
        };
        let loss = forward_backward_shard(&self.learner.model, config, &batch, self.vocab, shard)
            .map_err(torch_error("a training step's forward and backward"))?;
        // Data parallel: average gradients and statistics over the ranks, and agree on
        // stopping (a signal to any rank stops all of them after this step).
        // Rank 0's checkpoint timer decides for all ranks: a sharded optimizer's state
        // is gathered from every rank when a checkpoint is written.
        let timer_due = job.writes() && self.clock.checkpoint_due(config.train.checkpoint_minutes);
        let flags = Flags {
            stop: job.options.stop.load(Ordering::SeqCst),
            checkpoint: timer_due,
        };
        let (loss, flags) =
            reduce_step(ranks, optimizer, loss, flags).map_err(TrainerError::Device)?;
        self.load.add(loss.router.as_ref());
        let grad_norm = optimizer
            .clip_gradients(config.train.grad_clip)
            .map_err(torch_error("gradient norm"))?;
        let lr = learning_rate(&config.train, step, self.data.total_steps);
        optimizer
            .step(lr)
            .map_err(torch_error(format!("AdamW step {}", step + 1)))?;
        optimizer
            .share_updates(|root, tensors| ranks.broadcast_from(root, tensors))
            .map_err(TrainerError::Device)?;
        let done = step + 1;
        Ok(Stepped {
            done,
            loss,
            grad_norm,
            lr,
            stop: flags.stop || job.options.max_steps.is_some_and(|max| done >= max),
            timer_due: flags.checkpoint,
            milestone: self.milestones.contains(&done),
        })
    }

    /// Catch divergence before a milestone evaluates or checkpoints it, then write
    /// train.csv's row (every `train.log_every` steps and at the end: the one place a
    /// step waits for the device) and move the progress bar. Returns where training is.
    pub fn log(&mut self, stepped: &Stepped) -> Result<EvalPoint> {
        let (done, total) = (stepped.done, self.data.total_steps);
        let train = &self.job.config.train;
        let at = self.clock.at(done);
        let logging = done % train.log_every == 0 || done == total;
        let read = logging || stepped.milestone;
        // The minimised total (the objective's loss plus a mixture's auxiliary terms)
        // is non-finite whenever either part is.
        let minimised = read.then(|| stepped.loss.total.double_value(&[]));
        if let Some(value) = minimised.filter(|value| !value.is_finite()) {
            return Err(TrainerError::NonFinite {
                step: done,
                loss: value,
            });
        }
        let loss_value = read.then(|| stepped.loss.objective.double_value(&[]));
        if let (true, Some(loss)) = (logging, loss_value) {
            let grad_norm = stepped.grad_norm.double_value(&[]);
            let (tokens_per_s, mfu) = self.clock.throughput(done);
            let row = TrainRow {
                loss,
                lr: stepped.lr,
                grad_norm,
                tokens_per_s,
                elapsed: self.clock.elapsed(),
                mfu,
                router: stepped.loss.router.as_ref(),
                world: self.job.ranks.world,
            };
            self.logs.train_row(at, &row)?;
            self.progress.row(done, at.epoch, loss, tokens_per_s, mfu);
        }
        self.progress.tick(done);
        Ok(at)
    }

    /// A milestone: expert_load.csv's rows (the mean load since the last milestone), then
    /// every task, each rank computing its share; eval.csv and eval_items.csv rows.
    pub fn evaluate(&mut self, at: EvalPoint) -> Result<()> {
        let (job, config) = (self.job, self.job.config);
        if let Some(load) = self.load.take_mean() {
            self.logs
                .expert_load(at, &load, &self.data.shape.moe_blocks())?;
        }
        let item_folder = job.dir.join("eval_items");
        let item_scores =
            (config.eval.item_scores && job.writes()).then_some((item_folder.as_path(), at.step));
        let shard = EvalShard::of(job.ranks);
        let results = self.tasks.evaluate_shard(
            &self.learner.model,
            config,
            self.vocab,
            item_scores,
            &shard,
        )?;
        for result in results {
            self.logs.eval_result(at, &result)?;
            self.progress.note(&format!(
                "step {} epoch {:.2}: {} {} {:.4} ± {:.4}",
                at.step, at.epoch, result.task, result.metric, result.value, result.stderr
            ));
        }
        Ok(())
    }

    /// Whether a checkpoint follows this step: at a milestone, when rank 0's timer ran
    /// out, or when the run stops before its end.
    pub fn checkpoint_due(&self, stepped: &Stepped) -> bool {
        stepped.milestone
            || stepped.timer_due
            || (stepped.stop && stepped.done < self.data.total_steps)
    }

    /// A checkpoint: every rank takes part (a sharded optimizer's moments are sent to
    /// rank 0), rank 0 writes it (weights, AdamW's state, where training is, the expert
    /// load since the last milestone) and status.json.
    pub fn checkpoint(
        &mut self,
        status: &mut Status,
        at: EvalPoint,
        milestone: bool,
    ) -> Result<()> {
        let job = self.job;
        let optimizer_state = self
            .learner
            .optimizer
            .gathered_state(|root, tensors| job.ranks.broadcast_from(root, tensors))
            .map_err(TrainerError::Device)?;
        self.clock.checkpointed();
        if !job.writes() {
            return Ok(());
        }
        let dataset = &self.data.dataset;
        let state = CheckpointState {
            step: at.step,
            total_steps: self.data.total_steps,
            epoch: at.epoch,
            tokens: at.tokens,
            flops: at.flops,
            elapsed_s: self.clock.elapsed(),
            milestone,
            vocab_size: dataset.vocab_size,
            tokenizer_id: dataset.tokenizer_id.clone(),
            expert_load: self.load.to_checkpoint(),
        };
        checkpoint::save(
            job.dir,
            &state,
            &self.learner.variables,
            &optimizer_state,
            job.config.train.keep,
        )?;
        status.step = at.step;
        runfolder::write_status(job.dir, status)
    }

    /// Leave the time since `paused` (a milestone's evaluation and checkpoint) out of
    /// the next train.csv row's tokens/s and MFU.
    pub fn resume_clock(&mut self, paused: Instant) {
        self.clock.exclude_since(paused);
    }

    /// End the run Stopped when a rank asked to stop or `--max-steps` is reached before
    /// the last step. With several ranks, rank 0 records the stop and every rank waits
    /// for it before exiting: a launcher such as `srun --kill-on-bad-exit` ends the step
    /// when the first rank exits, and must not cut rank 0's checkpoint or status short.
    pub fn stop_if_asked(
        &mut self,
        status: &mut Status,
        stepped: &Stepped,
    ) -> Result<Option<Outcome>> {
        let (done, total) = (stepped.done, self.data.total_steps);
        if !(stepped.stop && done < total) {
            return Ok(None);
        }
        let ranks = self.job.ranks;
        if ranks.world > 1 {
            if self.job.writes() {
                status.pid = None;
                mark_stopped(status, done);
                runfolder::write_status(self.job.dir, status)?;
            }
            ranks.barrier().map_err(TrainerError::Device)?;
        }
        self.progress.finish(&format!(
            "stopped after step {done} of {total}; run again to resume"
        ));
        Ok(Some(Outcome::Stopped { step: done }))
    }

    /// Every step is done.
    pub fn finish(self, status: &mut Status) -> Outcome {
        let total = self.data.total_steps;
        status.step = total;
        self.progress.finish(&format!(
            "done: {total} steps in {:.1}s",
            self.clock.elapsed()
        ));
        Outcome::Done
    }
}
