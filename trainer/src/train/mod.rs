//! The training loop of one job: read job.yaml, prepare data, train with AdamW,
//! log, evaluate and checkpoint at milestones, resume from the last checkpoint.

pub mod checkpoint;
pub mod optim;
pub(crate) mod progress;
pub mod schedule;

use crate::device;
use crate::error::{Result, TrainerError, torch_error};
use crate::eval::tasks::TaskSet;
use crate::eval::validation_loss::EvalResult;
use crate::model::{RouterStats, Transformer};
use crate::objectives::{TrainingLoss, Vocab, prepare, prepared_loss};
use crate::runfolder::{self, CsvLog, State, Status, number};
use crate::train::checkpoint::CheckpointState;
use crate::train::optim::{AdamW, AdamWConfig};
use crate::train::progress::Progress;
use crate::train::schedule::{learning_rate, milestone_steps};
use jobspec::{JobConfig, Precision, padded_vocab};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tch::{Device, Tensor, nn::VarStore};

/// How to run a job (not part of its identity).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Stop (with a checkpoint) after this many completed steps; a later run resumes.
    pub max_steps: Option<u64>,
    /// LibTorch intra-op threads (default: LibTorch's choice).
    pub threads: Option<usize>,
    /// Set by a signal handler: checkpoint and stop at the end of the current step.
    pub stop: Arc<AtomicBool>,
    /// Print nothing but errors.
    pub quiet: bool,
    /// Where tokenized corpora are cached (default: `corpus::cache_root()`).
    pub cache_root: Option<std::path::PathBuf>,
    /// Device instead of job.yaml's `train.device` (not part of the job's identity).
    pub device: Option<jobspec::DeviceSpec>,
    /// Peak TFLOP/s of the device for MFU (default: `$CROSSOVER_PEAK_TFLOPS`, else the
    /// GPU's data sheet; none on CPU).
    pub peak_tflops: Option<f64>,
    /// How a data-parallel job's launcher starts its other local ranks (default: this
    /// executable with no extra arguments).
    pub launch: crate::parallel::ranks::Launch,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    AlreadyDone,
    Stopped { step: u64 },
}

/// Run the job in `job_dir`, keeping status.json up to date whatever happens. A
/// data-parallel job (`train.devices` x `train.nodes` > 1) joins or starts its ranks
/// first (`ranks.rs`); only rank 0 writes status.json, logs and checkpoints.
pub fn run(job_dir: &Path, options: &RunOptions) -> Result<Outcome> {
    let config = JobConfig::from_file(&job_dir.join(runfolder::JOB_FILE))?;
    let writes = crate::parallel::ranks::RankEnv::from_env(config.train.world_size())
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
    let outcome = train(job_dir, config, options, status, device, &ranks)?;
    let stopped = matches!(outcome, Outcome::Stopped { .. });
    ranks.finish(stopped).map_err(|message| {
        TrainerError::Device(format!(
            "the job's other ranks did not finish cleanly: {message}"
        ))
    })?;
    Ok(outcome)
}

/// A job stopped with a checkpoint after `step`: cancelled, and how to go on.
fn mark_stopped(status: &mut Status, step: u64) {
    status.state = State::Cancelled;
    status.error = Some(format!("stopped after step {step}; run again to resume"));
}

/// Seed of LibTorch's generator for step `step`: every draw of a step depends only on
/// (job seed, step), which makes resumed runs identical to uninterrupted ones.
pub fn step_seed(seed: u64, step: u64) -> i64 {
    let mut z = seed ^ step.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9); // splitmix64 finaliser
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 1) as i64
}

