//! `trainer`: runs one training job in one process (design.md, "Trainer").
//!
//! Most of this file is the command line: its commands, flags and help text. `run`
//! hands each command to one function; the work itself is in the library.
//!
//! Length: about 690 lines, most of them clap's flags and their help text (the
//! command line's documentation); each command's function is short.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
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
#[command(name = "trainer", version, about, long_about = None, after_help = "Examples:\n  trainer init sweeps/smoke.yaml --results results/smoke\n  trainer run results/smoke/jobs/<id>")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train the job in JOB_DIR (resumes if it has checkpoints).
    Run(RunFlags),
    /// Tokenize the corpus of the job in JOB (a job folder or a job.yaml) into the token
    /// store, once for every job on that corpus and tokenizer: streamed, on every core,
    /// resumable (a killed prepare continues from its finished shards), one process at
    /// a time (others wait). `trainer run` does this itself when the store is missing.
    #[command(
        after_help = "Formats: .txt/.text/.md (one document a file), .jsonl/.json, .jsonl.gz, .jsonl.zst (one record a line, data.text_field), .parquet and .arrow (the data.text_field column).\nThe store: $CROSSOVER_CACHE/tokens/<key>/ (docs/data.md); on a cluster, point CROSSOVER_CACHE at storage every node sees."
    )]
    Prepare(PrepareFlags),
    /// Score a saved checkpoint on tasks (default: the job's eval.tasks) without
    /// touching training state; rows are printed and appended to eval_adhoc.csv.
    Eval(EvalFlags),
    /// Expand a sweep file into job folders under RESULTS (default results/<name>).
    Init {
        sweep: PathBuf,
        #[arg(long)]
        results: Option<PathBuf>,
    },
    /// Measure training tokens/s, MFU and peak memory for AR and DLM, optionally beside
    /// the same model in PyTorch (bench/reference.py), and print the ratios.
    #[command(
        after_help = "Examples:\n  trainer bench --reference ~/.cache/crossover/torch-venv/bin/python\n  trainer bench --device cuda --presets 125m,350m --reference /opt/torch/.venv/bin/python --compile"
    )]
    Bench(BenchFlags),
    /// Check the harness against PyTorch: the same weights and batch (exported as
    /// safetensors) must give the same losses and gradient norms over a few AdamW steps,
    /// for AR and DLM, dense and mixture of experts (whose losses include the routers'
    /// load-balancing and z-losses).
    BenchCheck(BenchCheckFlags),
    /// Measure scoring items/s for AR and DLM (K draws) and the cost of DLM scoring
    /// relative to K AR passes.
    BenchEval(BenchEvalFlags),
    /// Say which LibTorch this process runs on and why: the GPU shown, the driver, each
    /// PyTorch torch/lib found and whether it can give CUDA (version 2.11, a CUDA build,
    /// a new enough driver), and the folder the `trainer` launcher chose (docs/gpu.md).
    Libtorch,
    /// A process group of one on DEVICE (NCCL on a GPU when built with it): bucketed
    /// all-reduce, broadcast and barrier must leave the tensors exact (`just gpu-check`).
    #[command(hide = true)]
    DistCheck {
        #[arg(long, default_value = "cpu")]
        device: jobspec::DeviceSpec,
    },
    /// Measure the data path (used by bench/data.py, `just bench-data`): with JOB, the
    /// cost of a prepared job's data (open, budget, batches) as JSON; with --tokenize,
    /// the tokenizer's own MB/s on a jsonl file, on every core.
    #[command(hide = true)]
    BenchData(BenchDataFlags),
    /// Measure one benchmark case given as JSON (used by `bench`, one process per case).
    #[command(hide = true)]
    BenchOne { case: String },
}

// `trainer run`'s arguments (clap shows the variant's doc comment, not this one).
#[derive(clap::Args, Debug)]
struct RunFlags {
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
    /// Device instead of job.yaml's train.device: auto, cpu, cuda or cuda:N.
    #[arg(long)]
    device: Option<jobspec::DeviceSpec>,
    /// Peak TFLOP/s of the device for the MFU column (default: the GPU's data
    /// sheet, or $CROSSOVER_PEAK_TFLOPS; none on CPU).
    #[arg(long)]
    peak_tflops: Option<f64>,
}

