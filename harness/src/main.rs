//! `harness`: plan sweeps (and, as the orchestrator lands, run and track them).

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod plan;

/// Plan, run and track AR-vs-DLM sweeps.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    after_help = "Example:\n  harness plan sweeps/demo.yaml --tokens-per-s 20000"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Plan {
            sweep,
            results,
            tokens_per_s,
            mfu,
        } => {
            let sweep = jobspec::Sweep::from_file(&sweep)?;
            let results = results.unwrap_or_else(|| PathBuf::from("results").join(&sweep.name));
            print!("{}", plan::render(&sweep, tokens_per_s, mfu));
            std::fs::create_dir_all(&results)
                .with_context(|| format!("creating {}", results.display()))?;
            let path = results.join("plan.csv");
            std::fs::write(&path, plan::csv(&sweep))
                .with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
            Ok(())
        }
    }
}
