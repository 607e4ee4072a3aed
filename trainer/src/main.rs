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
    /// Score a saved checkpoint on tasks (default: the job's eval.tasks) without
    /// touching training state; rows are printed and appended to eval_adhoc.csv.
    Eval {
        job_dir: PathBuf,
        /// Checkpoint step (default: the newest).
        #[arg(long)]
        checkpoint: Option<u64>,
        /// Tasks, comma separated: val_loss, cloze, cloze_easy, cloze_hard, hellaswag,
        /// mmlu, arc_easy, arc_challenge, piqa, winogrande, sciq, boolq, copa,
        /// openbookqa, lambada.
        #[arg(long, value_delimiter = ',')]
        tasks: Option<Vec<String>>,
        /// LibTorch threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// DLM scorer instead of the job's: elbo, llada or chain_rule.
        #[arg(long, value_parser = parse_scorer)]
        dlm_scorer: Option<jobspec::DlmScorer>,
        /// Monte Carlo draws per item for DLM scores instead of the job's.
        #[arg(long)]
        score_draws: Option<usize>,
    },
    /// Expand a sweep file into job folders under RESULTS (default results/<name>).
    Init {
        sweep: PathBuf,
        #[arg(long)]
        results: Option<PathBuf>,
    },
    /// Measure training tokens/s and peak memory for AR and DLM at two model sizes.
    Bench {
        /// Presets to measure.
        #[arg(long, value_delimiter = ',', default_value = "tiny,small")]
        presets: Vec<String>,
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
        #[arg(long, default_value_t = 128)]
        seq_len: usize,
        /// Vocabulary of the random tokens (2048 = a small trained BPE).
        #[arg(long, default_value_t = 2048)]
        vocab: usize,
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// LibTorch threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Measure scoring items/s for AR and DLM (K draws) and the cost of DLM scoring
    /// relative to K AR passes.
    BenchEval {
        #[arg(long, default_value = "tiny")]
        preset: String,
        #[arg(long, default_value_t = 64)]
        items: usize,
        #[arg(long, default_value_t = 16)]
        draws: usize,
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Measure one benchmark case given as JSON (used by `bench`, one process per case).
    #[command(hide = true)]
    BenchOne { case: String },
}

fn parse_scorer(text: &str) -> Result<jobspec::DlmScorer, String> {
    match text {
        "elbo" => Ok(jobspec::DlmScorer::Elbo),
        "llada" => Ok(jobspec::DlmScorer::Llada),
        "chain_rule" => Ok(jobspec::DlmScorer::ChainRule),
        other => Err(format!("`{other}`: choose elbo, llada or chain_rule")),
    }
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
        Command::Run {
            job_dir,
            max_steps,
            threads,
            quiet,
        } => {
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
            let options = RunOptions {
                max_steps,
                threads,
                stop,
                quiet,
                cache_root: None,
            };
            match trainer::run(&job_dir, &options)? {
                Outcome::Done => {}
                Outcome::AlreadyDone => eprintln!("{} is already done", job_dir.display()),
                Outcome::Stopped { .. } => return Ok(ExitCode::from(3)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            presets,
            batch_size,
            seq_len,
            vocab,
            steps,
            threads,
        } => {
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
            let mut results = Vec::new();
            for preset in &presets {
                for objective in ["ar", "dlm"] {
                    let case = trainer::bench::BenchCase {
                        preset: preset.clone(),
                        objective: objective.into(),
                        batch_size,
                        seq_len,
                        vocab,
                        steps,
                        warmup_steps: 3,
                        threads,
                    };
                    eprintln!("measuring {preset} {objective} ...");
                    let output = std::process::Command::new(std::env::current_exe()?)
                        .arg("bench-one")
                        .arg(serde_json::to_string(&case)?)
                        .output()
                        .context("starting a benchmark process")?;
                    anyhow::ensure!(
                        output.status.success(),
                        "{}",
                        String::from_utf8_lossy(&output.stderr)
                    );
                    results.push(
                        serde_json::from_slice(&output.stdout)
                            .context("reading a benchmark result")?,
                    );
                }
            }
            println!("{}", trainer::bench::table(&results));
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchEval {
            preset,
            items,
            draws,
            threads,
        } => {
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
            let results = trainer::bench::measure_scoring(&preset, items, draws, threads)
                .map_err(anyhow::Error::msg)?;
            println!("{}", trainer::bench::scoring_table(&results, threads));
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchOne { case } => {
            let case: trainer::bench::BenchCase = serde_json::from_str(&case)?;
            let result = trainer::bench::measure(&case).map_err(anyhow::Error::msg)?;
            println!("{}", serde_json::to_string(&result)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval {
            job_dir,
            checkpoint,
            tasks,
            threads,
            dlm_scorer,
            score_draws,
        } => {
            let options = trainer::evaluate::EvalOptions {
                checkpoint,
                tasks,
                threads,
                dlm_scorer,
                score_draws,
                ..Default::default()
            };
            let (state, results) = trainer::evaluate::evaluate(&job_dir, &options)?;
            println!(
                "checkpoint step {} (epoch {:.2}, {} tokens)",
                state.step, state.epoch, state.tokens
            );
            println!(
                "{:<14} {:<16} {:>10} {:>10} {:>7}",
                "task", "metric", "value", "stderr", "n"
            );
            for row in results {
                println!(
                    "{:<14} {:<16} {:>10.4} {:>10.4} {:>7}",
                    row.task, row.metric, row.value, row.stderr, row.n
                );
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
