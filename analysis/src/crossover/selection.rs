//! The early-stopped best checkpoint, reported on items it was not chosen on (issue 29).
//!
//! A side's best checkpoint is the one whose mean over the validation items is best,
//! and its value is that same mean: the best of several noisy means, so it is
//! optimistic (the winner's curse of model selection; Cawley & Talbot 2010, JMLR 11,
//! "On over-fitting in model selection"), and more so for the noisier side (the DLM's
//! Monte Carlo ELBO) and for flat curves with many checkpoints near the optimum.
//!
//! Two-fold cross-fitting removes it: split the items into two halves (alternate
//! positions in item-id order, so both halves span the item list), choose the best
//! checkpoint on half A and read half B's mean there, choose on B and read A, and
//! average the two readings. Each reading is a mean over items the choice never saw,
//! so it is unbiased for the chosen checkpoint's value on the item population. It needs
//! per-item scores (eval_items.csv) at every checkpoint, on at least `MIN_ITEMS` items.

use crate::curve::Direction;
use crate::pairs::replicates::Replicate;

/// Items below which halves of one item are too noisy to choose on.
pub const MIN_ITEMS: usize = 4;

/// A side's best checkpoint value chosen and read on the same items (`in_sample`), and
/// chosen on one half of the items and read on the other (`held_out`, cross-fitted).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeldOutBest {
    pub in_sample: f64,
    pub held_out: f64,
    /// Items scored (both halves together).
    pub items: usize,
}

impl HeldOutBest {
    /// How much better the in-sample best looks than the held-out one (positive when
    /// optimistic), in the metric's units.
    pub fn optimism(&self, direction: Direction) -> f64 {
        direction.sign() * (self.in_sample - self.held_out)
    }
}

/// The mean of the finite scores at positions `keep` selects; NaN without one.
fn mean_where(scores: &[f64], keep: impl Fn(usize) -> bool) -> f64 {
    let (sum, count) = scores
        .iter()
        .enumerate()
        .filter(|&(i, s)| keep(i) && s.is_finite())
        .fold((0.0, 0usize), |(sum, count), (_, s)| (sum + s, count + 1));
    if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    }
}

/// Index of the best finite value (the first on ties).
fn best_index(values: &[f64], direction: Direction) -> Option<usize> {
    values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .reduce(|best, candidate| {
            if direction.better(*candidate.1, *best.1) {
                candidate
            } else {
                best
            }
        })
        .map(|(k, _)| k)
}

/// In-sample and cross-fitted held-out best of `scores` (per checkpoint, each item's
/// score; NaN where an item was not scored). None with fewer than `MIN_ITEMS` items or
/// without a checkpoint where both halves have scores.
pub fn held_out_best(scores: &[Vec<f64>], direction: Direction) -> Option<HeldOutBest> {
    let items = scores.iter().map(Vec::len).max()?;
    if items < MIN_ITEMS {
        return None;
    }
    let half = |parity: usize| -> Vec<f64> {
        scores
            .iter()
            .map(|s| mean_where(s, |i| i % 2 == parity))
            .collect()
    };
    let (even, odd) = (half(0), half(1));
    let all: Vec<f64> = scores.iter().map(|s| mean_where(s, |_| true)).collect();
    let on_odd = even[best_index(&odd, direction)?];
    let on_even = odd[best_index(&even, direction)?];
    let held_out = 0.5 * (on_odd + on_even);
    Some(HeldOutBest {
        in_sample: all[best_index(&all, direction)?],
        held_out,
        items,
    })
    .filter(|b| b.held_out.is_finite())
}

/// A side's item scores per checkpoint, averaged over its seeds item by item; None
/// when a seed lacks item scores or the seeds were evaluated at different checkpoints
/// (then no single checkpoint is "the best" of the seed mean).
pub fn side_scores(side: &[Replicate]) -> Option<Vec<Vec<f64>>> {
    let first = side.first()?;
    let xs = |r: &Replicate| r.curve.iter().map(|p| p.x).collect::<Vec<f64>>();
    if side.iter().any(|r| r.items.is_none() || xs(r) != xs(first)) {
        return None;
    }
    let matrices: Vec<&Vec<Vec<f64>>> = side.iter().filter_map(|r| r.items.as_ref()).collect();
    let checkpoints = matrices.first()?.len();
    let mean = (0..checkpoints)
        .map(|k| {
            let items = matrices.iter().map(|m| m[k].len()).max().unwrap_or(0);
            (0..items)
                .map(|i| {
                    let values: Vec<f64> = matrices
                        .iter()
                        .filter_map(|m| m[k].get(i).copied())
                        .collect();
                    mean_where(&values, |_| true)
                })
                .collect()
        })
        .collect();
    Some(mean)
}

#[cfg(test)]
#[path = "selection_tests.rs"]
mod tests;