fn train(
    job_dir: &Path,
    config: &JobConfig,
    options: &RunOptions,
    status: &mut Status,
    device: Device,
    ranks: &crate::parallel::ranks::Ranks,
) -> Result<Outcome> {
    let writes = ranks.is_writer();
    // 0. Arithmetic: precision, and deterministic kernels if asked (LibTorch's
    // defaults otherwise, so one process can run both kinds of job).
    let precision = config.train.precision.resolve(device.is_cuda());
    crate::fused::set_deterministic(config.train.deterministic)
        .map_err(torch_error("choosing deterministic kernels"))?;
    // 1. Data: tokenized once per (corpus, tokenizer), budgets are prefixes.
    let (shape, dataset, tokenizer) = prepare_job(job_dir, config, options.cache_root.clone())?;
    // The budget's documents are located in the token store; their tokens stay on
    // disk (in the page cache) and each step reads its own windows.
    let tokens = dataset.budget(config.data.unique_tokens.get())?;
    let seq_len = config.data.seq_len;
    let batch_size = config.train.batch_size;
    let windows = tokens.windows(config.data.windows, seq_len, config.seed)?;
    let windows_per_epoch = windows.windows_per_epoch();
    let total = config.total_steps(windows_per_epoch);
    let task_set = TaskSet::prepare(
        config,
        &dataset,
        &tokenizer,
        &config.eval.tasks,
        &benchmarks::benchmarks_root(),
    )?;
    // 2. Model and optimizer, initialised from the job seed.
    let vocab = Vocab {
        size: dataset.vocab_size as i64,
    };
    let rows = padded_vocab(dataset.vocab_size);
    let (mut variables, model) = build_model(config, &shape, rows, device, precision);
    let parameters = named_parameters(&variables, config.train.decay);
    let train = &config.train;
    let mut optimizer = AdamW::new(
        parameters,
        AdamWConfig {
            beta1: train.beta1,
            beta2: train.beta2,
            eps: train.adam_eps,
            weight_decay: train.weight_decay,
        },
    );
    if train.shard_optimizer {
        optimizer.shard(ranks.rank, ranks.world);
    }
    let flops_per_token = shape.train_flops_per_token(rows, seq_len);
    let peak_flops = device::peak_flops(device, precision, options.peak_tflops);
    let milestones = milestone_steps(
        &config.eval.at,
        total,
        windows_per_epoch,
        batch_size,
        seq_len,
    );
    // 3. Resume from the newest checkpoint, cutting the logs back to it.
    let mut start = 0;
    let mut elapsed_before = 0.0;
    // The routers' load summed on the device since the last milestone.
    let mut load_sum: Option<(Tensor, u64)> = None;
    if let Some((state, path)) = checkpoint::latest(job_dir)? {
        if state.vocab_size != dataset.vocab_size || state.tokenizer_id != dataset.tokenizer_id {
            return Err(TrainerError::Checkpoint {
                path,
                message: format!(
                    "was trained with tokenizer {} ({} ids) but job.yaml now gives {} ({} ids); restore job.yaml or delete the checkpoints to start over",
                    state.tokenizer_id, state.vocab_size, dataset.tokenizer_id, dataset.vocab_size
                ),
            });
        }
        variables
            .load(path.join(checkpoint::MODEL_FILE))
            .map_err(torch_error(format!("loading {}", path.display())))?;
        optimizer
            .load(&path.join(checkpoint::OPTIMIZER_FILE), state.step as i64)
            .map_err(|message| TrainerError::Checkpoint {
                path: path.clone(),
                message,
            })?;
        start = state.step;
        elapsed_before = state.elapsed_s;
        load_sum = state.expert_load.map(|load| {
            let sums = Tensor::from_slice(&load.sums)
                .view([load.blocks, load.experts])
                .to_kind(tch::Kind::Float)
                .to_device(device);
            (sums, load.steps)
        });
    }
    let logs = [
        (runfolder::TRAIN_LOG, runfolder::TRAIN_HEADER),
        (runfolder::EVAL_LOG, runfolder::EVAL_HEADER),
        (runfolder::EVAL_ITEMS_LOG, runfolder::EVAL_ITEMS_HEADER),
        (runfolder::EXPERT_LOAD_LOG, runfolder::EXPERT_LOAD_HEADER),
    ];
    for (name, header) in logs {
        if writes && (shape.moe.is_some() || name != runfolder::EXPERT_LOAD_LOG) {
            runfolder::truncate_log(&job_dir.join(name), start, header)?;
        }
    }
    let mut load_log = match shape.moe {
        Some(_) => Some(CsvLog::open_if(
            writes,
            &job_dir.join(runfolder::EXPERT_LOAD_LOG),
            runfolder::EXPERT_LOAD_HEADER,
        )?),
        None => None,
    };
    let mut train_log = CsvLog::open_if(
        writes,
        &job_dir.join(runfolder::TRAIN_LOG),
        runfolder::TRAIN_HEADER,
    )?;
    let mut eval_log = CsvLog::open_if(
        writes,
        &job_dir.join(runfolder::EVAL_LOG),
        runfolder::EVAL_HEADER,
    )?;
    let mut items_log = CsvLog::open_if(
        writes,
        &job_dir.join(runfolder::EVAL_ITEMS_LOG),
        runfolder::EVAL_ITEMS_HEADER,
    )?;
    let params = shape.total_params(rows);
    let active = match shape.moe {
        Some(_) => format!(" ({:.2}M active)", shape.active_params(rows) as f64 / 1e6),
        None => String::new(),
    };
    let progress = Progress::new(total, start, options.quiet || !writes);
    let ready =
        process_age_s().map_or_else(String::new, |age| format!(", ready {age:.2} s after start"));
    progress.note(&format!(
        "{} {}: {:.2}M params{active}, {:.3e} FLOPs/token, {} unique tokens, {} windows/epoch, {} steps, {} {:?}{}{ready}",
        config.objective.label(),
        job_dir.display(),
        params as f64 / 1e6,
        flops_per_token,
        tokens.len(),
        windows_per_epoch,
        total,
        if ranks.world > 1 {
            format!("{} x {}", ranks.world, device::describe(device))
        } else {
            device::describe(device)
        },
        precision,
        if start > 0 { format!(", resuming after step {start}") } else { String::new() },
    ));
    if train.shard_optimizer && ranks.world > 1 {
        let (kept, whole) = optimizer.state_bytes();
        let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
        progress.note(&format!(
            "AdamW state sharded over {} ranks: {:.1} MiB on rank 0 of {:.1} MiB",
            ranks.world,
            mib(kept),
            mib(whole),
        ));
    }
    status.total_steps = total;
    status.step = start;
    if writes {
        runfolder::write_status(job_dir, status)?;
    }

    // 4. The loop.
    let tokens_per_step = (batch_size * seq_len) as u64;
    let position = |done: u64| {
        let epoch = (done * batch_size as u64) as f64 / windows_per_epoch as f64;
        let seen = done * tokens_per_step;
        (epoch, seen, seen as f64 * flops_per_token)
    };
    let clock = Instant::now();
    let elapsed = || elapsed_before + clock.elapsed().as_secs_f64();
    let mut last_row = (start, clock.elapsed().as_secs_f64());
    let mut last_checkpoint = Instant::now();
    for step in start..total {
        // 4.1 Every draw of this step comes from (seed, step).
        tch::manual_seed(step_seed(config.seed, step));
        let batch = to_device(
            &windows.read_batch(&tokens, step, batch_size)?,
            [batch_size as i64, seq_len as i64 + 1],
            device,
        );
        // 4.2 Forward, backward, clip, update: no host synchronisation in here.
        optimizer
            .zero_grad()
            .map_err(torch_error("clearing gradients"))?;
        let shard = Shard {
            rank: ranks.rank as i64,
            world: ranks.world as i64,
            seed: rank_seed(config.seed, step, ranks.rank),
        };
        let loss = forward_backward_shard(&model, config, &batch, vocab, shard)
            .map_err(torch_error("a training step's forward and backward"))?;
        // Data parallel: average gradients and statistics over the ranks, and agree on
        // stopping (a signal to any rank stops all of them after this step).
        // Rank 0's checkpoint timer decides for all ranks: a sharded optimizer's state
        // is gathered from every rank when a checkpoint is written.
        let timer_due = writes
            && train.checkpoint_minutes > 0.0
            && last_checkpoint.elapsed().as_secs_f64() >= train.checkpoint_minutes * 60.0;
        let flags = Flags {
            stop: options.stop.load(Ordering::SeqCst),
            checkpoint: timer_due,
        };
        let (loss, flags) =
            reduce_step(ranks, &optimizer, loss, flags).map_err(TrainerError::Device)?;
        let (stop_requested, timer_due) = (flags.stop, flags.checkpoint);
        if let Some(router) = &loss.router {
            load_sum = Some(match load_sum.take() {
                Some((sum, steps)) => (sum + &router.load, steps + 1),
                None => (router.load.copy(), 1),
            });
        }
        let grad_norm = optimizer
            .clip_gradients(train.grad_clip)
            .map_err(torch_error("gradient norm"))?;
        let lr = learning_rate(train, step, total);
        optimizer
            .step(lr)
            .map_err(torch_error(format!("AdamW step {}", step + 1)))?;
        optimizer
            .share_updates(|root, tensors| ranks.broadcast_from(root, tensors))
            .map_err(TrainerError::Device)?;
        let done = step + 1;
        let (epoch, seen, flops) = position(done);
        let milestone = milestones.contains(&done);
        // 4.3 Log (the one place a step waits for the device), and catch divergence
        // before a milestone evaluates or checkpoints it.
        let logging = done % train.log_every == 0 || done == total;
        // The minimised total (the objective's loss plus a mixture's auxiliary terms)
        // is non-finite whenever either part is.
        let minimised = (logging || milestone).then(|| loss.total.double_value(&[]));
        if let Some(value) = minimised.filter(|value| !value.is_finite()) {
            return Err(TrainerError::NonFinite {
                step: done,
                loss: value,
            });
        }
        let loss_value = (logging || milestone).then(|| loss.objective.double_value(&[]));
        if let (true, Some(loss_value)) = (logging, loss_value) {
            let grad_norm = grad_norm.double_value(&[]);
            let now = clock.elapsed().as_secs_f64();
            let tokens_per_s =
                ((done - last_row.0) * tokens_per_step) as f64 / (now - last_row.1).max(1e-9);
            last_row = (done, now);
            // The job's throughput over all its devices' peak: each device's MFU.
            let mfu =
                peak_flops.map(|peak| tokens_per_s * flops_per_token / (peak * ranks.world as f64));
            train_log.append(
                &[
                    done.to_string(),
                    number(epoch),
                    seen.to_string(),
                    number(flops),
                    number(loss_value),
                    number(lr),
                    number(grad_norm),
                    format!("{tokens_per_s:.1}"),
                    format!("{:.3}", elapsed()),
                    mfu.map_or_else(String::new, |mfu| format!("{mfu:.4}")),
                ]
                .into_iter()
                .chain(router_columns(loss.router.as_ref()))
                .chain([format!("{:.1}", tokens_per_s / ranks.world as f64)])
                .collect::<Vec<_>>(),
            )?;
            progress.row(done, epoch, loss_value, tokens_per_s, mfu);
        }
        progress.tick(done);
        // 4.4 Milestones: evaluate, then keep a checkpoint. Their time is left out of
        // the next train.csv row's tokens/s and MFU, which measure training steps.
        let paused = Instant::now();
        if milestone {
            if let (Some(log), Some((sum, steps))) = (load_log.as_mut(), load_sum.take()) {
                let at = EvalPoint {
                    step: done,
                    epoch,
                    tokens: seen,
                    flops,
                };
                write_load_rows(log, at, &(sum / steps as f64), &shape.moe_blocks())?;
            }
            let item_folder = job_dir.join("eval_items");
            let item_scores =
                (config.eval.item_scores && writes).then_some((item_folder.as_path(), done));
            let shard = crate::eval::validation_loss::EvalShard::of(ranks);
            for result in task_set.evaluate_shard(&model, config, vocab, item_scores, &shard)? {
                let at = EvalPoint {
                    step: done,
                    epoch,
                    tokens: seen,
                    flops,
                };
                write_eval_row(&mut eval_log, at, &result)?;
                write_item_rows(&mut items_log, at, &result)?;
                progress.note(&format!(
                    "step {done} epoch {epoch:.2}: {} {} {:.4} ± {:.4}",
                    result.task, result.metric, result.value, result.stderr
                ));
            }
        }
        let stopping = stop_requested || options.max_steps.is_some_and(|max| done >= max);
        if milestone || timer_due || (stopping && done < total) {
            // Every rank takes part (a sharded optimizer's moments are sent to rank 0).
            let optimizer_state = optimizer
                .gathered_state(|root, tensors| ranks.broadcast_from(root, tensors))
                .map_err(TrainerError::Device)?;
            last_checkpoint = Instant::now();
            if writes {
                let state = CheckpointState {
                    step: done,
                    total_steps: total,
                    epoch,
                    tokens: seen,
                    flops,
                    elapsed_s: elapsed(),
                    milestone,
                    vocab_size: dataset.vocab_size,
                    tokenizer_id: dataset.tokenizer_id.clone(),
                    expert_load: load_sum.as_ref().map(|(sum, steps)| {
                        let (blocks, experts) = sum.size2().unwrap_or_default();
                        let sums = sum.to_device(Device::Cpu).to_kind(tch::Kind::Double);
                        checkpoint::LoadSum {
                            steps: *steps,
                            blocks,
                            experts,
                            sums: Vec::<f64>::try_from(&sums.reshape([-1])).unwrap_or_default(),
                        }
                    }),
                };
                checkpoint::save(
                    job_dir,
                    &state,
                    &variables,
                    &optimizer_state,
                    config.train.keep,
                )?;
                status.step = done;
                runfolder::write_status(job_dir, status)?;
            }
        }
        last_row.1 += paused.elapsed().as_secs_f64();
        if stopping && done < total && ranks.world > 1 {
            // Rank 0 records the stop, then every rank waits for it before exiting: a
            // launcher such as `srun --kill-on-bad-exit` ends the step when the first
            // rank exits, and must not cut rank 0's checkpoint or status short.
            if writes {
                status.pid = None;
                mark_stopped(status, done);
                runfolder::write_status(job_dir, status)?;
            }
            ranks.barrier().map_err(TrainerError::Device)?;
        }
        if stopping && done < total {
            progress.finish(&format!(
                "stopped after step {done} of {total}; run again to resume"
            ));
            return Ok(Outcome::Stopped { step: done });
        }
    }
    status.step = total;
    progress.finish(&format!("done: {total} steps in {:.1}s", elapsed()));
    Ok(Outcome::Done)
}

