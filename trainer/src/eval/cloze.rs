//! The built-in cloze task, cut from held-out documents: a context of `context`
//! tokens, and the true next `continuation` tokens among `choices` candidates. Levels:
//!
//! | task | choices | distractors |
//! |---|---|---|
//! | `cloze_easy` | 2 | spans of other held-out documents |
//! | `cloze` | 4 | spans of other held-out documents |
//! | `cloze_hard` | 4 | other spans of the SAME document (same topic and style) |
//!
//! Even tiny models beat chance on it (local continuity), while the hard level stays
//! far from the ceiling. Items are drawn from a fixed seed, so every evaluation of
//! every job on a corpus sees the same items.

use crate::eval::scoring::uniforms::Uniforms;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClozeLevel {
    pub choices: usize,
    pub same_document: bool,
}

/// Context and continuation lengths in tokens.
pub const CONTEXT: usize = 48;
pub const CONTINUATION: usize = 12;

pub fn level(task: &str) -> Option<ClozeLevel> {
    match task {
        "cloze_easy" => Some(ClozeLevel {
            choices: 2,
            same_document: false,
        }),
        "cloze" => Some(ClozeLevel {
            choices: 4,
            same_document: false,
        }),
        "cloze_hard" => Some(ClozeLevel {
            choices: 4,
            same_document: true,
        }),
        _ => None,
    }
}

/// One cloze item in tokens: (context, continuations, gold).
pub type ClozeItem = (Vec<u32>, Vec<Vec<u32>>, usize);

/// Cut `count` items from held-out documents (each without its end-of-document id).
/// Documents too short for a context and two continuations are skipped.
pub fn build(documents: &[Vec<u32>], level: ClozeLevel, count: usize, seed: u64) -> Vec<ClozeItem> {
    let span = CONTEXT + CONTINUATION;
    let minimum = if level.same_document {
        span + level.choices * CONTINUATION
    } else {
        span
    };
    let eligible: Vec<&Vec<u32>> = documents.iter().filter(|d| d.len() >= minimum).collect();
    if eligible.len() < 2 {
        return Vec::new();
    }
    let mut uniforms = Uniforms::new(seed, 0xC102E);
    let mut pick = |n: usize| ((uniforms.next_uniform() * n as f64) as usize).min(n - 1);
    (0..count)
        .map(|_| {
            let home = pick(eligible.len());
            let document = eligible[home];
            let start = pick(document.len() - span + 1);
            let context = document[start..start + CONTEXT].to_vec();
            let truth = document[start + CONTEXT..start + span].to_vec();
            let mut continuations = Vec::with_capacity(level.choices);
            while continuations.len() < level.choices - 1 {
                let source = if level.same_document {
                    document
                } else {
                    let other = pick(eligible.len() - 1);
                    eligible[if other >= home { other + 1 } else { other }]
                };
                let at = pick(source.len() - CONTINUATION + 1);
                let candidate = source[at..at + CONTINUATION].to_vec();
                // In the same document, skip spans overlapping the true continuation.
                let overlaps =
                    level.same_document && at + CONTINUATION > start + CONTEXT && at < start + span;
                if candidate != truth && !overlaps {
                    continuations.push(candidate);
                }
            }
            let gold = pick(level.choices);
            continuations.insert(gold, truth);
            (context, continuations, gold)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents() -> Vec<Vec<u32>> {
        (0..10u32)
            .map(|d| (0..200).map(|i| d * 1000 + i).collect())
            .collect()
    }

    #[test]
    fn items_hold_the_true_continuation_at_gold() {
        for task in ["cloze_easy", "cloze", "cloze_hard"] {
            let level = level(task).expect("level");
            let items = build(&documents(), level, 50, 1);
            assert_eq!(items.len(), 50);
            for (context, continuations, gold) in &items {
                assert_eq!(continuations.len(), level.choices);
                // Token ids encode (document, position): the truth continues the context.
                let last = *context.last().expect("context");
                assert_eq!(continuations[*gold][0], last + 1, "{task}");
                for (index, continuation) in continuations.iter().enumerate() {
                    assert_eq!(continuation.len(), CONTINUATION);
                    let same_document = continuation[0] / 1000 == last / 1000;
                    if index != *gold {
                        assert_eq!(
                            same_document, level.same_document,
                            "{task}: distractor source"
                        );
                    }
                }
            }
            let golds: std::collections::BTreeSet<usize> =
                items.iter().map(|item| item.2).collect();
            assert_eq!(golds.len(), level.choices, "{task}: gold positions vary");
        }
    }

    #[test]
    fn items_are_reproducible_from_the_seed() {
        let level = level("cloze").expect("level");
        assert_eq!(
            build(&documents(), level, 20, 5),
            build(&documents(), level, 20, 5)
        );
        assert_ne!(
            build(&documents(), level, 20, 5),
            build(&documents(), level, 20, 6)
        );
    }
}
