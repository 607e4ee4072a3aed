//! `trainer prepare`: tokenize a job's corpus into the token store ahead of training
//! (a sweep's first step, `harness prepare`), with a progress bar in MB/s and tokens/s
//! and a summary of what the store holds.

use crate::runfolder::JOB_FILE;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `trainer prepare` is asked to do.
#[derive(Clone, Debug)]
pub struct PrepareArgs {
    /// A job folder or its job.yaml.
    pub job: PathBuf,
    /// Text per shard in bytes.
    pub shard_bytes: u64,
    pub quiet: bool,
    /// Where the store goes (default: `corpus::cache_root()`).
    pub cache_root: Option<PathBuf>,
}

/// What a prepare found or made, for the summary and for tests.
#[derive(Clone, Debug)]
pub struct PrepareReport {
    pub store: PathBuf,
    pub cache_hit: bool,
    pub documents: u64,
    pub tokens: u64,
    pub text_bytes: u64,
    pub train_tokens: u64,
    pub val_tokens: u64,
    pub seconds: f64,
}

/// Prepare the corpus of one job: the token store and the job's split.
pub fn prepare(args: &PrepareArgs) -> Result<PrepareReport> {
    let (job_dir, job_file) = if args.job.is_dir() {
        (args.job.clone(), args.job.join(JOB_FILE))
    } else {
        let folder = args.job.parent().unwrap_or(Path::new(".")).to_path_buf();
        (folder, args.job.clone())
    };
    let config = jobspec::JobConfig::from_file(&job_file)
        .with_context(|| format!("reading {}", job_file.display()))?;
    let cache_root = args.cache_root.clone().unwrap_or_else(corpus::cache_root);
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(0);
        let style = ProgressStyle::with_template(
            "{bar:30} {bytes}/{total_bytes} [{elapsed_precise} < {eta_precise}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar
    });
    let clock = Instant::now();
    // Without a terminal (a log file), a line every 10 s at most.
    let last_line = std::sync::Mutex::new(None::<Instant>);
    let report_progress = |progress: &corpus::Progress| {
        let seconds = clock.elapsed().as_secs_f64().max(1e-9);
        let message = format!(
            "shard {}/{} {:.1} MB/s {:.0} tokens/s",
            progress.shards_done.min(progress.shards),
            progress.shards,
            progress.text_bytes as f64 / 1e6 / seconds,
            progress.tokens as f64 / seconds
        );
        match &bar {
            Some(bar) => {
                bar.set_length(progress.input_total);
                bar.set_position(progress.input_bytes);
                bar.set_message(message);
            }
            None if !args.quiet => {
                let mut last = last_line
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if last.is_none_or(|at| at.elapsed().as_secs_f64() >= 10.0) {
                    eprintln!("prepare: {message}");
                    *last = Some(Instant::now());
                }
            }
            None => {}
        }
    };
    let options = corpus::PrepareOptions {
        shard_bytes: args.shard_bytes,
        progress: Some(&report_progress),
        seed: config.seed,
    };
    let dataset = corpus::prepare_with(&config.data, &cache_root, &job_dir, &options)?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let meta = dataset.store_meta();
    let val_tokens = dataset
        .val_documents
        .iter()
        .map(|document| document.len() as u64)
        .sum();
    let report = PrepareReport {
        store: dataset.cache_dir.clone(),
        cache_hit: dataset.cache_hit,
        documents: meta.n_documents,
        tokens: meta.n_tokens,
        text_bytes: meta.text_bytes,
        train_tokens: dataset.train_tokens,
        val_tokens,
        seconds: clock.elapsed().as_secs_f64(),
    };
    if !args.quiet {
        let how = if report.cache_hit {
            "already prepared".to_owned()
        } else {
            format!(
                "prepared in {:.1} s ({:.1} MB/s, {:.0} tokens/s)",
                report.seconds,
                report.text_bytes as f64 / 1e6 / report.seconds.max(1e-9),
                report.tokens as f64 / report.seconds.max(1e-9)
            )
        };
        eprintln!(
            "{}: {how}\n  {} documents, {} tokens ({} ids, {}) from {:.1} MB of text in {} shard(s)\n  split: {} tokens to train on, {} held out (val_tokens {}, split_seed {}{})",
            report.store.display(),
            report.documents,
            report.tokens,
            meta.vocab_size,
            meta.dtype,
            report.text_bytes as f64 / 1e6,
            meta.shards.len(),
            report.train_tokens,
            report.val_tokens,
            config.data.val_tokens.get(),
            config.data.split_seed,
            if config.data.resample {
                format!(
                    ", data.resample: the training order of seed {}",
                    config.seed
                )
            } else {
                String::new()
            },
        );
        if meta.missing.records > 0 {
            eprintln!(
                "  warning: {} records had no string field `{}` and were skipped (the first at {})",
                meta.missing.records,
                config.data.text_field,
                meta.missing.first.as_deref().unwrap_or("?")
            );
        }
    }
    Ok(report)
}

