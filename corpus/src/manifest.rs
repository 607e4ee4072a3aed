//! The corpus manifest: the content hash of a corpus, remembered under a key made of
//! its files' names, sizes and modification times, so that a job's start-up stats the
//! files instead of reading them. A changed, added or removed file changes the key;
//! the corpus is then hashed again (one read) and, if its content did not change,
//! finds its token store as before.
//!
//! `<cache_root>/manifests/<key>.json` = `{ "corpus_hash": ..., "source": ..., "files": n }`

use crate::atomic::write_atomic;
use crate::error::CorpusError;
use crate::read::{self, Listing};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Bump when the key or the content hash changes meaning.
const FORMAT: &str = "manifest-v1";

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    corpus_hash: String,
    source: PathBuf,
    files: usize,
}

/// The manifest key of a listing: its source, text field and every file's relative
/// path, size and modification time.
pub fn key(listing: &Listing, text_field: &str) -> String {
    let source = listing
        .source
        .canonicalize()
        .unwrap_or_else(|_| listing.source.clone());
    let mut hasher = blake3::Hasher::new();
    for part in [
        FORMAT.as_bytes(),
        source.to_string_lossy().as_bytes(),
        text_field.as_bytes(),
    ] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    for file in &listing.files {
        hasher.update(&(file.relative.len() as u64).to_le_bytes());
        hasher.update(file.relative.as_bytes());
        hasher.update(&file.bytes.to_le_bytes());
        hasher.update(&file.modified_ns.to_le_bytes());
    }
    hasher.finalize().to_hex()[..32].to_string()
}

/// The content hash of a listed corpus: from its manifest, or read and remembered.
pub fn corpus_hash(
    listing: &Listing,
    text_field: &str,
    cache_root: &Path,
) -> Result<String, CorpusError> {
    let path = cache_root
        .join("manifests")
        .join(format!("{}.json", key(listing, text_field)));
    let remembered = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Entry>(&bytes).ok());
    if let Some(entry) = remembered {
        return Ok(entry.corpus_hash);
    }
    let corpus_hash = read::content_hash(listing, text_field)?;
    let entry = Entry {
        corpus_hash: corpus_hash.clone(),
        source: listing.source.clone(),
        files: listing.files.len(),
    };
    let json = serde_json::to_vec_pretty(&entry).map_err(|error| CorpusError::Io {
        path: path.clone(),
        source: std::io::Error::other(error),
    })?;
    write_atomic(&path, &json)?;
    Ok(corpus_hash)
}
