//! The held-out split: whole documents, chosen by a seeded shuffle, so that no
//! unique-token budget ever touches validation text; the remaining documents in a
//! second seeded order (or corpus order), which budgets are prefixes of.

use crate::error::{CorpusError, io_error};
use crate::rng::permutation;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Document indices: `val` in the order they were drawn, `train` in budget order.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub val: Vec<usize>,
    pub train: Vec<usize>,
}

/// The order of the training documents, which budgets are prefixes of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainOrder {
    /// File order (`data.order: corpus`).
    Corpus,
    /// One seeded order shared by every job (stream 1 of the split seed).
    Shuffled,
    /// The order of one job seed (`data.resample: true`): stream 2 + seed of the split
    /// seed, so each (split seed, job seed) pair has its own order and none is the
    /// shared one.
    Resampled { seed: u64 },
}

impl TrainOrder {
    /// The order a job's data section and seed ask for.
    pub fn of(config: &jobspec::DataConfig, seed: u64) -> Self {
        match (config.order, config.resample) {
            (jobspec::DocumentOrder::Corpus, _) => Self::Corpus,
            (jobspec::DocumentOrder::Shuffled, false) => Self::Shuffled,
            (jobspec::DocumentOrder::Shuffled, true) => Self::Resampled { seed },
        }
    }

    /// The order's part of the split file's name.
    fn file_tag(self) -> String {
        match self {
            Self::Corpus => "corpus".into(),
            Self::Shuffled => "shuffled".into(),
            Self::Resampled { seed } => format!("resample{seed}"),
        }
    }

    /// A permutation of `0..n` in this order (training documents are then the
    /// non-held-out ones in it).
    fn permutation(self, n: usize, split_seed: u64) -> Vec<usize> {
        match self {
            Self::Corpus => (0..n).collect(),
            Self::Shuffled => permutation(n, split_seed, 1),
            Self::Resampled { seed } => permutation(n, split_seed, seed.wrapping_add(2)),
        }
    }
}

/// Hold out documents in a shuffled order (seeded by `split_seed`) until they hold at
/// least `val_tokens` tokens; the rest are for training, in `order` (a seeded order,
/// so that every budget, a prefix of it, samples the whole corpus, or corpus order).
/// The held-out set depends on `split_seed` only, never on `order`. `lengths[d]` is
/// document d's length in tokens (its eos included).
pub fn split(
    lengths: &[usize],
    val_tokens: u64,
    split_seed: u64,
    order: TrainOrder,
) -> Result<Split, CorpusError> {
    let total: u64 = lengths.iter().map(|&length| length as u64).sum();
    if total < val_tokens {
        return Err(CorpusError::ValidationTooLarge {
            val_tokens,
            total_tokens: total,
            documents: lengths.len(),
        });
    }
    // Stream 0 of the split seed; the window order uses other generators.
    let held_out_order = permutation(lengths.len(), split_seed, 0);
    let mut held_out = 0u64;
    let mut is_val = vec![false; lengths.len()];
    let mut val = Vec::new();
    for document in held_out_order {
        if held_out >= val_tokens {
            break;
        }
        held_out += lengths[document] as u64;
        is_val[document] = true;
        val.push(document);
    }
    let train: Vec<usize> = order
        .permutation(lengths.len(), split_seed)
        .into_iter()
        .filter(|&document| !is_val[document])
        .collect();
    if train.is_empty() {
        return Err(CorpusError::NothingToTrain {
            val_tokens,
            documents: lengths.len(),
        });
    }
    Ok(Split { val, train })
}

/// The split's file in a store: `splits/val<tokens>-seed<seed>-<order>.bin`, order
/// `shuffled`, `corpus` or `resample<job seed>`.
///
/// Layout (little-endian u64 words): the magic `b"XOSPLIT1"`, then n_val, n_train,
/// val_tokens (held out, in tokens), train_tokens; then n_val held-out documents and
/// n_train training documents in budget order, each as (offset in the store's token
/// stream, length in tokens, eos included). A job reads the prefix its budget needs.
pub fn split_path(store: &Path, val_tokens: u64, split_seed: u64, order: TrainOrder) -> PathBuf {
    let order = order.file_tag();
    store
        .join("splits")
        .join(format!("val{val_tokens}-seed{split_seed}-{order}.bin"))
}

