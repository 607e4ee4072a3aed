//! `just bench-analyze`: ingest, tables and crossovers over a synthetic sweep (default
//! 1,000 runs x 100 evaluations x 5 tasks), timed phase by phase, with peak memory.

use analysis::crossover::table::CrossoverRow;
use analysis::fits::results::Fits;
use analysis::ingest::records::Run;
use analysis::pairs::groups::Group;
use analysis::synthetic::{SyntheticJob, write_job};
use clap::Parser;
use jobspec::Objective;
use std::path::Path;
use std::time::Instant;

#[derive(Debug, Parser)]
#[command(name = "bench-analyze")]
struct Cli {
    #[arg(long, default_value_t = 1000)]
    runs: usize,
    #[arg(long, default_value_t = 100)]
    evals: usize,
    /// Bootstrap draws per crossover (the analysis' default is 1,000).
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Per-item scores (eval_items.csv) per metric and evaluation, which the paired
    /// bootstrap resamples; 0 leaves them out (the unpaired fallback).
    #[arg(long, default_value_t = 20)]
    items: usize,
    /// Write the synthetic results folder here and keep it (default: a temporary
    /// folder), e.g. to try `harness analyze` on it.
    #[arg(long)]
    keep: Option<std::path::PathBuf>,
}

/// Validation loss plus four accuracy tasks (acc and acc_norm each).
const TASKS: [&str; 4] = ["hellaswag", "mmlu", "arc_easy", "piqa"];

fn job(index: usize, evals: usize, items: usize) -> SyntheticJob {
    let objective = if index.is_multiple_of(2) {
        Objective::Ar
    } else {
        Objective::Dlm
    };
    // Pairs share a budget; each pair is its own comparison group.
    let unique = 20_000 + 1_000 * (index / 2) as u64;
    let epochs: Vec<f64> = (1..=evals)
        .map(|i| 16.0 * i as f64 / evals as f64)
        .collect();
    let rate = if objective == Objective::Dlm {
        6.0
    } else {
        2.0
    };
    let curve = |scale: f64| -> Vec<f64> {
        epochs
            .iter()
            .map(|e| scale * (1.0 - (-e / rate).exp()) - 0.002 * e * f64::from(rate < 3.0))
            .collect()
    };
    let loss: Vec<f64> = curve(1.0).iter().map(|v| 3.5 - v).collect();
    let job = SyntheticJob::new(objective, 0, "nano", unique);
    // Items: a fixed per-item offset around the curve (losses) or a 0/1 score with the
    // curve's probability (accuracies), the same items in every job.
    let per_item = |values: &[f64], accuracy: bool| -> Vec<Vec<f64>> {
        values
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                (0..items)
                    .map(|i| {
                        let u = unit(index as u64, k as u64, i as u64);
                        let offset = unit(0, 0, i as u64) - 0.5;
                        if accuracy {
                            f64::from(u < v + 0.2 * offset)
                        } else {
                            v + offset + 0.1 * (u - 0.5)
                        }
                    })
                    .collect()
            })
            .collect()
    };
    let add = |job: SyntheticJob, task: &str, metric: &str, values: &[f64], stderr: f64| {
        if items == 0 {
            job.metric(task, metric, &epochs, values, stderr)
        } else {
            job.item_metric(task, metric, &epochs, &per_item(values, task != "val_loss"))
        }
    };
    let mut job = add(job, "val_loss", "loss", &loss, 0.01);
    for (t, task) in TASKS.iter().enumerate() {
        let values: Vec<f64> = curve(0.3 + 0.02 * t as f64)
            .iter()
            .map(|v| 0.25 + v)
            .collect();
        job = add(job, task, "acc", &values, 0.02);
        job = add(job, task, "acc_norm", &values, 0.02);
    }
    job
}

/// A deterministic uniform number in [0, 1) for (job, evaluation, item).
fn unit(a: u64, b: u64, c: u64) -> f64 {
    let mut z = a
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(b.wrapping_mul(0xbf58_476d_1ce4_e5b9))
        .wrapping_add(c.wrapping_mul(0x94d0_49bb_1331_11eb))
        .wrapping_add(0x853c_49e6_748f_ea9b);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Peak resident memory (Linux), in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok());
    kib.unwrap_or(f64::NAN) / 1024.0
}

/// CPU seconds this process has used (user + system, all threads), from
/// /proc/self/stat; NaN where that is not readable. Printed beside wall time because
/// this 2-core machine is often busy: CPU time says what the work costs, wall time
/// what a user waits.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after ") ".
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// The 1-minute load average when the benchmark starts (other work skews wall time).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// One timed stage: wall and CPU seconds, and the target it is held to (issue 20).
struct Stage {
    name: String,
    wall: f64,
    cpu: f64,
    target: Option<f64>,
}

