//! How sure a crossover is (issues 15 and 29): a paired, two-way bootstrap.
//!
//! Both objectives are scored on the same validation windows and the same benchmark
//! items at every checkpoint, so their errors are shared and strongly correlated. With
//! per-item scores (eval_items.csv) one draw resamples the item indices once and
//! applies the same resample to both objectives, every seed and every checkpoint
//! (`paired_items`).
//!
//! Seeds are the second source of noise: another seed trains another model. Items and
//! seeds are crossed (every seed is scored on the same items), so a draw treats them as
//! two independent factors, as McCullagh (2000, "Resampling and exchangeable arrays",
//! Bernoulli 6) does for crossed designs: the item level by the resample above, the
//! seed level by `SeedDraw` (`paired_items_and_seeds`; `seed_bootstrap` without
//! per-item scores). That counts the item x seed interaction twice, so it errs wide.
//!
//! The seed level has to work with the 2-4 seeds studies at scale run, where a plain
//! bootstrap of seeds fails twice: it has at most C(2n - 1, n) distinct draws (3 with
//! 2 seeds) and its variance of the seed mean is (n - 1)/n of the unbiased one (half
//! with 2 seeds). So a draw moves each side's seed mean along its seeds' own
//! deviations, with Gaussian multipliers shared by seed s of both objectives (same data
//! order: their deviations are paired) and the same at every checkpoint (a seed shifts
//! its whole curve): the seed mean's variance s^2/n exactly. Scaled by
//! sqrt(df / chi^2_df), df = n - 1, the deviation is s/sqrt(n) times a Student t with
//! n - 1 degrees of freedom: the small-sample correction for a variance estimated from
//! n seeds (for normal seed effects, the t interval's coverage is exact; with 2 seeds
//! its 95% point is 6.31 standard errors, not 1.64). One seed has no spread to draw
//! from: its interval is about evaluation noise only, and the report says so.
//!
//! Without per-item scores and with one seed, each point of the curve is redrawn from
//! N(value, stderr^2) (`stderr_bootstrap`).
//!
//! Each draw runs the same estimator as the point estimate (smooth each replicate,
//! average, take the running best for the early-stopped kind, find the crossing in log
//! x). Outcomes that do not cross are censored: "ahead from the start" counts as
//! crossing at the first shared x and "not reached" as crossing at infinity, so the
//! median and the 90% interval are quantiles of that censored distribution.
//!
//! The verdict asks whether the data say anything: "no evidence either way" when the
//! 90% interval of the advantage at the last shared evaluation contains 0; otherwise
//! `crossed` is placed robustly, where the lower 5% band of the advantage rises to 0
//! and stays there.

use crate::crossover::detection::{Kind, Outcome, advantage, advantage_at, crossing_of_advantage};
use crate::crossover::resample::{
    DrawSet, Method, as_is, draw_values, drawn_side_curve, method_for, side_curve, stderr_noise,
};
use crate::curve::{Curve, Direction, Point, combined, interpolate_log};
use crate::pairs::replicates::Replicate;
use crate::quantile::{quantile, quantile_unsorted};
use crate::rng::Rng;

/// Bootstrap settings; every draw comes from `seed`, so results are reproducible.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Moving-average window in evaluation points (1 = no smoothing; odd).
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

/// What the bootstrap says about the comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// The advantage's lower 5% band rises to 0 at x and stays there.
    Crossed {
        x: f64,
    },
    /// The lower band is at or above 0 from the first shared evaluation.
    AheadFromStart,
    /// The 90% interval of the advantage at the end is below 0.
    NotReached,
    /// The 90% interval of the advantage at the end contains 0.
    NoEvidence,
    NoOverlap,
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Crossed { .. } => "crossed",
            Self::AheadFromStart => "ahead_from_start",
            Self::NotReached => "not_reached",
            Self::NoEvidence => "no_evidence",
            Self::NoOverlap => "no_overlap",
        }
    }

    /// The verdict of a point estimate without draws.
    fn of(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Crossed { x, .. } => Self::Crossed { x },
            Outcome::AheadFromStart { .. } => Self::AheadFromStart,
            Outcome::NotReached { .. } => Self::NotReached,
            Outcome::NoOverlap => Self::NoOverlap,
        }
    }
}