// `trainer prepare`'s arguments (clap shows the variant's doc comment, not this one).
#[derive(clap::Args, Debug)]
struct PrepareFlags {
    /// A job folder (holding job.yaml) or a job.yaml.
    job: PathBuf,
    /// Text per shard in MB (a shard ends at the first file boundary past it).
    #[arg(long, default_value_t = 1024.0)]
    shard_mb: f64,
    /// Print only errors.
    #[arg(long)]
    quiet: bool,
}

// `trainer eval`'s arguments (clap shows the variant's doc comment, not this one).
#[derive(clap::Args, Debug)]
struct EvalFlags {
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
    /// Device instead of job.yaml's train.device: auto, cpu, cuda or cuda:N.
    #[arg(long)]
    device: Option<jobspec::DeviceSpec>,
}

// `trainer bench`'s arguments (clap shows the variant's doc comment, not this one).
#[derive(clap::Args, Debug)]
struct BenchFlags {
    /// Presets to measure [default: tiny,small,125m on CPU; tiny,125m,350m on CUDA].
    #[arg(long, value_delimiter = ',')]
    presets: Option<Vec<String>>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: jobspec::DeviceSpec,
    /// fp32, bf16 or auto (bf16 on CUDA, fp32 on CPU).
    #[arg(long, default_value = "auto", value_parser = parse_precision)]
    precision: jobspec::Precision,
    /// Sequences per step [default: 8 on CPU, 16 on CUDA].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Tokens per sequence [default: 128 on CPU, 1024 on CUDA].
    #[arg(long)]
    seq_len: Option<usize>,
    /// Vocabulary of the random tokens [default: 2048 on CPU, 50257 on CUDA].
    #[arg(long)]
    vocab: Option<usize>,
    /// Timed steps [default: about 400 GFLOP of work on CPU (8 to 60 steps), 50 on CUDA].
    /// On the CPU a run counts as its 20th-percentile step; on CUDA, the mean.
    #[arg(long)]
    steps: Option<usize>,
    /// Untimed steps first [default: 1 or 3 on CPU, 10 on CUDA].
    #[arg(long)]
    warmup: Option<usize>,
    /// LibTorch threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Python with PyTorch 2.11: also run bench/reference.py on every case.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// With --reference, also measure the reference under torch.compile.
    #[arg(long)]
    compile: bool,
    /// Peak TFLOP/s of the device for MFU (default: the GPU's data sheet).
    #[arg(long)]
    peak_tflops: Option<f64>,
    /// Train with activation checkpointing (train.activation_checkpointing): the
    /// memory estimate and peak shrink, steps take about a third longer; the
    /// PyTorch reference does not checkpoint.
    #[arg(long)]
    activation_checkpointing: bool,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Measure each case this many times, harness and PyTorch back to back (who goes
    /// first alternates), and keep the medians; the ratio is the median of the
    /// pairs' ratios, shown with their range (shared machines are noisy)
    /// [default: 5 on CPU, 1 on CUDA].
    #[arg(long)]
    repeat: Option<usize>,
}

// `trainer bench-check`'s arguments (clap shows the variant's doc comment, not this one).
#[derive(clap::Args, Debug)]
struct BenchCheckFlags {
    /// Python with PyTorch 2.11 (e.g. ~/.cache/crossover/torch-venv/bin/python).
    #[arg(long)]
    reference: PathBuf,
    /// cpu, cuda or cuda:N (both sides run there).
    #[arg(long, default_value = "cpu")]
    device: jobspec::DeviceSpec,
    /// Model presets of the check, comma-separated (vocabulary 250, 4 x 32 tokens).
    #[arg(
        long = "presets",
        value_delimiter = ',',
        default_value = "tiny,moe-tiny"
    )]
    presets: Vec<String>,
    /// AdamW steps compared (lr 1e-3, weight decay 0.1, clipping at 1).
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// fp32, or bf16 (the harness's mixed precision against PyTorch's autocast).
    #[arg(long, default_value = "fp32", value_parser = parse_precision)]
    precision: jobspec::Precision,
    /// Largest relative difference allowed [default: fp32 1e-5 on CPU, 2e-3 on
    /// CUDA; bf16 2e-2, bf16's 8-bit mantissa over a few steps].
    #[arg(long)]
    tolerance: Option<f64>,
    /// LibTorch threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