/// The batch's loss, with its gradient accumulated into the weights: in one pass, or
/// in `train.micro_batch_size` pieces each weighted by its share of the rows (so the
/// gradient is the whole batch's mean). Returns the loss and its parts (for a mixture
/// of experts, the routers' statistics likewise weighted) without waiting for them.
pub fn forward_backward(
    model: &Transformer,
    config: &JobConfig,
    batch: &Tensor,
    vocab: Vocab,
) -> std::result::Result<TrainingLoss, tch::TchError> {
    let single = Shard {
        rank: 0,
        world: 1,
        seed: 0,
    };
    forward_backward_shard(model, config, batch, vocab, single)
}

/// This process's part of a data-parallel step.
#[derive(Clone, Copy, Debug)]
pub struct Shard {
    pub rank: i64,
    pub world: i64,
    /// Generator seed for the draws inside the forward pass (dropout) of this rank,
    /// so ranks do not repeat each other's; unused in a single process.
    pub seed: i64,
}

/// Seed of the in-model draws (dropout) of `rank` at `step`: (seed, step, rank).
pub fn rank_seed(seed: u64, step: u64, rank: usize) -> i64 {
    step_seed(
        seed ^ (rank as u64).wrapping_mul(0xA24B_AED4_963E_E407),
        step,
    )
}