/// A crossover with its uncertainty.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub outcome: Outcome,
    pub verdict: Verdict,
    pub method: Method,
    /// Median and 5% / 95% quantiles of the censored crossing (NaN without draws).
    pub median: f64,
    pub low: f64,
    pub high: f64,
    /// Share of draws in which the DLM is at least as good at the end.
    pub share_crossed: f64,
    /// dlm - baseline at the last shared evaluation (metric units), and its 90%
    /// interval (NaN without draws).
    pub gap: f64,
    pub gap_low: f64,
    pub gap_high: f64,
    /// Seeds on the side with fewer: how many seeds the seed level is drawn from when
    /// the method has one.
    pub seeds: usize,
}

impl Estimate {
    /// What the interval says about seed noise, per comparison, e.g. "3 seeds (t, 2 df)"
    /// or "1 seed: no seed noise".
    pub fn seed_note(&self) -> String {
        match (self.method, self.seeds) {
            (Method::None, _) => "no interval".into(),
            (m, n) if m.seed_level() => format!("{n} seeds (t, {} df)", n - 1),
            (_, n) if n <= 1 => "1 seed: cannot show seed noise".into(),
            (_, n) => format!("{n} seeds, averaged: no seed noise"),
        }
    }
}

/// The estimator applied to one set of replicates: smooth, average, (running best),
/// find the crossing.
pub fn crossing_of(
    dlm: &[Curve],
    baseline: &[Curve],
    direction: Direction,
    smooth: usize,
    kind: Kind,
) -> Outcome {
    let (d, b) = (combined(dlm, smooth), combined(baseline, smooth));
    crate::crossover::detection::find_crossing(
        &kind.curve(&d, direction),
        &kind.curve(&b, direction),
        direction,
    )
}

/// Both kinds of one comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimates {
    pub early_stopped: Estimate,
    pub raw: Estimate,
}

impl Estimates {
    pub fn of(&self, kind: Kind) -> &Estimate {
        match kind {
            Kind::EarlyStopped => &self.early_stopped,
            Kind::Raw => &self.raw,
        }
    }
}

/// Point estimates and bootstrap intervals of both kinds for one pair of sides, on
/// the replicates' own axis.
pub fn estimate(
    dlm: &[Replicate],
    baseline: &[Replicate],
    direction: Direction,
    settings: Settings,
) -> Estimates {
    let mut all = estimate_axes(dlm, baseline, direction, settings);
    all.swap_remove(0)
}

/// A point estimate's outcome and its advantage (x, g) on the union grid.
type PointEstimate = (Outcome, Vec<(f64, f64)>);

/// Point estimates and intervals on every axis the replicates carry (their own, then
/// `other_axes`), from one set of draws: a draw's item and seed resample is the same on
/// every axis, and is computed once.
pub fn estimate_axes(
    dlm: &[Replicate],
    baseline: &[Replicate],
    direction: Direction,
    settings: Settings,
) -> Vec<Estimates> {
    let axes = dlm
        .iter()
        .chain(baseline)
        .map(Replicate::axes)
        .min()
        .unwrap_or(1);
    let (dlm_as_is, baseline_as_is) = (as_is(dlm), as_is(baseline));
    // Per axis, per kind: the point estimate and its advantage on the union grid.
    let points: Vec<[PointEstimate; 2]> = (0..axes)
        .map(|axis| {
            let d = side_curve(&dlm_as_is, axis, settings.smooth);
            let b = side_curve(&baseline_as_is, axis, settings.smooth);
            Kind::ALL.map(|kind| {
                let g = advantage(
                    &kind.curve(&d, direction),
                    &kind.curve(&b, direction),
                    direction,
                );
                (crossing_of_advantage(&g, direction), g)
            })
        })
        .collect();
    let overlap = !matches!(points[0][0].0, Outcome::NoOverlap);
    let method = if overlap {
        method_for(dlm, baseline, settings.draws)
    } else {
        Method::None
    };
    let mut rng = Rng::new(settings.seed);
    let wanted = if method == Method::None {
        0
    } else {
        settings.draws
    };
    let grids: Vec<Vec<f64>> = points
        .iter()
        .map(|p| p[0].1.iter().map(|&(x, _)| x).collect())
        .collect();
    let draws: Vec<[DrawSet; 2]> = if wanted == 0 {
        (0..axes).map(|_| Default::default()).collect()
    } else if let Some(plan) = crate::crossover::draws::Plan::new(
        dlm,
        baseline,
        method,
        direction,
        settings.smooth,
        &grids,
    ) {
        plan.run(wanted, &mut rng)
    } else {
        general_draws(
            dlm, baseline, direction, settings, method, wanted, &grids, &mut rng,
        )
    };
    points
        .iter()
        .zip(&draws)
        .map(|(point, drawn)| {
            let seeds = dlm.len().min(baseline.len());
            Estimates {
                early_stopped: summarize(&point[0], method, &drawn[0], direction, seeds),
                raw: summarize(&point[1], method, &drawn[1], direction, seeds),
            }
        })
        .collect()
}

