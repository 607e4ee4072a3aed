//! Data potential (Ni et al. 2025, arXiv 2511.03276, "more than 3x data potential"):
//! how many unique tokens AR needs to reach the value the DLM reaches with U.
//!
//! Per metric, each objective's best (early-stopped) value at each budget, at equal
//! compute: the best point of the seed-mean curves of the budget's done run groups (a
//! grid over epochs has several), among checkpoints up to the largest number of
//! training tokens both objectives reached at that budget (`at_equal_compute`). Taking
//! each side's best over all its runs instead mixes compute: where the DLM has a longer
//! run than AR at a budget (an extra epoch count, a run AR has not finished), its best
//! comes from more training, and two identical objectives read as a data potential of
//! 1.58 instead of 1 (`equal_compute_removes_a_longer_run`). AR's best-vs-budget points are
//! joined in ln U by a monotone cubic (PCHIP: Fritsch & Carlson 1980, with the end
//! slopes of SciPy's `PchipInterpolator`); the first budget where that curve is at
//! least as good as the DLM's best at U is U_AR, reported as U_AR / U. Straight
//! segments would do on a straight curve, but a loss falling like E + B U^-beta is
//! convex in ln U and a chord lies above it: with budgets a factor 2 apart, chords
//! overstate the ratio by about 2% on 2 + 50 U^-0.3, more than the noise of a good
//! validation loss; PCHIP's error there is a few tenths of a percent. It keeps each
//! segment between its end values, so the first crossing is unique within a segment.
//! Outside AR's range the answer is censored: "more than U_max / U" when AR never gets
//! there, "at most U_min / U" when AR's smallest budget already does. Nothing is
//! extrapolated.
//!
//! The interval jitters every best value (AR's and the DLM's) by its standard error,
//! recomputes the ratio, and takes the 5% / 95% quantiles; censored draws count as
//! infinity ("more than") or as their bound ("at most"), as crossings do.

use crate::curve::{Direction, Point};
use crate::rng::Rng;

/// Budgets AR's best-vs-budget curve needs before it is read off: with two, the curve
/// is one straight segment and shows nothing of its shape.
pub const MIN_AR_BUDGETS: usize = 3;

/// An objective's best value at one budget, with that evaluation's stderr, among
/// checkpoints up to `training_tokens` (the budget's common compute; NaN: no cap).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Best {
    pub unique_tokens: f64,
    pub value: f64,
    pub stderr: f64,
    pub training_tokens: f64,
}

/// Each side's (AR, DLM) best at one budget over its curves (x: training tokens), among
/// checkpoints up to the largest x both sides reached; a side alone at the budget is
/// capped at its own largest x. None for a side without a point under the cap.
pub fn at_equal_compute(
    sides: [&[Vec<Point>]; 2],
    unique_tokens: f64,
    direction: Direction,
) -> [Option<Best>; 2] {
    let reach = |curves: &[Vec<Point>]| {
        curves
            .iter()
            .flatten()
            .map(|p| p.x)
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let cap = sides
        .iter()
        .map(|curves| reach(curves))
        .filter(|x| x.is_finite())
        .fold(f64::INFINITY, f64::min);
    sides.map(|curves| {
        let within: Vec<Point> = curves
            .iter()
            .flatten()
            .copied()
            .filter(|p| p.x <= cap * (1.0 + 1e-9))
            .collect();
        crate::curve::best(&within, direction).map(|p| Best {
            unique_tokens,
            value: p.y,
            stderr: p.stderr,
            training_tokens: cap,
        })
    })
}

/// U_AR / U.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ratio {
    /// Read off AR's curve.
    Within(f64),
    /// AR's best at every budget is worse than the DLM's: more than this.
    Above(f64),
    /// AR's best at its smallest budget is already as good: at most this.
    AtMost(f64),
}