/// `forward_backward` for one rank: the objective's noise is drawn for the whole batch
/// (from the step's seed, the same on every rank), then the rank keeps its rows
/// `rank x B / world ..` and, in pieces of `train.micro_batch_size`, backpropagates
/// their mean loss. Averaged over the ranks, losses and gradients are the whole
/// batch's, whatever the number of ranks or pieces.
pub fn forward_backward_shard(
    model: &Transformer,
    config: &JobConfig,
    batch: &Tensor,
    vocab: Vocab,
    shard: Shard,
) -> std::result::Result<TrainingLoss, tch::TchError> {
    let prepared = prepare(&config.objective, batch, vocab, &config.dlm);
    let rows = prepared.rows() / shard.world.max(1);
    let mine = prepared.narrow(shard.rank * rows, rows);
    if shard.world > 1 {
        tch::manual_seed(shard.seed);
    }
    let micro = config
        .train
        .micro_batch_size
        .map_or(rows, |micro| micro as i64)
        .clamp(1, rows.max(1));
    if micro >= rows {
        let loss = prepared_loss(model, &mine, vocab, &config.dlm);
        loss.backward(model, 1.0)?;
        return Ok(detached(loss, 1.0));
    }
    let mut sum: Option<TrainingLoss> = None;
    let mut start = 0;
    while start < rows {
        let size = micro.min(rows - start);
        let piece = mine.narrow(start, size);
        let share = size as f64 / rows as f64;
        let loss = prepared_loss(model, &piece, vocab, &config.dlm);
        loss.backward(model, share)?;
        let part = detached(loss, share);
        sum = Some(match sum {
            None => part,
            Some(sum) => TrainingLoss {
                total: sum.total + part.total,
                objective: sum.objective + part.objective,
                router: match (sum.router, part.router) {
                    (Some(a), Some(b)) => Some(RouterStats {
                        balance: a.balance + b.balance,
                        z: a.z + b.z,
                        load: a.load + b.load,
                    }),
                    _ => None,
                },
                checkpoints: None,
            },
        });
        start += size;
    }
    Ok(sum.unwrap_or_else(|| {
        let zero = Tensor::zeros([], (tch::Kind::Float, batch.device()));
        TrainingLoss {
            total: zero.copy(),
            objective: zero,
            router: None,
            checkpoints: None,
        }
    }))
}