/// The draws without a plan: every curve rebuilt and interpolated in each draw (the
/// reference the planned draws are tested against).
#[allow(clippy::too_many_arguments)]
fn general_draws(
    dlm: &[Replicate],
    baseline: &[Replicate],
    direction: Direction,
    settings: Settings,
    method: Method,
    wanted: usize,
    grids: &[Vec<f64>],
    rng: &mut Rng,
) -> Vec<[DrawSet; 2]> {
    let (dlm_as_is, baseline_as_is) = (as_is(dlm), as_is(baseline));
    let mut draws: Vec<[DrawSet; 2]> = grids
        .iter()
        .map(|grid| {
            [(); 2].map(|()| DrawSet {
                outcomes: Vec::with_capacity(wanted),
                values: Vec::with_capacity(grid.len() * wanted),
            })
        })
        .collect();
    // The stderr fallback's unsmoothed seed-mean curves, per side and axis.
    let bases: Vec<[Curve; 2]> = (0..grids.len())
        .map(|axis| {
            [
                side_curve(&dlm_as_is, axis, 1),
                side_curve(&baseline_as_is, axis, 1),
            ]
        })
        .collect();
    for _ in 0..wanted {
        let resampled = (method != Method::Stderr).then(|| draw_values(dlm, baseline, method, rng));
        let noise = (method == Method::Stderr).then(|| stderr_noise(&bases, rng));
        for (axis, grid) in grids.iter().enumerate() {
            let (d, b) = match (&resampled, &noise) {
                (Some((d, b, seeds)), _) => {
                    let side = |s: usize| {
                        seeds
                            .as_ref()
                            .map(|draw| (draw.multipliers[s].as_slice(), draw.scale))
                    };
                    (
                        drawn_side_curve(d, axis, settings.smooth, side(0)),
                        drawn_side_curve(b, axis, settings.smooth, side(1)),
                    )
                }
                (None, noise) => {
                    let noise = noise.as_ref().map_or(&[][..], |n| &n[axis][..]);
                    let [d, b] = [0, 1].map(|s| {
                        let base = &bases[axis][s];
                        let shifted: Curve = base
                            .iter()
                            .zip(&noise[s])
                            .map(|(p, &z)| Point::new(p.x, p.y + z, p.stderr))
                            .collect();
                        combined(&[shifted], settings.smooth)
                    });
                    (d, b)
                }
            };
            for (index, kind) in Kind::ALL.iter().enumerate() {
                let (d, b) = (kind.curve(&d, direction), kind.curve(&b, direction));
                let set = &mut draws[axis][index];
                set.values.extend(grid.iter().map(|&x| {
                    match (interpolate_log(&d, x), interpolate_log(&b, x)) {
                        (Some(d), Some(b)) => advantage_at(d.y, b.y, direction),
                        _ => f64::NAN,
                    }
                }));
                set.outcomes
                    .push(crate::crossover::detection::find_crossing(
                        &d, &b, direction,
                    ));
            }
        }
    }
    draws
}

