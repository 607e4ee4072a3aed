//! The `data:` section: which corpus, how it is tokenized, the unique and held-out
//! budgets, and how training windows are cut.

use super::is_false;
use crate::count::TokenCount;
use serde::{Deserialize, Serialize};

/// Which tokenizer turns the corpus into ids.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerSpec {
    /// GPT-2 BPE (50,257 ids, built in).
    Gpt2,
    /// Raw UTF-8 bytes (256 ids plus an end-of-document id).
    Bytes,
    /// A byte-level BPE with this many ids, trained on the corpus and cached.
    Bpe(usize),
    /// Any Hugging Face `tokenizer.json`.
    File(String),
}

impl TokenizerSpec {
    /// Vocabulary size when it is known without reading a file.
    pub fn known_vocab(&self) -> Option<usize> {
        match self {
            Self::Gpt2 => Some(50_257),
            Self::Bytes => Some(257),
            Self::Bpe(size) => Some(*size),
            Self::File(_) => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A built-in corpus name (`sotu`, `wiki`, `moby`, see docs/data.md) or a path to a
    /// file, a folder of files, or a pattern of file names in one folder
    /// (`shards/*.parquet`): .txt/.md, .jsonl/.json, .jsonl.gz, .jsonl.zst, .parquet,
    /// .arrow (docs/data.md).
    pub corpus: String,
    /// Field (JSON lines) or column (parquet, Arrow) holding the text.
    #[serde(default = "default_text_field")]
    pub text_field: String,
    pub tokenizer: TokenizerSpec,
    /// Tokens per training window (the model's context in training).
    pub seq_len: usize,
    /// Unique training tokens: a prefix of the training stream, repeated for `epochs`.
    pub unique_tokens: TokenCount,
    /// Held-out tokens (whole documents) that no budget touches.
    pub val_tokens: TokenCount,
    /// Seed choosing the held-out documents and the order of the training documents;
    /// shared by every job on a corpus.
    #[serde(default)]
    pub split_seed: u64,
    /// Order of the training documents that budgets are prefixes of: `shuffled` (a
    /// seeded order from `split_seed`, so every budget is a fair sample of the corpus)
    /// or `corpus` (file order, the old behaviour, kept to measure its effect).
    #[serde(default)]
    pub order: DocumentOrder,
    /// Draw the training order from the job's `seed` instead of `split_seed`, so that
    /// seeds differ in which documents a budget holds, not only in initialisation and
    /// window order. The held-out documents stay those of `split_seed`; budgets stay
    /// nested (prefixes of that seed's order). Needs `order: shuffled`. Left out of
    /// job.yaml when false, so jobs that do not set it keep their ids.
    #[serde(default, skip_serializing_if = "is_false")]
    pub resample: bool,
    /// How an epoch cuts its windows: `reshuffle` (each epoch re-orders the budget's
    /// documents and cuts windows from that concatenation, as Megatron does, so a
    /// repeated document lands at a new offset with new neighbours) or `fixed` (the
    /// same windows every epoch, only visited in a new order).
    #[serde(default)]
    pub windows: WindowMode,
    /// Skip files of no known format in the corpus folder (each named in a warning)
    /// instead of stopping with an error.
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_unknown: bool,
}

/// Order of the training documents (see [`DataConfig::order`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentOrder {
    #[default]
    Shuffled,
    Corpus,
}

/// How training windows are cut each epoch (see [`DataConfig::windows`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowMode {
    #[default]
    Reshuffle,
    Fixed,
}

fn default_text_field() -> String {
    "text".into()
}

impl DataConfig {
    /// Ranges and relations within `data:`; `max_seq_len` is the resolved model's.
    pub(super) fn validate(&self, max_seq_len: usize, check: &super::Check) -> crate::Result<()> {
        check.require(
            !self.resample || self.order == DocumentOrder::Shuffled,
            "data.resample",
            "needs `data.order: shuffled`: it draws each seed's own shuffled training order, and `corpus` order has none".into(),
        )?;
        check.require(
            self.seq_len >= 2,
            "data.seq_len",
            format!("{} is too short (at least 2)", self.seq_len),
        )?;
        check.require(
            self.seq_len <= max_seq_len,
            "data.seq_len",
            format!(
                "{} is longer than the model takes (model.max_seq_len = {}); shorten it or raise max_seq_len",
                self.seq_len, max_seq_len
            ),
        )?;
        check.require(
            self.unique_tokens.get() > self.seq_len as u64,
            "data.unique_tokens",
            format!(
                "{} tokens is less than one window of seq_len + 1 = {}",
                self.unique_tokens,
                self.seq_len + 1
            ),
        )?;
        check.require(
            self.val_tokens.get() > 0,
            "data.val_tokens",
            "must be positive".into(),
        )?;
        if let TokenizerSpec::Bpe(size) = self.tokenizer {
            check.require(
                (300..=1_000_000).contains(&size),
                "data.tokenizer.bpe",
                format!("vocab {size} must be in 300..=1000000"),
            )?;
        }
        Ok(())
    }
}
