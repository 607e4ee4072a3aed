//! Corpora for the crossover harness: read a corpus (a built-in name, a text or jsonl
//! file, or a folder), tokenize it once into an on-disk cache, hold out whole
//! documents for validation, and serve training windows in a seeded epoch order.
//!
//! ```text
//! prepare(config) -> Dataset { train, val_documents, ... }
//!   1. read      corpus files, sorted by path -> documents + content hash   (read.rs)
//!   2. cache     <cache_root>/tokens/<key>/{tokens.bin, meta.json}          (cache.rs)
//!      miss:     load/train the tokenizer, tokenize documents in parallel  (tokenizer.rs)
//!   3. split     seeded shuffle of documents -> held-out set >= val_tokens, the rest
//!                in a second seeded order (data.order: shuffled)           (split.rs)
//! dataset.budget(unique_tokens) -> prefix of train (budgets nest)
//! dataset.budget_documents(unique_tokens) -> its document lengths
//! Windows::reshuffled(lengths, seq_len, seed).batch(budget, step, B)        (windows.rs)
//! validation_starts(val_documents, seq_len, tokens, mode)                   (validation.rs)
//! ```
//!
//! Pure Rust, no LibTorch. Every random choice comes from an explicit seed through the
//! crate's own SplitMix64, so results never depend on a dependency's version.

mod cache;
mod error;
mod read;
mod rng;
mod split;
mod tokenizer;
mod validation;
mod windows;

pub use error::CorpusError;
pub use read::{BUILTIN_CORPORA, Corpus};
pub use tokenizer::{END_OF_TEXT, Tokenizer};
pub use validation::validation_starts;
pub use windows::Windows;

use jobspec::DataConfig;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// The cache folder (`$CROSSOVER_CACHE`, else `$XDG_CACHE_HOME/crossover`, else
/// `$HOME/.cache/crossover`); shared with the harness through jobspec.
pub use jobspec::cache_root;

/// A tokenized corpus split into a training stream and held-out documents.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Number of tokenizer ids, the end-of-document id included.
    pub vocab_size: usize,
    /// End-of-document id, ending every document.
    pub eos_id: u32,
    /// Training stream: the non-held-out documents in budget order (`data.order`), each
    /// followed by eos.
    pub train: Vec<u32>,
    /// Length of each document of `train`, in order (they add up to `train.len()`).
    pub train_lengths: Vec<usize>,
    /// Held-out documents (each ending in eos), in the order the split drew them.
    pub val_documents: Vec<Vec<u32>>,
    /// The held-out documents as text, in the same order.
    pub val_texts: Vec<String>,
    /// Whether the token stream came from the on-disk cache.
    pub cache_hit: bool,
    /// Folder holding tokens.bin + meta.json for this (corpus, tokenizer).
    pub cache_dir: PathBuf,
    /// Stable tokenizer id: `gpt2`, `bytes`, `bpe<size>-<hash>`, `file-<hash>`.
    pub tokenizer_id: String,
}

impl Dataset {
    /// The first `unique_tokens` tokens of the training stream, so that smaller budgets
    /// are prefixes of larger ones.
    pub fn budget(&self, unique_tokens: u64) -> Result<&[u32], CorpusError> {
        let available = self.train.len() as u64;
        if unique_tokens > available {
            let held_out = self
                .val_documents
                .iter()
                .map(|document| document.len() as u64)
                .sum();
            return Err(CorpusError::BudgetTooLarge {
                asked: unique_tokens,
                available,
                held_out,
            });
        }
        Ok(&self.train[..unique_tokens as usize])
    }

    /// Lengths of the documents that make up `budget(unique_tokens)`, the last one cut
    /// where the budget ends (call `budget` first for the error on a too-large budget).
    pub fn budget_documents(&self, unique_tokens: u64) -> Vec<usize> {
        let mut left = unique_tokens.min(self.train.len() as u64) as usize;
        let mut lengths = Vec::new();
        for &length in &self.train_lengths {
            if left == 0 {
                break;
            }
            lengths.push(length.min(left));
            left -= length.min(left);
        }
        lengths
    }

