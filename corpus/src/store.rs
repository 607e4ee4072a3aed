//! The token store: a corpus tokenized once into a few large binary shards that every
//! job and rank reads in place (positional reads through the page cache), so that a
//! job's memory and start-up do not grow with the corpus. The layout is documented for
//! other tools in docs/data.md:
//!
//! ```text
//! <cache_root>/tokens/<key>/            key = blake3(format, corpus hash, tokenizer id)
//!   plan.json          which corpus files make up each shard (written first)
//!   shard-00000.bin    token ids, little-endian u16 (vocab <= 65,536) or u32; every
//!                      document followed by the end-of-document id
//!   shard-00000.idx    u32 little-endian: each document's length in tokens (eos included)
//!   shard-00000.json   the shard's counts; written last, it marks the shard complete
//!   index.bin          u64 little-endian: n_documents + 1 offsets of the documents in
//!                      the shards' concatenation (document d = [off[d], off[d + 1]))
//!   splits/*.bin       seeded held-out / training orders (split.rs)
//!   meta.json          format, corpus hash, tokenizer, dtype, counts, shards, sources;
//!                      written last, so its presence marks a complete store
//! <cache_root>/tokens/<key>.lock         one preparer at a time; the others wait
//! ```
//!
//! A prepare that is killed resumes from its complete shards; it writes every file
//! through a temp file, fsync and rename, so a store is byte-identical however often
//! its preparation was interrupted.
//!
//! Length: over 600 lines of code. Layout, writer and reader are one on-disk format
//! that changes as a whole; split, they would share the layout's private constants.

use crate::atomic::{persist, write_atomic};
use crate::error::{CorpusError, io_error};
use crate::read::{self, Missing, SourceFile};
use crate::tokenizer::Tokenizer;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bump when the layout of any file of the store changes.
pub const FORMAT: &str = "tokens-v2";
pub const META_FILE: &str = "meta.json";
pub const INDEX_FILE: &str = "index.bin";
const PLAN_FILE: &str = "plan.json";
/// Text per shard before a new one starts (at a file boundary).
pub const DEFAULT_SHARD_BYTES: u64 = 1 << 30;
/// Text tokenized in parallel at a time: enough to keep every core busy, small enough
/// that memory stays bounded.
const BATCH_BYTES: usize = 16 << 20;

/// The store's description, `meta.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub format: String,
    pub corpus_hash: String,
    pub tokenizer_id: String,
    pub vocab_size: usize,
    pub eos_id: u32,
    /// `u16` when every id fits (vocab_size <= 65,536), else `u32`; little-endian.
    pub dtype: String,
    pub n_tokens: u64,
    pub n_documents: u64,
    /// UTF-8 bytes of text tokenized (the documents, not the files' bytes).
    pub text_bytes: u64,
    pub shards: Vec<ShardMeta>,
    /// Records without the text field, skipped.
    pub missing: Missing,
    /// The corpus files, in reading order.
    pub sources: Vec<SourceFile>,
}

/// One shard's counts (`shard-NNNNN.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardMeta {
    pub name: String,
    pub n_tokens: u64,
    pub n_documents: u64,
    pub text_bytes: u64,
    pub missing: Missing,
}

/// Which files make up each shard (`plan.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Plan {
    files: Vec<String>,
    /// `[first, end)` file ranges, one per shard.
    shards: Vec<(usize, usize)>,
}

/// Where preparation stands, for a progress bar.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Bytes of corpus files read (compressed size for compressed files).
    pub input_bytes: u64,
    pub input_total: u64,
    pub text_bytes: u64,
    pub tokens: u64,
    /// Shards done (skipped as complete, or written) of `shards`.
    pub shards_done: usize,
    pub shards: usize,
}

