//! Tests of plan.rs: the plan table's columns, totals and warnings against counts by
//! hand.

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
    let params = |sweep: &Sweep| sweep.jobs[0].config.planned_params().expect("params").0 as f64;
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
