//! The law against the paper's check values, its gradient against finite differences,
//! and recovery of known parameters from synthetic studies.

use super::*;
use crate::fits::law_bootstrap::{bootstrap, noise_spread, pure_error};
use crate::rng::Rng;

/// Muennighoff et al.'s fitted R_D* (AR) and the paper's worked values (section 5):
/// 4 epochs are worth 3.73 U, 16 epochs 10.6 U, and the cap is about 16.4 U.
#[test]
fn effective_data_matches_the_paper() {
    let law = Law {
        e: 1.0,
        b: 1.0,
        beta: 0.35,
        rd: 15.39,
    };
    for (epochs, expected) in [(1.0, 1.0), (4.0, 3.73), (16.0, 10.58), (1e6, 16.39)] {
        let ratio = law.effective_data(1e9, epochs) / 1e9;
        assert!(
            (ratio - expected).abs() < 0.01,
            "{epochs} epochs: D' = {ratio} U, expected {expected} U"
        );
    }
    // Less than one epoch: all fresh, D' = D.
    assert!((law.effective_data(1e9, 0.5) - 0.5e9).abs() < 1.0);
    // A huge R_D*: repeated data as good as new.
    let fresh = Law { rd: 1e9, ..law };
    assert!((fresh.effective_data(1e6, 64.0) / 64e6 - 1.0).abs() < 1e-3);
}

#[test]
fn gradient_matches_finite_differences() {
    let theta = [0.5, 4.0, 0.4, 3.0];
    for (unique, epochs) in [(1e5, 1.0), (1e5, 7.0), (3e6, 300.0), (2e4, 0.5)] {
        let (_, gradient) = log_loss(&theta, unique, epochs);
        for (i, &analytic) in gradient.iter().enumerate() {
            let h = 1e-6;
            let mut up = theta;
            let mut down = theta;
            up[i] += h;
            down[i] -= h;
            let numeric =
                (log_loss(&up, unique, epochs).0 - log_loss(&down, unique, epochs).0) / (2.0 * h);
            assert!(
                (numeric - analytic).abs() < 1e-6,
                "d/dtheta[{i}] at ({unique}, {epochs}): {analytic} vs {numeric}"
            );
        }
    }
}

#[test]
fn huber_is_quadratic_then_linear() {
    let d = HUBER_DELTA;
    for (residual, cost, slope) in [
        (0.0, 0.0, 0.0),
        (0.5 * d, 0.125, 0.5),
        (-d, 0.5, -1.0),
        (3.0 * d, 2.5, 1.0),
    ] {
        let (c, s) = huber(residual);
        assert!((c / (d * d) - cost).abs() < 1e-9, "{residual}: cost {c}");
        assert!((s / d - slope).abs() < 1e-9, "{residual}: slope {s}");
    }
}

/// Budgets and epoch counts of the synthetic studies: R_D* = 500 only shows once the
/// repeats reach the hundreds, so the epochs run to 2048.
const BUDGETS: [f64; 3] = [1e5, 3e5, 1e6];
const EPOCHS: [f64; 7] = [1.0, 2.0, 8.0, 32.0, 128.0, 512.0, 2048.0];

/// One synthetic study of `law`: every budget x epoch count, each loss times
/// exp(noise * z), reported with stderr = noise * loss.
fn study(law: &Law, noise: f64, rng: &mut Rng) -> Vec<LossPoint> {
    let mut points = Vec::new();
    for unique in BUDGETS {
        for epochs in EPOCHS {
            let loss = law.loss(unique, epochs) * (noise * rng.normal()).exp();
            points.push(LossPoint {
                unique_tokens: unique,
                epochs,
                loss,
                stderr: noise * loss,
            });
        }
    }
    points
}

/// AR-like (R_D* = 15, Muennighoff et al.) and DLM-like (about 500, Prabhudesai et
/// al.) laws with the same E, B and beta.
fn laws() -> [Law; 2] {
    let ar = Law {
        e: 1.6,
        b: 120.0,
        beta: 0.3,
        rd: 15.0,
    };
    [ar, Law { rd: 500.0, ..ar }]
}

/// Relative noise of 0.3% on each loss: about 0.01 nats at a loss of 3, the size of a
/// validation loss's standard error over a few hundred thousand tokens.
const NOISE: f64 = 0.003;