impl Ratio {
    /// The number the ratio is drawn at in quantiles and figures.
    pub fn value(self) -> f64 {
        match self {
            Self::Within(r) | Self::AtMost(r) => r,
            Self::Above(_) => f64::INFINITY,
        }
    }

    /// The ratio or its bound.
    pub fn bound(self) -> f64 {
        match self {
            Self::Within(r) | Self::Above(r) | Self::AtMost(r) => r,
        }
    }

    /// "3.1x", "more than 8x", "at most 0.5x".
    pub fn describe(self) -> String {
        match self {
            Self::Within(r) => format!("{}x", times(r)),
            Self::Above(r) => format!("more than {}x", times(r)),
            Self::AtMost(r) => format!("at most {}x", times(r)),
        }
    }
}

/// A ratio with two significant digits or more.
pub fn times(ratio: f64) -> String {
    match ratio {
        r if !r.is_finite() => crate::format::count(r),
        r if r >= 100.0 => format!("{r:.0}"),
        r if r >= 10.0 => format!("{r:.1}"),
        r => format!("{r:.2}"),
    }
}

/// The ratio U_AR / U for the DLM's best `dlm` at its budget; None when AR's curve is
/// empty or a value is not a number.
pub fn ratio(ar: &[Best], dlm: &Best, direction: Direction) -> Option<Ratio> {
    let target = dlm.value;
    let first = ar.first()?;
    if !target.is_finite() || ar.iter().any(|b| !b.value.is_finite()) {
        return None;
    }
    let reaches = |value: f64| !direction.better(target, value);
    if reaches(first.value) {
        return Some(Ratio::AtMost(first.unique_tokens / dlm.unique_tokens));
    }
    Some(ratio_with(ar, &pchip_slopes(ar), dlm, direction))
}

/// `ratio` with AR's PCHIP slopes computed once (the interval reads many targets off one
/// jittered curve); the values must be numbers.
fn ratio_with(ar: &[Best], slopes: &[f64], dlm: &Best, direction: Direction) -> Ratio {
    let target = dlm.value;
    let reaches = |value: f64| !direction.better(target, value);
    let u = dlm.unique_tokens;
    let (Some(first), Some(last)) = (ar.first(), ar.last()) else {
        return Ratio::Above(f64::NAN);
    };
    if reaches(first.value) {
        return Ratio::AtMost(first.unique_tokens / u);
    }
    for (i, pair) in ar.windows(2).enumerate() {
        let (lo, hi) = (pair[0], pair[1]);
        if reaches(hi.value) {
            // The segment is monotone between its ends: bisect for the crossing.
            let (mut a, mut b) = (0.0, 1.0);
            for _ in 0..60 {
                let t = 0.5 * (a + b);
                if reaches(hermite(ar, slopes, i, t)) {
                    b = t;
                } else {
                    a = t;
                }
            }
            let needed =
                (lo.unique_tokens.ln() + b * (hi.unique_tokens / lo.unique_tokens).ln()).exp();
            return Ratio::Within(needed / u);
        }
    }
    Ratio::Above(last.unique_tokens / u)
}

/// PCHIP slopes d value / d ln U at each budget (Fritsch & Carlson 1980): zero at a
/// local extremum, otherwise a weighted harmonic mean of the neighbouring secants; the
/// ends use SciPy's three-point, shape-preserving formula. Two budgets: the secant.
fn pchip_slopes(curve: &[Best]) -> Vec<f64> {
    let x: Vec<f64> = curve.iter().map(|b| b.unique_tokens.ln()).collect();
    let n = x.len();
    if n < 2 {
        return vec![0.0; n];
    }
    let h: Vec<f64> = x.windows(2).map(|w| w[1] - w[0]).collect();
    let secant: Vec<f64> = (0..n - 1)
        .map(|i| (curve[i + 1].value - curve[i].value) / h[i])
        .collect();
    if n == 2 {
        return vec![secant[0]; 2];
    }
    let mut slopes = vec![0.0; n];
    for i in 1..n - 1 {
        let (d0, d1) = (secant[i - 1], secant[i]);
        if d0 * d1 > 0.0 {
            let (w1, w2) = (2.0 * h[i] + h[i - 1], h[i] + 2.0 * h[i - 1]);
            slopes[i] = (w1 + w2) / (w1 / d0 + w2 / d1);
        }
    }
    let end = |h0: f64, h1: f64, d0: f64, d1: f64| {
        let d = ((2.0 * h0 + h1) * d0 - h0 * d1) / (h0 + h1);
        if d.signum() != d0.signum() {
            0.0
        } else if d0.signum() != d1.signum() && d.abs() > 3.0 * d0.abs() {
            3.0 * d0
        } else {
            d
        }
    };
    slopes[0] = end(h[0], h[1], secant[0], secant[1]);
    slopes[n - 1] = end(h[n - 2], h[n - 3], secant[n - 2], secant[n - 3]);
    slopes
}