// `trainer bench-eval`'s arguments (clap shows the variant's doc comment, not this one).
#[derive(clap::Args, Debug)]
struct BenchEvalFlags {
    #[arg(long, default_value = "tiny")]
    preset: String,
    #[arg(long, default_value_t = 64)]
    items: usize,
    #[arg(long, default_value_t = 16)]
    draws: usize,
    #[arg(long)]
    threads: Option<usize>,
}

// `trainer bench-data`'s arguments (clap shows the variant's doc comment, not this one).
#[derive(clap::Args, Debug)]
struct BenchDataFlags {
    /// A prepared job folder.
    #[arg(long)]
    job: Option<PathBuf>,
    /// Batches to time.
    #[arg(long, default_value_t = 200)]
    steps: u64,
    /// A jsonl file to measure the tokenizer on instead.
    #[arg(long)]
    tokenize: Option<PathBuf>,
    /// MB of its text to tokenize.
    #[arg(long, default_value_t = 64.0)]
    megabytes: f64,
}

fn parse_precision(text: &str) -> Result<jobspec::Precision, String> {
    match text {
        "auto" => Ok(jobspec::Precision::Auto),
        "fp32" => Ok(jobspec::Precision::Fp32),
        "bf16" => Ok(jobspec::Precision::Bf16),
        other => Err(format!("`{other}`: choose auto, fp32 or bf16")),
    }
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
    let cli = Cli::parse();
    if let Command::Run(flags) = &cli.command {
        set_cublas_workspace(&flags.job_dir);
    }
    // TF32 matmuls for fp32 work on CUDA, set through LibTorch's API (CPU kernels are
    // untouched); the bench check turns it off to compare against strict fp32.
    let tf32 = !matches!(cli.command, Command::BenchCheck(_));
    if let Err(error) = trainer::fused::set_cuda_tf32(tf32) {
        eprintln!("warning: {error}");
    }
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", jobspec::chain_text(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// A deterministic job (`train.deterministic`) needs cuBLAS' fixed workspace, which
/// CUDA reads when it starts: set it now, before any other thread exists.
#[allow(unsafe_code)]
fn set_cublas_workspace(job_dir: &Path) {
    let (variable, value) = trainer::fused::CUBLAS_WORKSPACE;
    let deterministic = jobspec::JobConfig::from_file(&job_dir.join(trainer::runfolder::JOB_FILE))
        .is_ok_and(|config| config.train.deterministic);
    if deterministic && std::env::var_os(variable).is_none() {
        // SAFETY: single-threaded here: nothing has been started yet.
        unsafe { std::env::set_var(variable, value) };
    }
}

/// Each command's function.
fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(flags) => run_command(flags),
        Command::Prepare(flags) => prepare_command(flags),
        Command::Eval(flags) => eval_command(flags),
        Command::Init { sweep, results } => init_command(&sweep, results),
        Command::Bench(flags) => bench_command(flags),
        Command::BenchCheck(flags) => bench_check_command(flags),
        Command::BenchEval(flags) => bench_eval_command(flags),
        Command::Libtorch => libtorch_command(),
        Command::DistCheck { device } => dist_check_command(device),
        Command::BenchData(flags) => bench_data_command(flags),
        Command::BenchOne { case } => bench_one_command(&case),
    }
}