fn timed<T>(
    stages: &mut Vec<Stage>,
    name: String,
    target: Option<f64>,
    work: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let (clock, cpu) = (Instant::now(), cpu_seconds());
    let out = work()?;
    stages.push(Stage {
        name,
        wall: clock.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - cpu,
        target,
    });
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = tempfile::tempdir()?;
    let results = match &cli.keep {
        Some(path) => path.clone(),
        None => root.path().join("bench"),
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "bench-analyze: {} runs x {} evaluations x 5 tasks (9 metrics), {} items per metric, {} bootstrap draws; {cores} cores, load average {} at the start",
        cli.runs,
        cli.evals,
        cli.items,
        cli.bootstrap,
        load_average()
    );
    let mut stages = Vec::new();
    timed(&mut stages, "generate (not analysis)".into(), None, || {
        generate(&cli, &results)
    })?;
    let (runs, groups, counts) = ingest(&mut stages, &results)?;
    tables(&mut stages, &runs, &groups, &results.join("analysis"))?;
    let settings = analysis::crossover::uncertainty::Settings {
        draws: cli.bootstrap,
        ..Default::default()
    };
    let rows = timed(
        &mut stages,
        format!("crossovers ({} draws)", cli.bootstrap),
        Some(10.0),
        || {
            Ok(analysis::crossover::table::compute(
                &runs, &groups, settings,
            ))
        },
    )?;
    let fits = timed(&mut stages, "fits".into(), None, || {
        Ok(analysis::fits::compute(
            &runs,
            &groups,
            &rows,
            analysis::fits::results::FitSettings {
                draws: cli.bootstrap,
                seed: 0,
                smooth: 1,
            },
            &results,
        ))
    })?;
    print_counts(&counts, &rows, &fits);
    print_stages(&stages);
    println!("\npeak memory: {:.0} MiB (target 1024)", peak_mib());
    Ok(())
}

/// The synthetic study under `results` (timed, but not part of the analysis).
fn generate(cli: &Cli, results: &Path) -> anyhow::Result<()> {
    for index in 0..cli.runs {
        write_job(results, &job(index, cli.evals, cli.items))?;
    }
    Ok(())
}

/// The timed ingest: runs and their groups, and a line counting what was read.
fn ingest(
    stages: &mut Vec<Stage>,
    results: &Path,
) -> anyhow::Result<(Vec<Run>, Vec<Group>, String)> {
    timed(stages, "ingest".into(), Some(1.5), || {
        let (runs, warnings) = analysis::ingest::read::read_results(results)?;
        let groups = analysis::pairs::groups::group_runs(&runs);
        let rows: usize = runs.iter().map(|r| r.eval.len() + r.train.len()).sum();
        let items: usize = runs.iter().map(Run::item_rows).sum();
        let counts = format!(
            "{} runs, {rows} train/eval rows, {items} item rows, {} warnings",
            runs.len(),
            warnings.len()
        );
        Ok((runs, groups, counts))
    })
}

/// The tidy tables into `out`: built, then written, each timed, and their sum.
fn tables(
    stages: &mut Vec<Stage>,
    runs: &[Run],
    groups: &[Group],
    out: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let tables = timed(stages, "tables: build".into(), None, || {
        Ok(analysis::report::tables::build(runs, groups)?)
    })?;
    timed(stages, "tables: parquet + csv".into(), None, || {
        Ok(analysis::report::tables::write(&tables, out)?)
    })?;
    let (build, write) = (&stages[stages.len() - 2], &stages[stages.len() - 1]);
    stages.push(Stage {
        name: "tables (build + parquet + csv)".into(),
        wall: build.wall + write.wall,
        cpu: build.cpu + write.cpu,
        target: Some(1.0),
    });
    Ok(())
}

/// What was read, compared and fitted.
fn print_counts(counts: &str, rows: &[CrossoverRow], fits: &Fits) {
    let methods: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.estimate.method.label()).collect();
    println!("read: {counts}");
    println!(
        "crossovers: {} rows, method {}",
        rows.len(),
        methods.into_iter().collect::<Vec<_>>().join(", ")
    );
    println!(
        "fits: {} laws, {} critical-compute laws, {} data potentials; {} not fitted",
        fits.laws.len(),
        fits.critical.len(),
        fits.potential.len(),
        fits.missing.len()
    );
}

/// The stages as a Markdown table against their targets.
fn print_stages(stages: &[Stage]) {
    println!();
    println!("| stage | wall s | CPU s | target s | wall / target |");
    println!("|---|---|---|---|---|");
    for stage in stages {
        let (target, ratio) = match stage.target {
            Some(t) => (format!("{t}"), format!("{:.2}", stage.wall / t)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {:.2} | {:.2} | {target} | {ratio} |",
            stage.name, stage.wall, stage.cpu
        );
    }
}
