//! A job's model shape, dataset and tokenizer, resolved from its job.yaml.

use crate::error::Result;
use crate::runfolder;
use jobspec::JobConfig;
use std::path::Path;

/// The resolved model shape, the prepared data and the tokenizer of a job.
pub fn prepare_job(
    job_dir: &Path,
    config: &JobConfig,
    cache_root: Option<std::path::PathBuf>,
) -> Result<(jobspec::ModelShape, corpus::Dataset, corpus::Tokenizer)> {
    let shape = config
        .model
        .resolve()
        .map_err(|message| jobspec::Error::Invalid {
            path: job_dir.join(runfolder::JOB_FILE),
            field: "model".into(),
            message,
        })?;
    let cache_root = cache_root.unwrap_or_else(corpus::cache_root);
    let options = corpus::PrepareOptions::for_seed(config.seed);
    let dataset = corpus::prepare_with(&config.data, &cache_root, job_dir, &options)?;
    let tokenizer = corpus::load_tokenizer(&config.data, &cache_root, job_dir)?;
    Ok((shape, dataset, tokenizer))
}