#[test]
fn recovers_r_d_star_and_beta() {
    for truth in laws() {
        let mut rng = Rng::new(7);
        let points = study(&truth, NOISE, &mut rng);
        assert_eq!(missing(&points), None);
        let fitted = fit(&points).unwrap_or_else(|| panic!("no fit for {truth:?}"));
        let law = fitted.law;
        assert!(
            (law.rd / truth.rd - 1.0).abs() < 0.1,
            "R_D* {} vs true {}",
            law.rd,
            truth.rd
        );
        assert!(
            (law.beta - truth.beta).abs() < 0.1,
            "beta {} vs true {}",
            law.beta,
            truth.beta
        );
        assert!(fitted.residual_rms < 2.0 * NOISE, "{fitted:?}");
    }
}

/// The 90% interval covers the true R_D* and beta in at least 80% of replicate studies,
/// and the estimates are within 10% (R_D*) and 0.1 (beta) in at least 90% of them.
#[test]
fn interval_covers_the_truth() {
    let replicates = 50;
    for truth in laws() {
        let (mut covered_rd, mut covered_beta, mut close, mut close_beta) = (0, 0, 0, 0);
        for replicate in 0..replicates {
            let mut rng = Rng::new(1000 + replicate);
            let points = study(&truth, NOISE, &mut rng);
            let Some(fitted) = fit(&points) else {
                continue;
            };
            let Some(interval) = bootstrap(&points, &fitted, 100, replicate) else {
                continue;
            };
            covered_rd += usize::from(interval.rd.0 <= truth.rd && truth.rd <= interval.rd.1);
            covered_beta +=
                usize::from(interval.beta.0 <= truth.beta && truth.beta <= interval.beta.1);
            close += usize::from((fitted.law.rd / truth.rd - 1.0).abs() < 0.1);
            close_beta += usize::from((fitted.law.beta - truth.beta).abs() < 0.1);
        }
        eprintln!(
            "R_D* = {}: interval covered R_D* {covered_rd}/{replicates}, beta {covered_beta}/{replicates}; R_D* within 10% in {close}/{replicates}, beta within 0.1 in {close_beta}/{replicates}",
            truth.rd
        );
        let share = |n: usize| n as f64 / replicates as f64;
        assert!(
            share(covered_rd) >= 0.8,
            "R_D* coverage {covered_rd}/{replicates}"
        );
        assert!(
            share(covered_beta) >= 0.8,
            "beta coverage {covered_beta}/{replicates}"
        );
    }
}

#[test]
fn what_a_fit_needs() {
    let point = |unique: f64, epochs: f64| LossPoint {
        unique_tokens: unique,
        epochs,
        loss: 3.0,
        stderr: f64::NAN,
    };
    let grid = |budgets: &[f64], epochs: &[f64]| -> Vec<LossPoint> {
        budgets
            .iter()
            .flat_map(|&u| epochs.iter().map(move |&e| point(u, e)))
            .collect()
    };
    let cases: [(Vec<LossPoint>, Option<&str>); 5] = [
        (grid(&[1e5, 2e5, 4e5], &[1.0, 4.0, 16.0]), None),
        (
            grid(&[1e5, 2e5], &[1.0, 4.0, 16.0]),
            Some("2 budget(s) x 3 epoch count(s) (6 run(s))"),
        ),
        (
            grid(&[1e5, 2e5, 4e5], &[4.0]),
            Some("3 budget(s) x 1 epoch count(s) (3 run(s))"),
        ),
        (
            grid(&[1e5], &[4.0]),
            Some("1 budget(s) x 1 epoch count(s) (1 run(s))"),
        ),
        (
            Vec::new(),
            Some("0 budget(s) x 0 epoch count(s) (0 run(s))"),
        ),
    ];
    for (points, expected) in cases {
        assert_eq!(missing(&points).as_deref(), expected);
    }
}

#[test]
fn degenerate_points_do_not_panic() {
    let nan = LossPoint {
        unique_tokens: 1e5,
        epochs: 4.0,
        loss: f64::NAN,
        stderr: f64::NAN,
    };
    assert!(usable(&[nan]).is_empty());
    assert!(fit(&[]).is_none());
    // Identical points: the fit may converge anywhere, but must not panic.
    let same = vec![LossPoint { loss: 3.0, ..nan }; 6];
    let _ = fit(&same).map(|f| bootstrap(&same, &f, 5, 0));
}

