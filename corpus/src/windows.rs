//! Training windows: fixed-length slices of a token budget visited in a fresh random
//! order every epoch, so that an AR and a DLM job with the same seed see the same
//! rows in the same order.
//!
//! Two ways to cut them (`data.windows`):
//! - `reshuffle` (default, as Megatron and so MegaDLMs do): epoch e concatenates the
//!   budget's documents in an order drawn from (seed, e) and cuts windows from that
//!   concatenation, so a repeated document lands at a new offset with new neighbours
//!   and an AR model never sees the same (context, next token) pairs twice in a row;
//! - `fixed`: window k is always tokens k*L .. k*L+L+1 of the budget; epochs only
//!   reorder them.

use crate::error::CorpusError;
use crate::rng::permutation;
use std::cell::RefCell;

/// Stream offset for the per-epoch document orders, apart from the window orders.
const DOCUMENT_STREAM: u64 = 0xD0C5_0000_0000_0000;

/// Endless epoch-after-epoch order over the windows of a budget of `n_tokens` tokens.
///
/// Window `k` of an epoch covers tokens `k * seq_len .. k * seq_len + seq_len + 1` of
/// that epoch's stream (the budget itself for `fixed`, its documents re-ordered for
/// `reshuffle`): `seq_len` inputs plus one more for the shifted targets, so
/// consecutive windows share one token. Epoch `e` visits every window exactly once in
/// a permutation drawn from `(seed, e)` only, so any step can be recomputed (e.g.
/// after a resume) without replaying earlier epochs.
///
/// The current epoch's orders are cached in a `RefCell`, so `start` and `batch` take
/// `&self` and cost O(1) amortised (O(log documents) for `reshuffle`) when called in
/// order; a `Windows` is therefore not `Sync` (give each thread its own, they are
/// cheap to rebuild).
#[derive(Debug)]
pub struct Windows {
    n_tokens: usize,
    seq_len: usize,
    seed: u64,
    windows_per_epoch: u64,
    /// Document lengths of the budget, in budget order; empty for `fixed`.
    documents: Vec<usize>,
    /// Offset of each document in the budget (prefix sums of `documents`).
    document_starts: Vec<usize>,
    /// The epoch asked for last, with its orders.
    epoch_order: RefCell<Option<EpochOrder>>,
}

#[derive(Debug)]
struct EpochOrder {
    epoch: u64,
    /// Permutation of window indices.
    windows: Vec<usize>,
    /// `reshuffle`: the documents in this epoch's order, and where each starts in the
    /// epoch's concatenation (plus the total at the end).
    documents: Vec<usize>,
    concatenated_starts: Vec<usize>,
}

impl Windows {
    /// Fixed windows over a budget of `n_tokens` tokens.
    ///
    /// # Panics
    /// When `n_tokens < seq_len + 1` (no window fits) or `seq_len == 0`; use
    /// [`Windows::try_new`] to get an error instead.
    pub fn new(n_tokens: usize, seq_len: usize, seed: u64) -> Self {
        match Self::try_new(n_tokens, seq_len, seed) {
            Ok(windows) => windows,
            Err(error) => panic!("{error}"),
        }
    }

    /// Fixed windows over a budget of `n_tokens` tokens, or why none fits.
    pub fn try_new(n_tokens: usize, seq_len: usize, seed: u64) -> Result<Self, CorpusError> {
        let windows_per_epoch = n_tokens.saturating_sub(1).checked_div(seq_len).unwrap_or(0);
        if windows_per_epoch == 0 {
            return Err(CorpusError::TooFewTokens {
                n_tokens,
                window: seq_len + 1,
            });
        }
        Ok(Self {
            n_tokens,
            seq_len,
            seed,
            windows_per_epoch: windows_per_epoch as u64,
            documents: Vec::new(),
            document_starts: Vec::new(),
            epoch_order: RefCell::new(None),
        })
    }

    /// Windows cut afresh every epoch from the budget's documents (lengths in budget
    /// order, adding up to the budget's length) re-ordered by (seed, epoch).
    pub fn reshuffled(
        document_lengths: &[usize],
        seq_len: usize,
        seed: u64,
    ) -> Result<Self, CorpusError> {
        let n_tokens = document_lengths.iter().sum();
        let mut windows = Self::try_new(n_tokens, seq_len, seed)?;
        windows.documents = document_lengths.to_vec();
        windows.document_starts = prefix_sums(document_lengths);
        Ok(windows)
    }

