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
use crate::crossover::draws::DrawSet;
use crate::curve::{Curve, Direction, Point, interpolate_log, mean_curve, smoothed};
pub use crate::rng::Rng;

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

/// Seeds per side from which the draws carry seed noise (one seed has no spread).
pub const MIN_SEEDS_FOR_SEED_LEVEL: usize = 2;

/// Where the uncertainty came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Items resampled once per draw, shared by both objectives; one seed on a side,
    /// so no seed level (the other side's seeds, if several, are averaged).
    PairedItems,
    /// Items as above, and the seed level (`SeedDraw`) over at least 2 seeds per side.
    PairedItemsSeeds,
    /// No per-item scores: the seed level alone (at least 2 seeds per side).
    Seeds,
    /// No per-item scores and one seed on a side: points redrawn from their stderr.
    Stderr,
    /// No draws requested.
    None,
}

impl Method {
    pub fn label(self) -> &'static str {
        match self {
            Self::PairedItems => "paired_items",
            Self::PairedItemsSeeds => "paired_items_and_seeds",
            Self::Seeds => "seed_bootstrap",
            Self::Stderr => "stderr_bootstrap",
            Self::None => "none",
        }
    }

    /// Whether the draws pair the two objectives item by item.
    pub fn paired(self) -> bool {
        matches!(self, Self::PairedItems | Self::PairedItemsSeeds)
    }

    /// Whether the draws carry seed-to-seed noise.
    pub fn seed_level(self) -> bool {
        matches!(self, Self::PairedItemsSeeds | Self::Seeds)
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

/// One seed's evaluations of one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Replicate {
    pub seed: u64,
    pub curve: Curve,
    /// For each point of `curve`, each item's score (NaN where the item was not
    /// scored); the items in the same order in every replicate of a comparison. None
    /// without eval_items.csv.
    pub items: Option<Vec<Vec<f64>>>,
    /// The same points' positions on further x axes (epochs and FLOPs when `curve` is
    /// on tokens), so one set of draws answers for every axis.
    pub other_axes: Vec<Vec<f64>>,
}

impl Replicate {
    /// A replicate on one axis without per-item scores.
    pub fn plain(seed: u64, curve: Curve) -> Self {
        Self {
            seed,
            curve,
            items: None,
            other_axes: Vec::new(),
        }
    }

    /// How many x axes the replicate is placed on.
    fn axes(&self) -> usize {
        1 + self.other_axes.len()
    }

    /// The curve on `axis` (0: the curve's own) with the values `ys`, one per point.
    fn on_axis(&self, axis: usize, ys: &[f64]) -> Curve {
        self.curve
            .iter()
            .zip(ys)
            .enumerate()
            .map(|(k, (p, &y))| {
                let x = match axis {
                    0 => p.x,
                    a => self.other_axes[a - 1][k],
                };
                Point::new(x, y, p.stderr)
            })
            .collect()
    }

    fn values(&self) -> Vec<f64> {
        self.curve.iter().map(|p| p.y).collect()
    }
}

