//! Coverage of the crossover intervals on simulated studies with a known answer.

use super::*;
use crate::crossover::curve_from;

/// AR rises fast and then slowly overfits; the DLM rises slower but higher (the shape
/// of the study's accuracy curves). Accuracy, higher is better.
fn ar_truth(x: f64) -> f64 {
    0.6 - 0.3 * (-x / 3.0).exp() - 0.004 * x
}

fn dlm_truth(x: f64) -> f64 {
    0.7 - 0.5 * (-x / 8.0).exp()
}

const EVAL_XS: std::ops::RangeInclusive<u32> = 1..=20;

/// The crossing of the generating curves, from a grid fine enough to be exact.
fn true_crossing() -> f64 {
    let fine: Vec<f64> = (0..=20_000)
        .map(|i| 1.0 + f64::from(i) * 19.0 / 20_000.0)
        .collect();
    let d: Curve = fine
        .iter()
        .map(|&x| Point::new(x, dlm_truth(x), 0.0))
        .collect();
    let a: Curve = fine
        .iter()
        .map(|&x| Point::new(x, ar_truth(x), 0.0))
        .collect();
    match find_crossing(&d, &a, Direction::HigherBetter) {
        Outcome::Crossed { x } => x,
        other => panic!("generating curves must cross, got {other:?}"),
    }
}

fn noisy(truth: fn(f64) -> f64, sd: f64, rng: &mut Rng) -> Curve {
    EVAL_XS
        .map(|x| {
            let x = f64::from(x);
            Point::new(x, truth(x) + sd * rng.normal(), sd)
        })
        .collect()
}

/// Share of simulated studies whose 90% interval covers the true crossing.
fn coverage(seeds: usize, sd: f64, studies: u64) -> (f64, f64) {
    let truth = true_crossing();
    let mut covered = 0;
    let mut width = 0.0;
    for study in 0..studies {
        let mut rng = Rng::new(1000 + study);
        let dlm: Vec<Curve> = (0..seeds).map(|_| noisy(dlm_truth, sd, &mut rng)).collect();
        let ar: Vec<Curve> = (0..seeds).map(|_| noisy(ar_truth, sd, &mut rng)).collect();
        let settings = Settings {
            smooth: 1,
            draws: 200,
            seed: study,
        };
        let estimate = estimate(&dlm, &ar, Direction::HigherBetter, settings);
        covered += usize::from(estimate.low <= truth && truth <= estimate.high);
        width += estimate.high - estimate.low;
    }
    (covered as f64 / studies as f64, width / studies as f64)
}

#[test]
fn seed_bootstrap_interval_covers_the_true_crossing() {
    let (share, width) = coverage(8, 0.02, 200);
    assert!(share >= 0.8, "coverage {share}, mean width {width}");
    assert!(width < 4.0, "interval too wide to say anything: {width}");
}

#[test]
fn stderr_bootstrap_interval_covers_the_true_crossing() {
    let (share, width) = coverage(1, 0.01, 200);
    assert!(share >= 0.8, "coverage {share}, mean width {width}");
    assert!(width < 4.0, "interval too wide to say anything: {width}");
}

#[test]
fn method_follows_the_number_of_seeds() {
    let one = vec![curve_from(&[(1.0, 0.1), (2.0, 0.9)])];
    let two = vec![one[0].clone(), one[0].clone()];
    let flat = vec![curve_from(&[(1.0, 0.5), (2.0, 0.5)])];
    let flat2 = vec![flat[0].clone(), flat[0].clone()];
    let settings = Settings {
        smooth: 1,
        draws: 10,
        seed: 1,
    };
    let up = Direction::HigherBetter;
    assert_eq!(estimate(&two, &flat2, up, settings).method, Method::Seeds);
    assert_eq!(estimate(&one, &flat2, up, settings).method, Method::Stderr);
    let none = Settings {
        draws: 0,
        ..settings
    };
    let estimate_none = estimate(&one, &flat, up, none);
    assert_eq!(estimate_none.method, Method::None);
    assert!(estimate_none.median.is_nan());
}

#[test]
fn never_crossing_draws_give_an_infinite_median() {
    let dlm = vec![curve_from(&[(1.0, 0.1), (2.0, 0.2)]); 3];
    let ar = vec![curve_from(&[(1.0, 0.5), (2.0, 0.6)]); 3];
    let estimate = estimate(&dlm, &ar, Direction::HigherBetter, Settings::default());
    assert!(matches!(estimate.outcome, Outcome::NotReached { .. }));
    assert!(estimate.median.is_infinite() && estimate.low.is_infinite());
    assert_eq!(estimate.share_crossed, 0.0);
}

#[test]
fn draws_are_reproducible_from_the_seed() {
    let mut rng = Rng::new(7);
    let dlm: Vec<Curve> = (0..3).map(|_| noisy(dlm_truth, 0.02, &mut rng)).collect();
    let ar: Vec<Curve> = (0..3).map(|_| noisy(ar_truth, 0.02, &mut rng)).collect();
    let settings = Settings {
        smooth: 3,
        draws: 100,
        seed: 42,
    };
    let a = estimate(&dlm, &ar, Direction::HigherBetter, settings);
    let b = estimate(&dlm, &ar, Direction::HigherBetter, settings);
    assert_eq!(a, b);
}

#[test]
fn quantile_cases() {
    let values = [1.0, 2.0, 3.0, 4.0, f64::INFINITY];
    assert_eq!(quantile(&values, 0.5), 3.0);
    assert_eq!(quantile(&values, 0.25), 2.0);
    assert_eq!(quantile(&values, 0.1), 1.4);
    assert!(quantile(&values, 0.95).is_infinite());
    assert!(quantile(&[], 0.5).is_nan());
}

#[test]
fn rng_normal_has_unit_variance() {
    let mut rng = Rng::new(3);
    let n = 20_000;
    let samples: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let mean = samples.iter().sum::<f64>() / n as f64;
    let variance = samples.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    assert!(
        mean.abs() < 0.03 && (variance - 1.0).abs() < 0.05,
        "{mean} {variance}"
    );
}
