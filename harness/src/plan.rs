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
mod tests {
    use super::*;
    use jobspec::memory::state_bytes_per_gpu;

    /// Every sweep shipped in sweeps/ plans: valid jobs, FLOPs and GPU-hours printed.
    #[test]
    fn every_shipped_sweep_plans() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sweeps");
        let mut planned = 0;
        for entry in std::fs::read_dir(&folder).expect("sweeps/") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|ext| ext != "yaml") {
                continue;
            }
            let sweep = jobspec::store::load_sweep(&path)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            let table = render(&sweep, Some(1e6), 0.4, 80.0);
            assert!(table.contains("GPU-hours"), "{table}");
            assert!(table.contains("hours of wall clock"), "{table}");
            assert!(
                !table.contains("NaN"),
                "{}: unknown FLOPs\n{table}",
                path.display()
            );
            planned += 1;
        }
        assert!(planned >= 5, "smoke, demo and the three study sweeps");
    }

    #[test]
    fn gpu_hours_do_not_depend_on_devices_and_hours_divide_by_them() {
        // 989e12 x 0.5 FLOP/s for an hour is one GPU-hour.
        let flops = H100_BF16_FLOPS * 0.5 * 3600.0;
        let cases = [(1, 1.0, 1.0), (2, 1.0, 0.5), (8, 1.0, 0.125), (0, 1.0, 1.0)];
        for (processes, gpu_hours, hours) in cases {
            let (got_gpu, got_hours) = job_hours(flops, 0.5, processes);
            assert!(
                (got_gpu - gpu_hours).abs() < 1e-12,
                "{processes}: {got_gpu}"
            );
            assert!(
                (got_hours - hours).abs() < 1e-12,
                "{processes}: {got_hours}"
            );
        }
    }

    #[test]
    fn hours_cells() {
        let cases = [
            (0.0, "0"),
            (f64::NAN, "?"),
            (1234.4, "1234"),
            (12.34, "12.3"),
            (0.1234, "0.12"),
            (0.000_123, "1.2e-4"),
        ];
        for (hours, expected) in cases {
            assert_eq!(hours_cell(hours), expected, "{hours}");
        }
    }

    /// Training state per GPU: 16 bytes a parameter, 8 + 8 / ranks when the
    /// optimizer is sharded; the study's 8b-a1b mixture needs its optimizer sharded
    /// over 8 GPUs to fit an 80 GB H100 before activations.
    #[test]
    fn state_per_gpu_counts_weights_gradients_and_shared_moments() {
        // (params, processes, sharded, bytes)
        let cases = [
            (1_000, 1, false, 16_000.0),
            (1_000, 8, false, 16_000.0),
            (1_000, 1, true, 16_000.0),
            (1_000, 2, true, 12_000.0),
            (1_000, 8, true, 9_000.0),
        ];
        for (params, processes, sharded, bytes) in cases {
            assert_eq!(
                state_bytes_per_gpu(params, processes, sharded),
                bytes,
                "{params} {processes} {sharded}"
            );
        }
        let cells = [
            (16e9 * 1.0737, "16"),
            (0.5 * 1.0737e9, "0.5"),
            (1e6, "9.3e-4"),
        ];
        for (bytes, cell) in cells {
            assert_eq!(gib_cell(bytes), cell, "{bytes}");
        }
        let total = 8_370_000_000u64;
        let gib = |bytes: f64| bytes / f64::from(1u32 << 30);
        assert!(gib(state_bytes_per_gpu(total, 8, false)) > 120.0);
        assert!(gib(state_bytes_per_gpu(total, 8, true)) < 71.0);
    }

    /// A sweep of one AR job of the study's 1b shape (GPT-2 tokens, 2048 x 256 rows
    /// a step) with extra `train` fields, planned from a temporary file.
    fn one_1b_job(name: &str, train: &str) -> Sweep {
        one_1b_job_with(name, &format!("epochs: 1, {train}"), "log2")
    }

    /// Evaluations and checkpoint disk per job, against counts by hand: a 1-epoch job
    /// of 1B tokens at 256 x 2048 tokens a step is 1,908 steps (log2: the end only;
    /// `{points: 8}`: 8), and its disk is 12 bytes a parameter for the newest checkpoint
    /// plus 4 (weights), 12 (all) or 0 (none) for each earlier evaluation.
    #[test]
    fn evaluations_and_disk_follow_eval_at_and_train_keep() {
        let params =
            |sweep: &Sweep| sweep.jobs[0].config.planned_params().expect("params").0 as f64;
        for (train, eval, evals, bytes_per_param) in [
            ("epochs: 1", "log2", 1, 12.0),
            ("epochs: 1", "{ points: 8 }", 8, 12.0 + 7.0 * 4.0),
            (
                "epochs: 1, keep: all",
                "{ points: 8 }",
                8,
                12.0 + 7.0 * 12.0,
            ),
            ("epochs: 1, keep: none", "{ points: 8 }", 8, 12.0),
            ("epochs: 8", "log2", 4, 12.0 + 3.0 * 4.0),
            ("epochs: 1", "{ every_tokens: 250M }", 4, 12.0 + 3.0 * 4.0),
        ] {
            let sweep = one_1b_job_with("disk", train, eval);
            let config = &sweep.jobs[0].config;
            assert_eq!(config.planned_evaluations(), evals, "{train} {eval}");
            let bytes = config.planned_checkpoint_bytes().expect("bytes");
            let expected = params(&sweep) * bytes_per_param;
            assert!(
                (bytes - expected).abs() < 1.0,
                "{train} {eval}: {bytes} vs {expected}"
            );
            let table = render(&sweep, None, 0.4, 80.0);
            assert!(table.contains(&disk_cell(expected)), "{table}");
            assert!(table.contains("disk: "), "{table}");
        }
    }

    fn one_1b_job_with(name: &str, train: &str, eval: &str) -> Sweep {
        let folder = tempfile::tempdir().expect("temp dir");
        let text = format!(
            "name: {name}\nbase:\n  model: {{ preset: 1b }}\n  data: {{ corpus: c4, tokenizer: gpt2, seq_len: 2048, unique_tokens: 1B, val_tokens: 10M }}\n  train: {{ batch_size: 256, lr: 2e-4, {train} }}\n  eval: {{ at: {eval} }}\ngrid:\n  objective: [ar]\n"
        );
        let path = folder.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).expect("write sweep");
        jobspec::store::load_sweep(&path).expect("plans")
    }

    /// The peak-memory estimate against an independent count (issue 28's review: about
    /// 70 GB for 1b at seq 2048 x micro-batch 8 on one GPU), its terms by hand for a
    /// small shape, and the warning for a job that does not fit.
    #[test]
    fn memory_estimate_counts_state_copies_activations_and_logits() {
        let shape = jobspec::ModelShape::preset("1b").expect("1b");
        let rows = jobspec::padded_vocab(50_257);
        let tokens = 8.0 * 2048.0;
        let one = memory_per_gpu(&shape, rows, tokens, Layout::single(true));
        let gb = one.total() / 1e9;
        assert!(
            (60.0..80.0).contains(&gb),
            "1b x 8 x 2048: {gb:.1} GB ({one:?})"
        );
        // Halving the micro-batch halves activations and logits, nothing else.
        let half = memory_per_gpu(&shape, rows, tokens / 2.0, Layout::single(true));
        assert_eq!(
            (half.state, half.weight_copies),
            (one.state, one.weight_copies)
        );
        assert!((half.activations * 2.0 - one.activations).abs() < 1.0);
        // By hand: d = 4, f = 8, 2 blocks, 16 vocabulary rows, 10 tokens, bf16:
        // per block and token 8 d + 2 (14 d) + 2 (4 f) = 32 + 112 + 64 = 208 bytes;
        // logits (2 + 12) x 16 = 224 bytes a token.
        let mut small = jobspec::ModelShape::preset("nano").expect("nano");
        (small.d_model, small.d_ff, small.n_layer, small.n_head) = (4, 8, 2, 1);
        let hand = memory_per_gpu(&small, 16, 10.0, Layout::single(true));
        assert_eq!(hand.activations, 2.0 * 208.0 * 10.0);
        assert_eq!(hand.logits, 224.0 * 10.0);
        let params = small.total_params(16) as f64;
        assert_eq!(hand.weight_copies, 2.0 * params);
        assert_eq!(hand.state, 16.0 * params);
        // Checkpointed: each block keeps its fp32 input (4 d = 16 bytes a token), one
        // block is recomputed (208) and three fp32 (B, T, d) tensors live during the
        // walk back (48): (2 x 16 + 208 + 48) x 10 tokens; nothing else moves.
        let checkpointed = memory_per_gpu(
            &small,
            16,
            10.0,
            Layout {
                checkpointing: true,
                ..Layout::single(true)
            },
        );
        assert_eq!(checkpointed.activations, (2.0 * 16.0 + 208.0 + 48.0) * 10.0);
        assert_eq!(
            (checkpointed.state, checkpointed.logits),
            (hand.state, hand.logits)
        );
        // At 1b x 8 x 2048 checkpointing saves most of the activations.
        let saved = memory_per_gpu(
            &shape,
            rows,
            tokens,
            Layout {
                checkpointing: true,
                ..Layout::single(true)
            },
        );
        assert!(
            saved.activations < one.activations / 5.0,
            "{saved:?} vs {one:?}"
        );
        // The plan names a job that does not fit the GPU it is given.
        let sweep = one_1b_job("big", "micro_batch_size: 8");
        let fits = render(&sweep, None, 0.4, 141.0);
        assert!(!fits.contains("warning:"), "{fits}");
        let tight = render(&sweep, None, 0.4, 40.0);
        assert!(
            tight.contains(&format!(
                "warning: 1 jobs need more than 40 GiB per GPU (--gpu-memory): {}",
                sweep.jobs[0].id
            )),
            "{tight}"
        );
    }

    /// Activation checkpointing: the same FLOPs, 4/3 of the hours (the blocks' forward
    /// runs twice), in the row and the totals.
    #[test]
    fn a_checkpointed_job_counts_its_recomputation_in_hours_not_flops() {
        let plain = one_1b_job("plain", "micro_batch_size: 8");
        let checkpointed = one_1b_job("ac", "micro_batch_size: 8, activation_checkpointing: true");
        assert_eq!(
            plain.jobs[0].id, checkpointed.jobs[0].id,
            "not in the job id"
        );
        let flops = plain.jobs[0].config.planned_flops().expect("flops");
        let (hours, _) = job_hours(flops, 0.4, 1);
        let (more, _) = job_hours(flops * 4.0 / 3.0, 0.4, 1);
        let table = render(&checkpointed, None, 0.4, 64.0);
        let plain_table = render(&plain, None, 0.4, 64.0);
        for (text, expected) in [(&plain_table, hours), (&table, more)] {
            let row: Vec<&str> = text
                .lines()
                .nth(2)
                .expect("row")
                .split_whitespace()
                .collect();
            assert_eq!(row[row.len() - 7], hours_cell(expected), "{text}");
            assert!(
                text.contains(&format!("{flops:.3e} FLOPs, {expected:.1} H100 GPU-hours")),
                "{text}"
            );
        }
        // 1b at 8 x 2048 fits 64 GiB only when checkpointed.
        assert!(
            plain_table.contains("warning: 1 jobs need more than 64 GiB"),
            "{plain_table}"
        );
        assert!(!table.contains("warning:"), "{table}");
    }

    /// A 2-device x 2-node job: the same GPU-hours as on one device, a quarter of
    /// the hours, and `devices` 4, in its row and in the totals.
    #[test]
    fn a_data_parallel_job_shows_its_devices_and_wall_clock() {
        let sweep = one_1b_job("dp", "devices: 2, nodes: 2");
        let table = render(&sweep, None, 0.4, 80.0);
        let header = table.lines().nth(1).expect("header");
        let columns: Vec<&str> = header.split_whitespace().collect();
        assert!(
            columns.ends_with(&[
                "FLOPs",
                "GPU-hours",
                "devices",
                "hours",
                "GiB/GPU",
                "evals",
                "disk"
            ]),
            "{table}"
        );
        let flops = sweep.jobs[0].config.planned_flops().expect("flops");
        let (gpu_hours, _) = job_hours(flops, 0.4, 1);
        let row: Vec<&str> = table
            .lines()
            .nth(2)
            .expect("row")
            .split_whitespace()
            .collect();
        let processes = Shape::of(&sweep.jobs[0].config).processes();
        assert_eq!(processes, 4);
        // The row ends with GiB/GPU, evals and the disk (a number and its unit).
        assert_eq!(
            row[row.len() - 7..row.len() - 4],
            [
                hours_cell(gpu_hours),
                processes.to_string(),
                hours_cell(gpu_hours / processes as f64)
            ],
            "{table}"
        );
        let totals = format!(
            "{:.1} H100 GPU-hours at 40% MFU, {} hours of wall clock",
            gpu_hours,
            hours_cell(gpu_hours / 4.0)
        );
        assert!(table.contains(&totals), "{totals} in\n{table}");
        assert!(
            table.contains(
                "1 jobs span several nodes (train.nodes > 1): they run with `--backend slurm` only"
            ),
            "{table}"
        );
    }
}