/// The cubic Hermite segment from budget i to i + 1 at fraction t (in ln U).
fn hermite(curve: &[Best], slopes: &[f64], i: usize, t: f64) -> f64 {
    let h = (curve[i + 1].unique_tokens / curve[i].unique_tokens).ln();
    let (y0, y1) = (curve[i].value, curve[i + 1].value);
    let (t2, t3) = (t * t, t * t * t);
    (2.0 * t3 - 3.0 * t2 + 1.0) * y0
        + (t3 - 2.0 * t2 + t) * h * slopes[i]
        + (-2.0 * t3 + 3.0 * t2) * y1
        + (t3 - t2) * h * slopes[i + 1]
}

/// Points along AR's interpolated curve (for figures): `per_segment` per segment.
pub fn curve_points(curve: &[Best], per_segment: usize) -> Vec<(f64, f64)> {
    let slopes = pchip_slopes(curve);
    let mut out: Vec<(f64, f64)> = Vec::new();
    for i in 0..curve.len().saturating_sub(1) {
        let (lo, hi) = (curve[i].unique_tokens, curve[i + 1].unique_tokens);
        for k in 0..per_segment {
            let t = k as f64 / per_segment as f64;
            out.push((lo * (hi / lo).powf(t), hermite(curve, &slopes, i, t)));
        }
    }
    out.extend(curve.last().map(|b| (b.unique_tokens, b.value)));
    out
}

/// 5% / 95% quantiles of the ratio over `draws` jitters of every best value by its
/// stderr (unknown stderr: no jitter); None without draws.
pub fn interval(
    ar: &[Best],
    dlm: &Best,
    direction: Direction,
    draws: usize,
    seed: u64,
) -> Option<(f64, f64)> {
    intervals(ar, std::slice::from_ref(dlm), direction, draws, seed)
        .pop()
        .flatten()
}