/// What `trainer bench-data` measures of a prepared job (issue 26): the cost a job
/// pays for its data, apart from the model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DataCost {
    /// Tokens and documents in the whole store.
    pub store_tokens: u64,
    pub store_documents: u64,
    /// Opening the store and the split, reading the held-out documents.
    pub open_s: f64,
    /// Locating the budget's documents.
    pub budget_s: f64,
    pub budget_documents: usize,
    /// Building the epoch's window order (the first batch pays it).
    pub first_batch_s: f64,
    /// Mean time to read one step's batch afterwards.
    pub batch_ms: f64,
    /// Peak resident memory of this process (VmHWM), in MB.
    pub peak_rss_mb: f64,
}

/// Measure a job's data path: open, budget, and `steps` batches.
pub fn bench_data(job_dir: &Path, steps: u64) -> Result<DataCost> {
    let config = jobspec::JobConfig::from_file(&job_dir.join(JOB_FILE))?;
    let cache_root = corpus::cache_root();
    let clock = Instant::now();
    let options = corpus::PrepareOptions::for_seed(config.seed);
    let dataset = corpus::prepare_with(&config.data, &cache_root, job_dir, &options)?;
    let open_s = clock.elapsed().as_secs_f64();
    let clock = Instant::now();
    let budget = dataset.budget(config.data.unique_tokens.get())?;
    let budget_s = clock.elapsed().as_secs_f64();
    let windows = budget.windows(config.data.windows, config.data.seq_len, config.seed)?;
    let batch_size = config.train.batch_size;
    let clock = Instant::now();
    windows.read_batch(&budget, 0, batch_size)?;
    let first_batch_s = clock.elapsed().as_secs_f64();
    let clock = Instant::now();
    for step in 1..=steps.max(1) {
        windows.read_batch(&budget, step, batch_size)?;
    }
    let batch_ms = clock.elapsed().as_secs_f64() * 1e3 / steps.max(1) as f64;
    Ok(DataCost {
        store_tokens: dataset.store_meta().n_tokens,
        store_documents: dataset.store_meta().n_documents,
        open_s,
        budget_s,
        budget_documents: budget.document_lengths().len(),
        first_batch_s,
        batch_ms,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// The tokenizer's own throughput on the first `megabytes` of text of a jsonl file, on
/// every core (rayon, as `prepare` tokenizes): the limit `prepare` is compared with.
pub fn bench_tokenizer(
    file: &Path,
    tokenizer: &jobspec::TokenizerSpec,
    megabytes: f64,
) -> Result<f64> {
    use rayon::prelude::*;
    use std::io::BufRead;
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let mut documents = Vec::new();
    let mut bytes = 0usize;
    for line in reader.lines() {
        let line = line.with_context(|| format!("reading {}", file.display()))?;
        let record: serde_json::Value = serde_json::from_str(&line)?;
        if let Some(text) = record.get("text").and_then(|text| text.as_str()) {
            bytes += text.len();
            documents.push(text.to_owned());
        }
        if bytes as f64 >= megabytes * 1e6 {
            break;
        }
    }
    let corpus = corpus::Corpus {
        source: file.to_path_buf(),
        documents,
        hash: String::new(),
    };
    let tokenizer =
        corpus::Tokenizer::load(tokenizer, &corpus, &corpus::cache_root(), Path::new("."))?;
    let clock = Instant::now();
    let tokens: usize = corpus
        .documents
        .par_iter()
        .map(|text| tokenizer.encode(text).len())
        .sum();
    let seconds = clock.elapsed().as_secs_f64();
    anyhow::ensure!(tokens > 0, "{} holds no text", file.display());
    Ok(bytes as f64 / 1e6 / seconds)
}

/// Peak resident memory of this process in MB (Linux `VmHWM`; 0 elsewhere).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