/// How to prepare: shard size, and where progress goes.
#[derive(Clone, Copy)]
pub struct PrepareOptions<'a> {
    pub shard_bytes: u64,
    pub progress: Option<&'a (dyn Fn(&Progress) + Sync)>,
    /// The job's seed: it orders the training documents when `data.resample` is true
    /// (and is unused otherwise).
    pub seed: u64,
}

impl Default for PrepareOptions<'_> {
    fn default() -> Self {
        Self {
            shard_bytes: DEFAULT_SHARD_BYTES,
            progress: None,
            seed: 0,
        }
    }
}

impl PrepareOptions<'_> {
    /// The defaults for a job with this seed.
    pub fn for_seed(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }
}

impl std::fmt::Debug for PrepareOptions<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PrepareOptions")
            .field("shard_bytes", &self.shard_bytes)
            .field("seed", &self.seed)
            .finish()
    }
}

/// The store folder of a (corpus, tokenizer) pair.
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

/// Consecutive file ranges of at least `shard_bytes` each (the last may be smaller),
/// never splitting a file; no files, no shards.
pub fn plan_shards(sizes: &[u64], shard_bytes: u64) -> Vec<(usize, usize)> {
    let mut shards = Vec::new();
    let mut first = 0;
    let mut bytes = 0u64;
    for (index, &size) in sizes.iter().enumerate() {
        bytes += size;
        if bytes >= shard_bytes.max(1) {
            shards.push((first, index + 1));
            first = index + 1;
            bytes = 0;
        }
    }
    if first < sizes.len() {
        shards.push((first, sizes.len()));
    }
    shards
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), CorpusError> {
    let json = serde_json::to_vec_pretty(value).map_err(|error| CorpusError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(error),
    })?;
    write_atomic(path, &json)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// Run `work` holding the exclusive lock `<folder>.lock`: one process prepares a
/// store, the others wait for it (then find it complete).
pub fn with_lock<T>(
    folder: &Path,
    work: impl FnOnce() -> Result<T, CorpusError>,
) -> Result<T, CorpusError> {
    let lock_path = folder.with_extension("lock");
    if let Some(parent) = lock_path.parent() {
        fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_error(&lock_path))?;
    if lock.try_lock().is_err() {
        eprintln!(
            "corpus: another process is preparing {}; waiting for it",
            folder.display()
        );
        lock.lock().map_err(io_error(&lock_path))?;
    }
    let result = remove_leftover_temps(folder).and_then(|()| work());
    // Closing the file releases the lock; unlocking first makes it explicit.
    let _ = lock.unlock();
    result
}

/// Delete the temporary files a killed preparer left in `folder` and its splits/
/// (`.tmp*`, what `tempfile` names them; a kill runs no destructor). Only the lock
/// holder writes there, so once [`with_lock`] holds the lock none of them is in use: a
/// resumed store then holds exactly the files an uninterrupted one does.
fn remove_leftover_temps(folder: &Path) -> Result<(), CorpusError> {
    for dir in [folder.to_path_buf(), folder.join("splits")] {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue; // not made yet
        };
        for entry in entries {
            let entry = entry.map_err(io_error(&dir))?;
            if entry.file_name().to_string_lossy().starts_with(".tmp") {
                let path = entry.path();
                fs::remove_file(&path).map_err(io_error(&path))?;
            }
        }
    }
    Ok(())
}