    pub fn windows_per_epoch(&self) -> u64 {
        self.windows_per_epoch
    }

    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// Whether windows are cut afresh every epoch.
    pub fn reshuffles(&self) -> bool {
        !self.documents.is_empty()
    }

    /// Run `f` on the orders of the epoch of `global_index`, computing them once.
    fn with_epoch<T>(&self, epoch: u64, f: impl FnOnce(&EpochOrder) -> T) -> T {
        let mut cached = self.epoch_order.borrow_mut();
        let order = match &mut *cached {
            Some(order) if order.epoch == epoch => order,
            slot => slot.insert(self.epoch_orders(epoch)),
        };
        f(order)
    }

    fn epoch_orders(&self, epoch: u64) -> EpochOrder {
        let windows = permutation(self.windows_per_epoch as usize, self.seed, epoch);
        if self.documents.is_empty() {
            return EpochOrder {
                epoch,
                windows,
                documents: Vec::new(),
                concatenated_starts: Vec::new(),
            };
        }
        let documents = permutation(self.documents.len(), self.seed, DOCUMENT_STREAM ^ epoch);
        let lengths: Vec<usize> = documents.iter().map(|&d| self.documents[d]).collect();
        EpochOrder {
            epoch,
            windows,
            documents,
            concatenated_starts: prefix_sums(&lengths),
        }
    }

    /// Token offset, in its epoch's stream, of the window at position `global_index`
    /// of the endless order.
    pub fn start(&self, global_index: u64) -> usize {
        let epoch = global_index / self.windows_per_epoch;
        let position = (global_index % self.windows_per_epoch) as usize;
        self.with_epoch(epoch, |order| order.windows[position] * self.seq_len)
    }

    /// The budget offsets that make up the window at `global_index`: pieces
    /// `(offset in the budget, length)` adding up to `seq_len + 1`, one per document it
    /// touches (always one piece for `fixed`).
    pub fn pieces(&self, global_index: u64) -> Vec<(usize, usize)> {
        let epoch = global_index / self.windows_per_epoch;
        let start = self.start(global_index);
        let width = self.seq_len + 1;
        if self.documents.is_empty() {
            return vec![(start, width)];
        }
        self.with_epoch(epoch, |order| {
            let starts = &order.concatenated_starts;
            // The document of this epoch's order that holds `start`.
            let mut slot = starts.partition_point(|&s| s <= start) - 1;
            let mut at = start;
            let mut left = width;
            let mut pieces = Vec::with_capacity(2);
            while left > 0 {
                let document = order.documents[slot];
                let within = at - starts[slot];
                let take = (self.documents[document] - within).min(left);
                pieces.push((self.document_starts[document] + within, take));
                left -= take;
                at += take;
                slot += 1;
            }
            pieces
        })
    }

    /// The rows of optimizer step `step`: windows `step * B .. step * B + B` of the
    /// endless order, row-major.
    ///
    /// # Shapes
    /// returns (B, seq_len + 1) flattened: row b is the window's seq_len + 1 tokens.
    ///
    /// # Panics
    /// When `tokens` is shorter than the `n_tokens` this `Windows` was built for.
    pub fn batch(&self, tokens: &[u32], step: u64, batch_size: usize) -> Vec<u32> {
        assert!(
            tokens.len() >= self.n_tokens,
            "Windows built for {} tokens got a stream of {}",
            self.n_tokens,
            tokens.len()
        );
        let width = self.seq_len + 1;
        let mut rows = Vec::with_capacity(batch_size * width);
        let first = step * batch_size as u64;
        for row in 0..batch_size as u64 {
            for (offset, length) in self.pieces(first + row) {
                rows.extend_from_slice(&tokens[offset..offset + length]);
            }
        }
        rows
    }

    /// [`Windows::batch`] read from a token source (a budget of the token store): only
    /// the batch's windows are read.
    pub fn read_batch(
        &self,
        tokens: &dyn TokenSource,
        step: u64,
        batch_size: usize,
    ) -> Result<Vec<u32>, CorpusError> {
        if tokens.token_count() < self.n_tokens {
            return Err(CorpusError::TooFewTokens {
                n_tokens: tokens.token_count(),
                window: self.n_tokens,
            });
        }
        let mut rows = Vec::with_capacity(batch_size * (self.seq_len + 1));
        let first = step * batch_size as u64;
        for row in 0..batch_size as u64 {
            for (offset, length) in self.pieces(first + row) {
                tokens.read_into(offset, length, &mut rows)?;
            }
        }
        Ok(rows)
    }
}