/// One kind's estimate on one axis: the point estimate's outcome and final gap, with
/// the draws' crossing quantiles, advantage bands at the end and the verdict.
fn summarize(
    point: &PointEstimate,
    method: Method,
    draws: &DrawSet,
    direction: Direction,
    seeds: usize,
) -> Estimate {
    let (outcome, grid) = point;
    let n = draws.outcomes.len();
    let gap = grid.last().map_or(f64::NAN, |&(_, g)| direction.sign() * g);
    let (median, low, high) = crossing_quantiles(&draws.outcomes);
    let crossed = draws
        .outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Crossed { .. } | Outcome::AheadFromStart { .. }))
        .count();
    let mut bands = Bands::new(draws, grid.len());
    let last = bands.last_reached();
    let (g_low, g_high) = last.map_or((f64::NAN, f64::NAN), |(_, low, high)| (low, high));
    let verdict = if n == 0 || matches!(outcome, Outcome::NoOverlap) {
        Verdict::of(*outcome)
    } else if g_low > 0.0 {
        robust_crossing(&mut bands, grid, last.map_or(0, |l| l.0), direction)
    } else if g_high < 0.0 {
        Verdict::NotReached
    } else {
        Verdict::NoEvidence
    };
    // In metric units: dlm - baseline = sign * g, so a loss flips the interval.
    let (gap_low, gap_high) = match direction {
        Direction::HigherBetter => (g_low, g_high),
        Direction::LowerBetter => (-g_high, -g_low),
    };
    Estimate {
        outcome: *outcome,
        verdict,
        method,
        median,
        low,
        high,
        share_crossed: if n == 0 {
            f64::NAN
        } else {
            crossed as f64 / n as f64
        },
        gap,
        gap_low,
        gap_high,
        seeds,
    }
}

/// Median and 5% / 95% quantiles of the draws' censored crossings (NaN without draws).
fn crossing_quantiles(outcomes: &[Outcome]) -> (f64, f64, f64) {
    let mut xs: Vec<f64> = outcomes.iter().filter_map(Outcome::censored_x).collect();
    xs.sort_by(f64::total_cmp);
    (quantile(&xs, 0.5), quantile(&xs, 0.05), quantile(&xs, 0.95))
}

/// Quantiles of the draws' advantage at the points of the point estimate's grid.
struct Bands<'a> {
    /// Draw-major, as `DrawSet::values`: grid point i of draw d at `d * points + i`.
    values: &'a [f64],
    points: usize,
    scratch: Vec<f64>,
}

impl<'a> Bands<'a> {
    fn new(draws: &'a DrawSet, points: usize) -> Self {
        Self {
            values: &draws.values,
            points,
            scratch: Vec::with_capacity(draws.outcomes.len()),
        }
    }

    /// Quantile q of the draws' advantage at grid point i (NaN when no draw has one).
    fn at(&mut self, i: usize, q: f64) -> f64 {
        self.scratch.clear();
        self.scratch.extend(
            self.values
                .iter()
                .skip(i)
                .step_by(self.points)
                .copied()
                .filter(|g| g.is_finite()),
        );
        quantile_unsorted(&mut self.scratch, q)
    }

    /// The last grid point that any draw reaches, with its 5% and 95% bands there.
    fn last_reached(&mut self) -> Option<(usize, f64, f64)> {
        (0..self.points).rev().find_map(|i| {
            let low = self.at(i, 0.05);
            low.is_finite().then(|| (i, low, self.at(i, 0.95)))
        })
    }
}

/// Where the lower 5% band rises to 0 and stays there, for a band above 0 at `last`:
/// walk back from there to the last point below 0 (the band is only needed from there
/// on); ahead from the start when it never dips below.
fn robust_crossing(
    bands: &mut Bands<'_>,
    grid: &[(f64, f64)],
    last: usize,
    direction: Direction,
) -> Verdict {
    let mut tail: Vec<(f64, f64)> = Vec::new();
    for i in (0..=last).rev() {
        let low = bands.at(i, 0.05);
        if !low.is_finite() {
            continue;
        }
        tail.push((grid[i].0, low));
        if low < 0.0 {
            break;
        }
    }
    tail.reverse();
    match crossing_of_advantage(&tail, direction) {
        Outcome::Crossed { x, .. } => Verdict::Crossed { x },
        _ => Verdict::AheadFromStart,
    }
}

#[cfg(test)]
#[path = "uncertainty_tests/mod.rs"]
mod tests;