/// Tokenize the listed files into a store at `folder` (call under [`with_lock`]),
/// resuming from complete shards.
pub fn build(
    folder: &Path,
    fields: Meta,
    files: &[SourceFile],
    text_field: &str,
    tokenizer: &Tokenizer,
    options: &PrepareOptions<'_>,
) -> Result<Meta, CorpusError> {
    fs::create_dir_all(folder).map_err(io_error(folder))?;
    let relatives: Vec<String> = files.iter().map(|file| file.relative.clone()).collect();
    let plan = match read_json::<Plan>(&folder.join(PLAN_FILE)) {
        Some(plan) if plan.files == relatives => plan,
        _ => {
            let sizes: Vec<u64> = files.iter().map(|file| file.bytes).collect();
            let plan = Plan {
                files: relatives,
                shards: plan_shards(&sizes, options.shard_bytes),
            };
            write_json(&folder.join(PLAN_FILE), &plan)?;
            plan
        }
    };
    let wide = fields.vocab_size > 1 << 16;
    let width = if wide { 4 } else { 2 };
    let mut progress = Progress {
        input_total: files.iter().map(|file| file.bytes).sum(),
        shards: plan.shards.len(),
        ..Progress::default()
    };
    let mut shards = Vec::with_capacity(plan.shards.len());
    for (index, &(first, end)) in plan.shards.iter().enumerate() {
        let name = format!("shard-{index:05}");
        let shard = match complete_shard(folder, &name, width) {
            Some(shard) => {
                progress.input_bytes += files[first..end].iter().map(|f| f.bytes).sum::<u64>();
                progress.text_bytes += shard.text_bytes;
                progress.tokens += shard.n_tokens;
                shard
            }
            None => write_shard(
                folder,
                &name,
                &files[first..end],
                text_field,
                tokenizer,
                wide,
                &mut progress,
                options,
            )?,
        };
        progress.shards_done += 1;
        if let Some(report) = options.progress {
            report(&progress);
        }
        shards.push(shard);
    }
    let n_documents: u64 = shards.iter().map(|shard| shard.n_documents).sum();
    let mut missing = Missing::default();
    for shard in &shards {
        missing.add(&shard.missing);
    }
    if n_documents == 0 {
        return Err(CorpusError::Empty {
            path: files
                .first()
                .map_or_else(PathBuf::new, |file| file.path.clone()),
            missing: read::missing_note(&missing, text_field),
        });
    }
    write_index(folder, &shards)?;
    let meta = Meta {
        format: FORMAT.into(),
        dtype: if wide { "u32" } else { "u16" }.into(),
        n_tokens: shards.iter().map(|shard| shard.n_tokens).sum(),
        n_documents,
        text_bytes: shards.iter().map(|shard| shard.text_bytes).sum(),
        shards,
        missing,
        sources: files.to_vec(),
        ..fields
    };
    write_json(&folder.join(META_FILE), &meta)?;
    Ok(meta)
}

/// A shard whose three files are complete and agree with each other.
fn complete_shard(folder: &Path, name: &str, width: u64) -> Option<ShardMeta> {
    let shard: ShardMeta = read_json(&folder.join(format!("{name}.json")))?;
    let bin = fs::metadata(folder.join(format!("{name}.bin"))).ok()?.len();
    let idx = fs::metadata(folder.join(format!("{name}.idx"))).ok()?.len();
    (bin == shard.n_tokens * width && idx == shard.n_documents * 4).then_some(shard)
}

/// A shard being written: documents are batched and tokenized in parallel.
struct ShardWriter<'a> {
    tokenizer: &'a Tokenizer,
    wide: bool,
    bin_path: PathBuf,
    writer: BufWriter<tempfile::NamedTempFile>,
    lengths: Vec<u32>,
    shard: ShardMeta,
    batch: Vec<String>,
    batch_bytes: usize,
}

