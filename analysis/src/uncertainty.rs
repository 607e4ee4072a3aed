//! How sure a crossover is: a bootstrap over seed replicates when both sides have
//! several seeds, otherwise a parametric bootstrap from the per-point standard errors.
//!
//! Each bootstrap draw runs the same estimator as the point estimate (smooth each
//! replicate, average the replicates, find the crossing). Outcomes that do not cross
//! are censored: "ahead from the start" counts as crossing at the first shared x and
//! "not reached" as crossing at infinity, so the median and the 90% interval are
//! quantiles of that censored distribution (an upper end of infinity reads "not reached
//! within the run").

use crate::crossover::{Outcome, find_crossing};
use crate::curve::{Curve, Direction, Point, mean_curve, smoothed};

/// Bootstrap settings; every draw comes from `seed`, so results are reproducible.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Moving-average window in evaluation points (1 = no smoothing).
    pub smooth: usize,
    /// Bootstrap draws (0 = no interval).
    pub draws: usize,
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            smooth: 1,
            draws: 1000,
            seed: 0,
        }
    }
}

/// Where the uncertainty came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Resampling seed replicates per objective.
    Seeds,
    /// Resampling each point from N(value, stderr^2) (one seed on a side).
    Stderr,
    /// No draws requested.
    None,
}

impl Method {
    pub fn label(self) -> &'static str {
        match self {
            Self::Seeds => "seed_bootstrap",
            Self::Stderr => "stderr_bootstrap",
            Self::None => "none",
        }
    }
}

/// A crossover with its uncertainty.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub outcome: Outcome,
    pub method: Method,
    /// Median and 5% / 95% quantiles of the censored crossing (NaN without draws).
    pub median: f64,
    pub low: f64,
    pub high: f64,
    /// Share of draws in which the DLM is at least as good at the end.
    pub share_crossed: f64,
}

/// The estimator applied to one set of replicates: smooth, average, find the crossing.
pub fn crossing_of(
    dlm: &[Curve],
    baseline: &[Curve],
    direction: Direction,
    smooth: usize,
) -> Outcome {
    find_crossing(
        &combined(dlm, smooth),
        &combined(baseline, smooth),
        direction,
    )
}

/// The curve the point estimate uses for a side: each replicate smoothed, then averaged.
pub fn combined(replicates: &[Curve], smooth: usize) -> Curve {
    let smooth_each: Vec<Curve> = replicates.iter().map(|c| smoothed(c, smooth)).collect();
    let refs: Vec<&[Point]> = smooth_each.iter().map(Vec::as_slice).collect();
    mean_curve(&refs)
}

/// Point estimate plus bootstrap interval for one pair of sides.
pub fn estimate(
    dlm: &[Curve],
    baseline: &[Curve],
    direction: Direction,
    settings: Settings,
) -> Estimate {
    let outcome = crossing_of(dlm, baseline, direction, settings.smooth);
    let method = if settings.draws == 0 || matches!(outcome, Outcome::NoOverlap) {
        Method::None
    } else if dlm.len() >= 2 && baseline.len() >= 2 {
        Method::Seeds
    } else {
        Method::Stderr
    };
    let mut rng = Rng::new(settings.seed);
    let draws_wanted = if method == Method::None {
        0
    } else {
        settings.draws
    };
    let draws: Vec<Outcome> = (0..draws_wanted)
        .map(|_| match method {
            Method::Seeds => crossing_of(
                &resample(dlm, &mut rng),
                &resample(baseline, &mut rng),
                direction,
                settings.smooth,
            ),
            _ => crossing_of(
                &[jitter(&combined_raw(dlm), &mut rng)],
                &[jitter(&combined_raw(baseline), &mut rng)],
                direction,
                settings.smooth,
            ),
        })
        .collect();
    summarize(outcome, method, &draws)
}

/// The unsmoothed mean of a side: the parametric bootstrap perturbs raw points and then
/// smooths, as the point estimate does.
fn combined_raw(replicates: &[Curve]) -> Curve {
    combined(replicates, 1)
}

fn summarize(outcome: Outcome, method: Method, draws: &[Outcome]) -> Estimate {
    let mut xs: Vec<f64> = draws.iter().filter_map(Outcome::censored_x).collect();
    xs.sort_by(f64::total_cmp);
    let crossed = draws
        .iter()
        .filter(|o| matches!(o, Outcome::Crossed { .. } | Outcome::AheadFromStart { .. }))
        .count();
    Estimate {
        outcome,
        method,
        median: quantile(&xs, 0.5),
        low: quantile(&xs, 0.05),
        high: quantile(&xs, 0.95),
        share_crossed: if draws.is_empty() {
            f64::NAN
        } else {
            crossed as f64 / draws.len() as f64
        },
    }
}

/// Quantile of sorted values by linear interpolation between order statistics (type 7,
/// the default of R and NumPy); infinities propagate as "not reached".
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let position = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
    let (a, b) = (sorted[lo], sorted[hi]);
    if a == b || a.is_infinite() || b.is_infinite() {
        return if position - lo as f64 >= 0.5 || a == b {
            b
        } else {
            a
        };
    }
    a + (position - lo as f64) * (b - a)
}

fn resample(replicates: &[Curve], rng: &mut Rng) -> Vec<Curve> {
    (0..replicates.len())
        .map(|_| replicates[rng.below(replicates.len())].clone())
        .collect()
}

/// One parametric draw: each value plus N(0, stderr^2); unknown stderr adds nothing.
fn jitter(curve: &[Point], rng: &mut Rng) -> Curve {
    curve
        .iter()
        .map(|p| {
            let sd = if p.stderr.is_finite() { p.stderr } else { 0.0 };
            Point::new(p.x, p.y + sd * rng.normal(), p.stderr)
        })
        .collect()
}

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, seeded and good enough for resampling;
/// avoids a dependency for a few lines.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x853c_49e6_748f_ea9b)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) from the top 53 bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        ((self.uniform() * n as f64) as usize).min(n.saturating_sub(1))
    }

    /// Standard normal by Box-Muller.
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
#[path = "uncertainty_tests.rs"]
mod tests;