/// `interval` for every DLM budget of a metric at once: each draw jitters AR's curve
/// once (and computes its slopes once) and reads every jittered DLM target off it, so
/// a sweep with n budgets costs O(draws x n) jitters rather than O(draws x n^2).
pub fn intervals(
    ar: &[Best],
    dlm: &[Best],
    direction: Direction,
    draws: usize,
    seed: u64,
) -> Vec<Option<(f64, f64)>> {
    if draws == 0 || ar.iter().chain(dlm).any(|b| !b.value.is_finite()) {
        return vec![None; dlm.len()];
    }
    let mut rng = Rng::new(seed);
    let mut jitter = |b: &Best| {
        let sd = if b.stderr.is_finite() { b.stderr } else { 0.0 };
        Best {
            value: b.value + sd * rng.normal(),
            ..*b
        }
    };
    let mut values: Vec<Vec<f64>> = vec![Vec::with_capacity(draws); dlm.len()];
    for _ in 0..draws {
        let curve: Vec<Best> = ar.iter().map(&mut jitter).collect();
        let slopes = pchip_slopes(&curve);
        for (d, out) in dlm.iter().zip(values.iter_mut()) {
            let target = jitter(d);
            out.push(ratio_with(&curve, &slopes, &target, direction).value());
        }
    }
    values
        .into_iter()
        .map(|mut v| {
            v.retain(|x| !x.is_nan());
            v.sort_by(f64::total_cmp);
            (!v.is_empty()).then(|| {
                (
                    crate::quantile::quantile(&v, 0.05),
                    crate::quantile::quantile(&v, 0.95),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(points: &[(f64, f64)]) -> Vec<Best> {
        points
            .iter()
            .map(|&(unique_tokens, value)| Best {
                unique_tokens,
                value,
                stderr: 0.0,
                training_tokens: f64::NAN,
            })
            .collect()
    }

    #[test]
    fn ratio_cases() {
        // A straight line in ln U (PCHIP keeps it straight).
        let loss = curve(&[(1e5, 3.0), (2e5, 2.9), (4e5, 2.8)]);
        let at = |u: f64, value: f64| Best {
            unique_tokens: u,
            value,
            stderr: 0.0,
            training_tokens: f64::NAN,
        };
        let lower = Direction::LowerBetter;
        let cases = [
            // Halfway in ln U between 2e5 and 4e5: 2e5 x sqrt(2).
            (at(1e5, 2.85), Some(Ratio::Within(2f64.sqrt() * 2.0))),
            (at(1e5, 2.9), Some(Ratio::Within(2.0))),
            (at(2e5, 2.6), Some(Ratio::Above(2.0))),
            (at(2e5, 3.1), Some(Ratio::AtMost(0.5))),
            (at(2e5, f64::NAN), None),
        ];
        for (dlm, expected) in cases {
            let got = ratio(&loss, &dlm, lower);
            match (got, expected) {
                (Some(Ratio::Within(g)), Some(Ratio::Within(x))) => {
                    assert!((g - x).abs() < 1e-9, "{dlm:?}: {g} vs {x}")
                }
                (g, x) => assert_eq!(g, x, "{dlm:?}"),
            }
        }
        // Accuracies rise: the DLM's 0.45 is halfway between AR's 0.4 at 1e5 and 0.5
        // at 2e5 on a straight line in ln U.
        let acc = curve(&[(1e5, 0.4), (2e5, 0.5), (4e5, 0.6)]);
        let got = ratio(&acc, &at(1e5, 0.45), Direction::HigherBetter);
        assert!(matches!(got, Some(Ratio::Within(r)) if (r - 2f64.sqrt()).abs() < 1e-9));
        assert_eq!(ratio(&[], &at(1e5, 1.0), lower), None);
        assert_eq!(Ratio::Above(8.0).describe(), "more than 8.00x");
    }

    /// AR's best follows 2 + 50 U^-0.3 over budgets 10k-1.28M (doubling); the DLM's
    /// best at U equals AR's at 3U, so the data potential is 3. Read off the curve it
    /// is within 10% at every budget where 3U is inside AR's range, and with values
    /// redrawn from a stderr of 0.005 the interval covers 3 in at least 80% of
    /// replicates.
    #[test]
    fn recovers_a_known_ratio_with_coverage() {
        let law = |u: f64| 2.0 + 50.0 * u.powf(-0.3);
        let budgets: Vec<f64> = (0..8).map(|i| 1e4 * f64::powi(2.0, i)).collect();
        let truth = 3.0;
        let inside: Vec<f64> = budgets
            .iter()
            .copied()
            .filter(|&u| truth * u <= budgets[budgets.len() - 1])
            .collect();
        let exact = |u: f64| Best {
            unique_tokens: u,
            value: law(truth * u),
            stderr: 0.005,
            training_tokens: f64::NAN,
        };
        let ar: Vec<Best> = budgets
            .iter()
            .map(|&u| Best {
                unique_tokens: u,
                value: law(u),
                stderr: 0.005,
                training_tokens: f64::NAN,
            })
            .collect();
        for &u in &inside {
            let r = ratio(&ar, &exact(u), Direction::LowerBetter).map(Ratio::value);
            assert!(
                r.is_some_and(|r| (r / truth - 1.0).abs() < 0.1),
                "U = {u}: {r:?}"
            );
        }
        let (replicates, mut covered, mut trials) = (100, 0, 0);
        for replicate in 0..replicates {
            let mut rng = Rng::new(replicate);
            let mut noisy = |b: &Best| Best {
                value: b.value + b.stderr * rng.normal(),
                ..*b
            };
            let curve: Vec<Best> = ar.iter().map(&mut noisy).collect();
            for &u in &inside {
                let dlm = noisy(&exact(u));
                let Some((low, high)) =
                    interval(&curve, &dlm, Direction::LowerBetter, 200, replicate)
                else {
                    continue;
                };
                trials += 1;
                covered += usize::from(low <= truth && truth <= high);
            }
        }
        eprintln!("data potential: interval covered 3x in {covered}/{trials}");
        assert!(covered as f64 >= 0.8 * trials as f64, "{covered}/{trials}");
    }

    /// Issue 29: a grid where both objectives follow the same loss, 2 + 50 (U (1 + ln
    /// epochs))^-0.3 after `epochs` passes over U, so the data potential is 1; AR ran 1
    /// and 4 epochs at each budget, the DLM 1, 4 and 16. Each side's best over all its
    /// runs compares the DLM's 16 epochs with AR's 4 and reads more than 1.5 at every
    /// budget; at equal compute (4 U tokens at each budget) it reads 1.
    #[test]
    fn equal_compute_removes_a_longer_run() {
        let loss = |u: f64, epochs: f64| 2.0 + 50.0 * (u * (1.0 + epochs.ln())).powf(-0.3);
        let run = |u: f64, epochs: f64| -> Vec<Point> {
            let milestones = std::iter::successors(Some(1.0), |e| Some(e * 2.0));
            milestones
                .take_while(|&e| e <= epochs)
                .map(|e| Point::new(u * e, loss(u, e), 0.0))
                .collect()
        };
        let budgets: Vec<f64> = (0..8).map(|i| 1e4 * f64::powi(2.0, i)).collect();
        let runs = |u: f64, epochs: &[f64]| epochs.iter().map(|&e| run(u, e)).collect::<Vec<_>>();
        let lower = Direction::LowerBetter;
        let (mut ar, mut dlm, mut ar_alone, mut dlm_alone) = (vec![], vec![], vec![], vec![]);
        for &u in &budgets {
            let (a, d) = (runs(u, &[1.0, 4.0]), runs(u, &[1.0, 4.0, 16.0]));
            let [Some(x), Some(y)] = at_equal_compute([&a, &d], u, lower) else {
                panic!("no bests at {u}");
            };
            assert_eq!((x.training_tokens, y.training_tokens), (4.0 * u, 4.0 * u));
            ar.push(x);
            dlm.push(y);
            // The old definition: each side capped only by its own runs.
            let [Some(x), _] = at_equal_compute([&a, &[]], u, lower) else {
                panic!()
            };
            let [_, Some(y)] = at_equal_compute([&[], &d], u, lower) else {
                panic!()
            };
            ar_alone.push(x);
            dlm_alone.push(y);
        }
        for i in 0..budgets.len() - 1 {
            let equal = ratio(&ar, &dlm[i], lower).map(Ratio::value);
            assert!(
                equal.is_some_and(|r| (r - 1.0).abs() < 1e-6),
                "{i}: {equal:?}"
            );
            let mixed = ratio(&ar_alone, &dlm_alone[i], lower).map(Ratio::bound);
            eprintln!(
                "budget {}: all runs {mixed:?}, equal compute {equal:?}",
                budgets[i]
            );
            assert!(mixed.is_some_and(|r| r > 1.5), "{i}: {mixed:?}");
        }
    }
}
