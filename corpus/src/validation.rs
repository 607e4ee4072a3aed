//! Which held-out windows the validation loss reads.
//!
//! `spread` (the default) takes windows from every held-out document in turn, so that a
//! validation loss averages over the whole held-out set rather than over whichever few
//! documents happen to come first; `first` keeps the old behaviour (the first
//! `max_tokens` tokens of the held-out stream), so the difference can be measured.

use crate::rng::SplitMix64;
use jobspec::ValWindows;

/// Start offsets, ascending, into the held-out stream (the documents of
/// `document_lengths` concatenated) of at most `max_tokens / seq_len` windows of
/// `seq_len + 1` tokens (inputs plus shifted targets).
///
/// `Spread`: document d gets a seeded first offset `r_d` in `[0, min(seq_len, len_d))`
/// and candidate windows at `r_d + j * seq_len` while they start inside it; windows
/// are taken round-robin, every document's `j = 0` first, then `j = 1`, and so on, so
/// `min(documents, windows)` documents contribute one each before any contributes
/// two. A window that starts near the end of a short document runs on into the next,
/// as training windows do. The choice depends on `seed` and the lengths only: the same
/// for every job on a corpus and every milestone.
pub fn validation_starts(
    document_lengths: &[usize],
    seq_len: usize,
    max_tokens: usize,
    mode: ValWindows,
    seed: u64,
) -> Vec<usize> {
    let total: usize = document_lengths.iter().sum();
    if seq_len == 0 || total < seq_len + 1 {
        return Vec::new();
    }
    let last_start = total - seq_len - 1; // a window must end inside the stream
    match mode {
        ValWindows::First => {
            let usable = total.min(max_tokens + 1);
            let count = usable.saturating_sub(1) / seq_len;
            (0..count).map(|index| index * seq_len).collect()
        }
        ValWindows::Spread => {
            let wanted = (max_tokens / seq_len).max(1);
            let mut rng = SplitMix64::for_stream(seed, 0x0FA1_1DA7);
            // (document start, document length, first offset) per document.
            let mut documents = Vec::with_capacity(document_lengths.len());
            let mut start = 0;
            for &length in document_lengths {
                let offset = rng.below(length.clamp(1, seq_len));
                documents.push((start, length, offset));
                start += length;
            }
            let mut starts = Vec::with_capacity(wanted);
            let mut round = 0;
            while starts.len() < wanted {
                let mut any = false;
                for &(begin, length, offset) in &documents {
                    let within = offset + round * seq_len;
                    if within >= length || begin + within > last_start {
                        continue;
                    }
                    any = true;
                    starts.push(begin + within);
                    if starts.len() == wanted {
                        break;
                    }
                }
                if !any {
                    break;
                }
                round += 1;
            }
            starts.sort_unstable();
            starts
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document each start falls in.
    fn documents_hit(lengths: &[usize], starts: &[usize]) -> std::collections::BTreeSet<usize> {
        let mut ends = Vec::new();
        let mut end = 0;
        for &length in lengths {
            end += length;
            ends.push(end);
        }
        starts
            .iter()
            .map(|&start| ends.partition_point(|&end| end <= start))
            .collect()
    }

    #[test]
    fn first_takes_the_head_of_the_stream() {
        // (lengths, seq_len, max_tokens, expected starts)
        let cases: [(&[usize], usize, usize, &[usize]); 4] = [
            (&[100], 10, 30, &[0, 10, 20]),
            (&[100], 10, 1000, &[0, 10, 20, 30, 40, 50, 60, 70, 80]),
            (&[5, 5], 10, 100, &[]),
            (&[6, 5], 10, 100, &[0]),
        ];
        for (lengths, seq_len, max_tokens, expected) in cases {
            assert_eq!(
                validation_starts(lengths, seq_len, max_tokens, ValWindows::First, 0),
                expected,
                "{lengths:?} {seq_len} {max_tokens}"
            );
        }
    }

    #[test]
    fn spread_windows_come_from_many_documents() {
        // Documents of very different lengths, as in the demo corpus (speeches and
        // short encyclopaedia leads).
        let lengths: Vec<usize> = (0..60)
            .map(|d| if d % 10 == 0 { 5000 } else { 40 + 13 * d })
            .collect();
        let total: usize = lengths.iter().sum();
        for (seq_len, max_tokens) in [(32, 640), (32, 3200), (128, 8192), (16, 100_000)] {
            let starts = validation_starts(&lengths, seq_len, max_tokens, ValWindows::Spread, 7);
            let windows = max_tokens / seq_len;
            assert!(starts.len() <= windows);
            assert!(
                starts.windows(2).all(|pair| pair[0] < pair[1]),
                "distinct, sorted"
            );
            assert!(starts.iter().all(|&start| start + seq_len < total));
            let distinct = documents_hit(&lengths, &starts).len();
            assert!(
                2 * distinct >= lengths.len().min(windows),
                "{distinct} documents for {windows} windows of {seq_len}"
            );
            let first = validation_starts(&lengths, seq_len, max_tokens, ValWindows::First, 7);
            if windows < 60 {
                assert!(
                    documents_hit(&lengths, &first).len() < distinct,
                    "spread should beat the head of the stream"
                );
            }
            // Seeded: the same every time, another seed moves the offsets.
            assert_eq!(
                starts,
                validation_starts(&lengths, seq_len, max_tokens, ValWindows::Spread, 7)
            );
            assert_ne!(
                starts,
                validation_starts(&lengths, seq_len, max_tokens, ValWindows::Spread, 8)
            );
        }
    }

    #[test]
    fn spread_stops_when_documents_run_out() {
        let starts = validation_starts(&[50, 50], 10, 10_000, ValWindows::Spread, 1);
        assert!(!starts.is_empty() && starts.len() <= 9, "{starts:?}");
        assert!(starts.iter().all(|&start| start + 10 < 100));
        assert!(validation_starts(&[5], 10, 100, ValWindows::Spread, 1).is_empty());
    }
}