/// What the ranks agree on after each step: any rank's stop request stops all of
/// them, and rank 0's checkpoint timer makes all of them take part in a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flags {
    stop: bool,
    checkpoint: bool,
}

/// Average the gradients (in place) and the step's statistics over the ranks, and
/// agree on the flags: one collective per step (the statistics and flags ride with
/// the gradients). Alone, nothing happens.
fn reduce_step(
    ranks: &crate::parallel::ranks::Ranks,
    optimizer: &AdamW,
    loss: TrainingLoss,
    flags: Flags,
) -> std::result::Result<(TrainingLoss, Flags), String> {
    if ranks.world <= 1 {
        return Ok((loss, flags));
    }
    let device = loss.total.device();
    let flag = |on: bool| if on { 1.0f32 } else { 0.0 };
    let flag_values =
        Tensor::from_slice(&[flag(flags.stop), flag(flags.checkpoint)]).to_device(device);
    let mut parts = vec![
        loss.total.reshape([1]),
        loss.objective.reshape([1]),
        flag_values,
    ];
    if let Some(router) = &loss.router {
        parts.extend([
            router.balance.reshape([1]),
            router.z.reshape([1]),
            router.load.reshape([-1]),
        ]);
    }
    let stats = Tensor::cat(&parts, 0).to_kind(tch::Kind::Float);
    let mut tensors = optimizer.gradients();
    tensors.push(stats.shallow_clone());
    ranks.mean(&tensors)?;
    // A mean above 0: at least one rank raised the flag (one read from the device).
    let raised = Vec::<f32>::try_from(stats.narrow(0, 2, 2).to_device(Device::Cpu))
        .map_err(|error| format!("reading the ranks' flags: {error}"))?;
    let agreed = Flags {
        stop: raised[0] > 0.0,
        checkpoint: raised[1] > 0.0,
    };
    let router = loss.router.map(|router| RouterStats {
        balance: stats.get(4),
        z: stats.get(5),
        load: stats
            .narrow(0, 6, router.load.numel() as i64)
            .view_as(&router.load),
    });
    Ok((
        TrainingLoss {
            total: stats.get(0),
            objective: stats.get(1),
            router,
            checkpoints: None,
        },
        agreed,
    ))
}

