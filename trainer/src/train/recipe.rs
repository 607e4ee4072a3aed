//! The training loop of one job: read job.yaml, prepare data, train with AdamW,
//! log, evaluate and checkpoint at milestones, resume from the last checkpoint.

use crate::data::batches::to_device;
use crate::data::job::prepare_job;
use crate::device;
use crate::error::{Result, TrainerError, torch_error};
use crate::eval::result::{EvalPoint, write_eval_row, write_item_rows};
use crate::eval::tasks::TaskSet;
use crate::model::init::build_model;
use crate::objectives::vocab::Vocab;
use crate::runfolder::{self, CsvLog, Status, mark_stopped, number};
use crate::train::checkpoint::{self, CheckpointState};
use crate::train::gradient::{Shard, forward_backward_shard, rank_seed, step_seed};
use crate::train::job::{Outcome, RunOptions};
use crate::train::logs::{router_columns, write_load_rows};
use crate::train::optim::{AdamW, AdamWConfig, named_parameters};
use crate::train::progress::{Progress, process_age_s};
use crate::train::reduce::{Flags, reduce_step};
use crate::train::schedule::{learning_rate, milestone_steps};
use jobspec::{JobConfig, padded_vocab};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tch::{Device, Tensor};

pub(crate) fn train(
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
            let shard = crate::eval::shard::EvalShard::of(ranks);
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
