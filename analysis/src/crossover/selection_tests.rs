//! The held-out best against hand-worked matrices, and its bias on synthetic curves.

use super::*;
use crate::curve::Point;
use crate::rng::Rng;
use Direction::{HigherBetter, LowerBetter};

/// A named case: item scores per checkpoint, direction, the expected best.
type Case = (&'static str, Vec<Vec<f64>>, Direction, Option<HeldOutBest>);

/// A named case: a side's seeds and their expected item-by-item mean.
type SideCase = (&'static str, Vec<Replicate>, Option<Vec<Vec<f64>>>);

/// Three checkpoints x four items: even items (0, 2) favour checkpoint 0, odd items
/// (1, 3) checkpoint 1. Lower better: chosen on the odd half (checkpoint 1) the even half
/// reads 2, chosen on the even half (checkpoint 0) the odd half reads 3: held out 2.5;
/// in sample, checkpoint 1's 1.5 (the first of a tie with checkpoint 2).
#[test]
fn held_out_best_cases() {
    let matrix = vec![
        vec![1.0, 3.0, 1.0, 3.0],
        vec![2.0, 1.0, 2.0, 1.0],
        vec![1.5, 1.5, 1.5, 1.5],
    ];
    let with_gap = vec![vec![1.0, 3.0, f64::NAN, 3.0], vec![2.0, 1.0, 2.0, 1.0]];
    let expected = |in_sample: f64, held_out: f64, items: usize| HeldOutBest {
        in_sample,
        held_out,
        items,
    };
    let cases: [Case; 5] = [
        (
            "lower better",
            matrix.clone(),
            LowerBetter,
            Some(expected(1.5, 2.5, 4)),
        ),
        // Higher better: chosen on odd, checkpoint 0, even reads 1; chosen on even,
        // checkpoint 1, odd reads 1; in sample checkpoint 0's 2.
        (
            "higher better",
            matrix.clone(),
            HigherBetter,
            Some(expected(2.0, 1.0, 4)),
        ),
        // An unscored item is left out of its half's mean: checkpoint 0's even half is
        // item 0 alone (1), its full mean (1 + 3 + 3) / 3.
        (
            "unscored item",
            with_gap,
            LowerBetter,
            Some(expected(1.5, 2.5, 4)),
        ),
        (
            "three items",
            vec![vec![1.0, 2.0, 3.0]; 2],
            LowerBetter,
            None,
        ),
        ("no checkpoints", Vec::new(), LowerBetter, None),
    ];
    for (name, scores, direction, want) in cases {
        let got = held_out_best(&scores, direction);
        assert_eq!(got, want, "{name}");
    }
    let best = expected(1.5, 2.5, 4);
    assert_eq!(best.optimism(LowerBetter), 1.0);
}

#[test]
fn side_scores_average_seeds_item_by_item() {
    let replicate = |seed: u64, xs: &[f64], items: Vec<Vec<f64>>| Replicate {
        seed,
        curve: xs.iter().map(|&x| Point::new(x, 0.0, 0.0)).collect(),
        items: Some(items),
        other_axes: Vec::new(),
    };
    let a = replicate(0, &[1.0, 2.0], vec![vec![1.0, 2.0], vec![3.0, f64::NAN]]);
    let b = replicate(1, &[1.0, 2.0], vec![vec![3.0, 4.0], vec![5.0, 6.0]]);
    let shifted = replicate(2, &[1.0, 4.0], vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
    let cases: [SideCase; 4] = [
        (
            "two seeds",
            vec![a.clone(), b.clone()],
            Some(vec![vec![2.0, 3.0], vec![4.0, 6.0]]),
        ),
        ("other checkpoints", vec![a.clone(), shifted], None),
        ("no item scores", vec![Replicate { items: None, ..a }], None),
        ("no seeds", Vec::new(), None),
    ];
    for (name, side, want) in cases {
        assert_eq!(side_scores(&side), want, "{name}");
    }
}

/// Issue 29: synthetic curves with a flat optimum (population loss 3 + 0.002 (k - 12)^2
/// over 20 checkpoints), 100 items with persistent difficulties (sd 0.5) and per-score
/// noise of sd 0.3 (AR-like) or 1.0 (DLM-like, Monte Carlo). Over 300 studies the
/// in-sample best reads below its own checkpoint's population value (the selection
/// bias), more for the noisier side; the held-out best is within 3 standard errors of
/// the population value of the checkpoints it chose.
#[test]
fn held_out_best_removes_the_selection_bias() {
    let (checkpoints, items, studies) = (20usize, 100usize, 300u64);
    let population = |k: usize| 3.0 + 0.002 * (k as f64 - 12.0).powi(2);
    let mut optimism = Vec::new();
    for noise in [0.3, 1.0] {
        let (mut in_sample_bias, mut held_out_bias, mut squares) = (0.0, 0.0, 0.0);
        for study in 0..studies {
            let mut rng = Rng::new(study);
            let difficulty: Vec<f64> = (0..items).map(|_| 0.5 * rng.normal()).collect();
            let scores: Vec<Vec<f64>> = (0..checkpoints)
                .map(|k| {
                    difficulty
                        .iter()
                        .map(|d| population(k) + d + noise * rng.normal())
                        .collect()
                })
                .collect();
            let best = held_out_best(&scores, LowerBetter).unwrap_or_else(|| panic!("none"));
            // The checkpoints each choice made, and their population values.
            let chosen = |keep: &dyn Fn(usize) -> bool| {
                let means: Vec<f64> = scores.iter().map(|s| mean_where(s, keep)).collect();
                best_index(&means, LowerBetter).map_or(f64::NAN, population)
            };
            let in_sample_truth = chosen(&|_| true);
            let held_out_truth = 0.5 * (chosen(&|i| i % 2 == 0) + chosen(&|i| i % 2 == 1));
            in_sample_bias += (best.in_sample - in_sample_truth) / studies as f64;
            let error = best.held_out - held_out_truth;
            held_out_bias += error / studies as f64;
            squares += error * error / studies as f64;
        }
        let standard_error = ((squares - held_out_bias.powi(2)) / studies as f64).sqrt();
        eprintln!(
            "noise {noise}: in-sample best biased by {in_sample_bias:.4}, held out by {held_out_bias:.4} (standard error {standard_error:.4})"
        );
        assert!(
            held_out_bias.abs() < 3.0 * standard_error,
            "noise {noise}: held out biased by {held_out_bias:.4} (se {standard_error:.4})"
        );
        assert!(
            in_sample_bias < -3.0 * standard_error,
            "noise {noise}: in-sample bias {in_sample_bias:.4} not shown"
        );
        optimism.push(-in_sample_bias);
    }
    assert!(optimism[1] > 2.0 * optimism[0], "{optimism:?}");
}
