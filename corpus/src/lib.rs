//! Corpora for the crossover harness: read a corpus (a built-in name, a file, or a
//! folder of text, JSON lines, compressed JSON lines, parquet or Arrow files), tokenize
//! it once into an on-disk token store, hold out whole documents for validation, and
//! serve training windows in a seeded epoch order, reading only the windows drawn.
//!
//! ```text
//! prepare(config) -> Dataset { val_documents, store, split, ... }
//!   1. list      corpus files, sorted by path; their content hash from a manifest
//!                keyed by names, sizes and times (read.rs, manifest.rs)
//!   2. store     <cache_root>/tokens/<key>/ shards of token ids + index   (store.rs)
//!      miss:     stream the files, tokenize on every core, shard by shard (resumable,
//!                one preparer at a time under a lock)
//!   3. split     seeded shuffle of documents -> held-out set >= val_tokens, the rest
//!                in a second seeded order (or the job seed's, data.resample),
//!                written once per (val_tokens, split_seed, order) as
//!                splits/*.bin                                            (split.rs)
//! dataset.budget(unique_tokens) -> Budget: the prefix of the training order, its
//!                documents read in place from the store (budgets nest)
//! Windows::reshuffled(budget.document_lengths(), seq_len, seed)
//!                .read_batch(&budget, step, B)                           (windows.rs)
//! validation_starts(val_documents, seq_len, tokens, mode)               (validation.rs)
//! ```
//!
//! Pure Rust, no LibTorch. Every random choice comes from an explicit seed through the
//! crate's own SplitMix64, so results never depend on a dependency's version.

mod atomic;
mod budget;
mod columnar;
mod error;
mod format;
mod manifest;
mod read;
mod rng;
mod split;
mod store;
mod tokenizer;
mod validation;
mod windows;

pub use budget::{Budget, Dataset};
pub use error::CorpusError;
pub use format::{FORMATS, Format, format_of};
pub use read::{BUILTIN_CORPORA, Corpus, Listing, SourceFile};
pub use split::TrainOrder;
pub use store::{Meta as StoreMeta, PrepareOptions, Progress, plan_shards};
pub use tokenizer::{END_OF_TEXT, Tokenizer};
pub use validation::validation_starts;
pub use windows::{TokenSource, Windows};

/// The cache folder (`$CROSSOVER_CACHE`, else `$XDG_CACHE_HOME/crossover`, else
/// `$HOME/.cache/crossover`); shared with the harness through jobspec.
pub use jobspec::cache_root;

use jobspec::DataConfig;
use std::path::{Path, PathBuf};

/// Read, tokenize (or find in the token store) and split the corpus `config` names.
/// Relative corpus and tokenizer paths resolve against `base_dir`. The training order
/// is that of job seed 0 when `config.resample` is true: a job passes its own seed
/// through [`prepare_with`] (`PrepareOptions::for_seed`).
pub fn prepare(
    config: &DataConfig,
    cache_root: &Path,
    base_dir: &Path,
) -> Result<Dataset, CorpusError> {
    prepare_with(config, cache_root, base_dir, &PrepareOptions::default())
}

/// [`prepare`] with a shard size and a progress callback for the tokenization.
pub fn prepare_with(
    config: &DataConfig,
    cache_root: &Path,
    base_dir: &Path,
    options: &PrepareOptions<'_>,
) -> Result<Dataset, CorpusError> {
    let prepared = prepare_store(config, cache_root, base_dir, options)?;
    if let Some(first) = prepared.skipped.first() {
        eprintln!(
            "corpus: skipped {} file(s) of no known format (data.skip_unknown), the first {}",
            prepared.skipped.len(),
            first.display()
        );
    }
    let order = TrainOrder::of(config, options.seed);
    let (val_tokens, seed) = (config.val_tokens.get(), config.split_seed);
    let path = split::split_path(&prepared.store.folder, val_tokens, seed, order);
    let split = match split::SplitFile::open(&path)? {
        Some(split) => split,
        None => store::with_lock(&prepared.store.folder, || {
            if split::SplitFile::open(&path)?.is_none() {
                split::write_split(&prepared.store.offsets()?, &path, val_tokens, seed, order)?;
            }
            split::SplitFile::open(&path)?.ok_or_else(|| CorpusError::Damaged {
                path: path.clone(),
                message: "the split just written does not read back".into(),
            })
        })?,
    };
    Dataset::new(prepared.store, split, prepared.cache_hit)
}