/// The curve the point estimate uses for a side: each replicate smoothed, then averaged.
pub fn combined(replicates: &[Curve], smooth: usize) -> Curve {
    let smooth_each: Vec<Curve> = replicates.iter().map(|c| smoothed(c, smooth)).collect();
    let refs: Vec<&[Point]> = smooth_each.iter().map(Vec::as_slice).collect();
    mean_curve(&refs)
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

/// The method a pair of sides gets.
pub fn method_for(dlm: &[Replicate], baseline: &[Replicate], draws: usize) -> Method {
    let items = !dlm.is_empty()
        && !baseline.is_empty()
        && dlm.iter().chain(baseline).all(|r| r.items.is_some());
    let seeds = dlm.len().min(baseline.len()) >= MIN_SEEDS_FOR_SEED_LEVEL;
    match (draws, items, seeds) {
        (0, _, _) => Method::None,
        (_, true, true) => Method::PairedItemsSeeds,
        (_, true, false) => Method::PairedItems,
        (_, false, true) => Method::Seeds,
        (_, false, false) => Method::Stderr,
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

/// One side's combined curve on `axis`, from its chosen replicates and their values.
fn side_curve(drawn: &[(&Replicate, Vec<f64>)], axis: usize, smooth: usize) -> Curve {
    let curves: Vec<Curve> = drawn.iter().map(|(r, ys)| r.on_axis(axis, ys)).collect();
    combined(&curves, smooth)
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

/// A side's combined curve on `axis` from its replicates' own values, unsmoothed (the
/// curve the stderr fallback jitters).
pub(crate) fn combined_unsmoothed_on(side: &[Replicate], axis: usize) -> Curve {
    side_curve(&as_is(side), axis, 1)
}

/// One stderr draw's noise, per axis and side: each point of the seed-mean curve moves
/// by N(0, stderr^2) (an unknown stderr moves it by 0). The noise is drawn once, on the
/// first axis, and reused on every axis whose curve has the same points (a rescaled axis:
/// the same evaluations), so that one draw answers for every axis as the item draws do;
/// an axis with other points gets its own.
pub(crate) fn stderr_noise(bases: &[[Curve; 2]], rng: &mut Rng) -> Vec<[Vec<f64>; 2]> {
    let sds = |curve: &Curve| -> Vec<f64> { curve.iter().map(|p| sd_or_zero(p.stderr)).collect() };
    let mut out: Vec<[Vec<f64>; 2]> = Vec::with_capacity(bases.len());
    for base in bases {
        let noise = [0, 1].map(|s| {
            let here = sds(&base[s]);
            match out.first() {
                Some(first) if here == sds(&bases[0][s]) => first[s].clone(),
                _ => here.iter().map(|sd| sd * rng.normal()).collect(),
            }
        });
        out.push(noise);
    }
    out
}

fn sd_or_zero(sd: f64) -> f64 {
    if sd.is_finite() { sd } else { 0.0 }
}

/// A side's replicates with their own values.
fn as_is(side: &[Replicate]) -> Drawn<'_> {
    side.iter().map(|r| (r, r.values())).collect()
}

/// One draw's replicates of a side, each with its values recomputed from the item
/// resample (the same for both sides) when there is one.
type Drawn<'a> = Vec<(&'a Replicate, Vec<f64>)>;

/// One general-path draw: both sides' values, and the seed level when the method has
/// one. The random stream is the plan's: item counts first, then the seed level.
fn draw_values<'a>(
    dlm: &'a [Replicate],
    baseline: &'a [Replicate],
    method: Method,
    rng: &mut Rng,
) -> (Drawn<'a>, Drawn<'a>, Option<SeedDraw>) {
    let counts = method.paired().then(|| item_counts(dlm, rng));
    let values = |side: &'a [Replicate]| -> Drawn<'a> {
        side.iter()
            .map(|r| match &counts {
                Some(counts) => (r, reweighted(r, counts)),
                None => (r, r.values()),
            })
            .collect()
    };
    let (d, b) = (values(dlm), values(baseline));
    let seeds = method
        .seed_level()
        .then(|| SeedDraw::new(dlm, baseline, rng));
    (d, b, seeds)
}

/// A side's curve in one draw on `axis`: with a seed level, its replicates smoothed
/// and mixed by `seed_mixed`; otherwise smoothed and averaged.
fn drawn_side_curve(
    drawn: &[(&Replicate, Vec<f64>)],
    axis: usize,
    smooth: usize,
    seeds: Option<(&[f64], f64)>,
) -> Curve {
    match seeds {
        None => side_curve(drawn, axis, smooth),
        Some((multipliers, scale)) => {
            let curves: Vec<Curve> = drawn
                .iter()
                .map(|(r, ys)| smoothed(&r.on_axis(axis, ys), smooth))
                .collect();
            seed_mixed_curve(&curves, multipliers, scale)
        }
    }
}

/// How often each item is drawn when n items are resampled with replacement.
fn item_counts(side: &[Replicate], rng: &mut Rng) -> Vec<f64> {
    let n = side
        .first()
        .and_then(|r| r.items.as_ref())
        .and_then(|points| points.first())
        .map_or(0, Vec::len);
    let mut counts = Vec::new();
    item_counts_into(n, rng, &mut counts);
    counts
}

/// How often each of n items is drawn when they are resampled with replacement, into a
/// reused buffer.
pub(crate) fn item_counts_into(n: usize, rng: &mut Rng, counts: &mut Vec<f64>) {
    counts.clear();
    counts.resize(n, 0.0);
    for _ in 0..n {
        counts[rng.below(n)] += 1.0;
    }
}

/// A replicate's values with every point recomputed as the count-weighted mean of its
/// item scores (items not scored at a point are left out there).
fn reweighted(replicate: &Replicate, counts: &[f64]) -> Vec<f64> {
    let Some(items) = &replicate.items else {
        return replicate.values();
    };
    replicate
        .curve
        .iter()
        .zip(items)
        .map(|(point, scores)| {
            let (mut sum, mut weight) = (0.0, 0.0);
            for (score, count) in scores.iter().zip(counts) {
                if *count > 0.0 && score.is_finite() {
                    sum += count * score;
                    weight += count;
                }
            }
            if weight > 0.0 { sum / weight } else { point.y }
        })
        .collect()
}

/// One draw's seed level: per side, a Gaussian multiplier per replicate (seed s of
/// the DLM and seed s of the baseline share theirs: same data order), and one
/// Student-t scale for both sides (module comment).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SeedDraw {
    pub multipliers: [Vec<f64>; 2],
    pub scale: f64,
}

impl SeedDraw {
    /// A draw for two sides of at least 2 replicates each: one normal per distinct
    /// seed of either side (in seed order), then df = (smaller side) - 1 more for the
    /// chi-square of the t scale.
    pub(crate) fn new(dlm: &[Replicate], baseline: &[Replicate], rng: &mut Rng) -> Self {
        let mut seeds: Vec<u64> = dlm.iter().chain(baseline).map(|r| r.seed).collect();
        seeds.sort_unstable();
        seeds.dedup();
        let z: Vec<f64> = seeds.iter().map(|_| rng.normal()).collect();
        let multipliers = [dlm, baseline].map(|side| {
            side.iter()
                .map(|r| seeds.binary_search(&r.seed).map_or(0.0, |i| z[i]))
                .collect()
        });
        let df = dlm.len().min(baseline.len()).saturating_sub(1).max(1);
        let chi_square: f64 = (0..df).map(|_| rng.normal().powi(2)).sum();
        Self {
            multipliers,
            scale: (df as f64 / chi_square).sqrt(),
        }
    }
}

