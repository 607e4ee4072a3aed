//! `analyze <results-dir>`: tables, crossovers, figures and the report of one sweep.
//! A stand-in until `harness analyze` calls `analysis::analyze` itself.

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Analyse a results folder: tidy tables, where the DLM overtakes AR (with bootstrap
/// intervals), the study's figures and a report, all under <results-dir>/analysis/.
#[derive(Debug, Parser)]
#[command(name = "analyze", version)]
struct Cli {
    /// The sweep's results folder (the one holding jobs/).
    results_dir: PathBuf,
    /// Centred moving-average window over evaluation points before comparing curves
    /// (1 = none; an even window is widened to the next odd one).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    smooth: u64,
    /// Bootstrap draws per crossover (0 = no intervals).
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Seed of the bootstrap draws (recorded in the report).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write tables and crossovers only.
    #[arg(long)]
    no_figures: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let options = analysis::AnalyzeOptions {
        smooth: usize::try_from(cli.smooth).context("--smooth is too large")?,
        bootstrap: cli.bootstrap,
        seed: cli.seed,
        figures: !cli.no_figures,
        progress: true,
    };
    let summary = analysis::analyze(&cli.results_dir, &options)
        .with_context(|| format!("analysing {}", cli.results_dir.display()))?;
    println!("{summary}");
    Ok(())
}