const MAGIC: &[u8; 8] = b"XOSPLIT1";
const HEADER_BYTES: u64 = 8 * 5;

/// Draw the split from the documents' token offsets (the store's index: document d
/// spans `offsets[d]..offsets[d + 1]`) and write it atomically.
pub fn write_split(
    offsets: &[u64],
    path: &Path,
    val_tokens: u64,
    split_seed: u64,
    order: TrainOrder,
) -> Result<(), CorpusError> {
    let lengths: Vec<usize> = offsets
        .windows(2)
        .map(|pair| (pair[1] - pair[0]) as usize)
        .collect();
    let split = split(&lengths, val_tokens, split_seed, order)?;
    let held: u64 = split.val.iter().map(|&d| lengths[d] as u64).sum();
    let trained: u64 = split.train.iter().map(|&d| lengths[d] as u64).sum();
    let mut bytes = Vec::with_capacity(HEADER_BYTES as usize + 16 * lengths.len());
    bytes.extend_from_slice(MAGIC);
    for word in [
        split.val.len() as u64,
        split.train.len() as u64,
        held,
        trained,
    ] {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    for &document in split.val.iter().chain(&split.train) {
        bytes.extend_from_slice(&offsets[document].to_le_bytes());
        bytes.extend_from_slice(&(lengths[document] as u64).to_le_bytes());
    }
    crate::atomic::write_atomic(path, &bytes)
}

/// A split file open for reading.
#[derive(Debug)]
pub struct SplitFile {
    path: PathBuf,
    file: File,
    pub n_val: u64,
    pub n_train: u64,
    pub val_tokens: u64,
    pub train_tokens: u64,
}

impl SplitFile {
    /// The split at `path`, or `None` when it is missing or incomplete.
    pub fn open(path: &Path) -> Result<Option<Self>, CorpusError> {
        let Ok(mut file) = File::open(path) else {
            return Ok(None);
        };
        let mut header = [0u8; HEADER_BYTES as usize];
        if file.read_exact(&mut header).is_err() || &header[..8] != MAGIC {
            return Ok(None);
        }
        let word = |i: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&header[8 * i..8 * i + 8]);
            u64::from_le_bytes(bytes)
        };
        let (n_val, n_train) = (word(1), word(2));
        let length = file.metadata().map_err(io_error(path))?.len();
        if length != HEADER_BYTES + 16 * (n_val + n_train) {
            return Ok(None);
        }
        Ok(Some(Self {
            path: path.to_path_buf(),
            file,
            n_val,
            n_train,
            val_tokens: word(3),
            train_tokens: word(4),
        }))
    }

    /// Records `first .. first + count` as (offset, length).
    fn records(&self, first: u64, count: u64) -> Result<Vec<(u64, u64)>, CorpusError> {
        let mut bytes = vec![0u8; 16 * count as usize];
        self.file
            .read_exact_at(&mut bytes, HEADER_BYTES + 16 * first)
            .map_err(io_error(&self.path))?;
        Ok(bytes
            .chunks_exact(16)
            .map(|record| {
                let mut start = [0u8; 8];
                let mut length = [0u8; 8];
                start.copy_from_slice(&record[..8]);
                length.copy_from_slice(&record[8..]);
                (u64::from_le_bytes(start), u64::from_le_bytes(length))
            })
            .collect())
    }

    /// The held-out documents, in the order the split drew them.
    pub fn val_documents(&self) -> Result<Vec<(u64, u64)>, CorpusError> {
        self.records(0, self.n_val)
    }

    /// The training documents in budget order until they hold `tokens` tokens (the
    /// last one whole): reads only that prefix of the file.
    pub fn train_prefix(&self, tokens: u64) -> Result<Vec<(u64, u64)>, CorpusError> {
        const CHUNK: u64 = 1 << 16;
        let mut documents = Vec::new();
        let mut held = 0u64;
        let mut next = 0u64;
        while held < tokens && next < self.n_train {
            let count = CHUNK.min(self.n_train - next);
            for record in self.records(self.n_val + next, count)? {
                if held >= tokens {
                    break;
                }
                held += record.1;
                documents.push(record);
            }
            next += count;
        }
        Ok(documents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_is_disjoint_large_enough_and_seeded() {
        let lengths: Vec<usize> = (0..50).map(|d| 10 + d % 7).collect();
        for (val_tokens, seed) in [(0, 0), (1, 0), (100, 0), (100, 1), (300, 5)] {
            let result = split(&lengths, val_tokens, seed, TrainOrder::Corpus).expect("split");
            let held_out: u64 = result.val.iter().map(|&d| lengths[d] as u64).sum();
            assert!(held_out >= val_tokens);
            // Minimal: dropping the last drawn document would fall short.
            if let Some(&last) = result.val.last() {
                assert!(held_out - (lengths[last] as u64) < val_tokens);
            }
            let mut all: Vec<usize> = result.val.iter().chain(&result.train).copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..50).collect::<Vec<_>>(), "disjoint and complete");
            assert!(
                result.train.windows(2).all(|pair| pair[0] < pair[1]),
                "train keeps corpus order"
            );
            assert_eq!(
                split(&lengths, val_tokens, seed, TrainOrder::Corpus).expect("split"),
                result
            );
            let shuffled = split(&lengths, val_tokens, seed, TrainOrder::Shuffled).expect("split");
            assert_eq!(
                shuffled.val, result.val,
                "the order does not move the split"
            );
            let mut sorted = shuffled.train.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, result.train);
            assert_ne!(shuffled.train, result.train, "shuffled");
        }
        assert_ne!(
            split(&lengths, 100, 0, TrainOrder::Shuffled)
                .expect("split")
                .val,
            split(&lengths, 100, 1, TrainOrder::Shuffled)
                .expect("split")
                .val
        );
    }

    /// `data.resample`: each seed its own training order, the held-out set fixed.
    #[test]
    fn resampled_orders_keep_the_held_out_set_and_differ_by_seed() {
        let lengths: Vec<usize> = (0..200).map(|d| 10 + d % 13).collect();
        let of = |order| split(&lengths, 300, 4, order).expect("split");
        let shared = of(TrainOrder::Shuffled);
        let seeds: Vec<Split> = (0..4)
            .map(|seed| of(TrainOrder::Resampled { seed }))
            .collect();
        for (seed, resampled) in seeds.iter().enumerate() {
            assert_eq!(resampled.val, shared.val, "seed {seed}: held-out set moved");
            let mut sorted = resampled.train.clone();
            sorted.sort_unstable();
            let mut all_train = shared.train.clone();
            all_train.sort_unstable();
            assert_eq!(
                sorted, all_train,
                "seed {seed}: same pool of training documents"
            );
            assert_ne!(
                resampled.train, shared.train,
                "seed {seed}: not the shared order"
            );
            assert_eq!(&of(TrainOrder::Resampled { seed: seed as u64 }), resampled);
        }
        // A budget's first documents differ between seeds (here the first 10 of 180).
        for pair in seeds.windows(2) {
            assert_ne!(pair[0].train[..10], pair[1].train[..10]);
        }
    }

    #[test]
    fn split_files_are_named_by_order() {
        let cases = [
            (TrainOrder::Corpus, "val100-seed3-corpus.bin"),
            (TrainOrder::Shuffled, "val100-seed3-shuffled.bin"),
            (
                TrainOrder::Resampled { seed: 7 },
                "val100-seed3-resample7.bin",
            ),
        ];
        for (order, name) in cases {
            let path = split_path(Path::new("store"), 100, 3, order);
            assert_eq!(path, Path::new("store/splits").join(name), "{order:?}");
        }
    }

    #[test]
    fn impossible_splits_say_why() {
        let lengths = [10, 20, 30];
        let error = split(&lengths, 61, 0, TrainOrder::Shuffled)
            .expect_err("an error")
            .to_string();
        assert!(
            error.contains("val_tokens = 61") && error.contains("only 60 tokens in 3 documents"),
            "{error}"
        );
        let error = split(&lengths, 60, 0, TrainOrder::Shuffled)
            .expect_err("an error")
            .to_string();
        assert!(error.contains("leaving none to train on"), "{error}");
    }
}
