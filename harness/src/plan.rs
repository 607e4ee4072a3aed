//! The plan table: one row per job with the values that vary, and totals.
//!
//! Accounting: a job's GPU-hours are its FLOPs at one H100's peak times the assumed
//! MFU, `FLOPs / (peak x MFU) / 3600`, whatever it is spread over (data parallel
//! splits the work, not adds to it; communication is left out). Its `devices` are
//! train.devices x train.nodes and its wall-clock `hours` are GPU-hours / devices.
//! With `train.activation_checkpointing` the blocks' forward runs twice: a job's hours
//! count 4/3 of its FLOPs (forward 2, backward 4, forward again 2 per parameter and
//! token), while its FLOPs column stays the model's (what the analysis plots).

use crate::target::{Shape, plain};
use jobspec::memory::{Layout, MemoryEstimate, memory_per_gpu};
use jobspec::{Sweep, TokenCount};

/// Peak dense bf16 throughput of an H100 SXM, for GPU-hour estimates.
const H100_BF16_FLOPS: f64 = 989e12;

/// A job's GPU-hours and wall-clock hours on `processes` GPUs.
fn job_hours(flops: f64, mfu: f64, processes: usize) -> (f64, f64) {
    let gpu_hours = flops / (H100_BF16_FLOPS * mfu) / 3600.0;
    (gpu_hours, gpu_hours / processes.max(1) as f64)
}

/// A job's estimate as `harness plan` assumes it runs: on GPUs (precision `auto` is
/// bf16), `train.micro_batch_size` rows per pass (else its share of the batch).
fn job_memory(config: &jobspec::JobConfig) -> Option<MemoryEstimate> {
    let shape = config.model.resolve().ok()?;
    let train = &config.train;
    let rows = train
        .micro_batch_size
        .unwrap_or_else(|| train.rows_per_rank());
    let layout = Layout {
        bf16: train.precision.resolve(true) == jobspec::Precision::Bf16,
        processes: Shape::of(config).processes(),
        sharded: train.shard_optimizer,
        checkpointing: train.activation_checkpointing,
    };
    Some(memory_per_gpu(
        &shape,
        config.planned_vocab_rows(),
        (rows * config.data.seq_len) as f64,
        layout,
    ))
}

/// The work a job's GPUs do for each of its model FLOPs: 4/3 when activation
/// checkpointing runs the blocks' forward again, else 1.
fn recompute_factor(config: &jobspec::JobConfig) -> f64 {
    if config.train.activation_checkpointing {
        4.0 / 3.0
    } else {
        1.0
    }
}

/// GiB for a table cell.
fn gib_cell(bytes: f64) -> String {
    let gib = bytes / f64::from(1u32 << 30);
    match gib {
        g if g.is_nan() => "?".into(),
        g if g >= 10.0 => format!("{g:.0}"),
        g if g >= 0.1 => format!("{g:.1}"),
        g => format!("{g:.1e}"),
    }
}

/// Hours for a table cell: three significant figures or so, tiny CPU jobs in e-notation.
fn hours_cell(hours: f64) -> String {
    match hours {
        h if h.is_nan() => "?".into(),
        0.0 => "0".into(),
        h if h >= 100.0 => format!("{h:.0}"),
        h if h >= 1.0 => format!("{h:.1}"),
        h if h >= 0.01 => format!("{h:.2}"),
        h => format!("{h:.1e}"),
    }
}

pub fn render(sweep: &Sweep, tokens_per_s: Option<f64>, mfu: f64, gpu_gib: f64) -> String {
    let mut out = format!("sweep {} ({})\n", sweep.name, sweep.path.display());
    let mut header = vec!["id".to_owned()];
    header.extend(sweep.axes.iter().cloned());
    header.extend([
        "params".into(),
        "active".into(),
        "tokens".into(),
        "FLOPs".into(),
        "GPU-hours".into(),
        "devices".into(),
        "hours".into(),
        "GiB/GPU".into(),
        "evals".into(),
        "disk".into(),
    ]);
    let mut rows = vec![header];
    let (mut tokens, mut flops, mut hours, mut all_gpu_hours) = (0u64, 0.0f64, 0.0f64, 0.0f64);
    let mut disk_total = 0.0f64;
    let mut too_big = Vec::new();
    for job in &sweep.jobs {
        let mut row = vec![job.id.clone()];
        row.extend(job.values.iter().map(|(_, value)| plain(value)));
        let job_tokens = job.config.planned_tokens();
        let job_flops = job.config.planned_flops().unwrap_or(f64::NAN);
        let planned = job.config.planned_params();
        let (total, active) = planned.map_or_else(
            || ("?".to_owned(), "?".to_owned()),
            |(total, active)| {
                (
                    TokenCount(total).to_string(),
                    TokenCount(active).to_string(),
                )
            },
        );
        row.extend([total, active]);
        row.push(TokenCount(job_tokens).to_string());
        row.push(format!("{job_flops:.2e}"));
        let processes = Shape::of(&job.config).processes();
        let (gpu_hours, job_wall) =
            job_hours(job_flops * recompute_factor(&job.config), mfu, processes);
        let memory = job_memory(&job.config).map_or(f64::NAN, |memory| memory.total());
        if memory > gpu_gib * f64::from(1u32 << 30) {
            too_big.push(format!("{} ({})", job.id, gib_cell(memory)));
        }
        let disk = job.config.planned_checkpoint_bytes().unwrap_or(f64::NAN);
        row.extend([
            hours_cell(gpu_hours),
            processes.to_string(),
            hours_cell(job_wall),
            gib_cell(memory),
            job.config.planned_evaluations().to_string(),
            disk_cell(disk),
        ]);
        disk_total += disk;
        tokens += job_tokens;
        flops += job_flops;
        all_gpu_hours += gpu_hours;
        hours += job_wall;
        rows.push(row);
    }
    out.push_str(&align(&rows));
    let totals = Totals {
        tokens,
        flops,
        gpu_hours: all_gpu_hours,
        hours,
    };
    out.push_str(&summary(sweep, &totals, tokens_per_s, mfu));
    out.push_str(&format!(
        "disk: {} of checkpoints when every job is done (per job: the newest checkpoint in full, 12 bytes a parameter, plus each earlier evaluation's as train.keep says: weights 4, all 12, none 0); `harness clean --checkpoints` then frees 8 bytes a parameter per job\n",
        disk_cell(disk_total)
    ));
    if !too_big.is_empty() {
        out.push_str(&format!(
            "warning: {} jobs need more than {gpu_gib} GiB per GPU (--gpu-memory): {}; lower train.micro_batch_size, set train.activation_checkpointing or train.shard_optimizer, or spread them over more devices\n",
            too_big.len(),
            too_big.join(", ")
        ));
    }
    out
}

