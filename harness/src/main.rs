//! `harness`: plan, run and track sweeps (design.md, "Dispatch").
//!
//! The stages of a sweep, in the order `harness run` takes them:
//!
//! 1. `target`   - what a command acts on: a sweep file or its results folder, its jobs
//! 2. `plan`     - the plan table (tokens, FLOPs, memory, disk) before anything runs
//! 3. `prepare`  - every corpus tokenized once, before the jobs start
//! 4. `schedule` - which jobs to start, from each job's status (pure)
//! 5. dispatch   - `pool` with `packing` (local slots or GPUs, processes by pid in
//!    `process`), or `slurm/` (script, submit, track, requeue)
//! 6. `report`   - progress while it runs; `status` for `status`, `cancel`, `clean`
//!
//! Under all: `lock` (one run per results folder). This file is the command line: one
//! short function per command.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

mod lock;
mod packing;
mod plan;
mod pool;
mod prepare;
mod process;
mod report;
mod schedule;
mod slurm;
mod status;
mod target;

use target::Target;

/// Plan, run and track AR-vs-DLM sweeps.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    after_help = "Examples:\n  harness plan sweeps/demo.yaml --tokens-per-s 20000\n  harness run sweeps/smoke.yaml --slots 2\n  harness run sweeps/smoke.yaml --backend slurm --max-running 2\n  harness status results/smoke\n  harness clean --failed results/smoke"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `harness run`'s flags.
#[derive(clap::Args, Debug)]
struct RunFlags {
    /// A sweep file, or the results folder of one.
    sweep: PathBuf,
    /// Results folder (default results/<name>).
    #[arg(long)]
    results: Option<PathBuf>,
    /// Where jobs run: a local pool of workers, or a Slurm job array.
    #[arg(long, value_enum, default_value_t = Backend::Local)]
    backend: Backend,
    /// LibTorch threads per trainer process (local default: cores / slots or
    /// GPUs; Slurm default: slurm.threads, else the task's CPUs).
    #[arg(long)]
    threads: Option<u32>,
    /// CPU slots, one per process: a job with train.devices N takes N of them;
    /// LibTorch threads are split between slots.
    #[arg(long, default_value_t = 1, conflicts_with = "gpus")]
    slots: usize,
    /// GPUs to use, e.g. `0,1,2,3`: a job with train.devices N takes N of them
    /// at once, given to it as CUDA_VISIBLE_DEVICES (e.g. `2,3`).
    #[arg(long, value_delimiter = ',')]
    gpus: Vec<String>,
    /// Runs of a failing job after its first failure.
    #[arg(long, default_value_t = 2)]
    max_retries: u32,
    /// The trainer binary (default: `trainer` next to this executable).
    #[arg(long)]
    trainer: Option<PathBuf>,
    #[command(flatten)]
    slurm: Box<slurm::SlurmFlags>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Expand and validate a sweep without running anything: a table of jobs, totals
    /// of tokens and FLOPs, an estimated duration, and plan.csv in the results folder.
    Plan {
        sweep: PathBuf,
        /// Results folder (default results/<name>).
        #[arg(long)]
        results: Option<PathBuf>,
        /// Measured training throughput, for the duration estimate.
        #[arg(long)]
        tokens_per_s: Option<f64>,
        /// Model FLOPs utilisation assumed for GPU-hours on an H100 (989 TFLOP/s bf16).
        #[arg(long, default_value_t = 0.4)]
        mfu: f64,
        /// Memory of one GPU in GiB: jobs whose estimated peak (GiB/GPU) exceeds it are
        /// named in a warning (80 for an H100, 141 for an H200).
        #[arg(long, default_value_t = 80.0)]
        gpu_memory: f64,
    },
    /// Run every job of a sweep that is not done: resumes interrupted jobs, retries
    /// failed ones, skips finished ones. Ctrl-C stops gracefully (twice kills).
    /// With `--backend slurm`: submit them as one job array and return.
    Run(RunFlags),
    /// Tokenize every corpus the sweep's jobs train on into the token store, once per
    /// (corpus, tokenizer, split), before any job runs (`harness run` does this first
    /// itself). Streams .txt/.jsonl/.jsonl.gz/.jsonl.zst/.parquet/.arrow corpora on every
    /// core; resumable; see docs/data.md.
    Prepare {
        /// A sweep file, or the results folder of one.
        sweep: PathBuf,
        /// Results folder (default results/<name>).
        #[arg(long)]
        results: Option<PathBuf>,
        /// The trainer binary (default: `trainer` next to this executable).
        #[arg(long)]
        trainer: Option<PathBuf>,
    },
    /// A table of the jobs: values, state, step, attempts, error.
    Status {
        /// A sweep file, or the results folder of one.
        sweep: PathBuf,
        #[arg(long)]
        results: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Stop a running sweep gracefully (SIGTERM to its harness, or to orphaned trainers;
    /// scancel for the Slurm arrays of a sweep run with `--backend slurm`).
    Cancel {
        sweep: PathBuf,
        #[arg(long)]
        results: Option<PathBuf>,
    },
    /// Reset failed jobs (`--failed`: pending again, checkpoints kept), or free disk
    /// (`--checkpoints`: done jobs drop the AdamW moments of every checkpoint, which only
    /// a resume needs; the weights stay for `trainer eval`). `--dry-run` only counts.
    #[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["failed", "checkpoints"])))]
    Clean {
        sweep: PathBuf,
        #[arg(long)]
        results: Option<PathBuf>,
        #[arg(long)]
        failed: bool,
        #[arg(long)]
        checkpoints: bool,
        /// With --checkpoints: print what would be freed, delete nothing.
        #[arg(long, requires = "checkpoints")]
        dry_run: bool,
    },
    /// Read every job of a sweep into tables, find where the DLM overtakes AR (with
    /// bootstrap intervals), draw the figures and write analysis/report.{md,html}.
    Analyze {
        /// The sweep file or its results folder.
        sweep: PathBuf,
        #[arg(long)]
        results: Option<PathBuf>,
        /// Centred moving-average window over evaluation points (1 = none; an even
        /// window is widened to the next odd one).
        #[arg(long, default_value_t = 1)]
        smooth: usize,
        /// Bootstrap draws per crossover (0 = no intervals).
        #[arg(long, default_value_t = 1000)]
        bootstrap: usize,
        /// Seed of the bootstrap draws (the report records it, so it is reproducible).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Tables and crossovers only, no figures.
        #[arg(long)]
        no_figures: bool,
    },
    /// Time and peak memory of planning a generated grid.
    #[command(hide = true)]
    BenchPlan {
        #[arg(long, default_value_t = 100_000)]
        jobs: usize,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Local,
    Slurm,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Plan { .. } | Command::Status { .. }) {
        end_quietly_on_closed_pipe();
    }
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", jobspec::chain_text(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// `harness plan ... | head`: end as other Unix tools do when the reader goes away,
/// instead of panicking in `print!`. Only for the commands that just print (a
/// closed pipe must not kill `run`, which supervises its jobs).
#[allow(unsafe_code)]
fn end_quietly_on_closed_pipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: the default disposition is installed before any thread is started.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Plan {
            sweep,
            results,
            tokens_per_s,
            mfu,
            gpu_memory,
        } => plan_command(&sweep, results, tokens_per_s, (mfu, gpu_memory)),
        Command::Run(flags) => run_command(flags),
        Command::Status {
            sweep,
            results,
            json,
        } => status_command(&sweep, results, json),
        Command::Prepare {
            sweep,
            results,
            trainer,
        } => prepare_command(&sweep, results, trainer),
        Command::Analyze {
            sweep,
            results,
            smooth,
            bootstrap,
            seed,
            no_figures,
        } => {
            let options = analysis::AnalyzeOptions {
                smooth,
                bootstrap,
                seed,
                figures: !no_figures,
                progress: true,
            };
            analyze_command(&sweep, results, &options)
        }
        Command::Cancel { sweep, results } => cancel_command(&sweep, results),
        Command::Clean {
            sweep,
            results,
            failed,
            checkpoints,
            dry_run,
        } => clean_command(&sweep, results, failed, checkpoints, dry_run),
        Command::BenchPlan { jobs } => {
            println!("{}", plan::bench(jobs)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `harness run`: submit the sweep to Slurm, or run it in a local pool of workers.
fn run_command(flags: RunFlags) -> anyhow::Result<ExitCode> {
    let options = pool_options(
        flags.slots,
        flags.gpus,
        flags.max_retries,
        flags.trainer,
        flags.threads,
    )?;
    if flags.backend == Backend::Slurm {
        let options = slurm::SubmitOptions {
            trainer: options.trainer,
            threads: flags.threads,
            flags: *flags.slurm,
        };
        slurm::run(&flags.sweep, flags.results, &options)?;
        return Ok(ExitCode::SUCCESS);
    }
    local_run_command(&flags.sweep, flags.results, &options)
}

/// `harness prepare`: every corpus the jobs that are not done train on, tokenized into
/// the store once, under the results folder's run lock.
fn prepare_command(
    sweep: &Path,
    results: Option<PathBuf>,
    trainer: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let options = pool_options(1, Vec::new(), 0, trainer, None)?;
    let target = Target::resolve(sweep, results)?;
    let (_lock, _) = lock::RunLock::acquire(&target.results)?;
    if let Some(sweep_file) = &target.sweep {
        jobspec::store::write_jobs(sweep_file, sweep, &target.results)?;
    }
    let (_, rows) = target.jobs()?;
    let units = prepare::units(&rows)?;
    if units.is_empty() {
        println!("nothing to prepare: every job is done");
    }
    prepare::prepare_units(&units, &options.trainer)?;
    Ok(ExitCode::SUCCESS)
}

/// `harness analyze`: tables, crossovers, figures and the report of a results folder.
fn analyze_command(
    sweep: &Path,
    results: Option<PathBuf>,
    options: &analysis::AnalyzeOptions,
) -> anyhow::Result<ExitCode> {
    let target = Target::resolve(sweep, results)?;
    let summary = analysis::analyze(&target.results, options)?;
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// `harness cancel`: Slurm's arrays and the local harness running the sweep, stopped.
fn cancel_command(sweep: &Path, results: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let target = Target::resolve(sweep, results)?;
    let (_, rows) = target.jobs()?;
    let mut lines = slurm::cancel(&target.results)?;
    lines.extend(status::cancel(&target.results, &status::collect(rows)?)?);
    if lines.is_empty() {
        println!("nothing is running in {}", target.results.display());
    }
    for line in lines {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `harness clean`: failed jobs reset to pending, and/or the optimizer files of done
/// jobs deleted (or counted, with `dry_run`), under the run lock.
fn clean_command(
    sweep: &Path,
    results: Option<PathBuf>,
    failed: bool,
    checkpoints: bool,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let target = Target::resolve(sweep, results)?;
    // Resetting a job a running harness is about to retry would race with it.
    let (_lock, _) = lock::RunLock::acquire(&target.results)?;
    let (_, rows) = target.jobs()?;
    let jobs = status::collect(rows)?;
    if failed {
        let reset = status::clean_failed(&jobs)?;
        println!(
            "{} failed jobs reset to pending: {}",
            reset.len(),
            reset.join(" ")
        );
    }
    if checkpoints {
        let (files, bytes) = status::clean_checkpoints(&jobs, dry_run)?;
        println!(
            "{} {files} optimizer files of done jobs: {:.2} GiB{}",
            if dry_run { "would delete" } else { "deleted" },
            bytes as f64 / f64::from(1u32 << 30),
            if dry_run {
                " (dry run: nothing deleted)"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn plan_command(
    sweep: &Path,
    results: Option<PathBuf>,
    tokens_per_s: Option<f64>,
    (mfu, gpu_memory): (f64, f64),
) -> anyhow::Result<ExitCode> {
    let target = Target::resolve(sweep, results)?;
    let Some(sweep) = &target.sweep else {
        bail!("plan takes a sweep file");
    };
    print!("{}", plan::render(sweep, tokens_per_s, mfu, gpu_memory));
    let results = &target.results;
    std::fs::create_dir_all(results).with_context(|| format!("creating {}", results.display()))?;
    let path = results.join(jobspec::store::PLAN_FILE);
    std::fs::write(&path, jobspec::store::plan_csv(sweep))
        .with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn pool_options(
    slots: usize,
    gpus: Vec<String>,
    max_retries: u32,
    trainer: Option<PathBuf>,
    threads: Option<u32>,
) -> anyhow::Result<pool::PoolOptions> {
    let slots: Vec<pool::Slot> = if gpus.is_empty() {
        if slots == 0 {
            bail!("--slots must be at least 1");
        }
        vec![pool::Slot::Cpu; slots]
    } else {
        gpus.into_iter().map(pool::Slot::Gpu).collect()
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let trainer = match trainer {
        Some(path) => path,
        None => std::env::current_exe()
            .context("finding the harness executable")?
            .with_file_name("trainer"),
    };
    Ok(pool::PoolOptions {
        trainer,
        threads: match threads {
            Some(0) => bail!("--threads must be at least 1"),
            Some(threads) => threads as usize,
            None => (cores / slots.len()).max(1),
        },
        slots,
        max_retries,
    })
}

fn local_run_command(
    sweep_path: &Path,
    results: Option<PathBuf>,
    options: &pool::PoolOptions,
) -> anyhow::Result<ExitCode> {
    let target = Target::resolve(sweep_path, results)?;
    let (lock, stale) = lock::RunLock::acquire(&target.results)?;
    slurm::refuse_if_queued(&target.results)?;
    if let Some(pid) = stale {
        eprintln!("note: replacing a stale lock left by pid {pid}, which is gone");
    }
    if let Some(sweep) = &target.sweep {
        if let Some(kept) = jobspec::store::archive_changed_sweep(sweep_path, &target.results)? {
            eprintln!(
                "note: {} changed since its results were written; the earlier version is kept as {} (finished jobs are kept: a changed job has a new id)",
                sweep_path.display(),
                kept.display()
            );
        }
        jobspec::store::write_jobs(sweep, sweep_path, &target.results)?;
    }
    let (_, rows) = target.jobs()?;
    // Every corpus once, before any job: N jobs on one corpus never tokenize it N
    // times. A corpus that fails to prepare fails its jobs (with the same error, after
    // their retries); the other jobs go ahead.
    pool::check(&rows, options)?;
    let units = prepare::units(&rows)?;
    let failed = prepare::prepare_all(&units, &options.trainer)?;
    if !failed.is_empty() {
        let jobs: usize = failed.iter().map(|unit| unit.jobs).sum();
        eprintln!(
            "note: {} corpus(es) failed to prepare; their {jobs} job(s) will fail with that error, the others run",
            failed.len()
        );
    }
    let signals = Arc::new(AtomicUsize::new(0));
    let counter = signals.clone();
    ctrlc::set_handler(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    })
    .context("installing the Ctrl-C handler")?;
    eprintln!(
        "running {} in {} (lock {})",
        sweep_path.display(),
        target.results.display(),
        lock.path().display()
    );
    let summary = pool::run_pool(&rows, options, &signals)?;
    drop(lock);
    Ok(if summary.interrupted {
        ExitCode::from(130)
    } else if summary.counts.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn status_command(sweep: &Path, results: Option<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let target = Target::resolve(sweep, results)?;
    let changed = target.sweep.is_some() && jobspec::store::sweep_changed(sweep, &target.results)?;
    let (axes, rows) = target.jobs()?;
    let mut jobs = status::collect(rows)?;
    if let Some(by_job) = slurm::records_by_job(&target.results)? {
        status::merge_slurm(&mut jobs, &by_job);
    }
    if json {
        let value = status::to_json(&jobs, &target.results, changed);
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    if changed {
        println!(
            "note: {} changed since {} was written; showing the jobs the file defines now",
            sweep.display(),
            target.results.join(jobspec::store::SWEEP_COPY).display()
        );
    }
    print!("{}", status::table(&axes, &jobs));
    Ok(ExitCode::SUCCESS)
}