/// `trainer run`: train the job, stopping with a checkpoint at the first Ctrl-C or
/// SIGTERM (exit code `STOPPED_EXIT`).
fn run_command(flags: RunFlags) -> anyhow::Result<ExitCode> {
    let stop = install_stop_handler()?;
    let options = RunOptions {
        max_steps: flags.max_steps,
        threads: flags.threads,
        stop,
        quiet: flags.quiet,
        cache_root: None,
        device: flags.device,
        peak_tflops: flags.peak_tflops,
        launch: trainer::parallel::launch::Launch {
            exe: None,
            args: rank_args(&flags),
        },
    };
    match trainer::run(&flags.job_dir, &options)? {
        Outcome::Done => {}
        Outcome::AlreadyDone => eprintln!("{} is already done", flags.job_dir.display()),
        Outcome::Stopped { .. } => {
            return Ok(ExitCode::from(trainer::parallel::ranks::STOPPED_EXIT as u8));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The flag a first Ctrl-C / SIGTERM raises: checkpoint at the end of the step and
/// exit. A second one exits at once, unless it comes within STOP_ECHO of the first: a
/// Slurm batch script passes the TERM it gets on to the trainer, which Slurm may also
/// have signalled itself; that is one stop, not two.
fn install_stop_handler() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let first = std::sync::Mutex::new(None::<std::time::Instant>);
    ctrlc::set_handler(move || {
        let mut first = first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if flag.swap(true, Ordering::SeqCst) {
            if first.is_some_and(|at| at.elapsed() < trainer::parallel::ranks::STOP_ECHO) {
                return;
            }
            std::process::exit(130);
        }
        *first = Some(std::time::Instant::now());
        eprintln!("stopping after this step (again to kill)");
    })
    .context("installing the signal handler")?;
    Ok(stop)
}

/// The arguments of `trainer run` after the job folder for a data-parallel job's other
/// local ranks: this same command, quiet.
fn rank_args(flags: &RunFlags) -> Vec<String> {
    let mut args: Vec<String> = vec!["--quiet".into()];
    if let Some(max_steps) = flags.max_steps {
        args.extend(["--max-steps".into(), max_steps.to_string()]);
    }
    if let Some(threads) = flags.threads {
        args.extend(["--threads".into(), threads.to_string()]);
    }
    if let Some(device) = flags.device {
        args.extend(["--device".into(), device.to_string()]);
    }
    if let Some(peak) = flags.peak_tflops {
        args.extend(["--peak-tflops".into(), peak.to_string()]);
    }
    args
}

/// `trainer prepare`: tokenize the job's corpus into the token store.
fn prepare_command(flags: PrepareFlags) -> anyhow::Result<ExitCode> {
    trainer::data::prepare::prepare(&trainer::data::prepare::PrepareArgs {
        job: flags.job,
        shard_bytes: (flags.shard_mb.max(0.0) * f64::from(1u32 << 20)) as u64,
        quiet: flags.quiet,
        cache_root: None,
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `trainer eval`: score a saved checkpoint and print its rows.
fn eval_command(flags: EvalFlags) -> anyhow::Result<ExitCode> {
    let options = trainer::eval::command::EvalOptions {
        checkpoint: flags.checkpoint,
        tasks: flags.tasks,
        threads: flags.threads,
        dlm_scorer: flags.dlm_scorer,
        score_draws: flags.score_draws,
        device: flags.device,
        ..Default::default()
    };
    let (state, results) = trainer::eval::command::evaluate(&flags.job_dir, &options)?;
    print_eval(&state, results);
    Ok(ExitCode::SUCCESS)
}

/// The checkpoint `trainer eval` scored, then a table of its results.
fn print_eval(
    state: &trainer::train::checkpoint::CheckpointState,
    results: Vec<trainer::eval::result::EvalResult>,
) {
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
}

/// `trainer init`: write the job folders a sweep implies (`<results>/sweep.yaml`,
/// `plan.csv`, `jobs/<id>/{job.yaml,status.json}`; existing job folders, same id = same
/// config, are left untouched) and print them in grid order, so `trainer run <job>`
/// works without the harness. The logic lives in `jobspec::store`, shared with
/// `harness run`.
fn init_command(sweep: &Path, results: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let name = jobspec::Sweep::from_file(sweep)?.name;
    let results = results.unwrap_or_else(|| PathBuf::from("results").join(name));
    for folder in jobspec::store::write_sweep(sweep, &results)? {
        println!("{}", folder.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `trainer bench`: measure every (preset, objective) case, print the table, and write
/// it as JSON when asked.
fn bench_command(flags: BenchFlags) -> anyhow::Result<ExitCode> {
    // Resolve `auto` (and fail early on a missing CUDA) before any child starts.
    let resolved = trainer::device::select(flags.device).map_err(anyhow::Error::msg)?;
    let cuda = resolved.is_cuda();
    let device = match resolved {
        tch::Device::Cuda(index) => jobspec::DeviceSpec::Cuda(index),
        _ => jobspec::DeviceSpec::Cpu,
    };
    let threads = flags
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let presets = flags
        .presets
        .clone()
        .unwrap_or_else(|| default_presets(cuda));
    let rounds = trainer::bench::compare::Rounds {
        repeat: flags.repeat.unwrap_or(if cuda { 1 } else { 5 }).max(1),
        reference: flags.reference.as_deref(),
        compile: flags.compile,
    };
    let mut results = Vec::new();
    for preset in &presets {
        for objective in ["ar", "dlm"] {
            let case = bench_case(&flags, preset, objective, device, cuda, threads)?;
            if let Some(result) = trainer::bench::compare::measure_case(&case, cuda, rounds)? {
                results.push(result);
            }
        }
    }
    println!("{}", trainer::bench::table::table(&results));
    if let Some(path) = flags.json {
        std::fs::write(&path, serde_json::to_string_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The presets `trainer bench` measures when not told.
fn default_presets(cuda: bool) -> Vec<String> {
    let list: &[&str] = if cuda {
        &["tiny", "125m", "350m", "moe-125m"]
    } else {
        &["tiny", "small", "125m", "moe-tiny"]
    };
    list.iter().map(|name| (*name).to_owned()).collect()
}

/// One case of `trainer bench`: the flags, else the device's defaults; steps and
/// warmup sized for the case when not given.
fn bench_case(
    flags: &BenchFlags,
    preset: &str,
    objective: &str,
    device: jobspec::DeviceSpec,
    cuda: bool,
    threads: usize,
) -> anyhow::Result<trainer::bench::case::BenchCase> {
    let defaults = trainer::bench::case::Defaults::for_device(cuda);
    let mut case = trainer::bench::case::BenchCase {
        preset: preset.to_owned(),
        objective: objective.into(),
        batch_size: flags.batch_size.unwrap_or(defaults.batch_size),
        seq_len: flags.seq_len.unwrap_or(defaults.seq_len),
        vocab: flags.vocab.unwrap_or(defaults.vocab),
        steps: 0,
        warmup_steps: 0,
        threads,
        device: device.to_string(),
        precision: flags.precision,
        peak_tflops: flags.peak_tflops,
        activation_checkpointing: flags.activation_checkpointing,
    };
    let (auto_warmup, auto_steps) =
        trainer::bench::case::auto_steps(&case, cuda).map_err(anyhow::Error::msg)?;
    case.steps = flags.steps.unwrap_or(auto_steps);
    case.warmup_steps = flags.warmup.unwrap_or(auto_warmup);
    Ok(case)
}

/// `trainer bench-check`: for every preset and objective, the harness's losses and
/// gradient norms beside PyTorch's from the same weights and batch; fails when the
/// largest relative difference is over the tolerance.
fn bench_check_command(flags: BenchCheckFlags) -> anyhow::Result<ExitCode> {
    if let Some(threads) = flags.threads {
        tch::set_num_threads(threads as i32);
    }
    let device = trainer::device::select(flags.device).map_err(anyhow::Error::msg)?;
    let precision = flags.precision.resolve(device.is_cuda());
    let tolerance = check_tolerance(precision, device.is_cuda(), flags.tolerance);
    let mut worst: f64 = 0.0;
    println!(
        "| preset | objective | step | harness loss | PyTorch loss | harness grad norm | PyTorch grad norm |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (preset, objective) in flags
        .presets
        .iter()
        .flat_map(|preset| ["ar", "dlm"].map(|objective| (preset, objective)))
    {
        let folder = tempfile::tempdir().context("making a temporary folder")?;
        let ours = trainer::bench::check::write_check(
            folder.path(),
            objective,
            preset,
            (device, precision),
            flags.steps,
        )
        .map_err(anyhow::Error::msg)?;
        let theirs: trainer::bench::check::CheckTrace = trainer::bench::reference::run_reference(
            &flags.reference,
            "check",
            &folder.path().to_string_lossy(),
        )
        .map_err(anyhow::Error::msg)?;
        print_check_rows(preset, objective, &ours, &theirs);
        worst = worst.max(trainer::bench::check::trace_difference(&ours, &theirs));
    }
    println!("\nlargest relative difference {worst:.2e} (tolerance {tolerance:.0e})");
    anyhow::ensure!(
        worst <= tolerance,
        "the harness and the PyTorch reference disagree: largest relative difference {worst:.2e} > {tolerance:.0e}"
    );
    Ok(ExitCode::SUCCESS)
}

/// The largest relative difference `trainer bench-check` accepts: `--tolerance`, else
/// fp32 1e-5 on CPU, 2e-3 on CUDA; bf16 2e-2.
fn check_tolerance(precision: jobspec::Precision, cuda: bool, given: Option<f64>) -> f64 {
    given.unwrap_or(match (precision, cuda) {
        (jobspec::Precision::Bf16, _) => 2e-2,
        (_, true) => 2e-3,
        (_, false) => 1e-5,
    })
}

/// One table row per step of a check: the harness's and PyTorch's loss and gradient
/// norm (`-` where a trace has no such step).
fn print_check_rows(
    preset: &str,
    objective: &str,
    ours: &trainer::bench::check::CheckTrace,
    theirs: &trainer::bench::check::CheckTrace,
) {
    for step in 0..ours.losses.len() {
        let cell = |values: &[f64]| {
            values
                .get(step)
                .map_or_else(|| "-".into(), |v| format!("{v:.7}"))
        };
        println!(
            "| {preset} | {objective} | {} | {} | {} | {} | {} |",
            step + 1,
            cell(&ours.losses),
            cell(&theirs.losses),
            cell(&ours.grad_norms),
            cell(&theirs.grad_norms)
        );
    }
}

/// `trainer bench-eval`: scoring items/s for AR and DLM.
fn bench_eval_command(flags: BenchEvalFlags) -> anyhow::Result<ExitCode> {
    let threads = flags
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let results =
        trainer::bench::scoring::measure_scoring(&flags.preset, flags.items, flags.draws, threads)
            .map_err(anyhow::Error::msg)?;
    println!(
        "{}",
        trainer::bench::scoring::scoring_table(&results, threads)
    );
    Ok(ExitCode::SUCCESS)
}

/// `trainer libtorch`: which LibTorch this process runs on and why.
fn libtorch_command() -> anyhow::Result<ExitCode> {
    println!("{}", launcher::Facts::read().report());
    println!(
        "this process' core library: {}",
        trainer::device::core_library()
            .map_or_else(|| "not found".into(), |path| path.display().to_string())
    );
    if std::env::var_os(launcher::LAUNCHED_ENV).is_none() {
        println!(
            "started without the launcher: run `trainer`, not `trainer-worker`, so the chosen folder applies"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `trainer dist-check`: a process group of one on `device` must be exact.
fn dist_check_command(device: jobspec::DeviceSpec) -> anyhow::Result<ExitCode> {
    let device = trainer::device::select(device).map_err(anyhow::Error::msg)?;
    let line = trainer::parallel::self_check::self_check(device).map_err(anyhow::Error::msg)?;
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

/// `trainer bench-data`: the tokenizer's MB/s on a jsonl file, and a prepared job's
/// data cost, as JSON lines.
fn bench_data_command(flags: BenchDataFlags) -> anyhow::Result<ExitCode> {
    if let Some(file) = flags.tokenize {
        let rate = trainer::bench::data::bench_tokenizer(
            &file,
            &jobspec::TokenizerSpec::Gpt2,
            flags.megabytes,
        )?;
        println!("{}", serde_json::json!({ "tokenizer_mb_s": rate }));
    }
    if let Some(job) = flags.job {
        let cost = trainer::bench::data::bench_data(&job, flags.steps)?;
        println!("{}", serde_json::to_string(&cost)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// `trainer bench-one`: measure one case given as JSON and print the result as JSON.
fn bench_one_command(case: &str) -> anyhow::Result<ExitCode> {
    let case: trainer::bench::case::BenchCase = serde_json::from_str(case)?;
    let result = trainer::bench::throughput::measure(&case).map_err(anyhow::Error::msg)?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(ExitCode::SUCCESS)
}
