//! `trainer`: runs one training job in one process (design.md, "Trainer").

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use trainer::{Outcome, RunOptions};

/// Train and evaluate one AR or DLM job on LibTorch.
///
/// A job folder holds a resolved job.yaml; `trainer run` writes status.json,
/// train.csv, eval.csv and checkpoints/ beside it and resumes from the newest
/// checkpoint when run again.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None, after_help = "Examples:\n  trainer init sweeps/smoke.yaml --results results/smoke\n  trainer run results/smoke/jobs/<id>")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train the job in JOB_DIR (resumes if it has checkpoints).
    Run {
        /// Folder holding job.yaml.
        job_dir: PathBuf,
        /// Stop with a checkpoint after this many optimizer steps (a later run resumes).
        #[arg(long)]
        max_steps: Option<u64>,
        /// LibTorch threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Print only errors.
        #[arg(long)]
        quiet: bool,
    },
    /// Expand a sweep file into job folders under RESULTS (default results/<name>).
    Init {
        sweep: PathBuf,
        #[arg(long)]
        results: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { job_dir, max_steps, threads, quiet } => {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            // First Ctrl-C / SIGTERM: checkpoint at the end of the step and exit.
            // A second one exits at once.
            ctrlc::set_handler(move || {
                if flag.swap(true, Ordering::SeqCst) {
                    std::process::exit(130);
                }
                eprintln!("stopping after this step (again to kill)");
            })
            .context("installing the signal handler")?;
            let options = RunOptions { max_steps, threads, stop, quiet, cache_root: None };
            match trainer::run(&job_dir, &options)? {
                Outcome::Done => {}
                Outcome::AlreadyDone => eprintln!("{} is already done", job_dir.display()),
                Outcome::Stopped { .. } => return Ok(ExitCode::from(3)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Init { sweep, results } => {
            let name = jobspec::Sweep::from_file(&sweep)?.name;
            let results = results.unwrap_or_else(|| PathBuf::from("results").join(name));
            for folder in trainer::init::write_sweep(&sweep, &results)? {
                println!("{}", folder.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
