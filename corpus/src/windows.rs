//! Training windows: fixed-length slices of a token budget visited in a fresh random
//! order every epoch, so that an AR and a DLM job with the same seed see the same
//! rows in the same order.

use crate::error::CorpusError;
use crate::rng::permutation;
use std::cell::RefCell;

/// Endless epoch-after-epoch order over the windows of a budget of `n_tokens` tokens.
///
/// Window `k` covers tokens `k * seq_len .. k * seq_len + seq_len + 1`: `seq_len` inputs
/// plus one more for the shifted targets, so consecutive windows share one token.
/// Epoch `e` visits every window exactly once in a permutation drawn from `(seed, e)`
/// only, so any step can be recomputed (e.g. after a resume) without replaying earlier
/// epochs.
///
/// The current epoch's permutation is cached in a `RefCell`, so `start` and `batch` take
/// `&self` and cost O(1) amortised when called in order; a `Windows` is therefore not
/// `Sync` (give each thread its own, they are cheap to rebuild).
#[derive(Debug)]
pub struct Windows {
    n_tokens: usize,
    seq_len: usize,
    seed: u64,
    windows_per_epoch: u64,
    /// (epoch, permutation of window indices) of the last epoch asked for.
    epoch_order: RefCell<Option<(u64, Vec<usize>)>>,
}

impl Windows {
    /// # Panics
    /// When `n_tokens < seq_len + 1` (no window fits) or `seq_len == 0`; use
    /// [`Windows::try_new`] to get an error instead.
    pub fn new(n_tokens: usize, seq_len: usize, seed: u64) -> Self {
        match Self::try_new(n_tokens, seq_len, seed) {
            Ok(windows) => windows,
            Err(error) => panic!("{error}"),
        }
    }

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
            epoch_order: RefCell::new(None),
        })
    }

    pub fn windows_per_epoch(&self) -> u64 {
        self.windows_per_epoch
    }

    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// Token offset of the window at position `global_index` of the endless order.
    pub fn start(&self, global_index: u64) -> usize {
        let epoch = global_index / self.windows_per_epoch;
        let position = (global_index % self.windows_per_epoch) as usize;
        let mut cached = self.epoch_order.borrow_mut();
        let order = match &mut *cached {
            Some((cached_epoch, order)) if *cached_epoch == epoch => order,
            slot => {
                let order = permutation(self.windows_per_epoch as usize, self.seed, epoch);
                &mut slot.insert((epoch, order)).1
            }
        };
        order[position] * self.seq_len
    }

    /// The rows of optimizer step `step`: windows `step * B .. step * B + B` of the
    /// endless order, row-major.
    ///
    /// # Shapes
    /// returns (B, seq_len + 1) flattened: row b is `tokens[start .. start + seq_len + 1]`.
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
            let start = self.start(first + row);
            rows.extend_from_slice(&tokens[start..start + width]);
        }
        rows
    }
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
}