/// Issue 29: R_D* needs repetition varied at a fixed budget, at two budgets or more.
/// `sweeps/study-1b.yaml`'s zip (unique x epochs = 96B every time) has 5 budgets and 5
/// epoch counts, which the count check passes, but no budget at two epoch counts.
#[test]
fn r_d_star_needs_a_crossed_design() {
    let design = |pairs: &[(f64, f64)]| -> Vec<LossPoint> {
        pairs
            .iter()
            .map(|&(unique_tokens, epochs)| LossPoint {
                unique_tokens,
                epochs,
                loss: 3.0,
                stderr: f64::NAN,
            })
            .collect()
    };
    let zip = design(&[
        (0.5e9, 192.0),
        (1e9, 96.0),
        (1.5e9, 64.0),
        (10e9, 9.6),
        (96e9, 1.0),
    ]);
    let grid: Vec<(f64, f64)> = [1e5, 3e5, 1e6]
        .iter()
        .flat_map(|&u| [1.0, 4.0, 16.0, 64.0].map(|e| (u, e)))
        .collect();
    // One budget crossed, the others single: R_D* rests on one budget's repetition.
    let one_crossed = design(&[(1e5, 1.0), (1e5, 8.0), (3e5, 2.0), (1e6, 4.0), (3e6, 8.0)]);
    // Two budgets at two epoch counts each, plus a third budget: the minimum.
    let two_crossed = design(&[(1e5, 1.0), (1e5, 8.0), (3e5, 2.0), (3e5, 8.0), (1e6, 4.0)]);
    let cases: [(&str, Vec<LossPoint>, Option<&str>); 4] = [
        (
            "zip",
            zip,
            Some("0 of 5 budget(s) have runs at 2 or more epoch counts"),
        ),
        ("3 x 4 grid", design(&grid), None),
        (
            "one budget crossed",
            one_crossed,
            Some("add runs at a second epoch count"),
        ),
        ("two budgets crossed", two_crossed, None),
    ];
    for (name, points, expected) in cases {
        assert!(missing(&points).is_none(), "{name}: the counts alone pass");
        let found = unidentified(&points);
        match (expected, &found) {
            (None, None) => {}
            (Some(text), Some(line)) => assert!(line.contains(text), "{name}: {line}"),
            _ => panic!("{name}: {found:?}"),
        }
    }
}

/// Issue 29: a misspecified study. AR's loss follows the law with R_D* = 15 plus an
/// overfitting rise 0.03 (1e5 / U)^0.5 ln(epochs / 8)^2 beyond 8 epochs (0.9 nats at
/// 2048 epochs on the smallest budget), which L = E + B / D'^beta cannot follow. The
/// interval must cover what the fit estimates, the law the Huber fit converges to on
/// this design as the noise averages out (a fit to 200 noisy copies of the design,
/// `pseudo_truth`), in at least 80% of the studies. With two seeds per cell (the pure
/// error measures the noise apart from the misfit) it must also be at most 0.2 wide in
/// ln R_D* (the estimate's own 5-95% spread is about 0.08); the earlier parametric
/// bootstrap (redrawn around the fitted curve with sd = max(stderr, residual RMS))
/// covered 40/40 at 1.17, 15 times the spread. With one seed per cell the residual RMS
/// stands in for the seed noise a stderr leaves out: it must still cover, wider.
/// Neither covers the generating R_D* = 15: the target is 8.9.
#[test]
fn interval_covers_a_misspecified_study() {
    let truth = laws()[0];
    let rise = |unique: f64, epochs: f64| {
        0.03 * (1e5 / unique).sqrt() * (epochs / 8.0).ln().max(0.0).powi(2)
    };
    let exact: Vec<LossPoint> = BUDGETS
        .iter()
        .flat_map(|&u| EPOCHS.map(|e| (u, e)))
        .map(|(unique_tokens, epochs)| LossPoint {
            unique_tokens,
            epochs,
            loss: truth.loss(unique_tokens, epochs) + rise(unique_tokens, epochs),
            stderr: 0.0,
        })
        .collect();
    let target = pseudo_truth(&exact).law;
    assert!((target.rd / 8.9 - 1.0).abs() < 0.05, "{target:?}");
    // (seeds per cell, studies) -> (covered, mean width in ln R_D*)
    let study = |seeds: usize, replicates: u64| {
        let (mut covered, mut width) = (0, 0.0);
        for replicate in 0..replicates {
            let mut rng = Rng::new(5000 + replicate);
            let points: Vec<LossPoint> = (0..seeds)
                .flat_map(|_| exact.iter())
                .map(|p| {
                    let loss = p.loss * (NOISE * rng.normal()).exp();
                    LossPoint {
                        loss,
                        stderr: NOISE * loss,
                        ..*p
                    }
                })
                .collect();
            let fitted = fit(&points).unwrap_or_else(|| panic!("study {replicate}: no fit"));
            let interval = bootstrap(&points, &fitted, 40, replicate)
                .unwrap_or_else(|| panic!("study {replicate}: no interval"));
            covered += usize::from(interval.rd.0 <= target.rd && target.rd <= interval.rd.1);
            width += (interval.rd.1 / interval.rd.0).ln() / replicates as f64;
        }
        eprintln!(
            "misspecified, {seeds} seed(s): R_D* {:.2} covered {covered}/{replicates}, mean width {width:.3} in ln R_D*",
            target.rd
        );
        (covered as f64 / replicates as f64, width)
    };
    let (coverage, width) = study(2, 30);
    assert!(coverage >= 0.8, "two seeds: coverage {coverage}");
    assert!(width <= 0.2, "two seeds: mean width {width:.3} in ln R_D*");
    let (coverage, one_seed_width) = study(1, 15);
    assert!(coverage >= 0.8, "one seed: coverage {coverage}");
    assert!(
        one_seed_width > width,
        "one seed per cell cannot be narrower than two: {one_seed_width:.3} vs {width:.3}"
    );
}

