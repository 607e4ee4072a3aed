//! `trainer prepare`: tokenize a job's corpus into the token store ahead of training
//! (a sweep's first step, `harness prepare`), with a progress bar in MB/s and tokens/s
//! and a summary of what the store holds.

use crate::runfolder::JOB_FILE;
use anyhow::Context;
use anyhow::Result;
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
    let (job_dir, job_file) = job_paths(&args.job);
    let config = jobspec::JobConfig::from_file(&job_file)
        .with_context(|| format!("reading {}", job_file.display()))?;
    let cache_root = args.cache_root.clone().unwrap_or_else(corpus::cache_root);
    let progress = PrepareProgress::new(args.quiet);
    let report_progress = |update: &corpus::Progress| progress.show(update);
    let options = corpus::PrepareOptions {
        shard_bytes: args.shard_bytes,
        progress: Some(&report_progress),
        seed: config.seed,
    };
    let dataset = corpus::prepare_with(&config.data, &cache_root, &job_dir, &options)?;
    progress.finish();
    let meta = dataset.store_meta();
    let report = PrepareReport {
        store: dataset.cache_dir.clone(),
        cache_hit: dataset.cache_hit,
        documents: meta.n_documents,
        tokens: meta.n_tokens,
        text_bytes: meta.text_bytes,
        train_tokens: dataset.train_tokens,
        val_tokens: dataset.val_documents.iter().map(|d| d.len() as u64).sum(),
        seconds: progress.clock.elapsed().as_secs_f64(),
    };
    if !args.quiet {
        print_summary(&report, meta, &config);
    }
    Ok(report)
}

/// The job folder and its job.yaml, from either of them.
fn job_paths(job: &Path) -> (PathBuf, PathBuf) {
    if job.is_dir() {
        (job.to_path_buf(), job.join(JOB_FILE))
    } else {
        let folder = job.parent().unwrap_or(Path::new(".")).to_path_buf();
        (folder, job.to_path_buf())
    }
}

/// Progress while the store is written: a bar in MB/s and tokens/s on a terminal, a
/// line every 10 s at most without one (a log file), nothing when quiet.
struct PrepareProgress {
    bar: Option<ProgressBar>,
    quiet: bool,
    clock: Instant,
    last_line: std::sync::Mutex<Option<Instant>>,
}

impl PrepareProgress {
    fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} [{elapsed_precise} < {eta_precise}] {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Self {
            bar,
            quiet,
            clock: Instant::now(),
            last_line: std::sync::Mutex::new(None),
        }
    }

    fn show(&self, progress: &corpus::Progress) {
        let seconds = self.clock.elapsed().as_secs_f64().max(1e-9);
        let message = format!(
            "shard {}/{} {:.1} MB/s {:.0} tokens/s",
            progress.shards_done.min(progress.shards),
            progress.shards,
            progress.text_bytes as f64 / 1e6 / seconds,
            progress.tokens as f64 / seconds
        );
        match &self.bar {
            Some(bar) => {
                bar.set_length(progress.input_total);
                bar.set_position(progress.input_bytes);
                bar.set_message(message);
            }
            None if !self.quiet => {
                let mut last = self
                    .last_line
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if last.is_none_or(|at| at.elapsed().as_secs_f64() >= 10.0) {
                    eprintln!("prepare: {message}");
                    *last = Some(Instant::now());
                }
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// What the store holds and the job's split, printed after a prepare.
fn print_summary(report: &PrepareReport, meta: &corpus::StoreMeta, config: &jobspec::JobConfig) {
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