impl ShardWriter<'_> {
    fn push(&mut self, text: String, progress: &mut Progress) -> Result<bool, CorpusError> {
        self.batch_bytes += text.len();
        self.shard.text_bytes += text.len() as u64;
        progress.text_bytes += text.len() as u64;
        self.batch.push(text);
        if self.batch_bytes < BATCH_BYTES {
            return Ok(false);
        }
        self.flush(progress)?;
        Ok(true)
    }

    /// Tokenize the batch on every core and append it, in order.
    fn flush(&mut self, progress: &mut Progress) -> Result<(), CorpusError> {
        let tokenizer = self.tokenizer;
        let encoded: Vec<Vec<u32>> = self
            .batch
            .par_iter()
            .map(|text| {
                let mut ids = tokenizer.encode(text);
                ids.push(tokenizer.eos_id());
                ids
            })
            .collect();
        let width = if self.wide { 4 } else { 2 };
        let mut bytes = Vec::with_capacity(encoded.iter().map(Vec::len).sum::<usize>() * width);
        for ids in &encoded {
            for &id in ids {
                if self.wide {
                    bytes.extend_from_slice(&id.to_le_bytes());
                } else {
                    // vocab_size <= 65,536, so every id fits in 16 bits.
                    bytes.extend_from_slice(&(id as u16).to_le_bytes());
                }
            }
            let length = u32::try_from(ids.len()).map_err(|_| CorpusError::Damaged {
                path: self.bin_path.clone(),
                message: format!("a document of {} tokens (the limit is 2^32)", ids.len()),
            })?;
            self.lengths.push(length);
            self.shard.n_tokens += ids.len() as u64;
            progress.tokens += ids.len() as u64;
        }
        self.shard.n_documents += encoded.len() as u64;
        self.writer
            .write_all(&bytes)
            .map_err(io_error(&self.bin_path))?;
        self.batch.clear();
        self.batch_bytes = 0;
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn write_shard(
    folder: &Path,
    name: &str,
    files: &[SourceFile],
    text_field: &str,
    tokenizer: &Tokenizer,
    wide: bool,
    progress: &mut Progress,
    options: &PrepareOptions<'_>,
) -> Result<ShardMeta, CorpusError> {
    let temp = tempfile::NamedTempFile::new_in(folder).map_err(io_error(folder))?;
    let mut shard = ShardWriter {
        tokenizer,
        wide,
        bin_path: folder.join(format!("{name}.bin")),
        writer: BufWriter::with_capacity(8 << 20, temp),
        lengths: Vec::new(),
        shard: ShardMeta {
            name: name.into(),
            n_tokens: 0,
            n_documents: 0,
            text_bytes: 0,
            missing: Missing::default(),
        },
        batch: Vec::new(),
        batch_bytes: 0,
    };
    for file in files {
        let mut missing = Missing::default();
        read::for_each_document(file, text_field, &mut missing, &mut |text| {
            if shard.push(text, progress)?
                && let Some(report) = options.progress
            {
                report(progress);
            }
            Ok(())
        })?;
        shard.shard.missing.add(&missing);
        progress.input_bytes += file.bytes;
    }
    shard.flush(progress)?;
    let ShardWriter {
        bin_path,
        writer,
        lengths,
        shard,
        ..
    } = shard;
    let temp = writer.into_inner().map_err(|error| CorpusError::Io {
        path: bin_path.clone(),
        source: error.into_error(),
    })?;
    persist(temp, &bin_path)?;
    let idx: Vec<u8> = lengths
        .iter()
        .flat_map(|length| length.to_le_bytes())
        .collect();
    write_atomic(&folder.join(format!("{name}.idx")), &idx)?;
    write_json(&folder.join(format!("{name}.json")), &shard)?;
    Ok(shard)
}

/// `index.bin`: the documents' offsets in the concatenation of the shards.
fn write_index(folder: &Path, shards: &[ShardMeta]) -> Result<(), CorpusError> {
    let path = folder.join(INDEX_FILE);
    let temp = tempfile::NamedTempFile::new_in(folder).map_err(io_error(folder))?;
    let mut writer = BufWriter::with_capacity(1 << 20, temp);
    let mut offset = 0u64;
    writer
        .write_all(&offset.to_le_bytes())
        .map_err(io_error(&path))?;
    let mut buffer = Vec::new();
    for shard in shards {
        let idx_path = folder.join(format!("{}.idx", shard.name));
        buffer.clear();
        File::open(&idx_path)
            .and_then(|mut file| file.read_to_end(&mut buffer))
            .map_err(io_error(&idx_path))?;
        for length in buffer.chunks_exact(4) {
            offset += u64::from(u32::from_le_bytes([
                length[0], length[1], length[2], length[3],
            ]));
            writer
                .write_all(&offset.to_le_bytes())
                .map_err(io_error(&path))?;
        }
    }
    let temp = writer.into_inner().map_err(|error| CorpusError::Io {
        path: path.clone(),
        source: error.into_error(),
    })?;
    persist(temp, &path)
}

/// A complete store, open for reading: token ids are read in place, window by window.
#[derive(Debug)]
pub struct Store {
    pub folder: PathBuf,
    pub meta: Meta,
    shards: Vec<File>,
    /// Offset of each shard's first token in the concatenation, plus the total.
    shard_starts: Vec<u64>,
    width: usize,
}

impl Store {
    /// The store at `folder` when it is complete and matches the corpus and tokenizer;
    /// `None` (to be built or repaired) otherwise.
    pub fn open(
        folder: &Path,
        corpus_hash: &str,
        tokenizer_id: &str,
    ) -> Result<Option<Self>, CorpusError> {
        let Some(meta) = read_json::<Meta>(&folder.join(META_FILE)) else {
            return Ok(None);
        };
        let width = match meta.dtype.as_str() {
            "u16" => 2,
            "u32" => 4,
            _ => return Ok(None),
        };
        let expected = meta.format == FORMAT
            && meta.corpus_hash == corpus_hash
            && meta.tokenizer_id == tokenizer_id;
        if !expected {
            return Ok(None);
        }
        let mut shards = Vec::with_capacity(meta.shards.len());
        let mut shard_starts = vec![0u64];
        for shard in &meta.shards {
            let path = folder.join(format!("{}.bin", shard.name));
            let Ok(file) = File::open(&path) else {
                return Ok(None);
            };
            let length = file.metadata().map_err(io_error(&path))?.len();
            if length != shard.n_tokens * width as u64 {
                return Ok(None);
            }
            shards.push(file);
            shard_starts.push(shard_starts.last().copied().unwrap_or(0) + shard.n_tokens);
        }
        let index = fs::metadata(folder.join(INDEX_FILE)).map_or(0, |m| m.len());
        if index != (meta.n_documents + 1) * 8 || shard_starts.last() != Some(&meta.n_tokens) {
            return Ok(None);
        }
        Ok(Some(Self {
            folder: folder.to_path_buf(),
            meta,
            shards,
            shard_starts,
            width,
        }))
    }

    /// Append tokens `start .. start + len` of the concatenated shards to `out`.
    pub fn read(&self, start: u64, len: usize, out: &mut Vec<u32>) -> Result<(), CorpusError> {
        let end = start + len as u64;
        if end > self.meta.n_tokens {
            return Err(CorpusError::Damaged {
                path: self.folder.clone(),
                message: format!(
                    "tokens {start}..{end} asked of a store of {}",
                    self.meta.n_tokens
                ),
            });
        }
        let mut at = start;
        let mut bytes = Vec::new();
        while at < end {
            let shard = self.shard_starts.partition_point(|&s| s <= at) - 1;
            let within = at - self.shard_starts[shard];
            let take = (end - at).min(self.shard_starts[shard + 1] - at);
            bytes.resize(take as usize * self.width, 0);
            self.shards[shard]
                .read_exact_at(&mut bytes, within * self.width as u64)
                .map_err(io_error(
                    self.folder
                        .join(format!("{}.bin", self.meta.shards[shard].name)),
                ))?;
            if self.width == 2 {
                out.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|pair| u32::from(u16::from_le_bytes([pair[0], pair[1]]))),
                );
            } else {
                out.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|word| u32::from_le_bytes([word[0], word[1], word[2], word[3]])),
                );
            }
            at += take;
        }
        Ok(())
    }

    /// Every document's offset (`index.bin`), n_documents + 1 of them: read only to
    /// draw a new split, 8 bytes a document.
    pub fn offsets(&self) -> Result<Vec<u64>, CorpusError> {
        let path = self.folder.join(INDEX_FILE);
        let bytes = fs::read(&path).map_err(io_error(&path))?;
        Ok(bytes
            .chunks_exact(8)
            .map(|word| {
                u64::from_le_bytes([
                    word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
                ])
            })
            .collect())
    }
}