/// A loss's parts, detached from the graph and scaled by `share`.
fn detached(loss: TrainingLoss, share: f64) -> TrainingLoss {
    TrainingLoss {
        total: loss.total.detach() * share,
        objective: loss.objective.detach() * share,
        router: loss.router.map(|router| RouterStats {
            balance: router.balance.detach() * share,
            z: router.z.detach() * share,
            load: router.load.detach() * share,
        }),
        checkpoints: None,
    }
}

/// train.csv's mixture columns: aux_loss, z_loss, expert_load_max (empty when dense).
fn router_columns(router: Option<&RouterStats>) -> [String; 3] {
    match router {
        None => Default::default(),
        Some(router) => {
            let experts = router.load.size().last().copied().unwrap_or(1) as f64;
            [
                number(router.balance.double_value(&[])),
                number(router.z.double_value(&[])),
                number(router.load.max().double_value(&[]) * experts),
            ]
        }
    }
}

/// expert_load.csv rows: one per (mixture block, expert); `blocks` are the mixture
/// blocks' indices among all blocks (from 0), in the order of `load`'s rows.
fn write_load_rows(log: &mut CsvLog, at: EvalPoint, load: &Tensor, blocks: &[usize]) -> Result<()> {
    let load = load.to_device(Device::Cpu).to_kind(tch::Kind::Double);
    let (rows, experts) = load.size2().unwrap_or_default();
    let values = Vec::<f64>::try_from(&load.reshape([-1])).unwrap_or_default();
    for (row, block) in blocks.iter().enumerate().take(rows as usize) {
        for expert in 0..experts {
            let share = values[row * experts as usize + expert as usize];
            log.append(&[
                at.step.to_string(),
                number(at.epoch),
                at.tokens.to_string(),
                number(at.flops),
                block.to_string(),
                expert.to_string(),
                number(share),
            ])?;
        }
    }
    Ok(())
}