/// A complete token store and what preparing it did.
#[derive(Debug)]
pub struct Prepared {
    pub store: store::Store,
    /// The store was complete before this call.
    pub cache_hit: bool,
    /// Files of no known format, skipped (`data.skip_unknown`).
    pub skipped: Vec<PathBuf>,
}

/// The token store of the corpus and tokenizer `config` names, built if missing (by
/// one process at a time: the others wait for it) and resumed if a build was cut short.
pub fn prepare_store(
    config: &DataConfig,
    cache_root: &Path,
    base_dir: &Path,
    options: &PrepareOptions<'_>,
) -> Result<Prepared, CorpusError> {
    let (listing, corpus_hash) = identify(config, cache_root, base_dir)?;
    let tokenizer_id = tokenizer::tokenizer_id_for(config, &corpus_hash, base_dir)?;
    let folder = store::entry_dir(cache_root, &corpus_hash, &tokenizer_id);
    if let Some(store) = store::Store::open(&folder, &corpus_hash, &tokenizer_id)? {
        return Ok(Prepared {
            store,
            cache_hit: true,
            skipped: listing.skipped,
        });
    }
    store::with_lock(&folder, || {
        // Another process may have finished it while this one waited.
        if let Some(store) = store::Store::open(&folder, &corpus_hash, &tokenizer_id)? {
            return Ok(Prepared {
                store,
                cache_hit: true,
                skipped: listing.skipped.clone(),
            });
        }
        store::invalidate(&folder)?;
        let documents = || {
            read::read_all(&listing, &config.text_field, corpus_hash.clone())
                .map(|corpus| corpus.documents)
        };
        let tokenizer =
            Tokenizer::load_for(config, &corpus_hash, &documents, cache_root, base_dir)?;
        let fields = store::Meta {
            format: String::new(),
            corpus_hash: corpus_hash.clone(),
            tokenizer_id: tokenizer_id.clone(),
            vocab_size: tokenizer.vocab_size(),
            eos_id: tokenizer.eos_id(),
            dtype: String::new(),
            n_tokens: 0,
            n_documents: 0,
            text_bytes: 0,
            shards: Vec::new(),
            missing: read::Missing::default(),
            sources: Vec::new(),
        };
        store::build(
            &folder,
            fields,
            &listing.files,
            &config.text_field,
            &tokenizer,
            options,
        )?;
        let store = store::Store::open(&folder, &corpus_hash, &tokenizer_id)?.ok_or_else(|| {
            CorpusError::Damaged {
                path: folder.clone(),
                message: "the token store just written does not read back".into(),
            }
        })?;
        Ok(Prepared {
            store,
            cache_hit: false,
            skipped: listing.skipped.clone(),
        })
    })
}

/// The files of the corpus `config` names and its content hash (from the manifest
/// when the files' names, sizes and times are unchanged).
fn identify(
    config: &DataConfig,
    cache_root: &Path,
    base_dir: &Path,
) -> Result<(Listing, String), CorpusError> {
    let source = read::resolve(&config.corpus, cache_root, base_dir)?;
    let listing = read::list(&source, config.skip_unknown)?;
    let hash = manifest::corpus_hash(&listing, &config.text_field, cache_root)?;
    Ok((listing, hash))
}

/// The documents of the corpus `config` names, in memory (small corpora).
pub fn read_corpus(
    config: &DataConfig,
    cache_root: &Path,
    base_dir: &Path,
) -> Result<Corpus, CorpusError> {
    let (listing, hash) = identify(config, cache_root, base_dir)?;
    read::read_all(&listing, &config.text_field, hash)
}

/// The tokenizer `config` names; for a trained BPE, the one `prepare` cached (trained
/// now if `prepare` has not run). Reads no corpus text once the BPE is cached.
pub fn load_tokenizer(
    config: &DataConfig,
    cache_root: &Path,
    base_dir: &Path,
) -> Result<Tokenizer, CorpusError> {
    let (listing, hash) = identify(config, cache_root, base_dir)?;
    let documents = || {
        read::read_all(&listing, &config.text_field, hash.clone()).map(|corpus| corpus.documents)
    };
    Tokenizer::load_for(config, &hash, &documents, cache_root, base_dir)
}
