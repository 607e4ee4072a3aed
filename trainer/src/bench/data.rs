//! `trainer bench-data`: what a prepared job's data costs (open, budget, batches) and
//! the tokenizer's own throughput.

use crate::runfolder::JOB_FILE;
use anyhow::Context;
use anyhow::Result;
use std::path::Path;
use std::time::Instant;

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