/// One point of a side's seed-level draw from its replicates' `values` there (with
/// their `multipliers`, in replicate order): the mean plus the deviations from it
/// weighted by the multipliers, scaled so that the result moves by s/sqrt(k) (s the
/// replicates' spread) times `scale`. Sum over z_r (y_r - mean) has variance (k - 1) s^2,
/// hence the 1/sqrt(k (k - 1)). One replicate is its own value.
pub(crate) fn seed_mixed(values: &[f64], multipliers: &[f64], scale: f64) -> f64 {
    let k = values.len();
    let mean = values.iter().sum::<f64>() / k as f64;
    if k < 2 {
        return mean;
    }
    let spread: f64 = values
        .iter()
        .zip(multipliers)
        .map(|(y, z)| z * (y - mean))
        .sum();
    mean + scale / ((k * (k - 1)) as f64).sqrt() * spread
}

/// A side's seed-level curve: each replicate smoothed, then at every x of their
/// union the replicates reaching it (log-x interpolation, as `curve::mean_curve`)
/// combined by `seed_mixed`.
fn seed_mixed_curve(curves: &[Curve], multipliers: &[f64], scale: f64) -> Curve {
    let mut grid: Vec<f64> = curves.iter().flat_map(|c| c.iter().map(|p| p.x)).collect();
    grid.sort_by(f64::total_cmp);
    grid.dedup();
    let (mut values, mut reaching) = (Vec::new(), Vec::new());
    grid.iter()
        .filter_map(|&x| {
            values.clear();
            reaching.clear();
            for (curve, &z) in curves.iter().zip(multipliers) {
                if let Some(p) = interpolate_log(curve, x) {
                    values.push(p.y);
                    reaching.push(z);
                }
            }
            (!values.is_empty())
                .then(|| Point::new(x, seed_mixed(&values, &reaching, scale), f64::NAN))
        })
        .collect()
}

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
    let mut xs: Vec<f64> = draws
        .outcomes
        .iter()
        .filter_map(Outcome::censored_x)
        .collect();
    xs.sort_by(f64::total_cmp);
    let crossed = draws
        .outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Crossed { .. } | Outcome::AheadFromStart { .. }))
        .count();
    // Quantile q of the draws' advantage at grid point i (NaN when no draw has one).
    let mut scratch = Vec::with_capacity(n);
    let mut band_at = |i: usize, q: f64| -> f64 {
        scratch.clear();
        scratch.extend(
            draws
                .values
                .iter()
                .skip(i)
                .step_by(grid.len())
                .copied()
                .filter(|g| g.is_finite()),
        );
        quantile_unsorted(&mut scratch, q)
    };
    // The bands at the last grid point that any draw reaches.
    let last = (0..grid.len()).rev().find_map(|i| {
        let low = band_at(i, 0.05);
        low.is_finite().then(|| (i, low, band_at(i, 0.95)))
    });
    let (g_low, g_high) = last.map_or((f64::NAN, f64::NAN), |(_, low, high)| (low, high));
    let verdict = if n == 0 || matches!(outcome, Outcome::NoOverlap) {
        Verdict::of(*outcome)
    } else if g_low > 0.0 {
        // Where the lower 5% band rises to 0 and stays there: walk back from the end
        // to the last point below 0 (the band is only needed from there on).
        let mut tail: Vec<(f64, f64)> = Vec::new();
        for i in (0..=last.map_or(0, |l| l.0)).rev() {
            let low = band_at(i, 0.05);
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
        median: quantile(&xs, 0.5),
        low: quantile(&xs, 0.05),
        high: quantile(&xs, 0.95),
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

/// `quantile` of values in any order, by selection rather than a full sort (the two
/// order statistics it needs); reorders `values`.
pub fn quantile_unsorted(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let position = q * (values.len() - 1) as f64;
    let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
    let (_, &mut a, right) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let b = if hi == lo {
        a
    } else {
        right.iter().copied().fold(f64::INFINITY, f64::min)
    };
    interpolate_order_statistics(a, b, position - lo as f64)
}

/// Quantile of sorted values by linear interpolation between order statistics (type 7,
/// the default of R and NumPy); infinities propagate as "not reached".
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let position = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
    interpolate_order_statistics(sorted[lo], sorted[hi], position - lo as f64)
}

/// Between order statistics a <= b at fraction t; infinities propagate.
fn interpolate_order_statistics(a: f64, b: f64, t: f64) -> f64 {
    if a == b || a.is_infinite() || b.is_infinite() {
        return if t >= 0.5 || a == b { b } else { a };
    }
    a + t * (b - a)
}

#[cfg(test)]
#[path = "uncertainty_tests.rs"]
mod tests;
