//! The on-disk token cache: one folder per (corpus, tokenizer) holding `tokens.bin`
//! (every document followed by the end-of-document id, in corpus order) and
//! `meta.json` (written last, so its presence marks a complete entry).

use crate::error::{CorpusError, io_error};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bump when the layout of `tokens.bin` or `meta.json` changes.
const FORMAT: &str = "tokens-v1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub format: String,
    pub corpus_hash: String,
    pub tokenizer_id: String,
    pub vocab_size: usize,
    pub eos_id: u32,
    /// `u16` when every id fits (vocab_size <= 65536), else `u32`; little-endian.
    pub dtype: String,
    pub n_tokens: u64,
    /// Document d is `tokens[offsets[d] .. offsets[d + 1]]`, its eos included.
    pub offsets: Vec<u64>,
}

/// The cache folder of a (corpus, tokenizer) pair.
pub fn entry_dir(cache_root: &Path, corpus_hash: &str, tokenizer_id: &str) -> PathBuf {
    let mut hasher = blake3::Hasher::new();
    for part in [FORMAT, corpus_hash, tokenizer_id] {
        hasher.update(part.as_bytes());
        hasher.update(b"\0");
    }
    cache_root
        .join("tokens")
        .join(&hasher.finalize().to_hex()[..24])
}

/// Write `bytes` to `path` through a temp file in the same folder and a rename, so a
/// reader sees either nothing or the whole file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CorpusError> {
    let folder = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(folder).map_err(io_error(folder))?;
    let mut file = tempfile::NamedTempFile::new_in(folder).map_err(io_error(folder))?;
    file.write_all(bytes).map_err(io_error(file.path()))?;
    file.as_file().sync_all().map_err(io_error(file.path()))?;
    file.persist(path).map_err(|error| CorpusError::Io {
        path: path.to_path_buf(),
        source: error.error,
    })?;
    Ok(())
}

/// Store documents (each already ending in eos) under `folder`.
pub fn store(
    folder: &Path,
    meta_fields: Meta,
    documents: &[Vec<u32>],
) -> Result<Meta, CorpusError> {
    let wide = meta_fields.vocab_size > 1 << 16;
    let mut bytes = Vec::new();
    let mut offsets = Vec::with_capacity(documents.len() + 1);
    offsets.push(0);
    for document in documents {
        for &id in document {
            if wide {
                bytes.extend_from_slice(&id.to_le_bytes());
            } else {
                // vocab_size <= 65536, so every id fits in 16 bits.
                bytes.extend_from_slice(&(id as u16).to_le_bytes());
            }
        }
        offsets.push(offsets.last().copied().unwrap_or(0) + document.len() as u64);
    }
    let meta = Meta {
        format: FORMAT.into(),
        dtype: if wide { "u32" } else { "u16" }.into(),
        n_tokens: offsets.last().copied().unwrap_or(0),
        offsets,
        ..meta_fields
    };
    write_atomic(&folder.join("tokens.bin"), &bytes)?;
    let json = serde_json::to_vec_pretty(&meta).map_err(|error| CorpusError::Io {
        path: folder.join("meta.json"),
        source: std::io::Error::other(error),
    })?;
    write_atomic(&folder.join("meta.json"), &json)?;
    Ok(meta)
}

/// The cached documents under `folder` when they are complete and match the expected
/// corpus and tokenizer; `None` (a miss, to be rebuilt) otherwise.
pub fn load(folder: &Path, corpus_hash: &str, tokenizer_id: &str) -> Option<(Meta, Vec<Vec<u32>>)> {
    let meta: Meta = serde_json::from_slice(&fs::read(folder.join("meta.json")).ok()?).ok()?;
    let expected = meta.format == FORMAT
        && meta.corpus_hash == corpus_hash
        && meta.tokenizer_id == tokenizer_id;
    if !expected {
        return None;
    }
    let bytes = fs::read(folder.join("tokens.bin")).ok()?;
    let tokens: Vec<u32> = match meta.dtype.as_str() {
        "u16" => bytes
            .chunks_exact(2)
            .map(|pair| u32::from(u16::from_le_bytes([pair[0], pair[1]])))
            .collect(),
        "u32" => bytes
            .chunks_exact(4)
            .map(|word| u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
            .collect(),
        _ => return None,
    };
    let consistent = tokens.len() as u64 == meta.n_tokens
        && meta.offsets.first() == Some(&0)
        && meta.offsets.last() == Some(&meta.n_tokens)
        && meta.offsets.windows(2).all(|pair| pair[0] < pair[1]);
    if !consistent {
        return None;
    }
    let documents = meta
        .offsets
        .windows(2)
        .map(|pair| tokens[pair[0] as usize..pair[1] as usize].to_vec())
        .collect();
    Some((meta, documents))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(vocab_size: usize) -> Meta {
        Meta {
            format: String::new(),
            corpus_hash: "corpus".into(),
            tokenizer_id: "tok".into(),
            vocab_size,
            eos_id: 9,
            dtype: String::new(),
            n_tokens: 0,
            offsets: Vec::new(),
        }
    }

    #[test]
    fn store_then_load_round_trips_both_widths() {
        for (vocab_size, dtype, big_id) in [
            (257, "u16", 256),
            (65_536, "u16", 65_535),
            (100_278, "u32", 100_000),
        ] {
            let folder = tempfile::tempdir().expect("tempdir");
            let documents = vec![vec![1, 2, big_id, 9], vec![9], vec![5, 9]];
            let stored = store(folder.path(), meta(vocab_size), &documents).expect("store");
            assert_eq!((stored.dtype.as_str(), stored.n_tokens), (dtype, 7));
            assert_eq!(stored.offsets, [0, 4, 5, 7]);
            let (loaded, read_back) = load(folder.path(), "corpus", "tok").expect("hit");
            assert_eq!((loaded, read_back), (stored, documents));
            assert!(load(folder.path(), "other corpus", "tok").is_none());
            assert!(load(folder.path(), "corpus", "other tokenizer").is_none());
        }
    }

    #[test]
    fn truncated_tokens_are_a_miss() {
        let folder = tempfile::tempdir().expect("tempdir");
        store(folder.path(), meta(257), &[vec![1, 2, 9]]).expect("store");
        fs::write(folder.path().join("tokens.bin"), [1, 0]).expect("truncate");
        assert!(load(folder.path(), "corpus", "tok").is_none());
    }
}