/// The law a Huber fit converges to on the design of `exact` as the noise averages
/// out: the fit to 200 copies of every point, each with its own noise (with a misfit,
/// the Huber loss's expectation, not the noise-free curve's fit, sets the target).
fn pseudo_truth(exact: &[LossPoint]) -> Fitted {
    let noise_free = fit(exact).unwrap_or_else(|| panic!("no noise-free fit"));
    let mut rng = Rng::new(99);
    let pooled: Vec<(f64, f64, f64)> = (0..200)
        .flat_map(|_| exact.to_vec())
        .map(|p| {
            (
                p.unique_tokens,
                p.epochs,
                p.loss.ln() + NOISE * rng.normal(),
            )
        })
        .collect();
    fit_from(&pooled, &[noise_free.law.theta()]).unwrap_or_else(|| panic!("no pooled fit"))
}

#[test]
fn noise_is_the_stderr_or_the_pure_error() {
    let point = |unique: f64, epochs: f64, loss: f64, stderr: f64| LossPoint {
        unique_tokens: unique,
        epochs,
        loss,
        stderr,
    };
    let e = std::f64::consts::E;
    // Two seeds of one cell at ln-losses 1 and 1.2: pure error sqrt(0.02) = 0.1414.
    let seeds = [
        point(1e5, 4.0, e, 0.01 * e),
        point(1e5, 4.0, e * 0.2f64.exp(), 0.01 * e * 0.2f64.exp()),
        point(1e5, 8.0, 2.0, f64::NAN),
    ];
    let single = [point(1e5, 4.0, 3.0, 0.03), point(3e5, 4.0, 2.0, f64::NAN)];
    let large = [point(1e5, 4.0, 3.0, 3.0), point(3e5, 4.0, 2.0, f64::NAN)];
    let cases: [(&[LossPoint], Option<f64>, [f64; 2]); 3] = [
        (&seeds, Some(0.02f64.sqrt()), [0.02f64.sqrt(); 2]),
        // No replicates: the residual RMS (0.5) stands in for seed noise, unless a
        // point's own relative stderr is larger.
        (&single, None, [0.5, 0.5]),
        (&large, None, [1.0, 0.5]),
    ];
    for (points, pure, spread) in cases {
        let got = pure_error(points);
        assert_eq!(got.is_some(), pure.is_some(), "{points:?}");
        if let (Some(g), Some(p)) = (got, pure) {
            assert!((g - p).abs() < 1e-12, "{g} vs {p}");
        }
        let sd = noise_spread(points, 0.5);
        for (s, expected) in sd.iter().zip(spread) {
            assert!((s - expected).abs() < 1e-12, "{sd:?} vs {spread:?}");
        }
    }
}