/// Seconds since this process started (Linux: /proc, 10 ms resolution), for the
/// start-up a resumed job pays before its first step (issue 27); None elsewhere.
pub fn process_age_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Field 22 (starttime, in clock ticks since boot) counts from after the `)` that
    // ends the command name, which may hold spaces.
    let after_name = stat.rsplit_once(')')?.1;
    let start_ticks: f64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // USER_HZ is 100 on every Linux architecture this runs on.
    Some((uptime - start_ticks / 100.0).max(0.0))
}

/// The resolved model shape, the prepared data and the tokenizer of a job.
pub fn prepare_job(
    job_dir: &Path,
    config: &JobConfig,
    cache_root: Option<std::path::PathBuf>,
) -> Result<(jobspec::ModelShape, corpus::Dataset, corpus::Tokenizer)> {
    let shape = config
        .model
        .resolve()
        .map_err(|message| jobspec::Error::Invalid {
            path: job_dir.join(runfolder::JOB_FILE),
            field: "model".into(),
            message,
        })?;
    let cache_root = cache_root.unwrap_or_else(corpus::cache_root);
    let options = corpus::PrepareOptions::for_seed(config.seed);
    let dataset = corpus::prepare_with(&config.data, &cache_root, job_dir, &options)?;
    let tokenizer = corpus::load_tokenizer(&config.data, &cache_root, job_dir)?;
    Ok((shape, dataset, tokenizer))
}

/// The model, initialised from the job seed (so every objective starts from the same
/// weights for a given seed and shape, on every device), with activation
/// checkpointing as the job asks.
pub fn build_model(
    config: &JobConfig,
    shape: &jobspec::ModelShape,
    rows: usize,
    device: Device,
    precision: Precision,
) -> (VarStore, Transformer) {
    tch::manual_seed(config.seed as i64);
    let (variables, mut model) =
        Transformer::build(shape, rows, device, device::compute_kind(precision));
    model.activation_checkpointing = config.train.activation_checkpointing;
    (variables, model)
}

/// A (rows, cols) int64 batch of token ids on `device`: staged in pinned host memory
/// and copied without blocking when the device is a GPU.
pub fn to_device(ids: &[u32], shape: [i64; 2], device: Device) -> Tensor {
    let ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
    let host = Tensor::from_slice(&ids).view(shape);
    if device.is_cuda() {
        // Pinned through the shim: tch's pin_memory(device) warns at every step. A
        // failure to pin only costs the overlap: copy from pageable memory.
        crate::fused::pin_memory(&host).unwrap_or(host).to_device_(
            device,
            tch::Kind::Int64,
            true,
            false,
        )
    } else {
        host
    }
}

/// Parameters by name (sorted, so the optimizer's order is stable) with their
/// weight-decay flag.
pub(crate) fn named_parameters(
    variables: &VarStore,
    decay: jobspec::DecayScope,
) -> Vec<(String, Tensor, bool)> {
    let mut named: Vec<(String, Tensor)> = variables.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
        .into_iter()
        .map(|(name, tensor)| {
            let decays = decay.decays(&name);
            (name, tensor, decays)
        })
        .collect()
}

/// Where in training an evaluation was made: the first columns of eval.csv and
/// eval_items.csv.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EvalPoint {
    pub step: u64,
    pub epoch: f64,
    pub tokens: u64,
    pub flops: f64,
}

impl EvalPoint {
    /// step, epoch, tokens, flops, task, metric.
    fn columns(&self, result: &EvalResult) -> Vec<String> {
        vec![
            self.step.to_string(),
            number(self.epoch),
            self.tokens.to_string(),
            number(self.flops),
            result.task.clone(),
            result.metric.clone(),
        ]
    }
}

/// The per-item values of one eval.csv row (none for metrics without items).
pub(crate) fn write_item_rows(log: &mut CsvLog, at: EvalPoint, result: &EvalResult) -> Result<()> {
    for (item, value) in result.items.iter().enumerate() {
        let mut fields = at.columns(result);
        fields.extend([item.to_string(), number(*value)]);
        log.append(&fields)?;
    }
    Ok(())
}

pub(crate) fn write_eval_row(log: &mut CsvLog, at: EvalPoint, result: &EvalResult) -> Result<()> {
    let mut fields = at.columns(result);
    fields.extend([
        number(result.value),
        number(result.stderr),
        result.n.to_string(),
    ]);
    log.append(&fields)
}
