//! What one bootstrap draw changes (the method and the module comment of `uncertainty`):
//! the items resampled once for both sides, the seed level's multipliers and t scale,
//! or each point jittered by its stderr; and each side's curve rebuilt from the drawn
//! values. The planned draws (`draws`) and the general path (`uncertainty`) share these
//! pieces, so both take the same random stream.

use crate::crossover::detection::Outcome;
use crate::curve::{Curve, Point, combined, interpolate_log, smoothed};
use crate::pairs::replicates::Replicate;
use crate::rng::Rng;

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

/// One side's combined curve on `axis`, from its chosen replicates and their values.
pub(super) fn side_curve(drawn: &[(&Replicate, Vec<f64>)], axis: usize, smooth: usize) -> Curve {
    let curves: Vec<Curve> = drawn.iter().map(|(r, ys)| r.on_axis(axis, ys)).collect();
    combined(&curves, smooth)
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
pub(super) fn as_is(side: &[Replicate]) -> Drawn<'_> {
    side.iter().map(|r| (r, r.values())).collect()
}

/// One draw's replicates of a side, each with its values recomputed from the item
/// resample (the same for both sides) when there is one.
pub(super) type Drawn<'a> = Vec<(&'a Replicate, Vec<f64>)>;

/// One general-path draw: both sides' values, and the seed level when the method has
/// one. The random stream is the plan's: item counts first, then the seed level.
pub(super) fn draw_values<'a>(
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
pub(super) fn drawn_side_curve(
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

/// One axis' and kind's draws: each draw's outcome, and the advantage on the point
/// estimate's grid, draw-major (`values[d * grid + i]`: grid point i in draw d).
#[derive(Clone, Debug, Default)]
pub struct DrawSet {
    pub outcomes: Vec<Outcome>,
    pub values: Vec<f64>,
}