    /// The held-out documents concatenated (each still ends in eos).
    pub fn val_stream(&self) -> Vec<u32> {
        self.val_documents.concat()
    }
}

/// Read, tokenize (or load from the cache) and split the corpus `config` names.
/// Relative corpus and tokenizer paths resolve against `base_dir`.
pub fn prepare(
    config: &DataConfig,
    cache_root: &Path,
    base_dir: &Path,
) -> Result<Dataset, CorpusError> {
    // 1. Read the documents and hash their files.
    let corpus = read_corpus(config, cache_root, base_dir)?;
    let tokenizer_id = tokenizer::tokenizer_id_for(config, &corpus.hash, base_dir)?;

    // 2. Tokens from the cache, or tokenize every document once (in parallel).
    let cache_dir = cache::entry_dir(cache_root, &corpus.hash, &tokenizer_id);
    let (meta, documents, cache_hit) = match cache::load(&cache_dir, &corpus.hash, &tokenizer_id) {
        Some((meta, documents)) => (meta, documents, true),
        None => {
            let tokenizer = Tokenizer::load_for(config, &corpus, cache_root, base_dir)?;
            let documents = tokenize(&tokenizer, &corpus.documents);
            let fields = cache::Meta {
                format: String::new(),
                corpus_hash: corpus.hash.clone(),
                tokenizer_id: tokenizer_id.clone(),
                vocab_size: tokenizer.vocab_size(),
                eos_id: tokenizer.eos_id(),
                dtype: String::new(),
                n_tokens: 0,
                offsets: Vec::new(),
            };
            let meta = cache::store(&cache_dir, fields, &documents)?;
            (meta, documents, false)
        }
    };

    // 3. Hold out whole documents; train on the rest in a seeded (or corpus) order.
    let lengths: Vec<usize> = documents.iter().map(Vec::len).collect();
    let shuffle_train = config.order == jobspec::DocumentOrder::Shuffled;
    let split = split::split(
        &lengths,
        config.val_tokens.get(),
        config.split_seed,
        shuffle_train,
    )?;
    let train_lengths = split
        .train
        .iter()
        .map(|&document| lengths[document])
        .collect();
    let train = split
        .train
        .iter()
        .flat_map(|&document| documents[document].iter().copied())
        .collect();
    let val_documents = split
        .val
        .iter()
        .map(|&document| documents[document].clone())
        .collect();
    let val_texts = split
        .val
        .iter()
        .map(|&document| corpus.documents[document].clone())
        .collect();
    Ok(Dataset {
        vocab_size: meta.vocab_size,
        eos_id: meta.eos_id,
        train,
        train_lengths,
        val_documents,
        val_texts,
        cache_hit,
        cache_dir,
        tokenizer_id,
    })
}

/// Every document's ids followed by the end-of-document id.
fn tokenize(tokenizer: &Tokenizer, documents: &[String]) -> Vec<Vec<u32>> {
    documents
        .par_iter()
        .map(|text| {
            let mut ids = tokenizer.encode(text);
            ids.push(tokenizer.eos_id());
            ids
        })
        .collect()
}

/// The documents of the corpus `config` names (see [`prepare`]).
pub fn read_corpus(
    config: &DataConfig,
    cache_root: &Path,
    base_dir: &Path,
) -> Result<Corpus, CorpusError> {
    let source = read::resolve(&config.corpus, cache_root, base_dir)?;
    read::read(&source, &config.text_field)
}

/// The tokenizer `config` names; for a trained BPE, the one `prepare` cached (trained
/// now if `prepare` has not run).
pub fn load_tokenizer(
    config: &DataConfig,
    cache_root: &Path,
    base_dir: &Path,
) -> Result<Tokenizer, CorpusError> {
    let corpus = read_corpus(config, cache_root, base_dir)?;
    Tokenizer::load_for(config, &corpus, cache_root, base_dir)
}
