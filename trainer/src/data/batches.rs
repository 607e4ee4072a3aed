//! A job's training data and the batches of token ids each step reads from it, on the
//! training device.

use crate::data::job::prepare_job;
use crate::error::Result;
use crate::objectives::vocab::Vocab;
use jobspec::{JobConfig, ModelShape, padded_vocab};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// A job's data: tokenized once per (corpus, tokenizer) into the token store, the
/// unique-token budget a prefix of it, and the budget's windows for the job's seed. The
/// budget's documents are located in the store; their tokens stay on disk (in the page
/// cache) and each step reads its own windows.
pub struct TrainingData {
    /// The model shape resolved from job.yaml.
    pub shape: ModelShape,
    pub dataset: corpus::Dataset,
    pub tokenizer: corpus::Tokenizer,
    pub tokens: corpus::Budget,
    pub windows: corpus::Windows,
    pub seq_len: usize,
    pub batch_size: usize,
    pub windows_per_epoch: u64,
    /// Optimizer steps of the whole job.
    pub total_steps: u64,
}

impl TrainingData {
    /// The job's data, tokenizing its corpus first if the store lacks it.
    pub fn prepare(
        job_dir: &Path,
        config: &JobConfig,
        cache_root: Option<PathBuf>,
    ) -> Result<Self> {
        let (shape, dataset, tokenizer) = prepare_job(job_dir, config, cache_root)?;
        let tokens = dataset.budget(config.data.unique_tokens.get())?;
        let seq_len = config.data.seq_len;
        let windows = tokens.windows(config.data.windows, seq_len, config.seed)?;
        let windows_per_epoch = windows.windows_per_epoch();
        Ok(Self {
            shape,
            dataset,
            tokenizer,
            tokens,
            windows,
            seq_len,
            batch_size: config.train.batch_size,
            windows_per_epoch,
            total_steps: config.total_steps(windows_per_epoch),
        })
    }

    /// Step `step`'s (batch_size, seq_len + 1) token ids on `device`; only its windows
    /// are read from the store.
    pub fn batch(&self, step: u64, device: Device) -> Result<Tensor> {
        let ids = self
            .windows
            .read_batch(&self.tokens, step, self.batch_size)?;
        Ok(to_device(
            &ids,
            [self.batch_size as i64, self.seq_len as i64 + 1],
            device,
        ))
    }

    /// The ids objectives need: the tokenizer's, then the mask id.
    pub fn vocab(&self) -> Vocab {
        Vocab {
            size: self.dataset.vocab_size as i64,
        }
    }

    /// Rows of the model's embedding and output tables: the tokenizer's ids and the mask
    /// id, padded (`jobspec::padded_vocab`).
    pub fn rows(&self) -> usize {
        padded_vocab(self.dataset.vocab_size)
    }

    /// Training FLOPs per token of the job's model on these windows.
    pub fn flops_per_token(&self) -> f64 {
        self.shape.train_flops_per_token(self.rows(), self.seq_len)
    }
}

/// A (rows, cols) int64 batch of token ids on `device`: staged in pinned host memory
/// and copied without blocking when the device is a GPU.
pub fn to_device(ids: &[u32], shape: [i64; 2], device: Device) -> Tensor {
    let ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
    let host = Tensor::from_slice(&ids).view(shape);
    if device.is_cuda() {
        // Pinned through the shim: tch's pin_memory(device) warns at every step. A
        // failure to pin only costs the overlap: copy from pageable memory.
        crate::fused::pin_memory(&host).unwrap_or(host).to_device_(
            device,
            tch::Kind::Int64,
            true,
            false,
        )
    } else {
        host
    }
}