/// A stream of token ids that windows are cut from, read a piece at a time.
pub trait TokenSource {
    /// Tokens in the stream.
    fn token_count(&self) -> usize;
    /// Append tokens `offset .. offset + len` to `out`.
    fn read_into(&self, offset: usize, len: usize, out: &mut Vec<u32>) -> Result<(), CorpusError>;
}

impl TokenSource for [u32] {
    fn token_count(&self) -> usize {
        self.len()
    }

    fn read_into(&self, offset: usize, len: usize, out: &mut Vec<u32>) -> Result<(), CorpusError> {
        out.extend_from_slice(&self[offset..offset + len]);
        Ok(())
    }
}

/// `[0, l0, l0 + l1, ..., total]`.
pub(crate) fn prefix_sums(lengths: &[usize]) -> Vec<usize> {
    let mut sums = Vec::with_capacity(lengths.len() + 1);
    let mut total = 0;
    sums.push(0);
    for &length in lengths {
        total += length;
        sums.push(total);
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(windows: &Windows, epoch: u64) -> Vec<usize> {
        let per_epoch = windows.windows_per_epoch();
        (0..per_epoch)
            .map(|i| windows.start(epoch * per_epoch + i))
            .collect()
    }

    #[test]
    fn windows_per_epoch_counts_whole_windows() {
        // (n_tokens, seq_len, windows): the last window ends at k * seq_len + seq_len + 1.
        for (n_tokens, seq_len, expected) in [
            (9, 4, 2),
            (10, 4, 2),
            (8, 4, 1),
            (5, 4, 1),
            (101, 10, 10),
            (100, 10, 9),
        ] {
            let windows = Windows::new(n_tokens, seq_len, 0);
            assert_eq!(
                windows.windows_per_epoch(),
                expected,
                "{n_tokens} tokens, seq_len {seq_len}"
            );
        }
    }

    #[test]
    fn too_few_tokens_is_an_error() {
        let error = Windows::try_new(4, 4, 0).expect_err("an error").to_string();
        assert!(
            error.contains("4 tokens") && error.contains("seq_len + 1 = 5"),
            "{error}"
        );
        assert!(Windows::try_new(10, 0, 0).is_err());
    }

    #[test]
    fn each_epoch_visits_every_window_once() {
        let windows = Windows::new(1001, 10, 42);
        for e in 0..3 {
            let mut starts = epoch(&windows, e);
            starts.sort_unstable();
            assert_eq!(
                starts,
                (0..100).map(|k| k * 10).collect::<Vec<_>>(),
                "epoch {e}"
            );
        }
    }

    #[test]
    fn order_depends_on_seed_and_epoch_only() {
        let a = Windows::new(1001, 10, 42);
        let b = Windows::new(1001, 10, 42);
        let other_seed = Windows::new(1001, 10, 43);
        assert_eq!(epoch(&a, 0), epoch(&b, 0));
        assert_ne!(epoch(&a, 0), epoch(&a, 1));
        assert_ne!(epoch(&a, 0), epoch(&other_seed, 0));
        // Jumping straight to epoch 5 (a resume) gives what walking there gives.
        let walked: Vec<_> = (0..6).map(|e| epoch(&a, e)).collect();
        assert_eq!(epoch(&b, 5), walked[5]);
        assert_eq!(epoch(&b, 2), walked[2]);
    }

    #[test]
    fn batch_is_row_major_windows_with_shifted_targets() {
        let tokens: Vec<u32> = (0..41).collect();
        let windows = Windows::new(tokens.len(), 4, 7);
        assert_eq!(windows.windows_per_epoch(), 10);
        let batch = windows.batch(&tokens, 3, 2);
        assert_eq!(batch.len(), 2 * 5);
        for (row, chunk) in batch.chunks(5).enumerate() {
            let start = windows.start(3 * 2 + row as u64);
            assert_eq!(chunk, &tokens[start..start + 5]);
            assert_eq!(start % 4, 0);
        }
        // Steps that cross an epoch boundary continue into the next permutation.
        let crossing = windows.batch(&tokens, 4, 3);
        assert_eq!(crossing[2 * 5] as usize, windows.start(4 * 3 + 2));
    }

    #[test]
    fn same_seed_gives_same_batches() {
        let tokens: Vec<u32> = (0..5000).map(|i| i * 7 % 1000).collect();
        let ar = Windows::new(tokens.len(), 32, 9);
        let dlm = Windows::new(tokens.len(), 32, 9);
        for step in 0..200 {
            assert_eq!(
                ar.batch(&tokens, step, 8),
                dlm.batch(&tokens, step, 8),
                "step {step}"
            );
        }
    }

    /// Documents of distinct token ranges: document d holds d*1000 .. d*1000 + len.
    fn documents(lengths: &[usize]) -> Vec<u32> {
        lengths
            .iter()
            .enumerate()
            .flat_map(|(d, &length)| (0..length).map(move |i| (d * 1000 + i) as u32))
            .collect()
    }

    #[test]
    fn reshuffled_epochs_cut_new_windows_from_whole_documents() {
        let lengths = [37, 5, 120, 64, 9, 81, 33, 50];
        let tokens = documents(&lengths);
        let windows = Windows::reshuffled(&lengths, 16, 3).expect("windows");
        assert!(windows.reshuffles());
        assert_eq!(windows.windows_per_epoch(), (tokens.len() as u64 - 1) / 16);
        let per_epoch = windows.windows_per_epoch();
        let rows = |epoch: u64| -> Vec<Vec<u32>> {
            (0..per_epoch)
                .map(|i| windows.batch(&tokens, epoch * per_epoch + i, 1))
                .collect()
        };
        let (first, second) = (rows(0), rows(1));
        for row in first.iter().chain(&second) {
            assert_eq!(row.len(), 17);
            // Within a document, tokens run on consecutively.
            for pair in row.windows(2) {
                if pair[0] / 1000 == pair[1] / 1000 {
                    assert_eq!(pair[1], pair[0] + 1, "{row:?}");
                }
            }
        }
        // Offsets relative to document starts differ between epochs.
        let offsets = |rows: &[Vec<u32>]| -> std::collections::BTreeSet<u32> {
            rows.iter().map(|row| row[0] % 1000).collect()
        };
        assert_ne!(offsets(&first), offsets(&second));
        let mut a = first.clone();
        let mut b = second.clone();
        a.sort();
        b.sort();
        assert_ne!(a, b, "epoch 1 cut the same windows as epoch 0");
        // Each epoch covers (almost) every token once: all but the < seq_len tail.
        let covered: usize = first.iter().map(|row| row.len() - 1).sum();
        assert!(tokens.len() - covered <= 16);
    }

    #[test]
    fn reshuffled_batches_are_a_function_of_seed_and_step() {
        let lengths: Vec<usize> = (0..40).map(|d| 20 + d * 7 % 90).collect();
        let tokens = documents(&lengths);
        let ar = Windows::reshuffled(&lengths, 32, 9).expect("windows");
        let dlm = Windows::reshuffled(&lengths, 32, 9).expect("windows");
        let walked: Vec<Vec<u32>> = (0..300).map(|step| ar.batch(&tokens, step, 4)).collect();
        for step in (0..300).rev() {
            // Backwards (a resume jumps straight to a step): same rows.
            assert_eq!(
                dlm.batch(&tokens, step, 4),
                walked[step as usize],
                "step {step}"
            );
        }
        let other = Windows::reshuffled(&lengths, 32, 10).expect("windows");
        assert_ne!(other.batch(&tokens, 0, 4), walked[0]);
    }

    #[test]
    fn fixed_windows_repeat_their_offsets() {
        let lengths = [37, 5, 120, 64, 9, 81, 33, 50];
        let tokens = documents(&lengths);
        let windows = Windows::new(tokens.len(), 16, 3);
        assert!(!windows.reshuffles());
        let per_epoch = windows.windows_per_epoch();
        let sorted = |epoch: u64| {
            let mut rows: Vec<Vec<u32>> = (0..per_epoch)
                .map(|i| windows.batch(&tokens, epoch * per_epoch + i, 1))
                .collect();
            rows.sort();
            rows
        };
        assert_eq!(sorted(0), sorted(1));
    }
}
