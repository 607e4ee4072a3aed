//! The held-out split: whole documents, chosen by a seeded shuffle, so that no
//! unique-token budget ever touches validation text; the remaining documents in a
//! second seeded order (or corpus order), which budgets are prefixes of.

use crate::error::CorpusError;
use crate::rng::permutation;

/// Document indices: `val` in the order they were drawn, `train` in budget order.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub val: Vec<usize>,
    pub train: Vec<usize>,
}

/// Hold out documents in a shuffled order (seeded by `split_seed`) until they hold at
/// least `val_tokens` tokens; the rest are for training, in a second seeded order
/// when `shuffle_train` (so that every budget, a prefix of it, samples the whole
/// corpus) or in corpus order otherwise. `lengths[d]` is document d's length in
/// tokens (its eos included).
pub fn split(
    lengths: &[usize],
    val_tokens: u64,
    split_seed: u64,
    shuffle_train: bool,
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
    let order = permutation(lengths.len(), split_seed, 0);
    let mut held_out = 0u64;
    let mut is_val = vec![false; lengths.len()];
    let mut val = Vec::new();
    for document in order {
        if held_out >= val_tokens {
            break;
        }
        held_out += lengths[document] as u64;
        is_val[document] = true;
        val.push(document);
    }
    // Stream 1 of the split seed orders the training documents.
    let train_order = if shuffle_train {
        permutation(lengths.len(), split_seed, 1)
    } else {
        (0..lengths.len()).collect()
    };
    let train: Vec<usize> = train_order
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_is_disjoint_large_enough_and_seeded() {
        let lengths: Vec<usize> = (0..50).map(|d| 10 + d % 7).collect();
        for (val_tokens, seed) in [(0, 0), (1, 0), (100, 0), (100, 1), (300, 5)] {
            let result = split(&lengths, val_tokens, seed, false).expect("split");
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
                split(&lengths, val_tokens, seed, false).expect("split"),
                result
            );
            let shuffled = split(&lengths, val_tokens, seed, true).expect("split");
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
            split(&lengths, 100, 0, true).expect("split").val,
            split(&lengths, 100, 1, true).expect("split").val
        );
    }

    #[test]
    fn impossible_splits_say_why() {
        let lengths = [10, 20, 30];
        let error = split(&lengths, 61, 0, true)
            .expect_err("an error")
            .to_string();
        assert!(
            error.contains("val_tokens = 61") && error.contains("only 60 tokens in 3 documents"),
            "{error}"
        );
        let error = split(&lengths, 60, 0, true)
            .expect_err("an error")
            .to_string();
        assert!(error.contains("leaving none to train on"), "{error}");
    }
}
