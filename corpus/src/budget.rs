//! A prepared corpus as a job sees it: the held-out documents in memory (sized by
//! `val_tokens`) and training budgets read in place from the token store, so that a
//! job's memory is sized by its budget, never by the corpus.

use crate::error::CorpusError;
use crate::split::SplitFile;
use crate::store::Store;
use crate::windows::{TokenSource, prefix_sums};
use std::path::PathBuf;
use std::sync::Arc;

/// A tokenized corpus split into a training order and held-out documents.
#[derive(Debug)]
pub struct Dataset {
    /// Number of tokenizer ids, the end-of-document id included.
    pub vocab_size: usize,
    /// End-of-document id, ending every document.
    pub eos_id: u32,
    /// Held-out documents (each ending in eos), in the order the split drew them.
    pub val_documents: Vec<Vec<u32>>,
    /// Whether the token store was complete before this call (nothing tokenized).
    pub cache_hit: bool,
    /// The token store's folder.
    pub cache_dir: PathBuf,
    /// Stable tokenizer id: `gpt2`, `bytes`, `bpe<size>-<hash>`, `file-<hash>`.
    pub tokenizer_id: String,
    /// Tokens of the training documents (the largest budget).
    pub train_tokens: u64,
    store: Arc<Store>,
    split: SplitFile,
}

impl Dataset {
    pub(crate) fn new(
        store: Store,
        split: SplitFile,
        cache_hit: bool,
    ) -> Result<Self, CorpusError> {
        let mut val_documents = Vec::with_capacity(split.n_val as usize);
        for (start, length) in split.val_documents()? {
            let mut document = Vec::with_capacity(length as usize);
            store.read(start, length as usize, &mut document)?;
            val_documents.push(document);
        }
        Ok(Self {
            vocab_size: store.meta.vocab_size,
            eos_id: store.meta.eos_id,
            val_documents,
            cache_hit,
            cache_dir: store.folder.clone(),
            tokenizer_id: store.meta.tokenizer_id.clone(),
            train_tokens: split.train_tokens,
            store: Arc::new(store),
            split,
        })
    }

    /// The first `unique_tokens` tokens of the training order, so that smaller budgets
    /// are prefixes of larger ones; reads the split's prefix, not the tokens.
    pub fn budget(&self, unique_tokens: u64) -> Result<Budget, CorpusError> {
        if unique_tokens > self.train_tokens {
            return Err(CorpusError::BudgetTooLarge {
                asked: unique_tokens,
                available: self.train_tokens,
                held_out: self.split.val_tokens,
            });
        }
        let records = self.split.train_prefix(unique_tokens)?;
        let mut starts = Vec::with_capacity(records.len());
        let mut lengths = Vec::with_capacity(records.len());
        let mut left = unique_tokens;
        for (start, length) in records {
            let take = length.min(left);
            if take == 0 {
                break;
            }
            starts.push(start);
            lengths.push(take as usize);
            left -= take;
        }
        Ok(Budget {
            store: Arc::clone(&self.store),
            budget_starts: prefix_sums(&lengths),
            starts,
            lengths,
        })
    }

    /// The whole training stream in budget order, in memory (small corpora and tests).
    pub fn train_stream(&self) -> Result<Vec<u32>, CorpusError> {
        self.budget(self.train_tokens)?.to_vec()
    }

    /// The held-out documents concatenated (each still ends in eos).
    pub fn val_stream(&self) -> Vec<u32> {
        self.val_documents.concat()
    }

    /// The token store's description.
    pub fn store_meta(&self) -> &crate::store::Meta {
        &self.store.meta
    }
}

/// A unique-token budget: its documents' places in the token store, the last one cut
/// where the budget ends. 24 bytes a document; the tokens stay on disk.
#[derive(Clone, Debug)]
pub struct Budget {
    store: Arc<Store>,
    /// Each document's offset in the store.
    starts: Vec<u64>,
    /// Each document's length within the budget.
    lengths: Vec<usize>,
    /// Offsets of the documents in the budget (prefix sums of `lengths`).
    budget_starts: Vec<usize>,
}

impl Budget {
    /// Tokens in the budget.
    pub fn len(&self) -> usize {
        self.budget_starts.last().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The documents' lengths in budget order, the last one cut where the budget ends.
    pub fn document_lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// The whole budget in memory (tests and small budgets).
    pub fn to_vec(&self) -> Result<Vec<u32>, CorpusError> {
        let mut tokens = Vec::with_capacity(self.len());
        self.read_into(0, self.len(), &mut tokens)?;
        Ok(tokens)
    }
}

impl Budget {
    /// This budget's training windows as `data.windows` cuts them.
    pub fn windows(
        &self,
        mode: jobspec::WindowMode,
        seq_len: usize,
        seed: u64,
    ) -> Result<crate::Windows, CorpusError> {
        match mode {
            jobspec::WindowMode::Reshuffle => {
                crate::Windows::reshuffled(self.document_lengths(), seq_len, seed)
            }
            jobspec::WindowMode::Fixed => crate::Windows::try_new(self.len(), seq_len, seed),
        }
    }
}

impl TokenSource for Budget {
    fn token_count(&self) -> usize {
        self.len()
    }

    fn read_into(&self, offset: usize, len: usize, out: &mut Vec<u32>) -> Result<(), CorpusError> {
        let end = offset + len;
        if end > self.len() {
            return Err(CorpusError::TooFewTokens {
                n_tokens: self.len(),
                window: end,
            });
        }
        let mut at = offset;
        // The budget document holding `at`; pieces never cross a document's end.
        let mut document = self.budget_starts.partition_point(|&start| start <= at) - 1;
        while at < end {
            let within = at - self.budget_starts[document];
            let take = (self.lengths[document] - within).min(end - at);
            self.store
                .read(self.starts[document] + within as u64, take, out)?;
            at += take;
            document += 1;
        }
        Ok(())
    }
}