/// Sums over a sweep's jobs.
struct Totals {
    tokens: u64,
    flops: f64,
    /// GPU-hours, each job's counted with its recomputation (activation checkpointing).
    gpu_hours: f64,
    /// Wall-clock hours with the jobs run one after another, each on its devices.
    hours: f64,
}

/// Bytes as GB or TB (decimal, as disks are sold), `?` when unknown.
fn disk_cell(bytes: f64) -> String {
    if !bytes.is_finite() {
        "?".into()
    } else if bytes >= 1e12 {
        format!("{:.2} TB", bytes / 1e12)
    } else if bytes >= 1e9 {
        format!("{:.1} GB", bytes / 1e9)
    } else {
        format!("{:.0} MB", bytes / 1e6)
    }
}

fn summary(sweep: &Sweep, totals: &Totals, tokens_per_s: Option<f64>, mfu: f64) -> String {
    let Totals {
        tokens,
        flops,
        gpu_hours,
        hours,
    } = *totals;
    let mut out = format!(
        "{} jobs, {} training tokens, {:.3e} FLOPs, {:.1} H100 GPU-hours at {:.0}% MFU, {} hours of wall clock one job after another (each on its devices)\n",
        sweep.jobs.len(),
        TokenCount(tokens),
        flops,
        gpu_hours,
        mfu * 100.0,
        hours_cell(hours)
    );
    out.push_str(
        "GiB/GPU: estimated peak on each GPU: fp32 weights, gradients and AdamW moments (moments split over the ranks with train.shard_optimizer), bf16 weight copies, one micro-batch's activations (each block's input only with train.activation_checkpointing) and logits (docs/gpu.md)\n",
    );
    let multi_node = sweep
        .jobs
        .iter()
        .filter(|job| Shape::of(&job.config).nodes > 1)
        .count();
    if multi_node > 0 {
        out.push_str(&format!(
            "{multi_node} jobs span several nodes (train.nodes > 1): they run with `--backend slurm` only\n"
        ));
    }
    if sweep.duplicates > 0 {
        out.push_str(&format!(
            "{} duplicate jobs dropped (same resolved config as an earlier one)\n",
            sweep.duplicates
        ));
    }
    if let Some(rate) = tokens_per_s {
        out.push_str(&format!(
            "estimated {:.1} hours at {rate:.0} tokens/s (one worker)\n",
            tokens as f64 / rate / 3600.0
        ));
    }
    out
}

/// Left-aligned columns separated by two spaces.
pub fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .map(|row| row.get(column).map_or(0, |cell| cell.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `harness bench-plan`: plan a generated sweep of `jobs` jobs and report the time
/// and peak resident memory (VmHWM).
pub fn bench(jobs: usize) -> anyhow::Result<String> {
    let folder = std::env::temp_dir().join(format!("harness-bench-plan-{}", std::process::id()));
    std::fs::create_dir_all(&folder)?;
    let seeds: Vec<String> = (0..jobs.div_ceil(4)).map(|seed| seed.to_string()).collect();
    let text = format!(
        "name: bench\nbase:\n  model: {{ preset: 1b }}\n  data: {{ corpus: c4, tokenizer: gpt2, seq_len: 2048, unique_tokens: 1B, val_tokens: 10M }}\n  train: {{ epochs: 4, batch_size: 256, lr: 2e-4 }}\ngrid:\n  objective: [ar, dlm]\n  data.unique_tokens: [1B, 2B]\n  seed: [{}]\n",
        seeds.join(", ")
    );
    let path = folder.join("bench.yaml");
    std::fs::write(&path, text)?;
    let start = std::time::Instant::now();
    let sweep = jobspec::store::load_sweep(&path)?;
    let rendered = render(&sweep, None, 0.4, 80.0);
    let csv = jobspec::store::plan_csv(&sweep);
    std::fs::write(folder.join("plan.csv"), &csv)?;
    let seconds = start.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&folder)?;
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
            Some(line.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    Ok(format!(
        "planned {} jobs in {seconds:.2}s ({:.1} us/job), table {} bytes, plan.csv {} bytes, peak memory (VmHWM) {peak}",
        sweep.jobs.len(),
        seconds * 1e6 / sweep.jobs.len().max(1) as f64,
        rendered.len(),
        csv.len()
    ))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