/// Remove what marks a store complete, so [`build`] re-checks every shard and
/// rewrites the index and meta (a damaged or stale store).
pub fn invalidate(folder: &Path) -> Result<(), CorpusError> {
    for name in [META_FILE, INDEX_FILE] {
        let path = folder.join(name);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(&path)(error)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_consecutive_files_of_at_least_the_shard_size() {
        for (sizes, shard_bytes, expected) in [
            (vec![], 10, vec![]),
            (vec![5], 10, vec![(0, 1)]),
            (vec![5, 5, 5], 10, vec![(0, 2), (2, 3)]),
            (vec![20, 1, 1], 10, vec![(0, 1), (1, 3)]),
            (vec![3, 3, 3, 3], 6, vec![(0, 2), (2, 4)]),
            (vec![3, 3], 0, vec![(0, 1), (1, 2)]),
            (vec![3, 3], u64::MAX, vec![(0, 2)]),
        ] {
            assert_eq!(
                plan_shards(&sizes, shard_bytes),
                expected,
                "{sizes:?} {shard_bytes}"
            );
        }
    }

    /// A vocabulary wider than 16 bits is stored as u32 (4 bytes a token) and reads
    /// back the same ids as the u16 store of the same text: both dtype branches of
    /// write and read.
    #[test]
    fn a_vocabulary_over_65536_ids_is_stored_as_u32_and_reads_back() {
        let folder = tempfile::tempdir().expect("temp dir");
        let corpus = folder.path().join("corpus");
        fs::create_dir_all(&corpus).expect("corpus");
        let lines: Vec<String> = (0..50)
            .map(|i| format!("{{\"text\": \"document {i}: some text é\"}}"))
            .collect();
        fs::write(corpus.join("a.jsonl"), lines.join("\n")).expect("write");
        let listing = crate::read::list(&corpus, false).expect("list");
        let tokenizer = crate::tokenizer::Tokenizer::load(
            &jobspec::TokenizerSpec::Bytes,
            &crate::read::Corpus {
                source: corpus.clone(),
                documents: Vec::new(),
                hash: "h".into(),
            },
            folder.path(),
            folder.path(),
        )
        .expect("bytes tokenizer");
        let mut stores = Vec::new();
        for (vocab_size, dtype, width) in [(256, "u16", 2u64), (70_000, "u32", 4)] {
            let store = folder.path().join(dtype);
            let fields = Meta {
                format: String::new(),
                corpus_hash: "h".into(),
                tokenizer_id: "t".into(),
                vocab_size,
                eos_id: 0,
                dtype: String::new(),
                n_tokens: 0,
                n_documents: 0,
                text_bytes: 0,
                shards: Vec::new(),
                missing: crate::read::Missing::default(),
                sources: Vec::new(),
            };
            let meta = build(
                &store,
                fields,
                &listing.files,
                "text",
                &tokenizer,
                &PrepareOptions::default(),
            )
            .expect("build");
            assert_eq!(meta.dtype, dtype);
            let bytes = fs::metadata(store.join("shard-00000.bin"))
                .expect("shard")
                .len();
            assert_eq!(bytes, meta.n_tokens * width, "{dtype}");
            let opened = Store::open(&store, "h", "t")
                .expect("open")
                .expect("complete");
            let mut tokens = Vec::new();
            opened
                .read(0, meta.n_tokens as usize, &mut tokens)
                .expect("read");
            stores.push(tokens);
        }
        assert!(stores[0].len() > 500, "{} tokens", stores[0].len());
        assert_eq!(
            stores[0], stores[1],
            "u16 and u32 stores of the same text differ"
        );
    }
}
