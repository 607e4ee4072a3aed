//! Where each point of a planned draw comes from and falls, fixed per comparison: the
//! log-x position of an x between two evaluations (`Lerp`), how a side's combined curve
//! is made from its replicates (`Side`), and the advantage grid (`Grid`).

use crate::crossover::detection::advantage_at;
use crate::crossover::resample::seed_mixed;
use crate::curve::Direction;
use crate::pairs::replicates::Replicate;

/// Where a fixed x falls on a fixed, strictly increasing set of x's: on point k, or
/// between k and k + 1 at log-x weight w, exactly as `curve::interpolate_log` puts it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Lerp {
    At(usize),
    Between(usize, f64),
}

impl Lerp {
    pub(super) fn of(xs: &[f64], x: f64) -> Option<Self> {
        let (first, last) = (*xs.first()?, *xs.last()?);
        if x < first || x > last {
            return None;
        }
        let right = xs.partition_point(|&p| p < x);
        if xs[right] == x || right == 0 {
            return Some(Self::At(right));
        }
        let (lo, hi) = (xs[right - 1], xs[right]);
        let w = if lo > 0.0 {
            (x / lo).ln() / (hi / lo).ln()
        } else {
            (x - lo) / (hi - lo)
        };
        Some(Self::Between(right - 1, w))
    }

    pub(super) fn value(self, ys: &[f64]) -> f64 {
        match self {
            Self::At(k) => ys[k],
            Self::Between(k, w) => ys[k] + w * (ys[k + 1] - ys[k]),
        }
    }
}

/// How a side's combined curve on one axis is made from its replicates.
#[derive(Clone, Debug)]
pub(super) enum Combine {
    /// Every replicate, each point the mean of those reaching it (`curve::mean_curve`).
    Union(Vec<Vec<(usize, Lerp)>>),
    /// All replicates share their x's: point by point, the seed level's mix of them
    /// (`resample::seed_mixed`).
    Aligned,
}

/// One side on one axis.
#[derive(Clone, Debug)]
pub(super) struct Side {
    pub(super) xs: Vec<f64>,
    pub(super) combine: Combine,
}

impl Side {
    pub(super) fn new(replicates: &[Replicate], axis: usize, aligned: bool) -> Self {
        let xs_of = |r: &Replicate| axis_xs(r, axis);
        if aligned || replicates.len() == 1 {
            let xs = replicates.first().map(xs_of).unwrap_or_default();
            let combine = if aligned {
                Combine::Aligned
            } else {
                Combine::Union((0..xs.len()).map(|k| vec![(0, Lerp::At(k))]).collect())
            };
            return Self { xs, combine };
        }
        let each: Vec<Vec<f64>> = replicates.iter().map(xs_of).collect();
        let mut grid: Vec<f64> = each.iter().flatten().copied().collect();
        grid.sort_by(f64::total_cmp);
        grid.dedup();
        let mut xs = Vec::new();
        let mut entries = Vec::new();
        for x in grid {
            let reaching: Vec<(usize, Lerp)> = each
                .iter()
                .enumerate()
                .filter_map(|(r, rx)| Some((r, Lerp::of(rx, x)?)))
                .collect();
            if !reaching.is_empty() {
                xs.push(x);
                entries.push(reaching);
            }
        }
        Self {
            xs,
            combine: Combine::Union(entries),
        }
    }

    /// Whether the combined curve is replicate 0's values as they are (one replicate).
    pub(super) fn is_identity(&self) -> bool {
        match &self.combine {
            Combine::Union(entries) => entries
                .iter()
                .enumerate()
                .all(|(k, e)| matches!(e.as_slice(), [(0, Lerp::At(j))] if *j == k)),
            Combine::Aligned => false,
        }
    }

    /// The combined values from each replicate's (smoothed) values; `seeds` (the
    /// side's multipliers and the t scale) mixes them on `Aligned` sides, `column` is
    /// scratch.
    pub(super) fn combine_into(
        &self,
        values: &[Vec<f64>],
        seeds: (&[f64], f64),
        column: &mut Vec<f64>,
        out: &mut Vec<f64>,
    ) {
        out.clear();
        match &self.combine {
            Combine::Union(entries) => out.extend(entries.iter().map(|reaching| {
                if let [(r, lerp)] = reaching.as_slice() {
                    lerp.value(&values[*r])
                } else {
                    let sum = reaching
                        .iter()
                        .map(|(r, lerp)| lerp.value(&values[*r]))
                        .sum::<f64>();
                    sum / reaching.len() as f64
                }
            })),
            Combine::Aligned => out.extend((0..self.xs.len()).map(|k| {
                column.clear();
                column.extend(values.iter().map(|v| v[k]));
                seed_mixed(column, seeds.0, seeds.1)
            })),
        }
    }
}

/// Replicate `r`'s x's on axis `axis` (0: its own).
pub(super) fn axis_xs(r: &Replicate, axis: usize) -> Vec<f64> {
    match axis {
        0 => r.curve.iter().map(|p| p.x).collect(),
        a => r.other_axes[a - 1].clone(),
    }
}

/// The advantage grid of one axis (x > 0, inside the overlap) and where its points
/// fall on each side's combined curve.
#[derive(Clone, Debug)]
pub(super) struct Grid {
    pub(super) xs: Vec<f64>,
    pub(super) dlm: Vec<Lerp>,
    pub(super) baseline: Vec<Lerp>,
    /// When every grid point is an evaluation of both sides: their indices.
    exact: Option<Vec<(usize, usize)>>,
}

impl Grid {
    /// Mirrors `detection::advantage`: both curves' positive x's, their union inside
    /// the overlap, each interpolated there.
    pub(super) fn new(dlm: &[f64], baseline: &[f64]) -> Self {
        let positive = |xs: &[f64]| -> (usize, Vec<f64>) {
            let skip = xs.iter().take_while(|&&x| x <= 0.0).count();
            (skip, xs[skip..].to_vec())
        };
        let ((d_skip, d), (b_skip, b)) = (positive(dlm), positive(baseline));
        let shift = |lerp: Lerp, by: usize| match lerp {
            Lerp::At(k) => Lerp::At(k + by),
            Lerp::Between(k, w) => Lerp::Between(k + by, w),
        };
        let mut grid = Self {
            xs: Vec::new(),
            dlm: Vec::new(),
            baseline: Vec::new(),
            exact: None,
        };
        let (Some(&d0), Some(&d1), Some(&b0), Some(&b1)) =
            (d.first(), d.last(), b.first(), b.last())
        else {
            return grid;
        };
        let (lo, hi) = (d0.max(b0), d1.min(b1));
        let mut union: Vec<f64> = d
            .iter()
            .chain(&b)
            .copied()
            .filter(|&x| x >= lo && x <= hi)
            .collect();
        union.sort_by(f64::total_cmp);
        union.dedup();
        for x in union {
            if let (Some(dl), Some(bl)) = (Lerp::of(&d, x), Lerp::of(&b, x)) {
                grid.xs.push(x);
                grid.dlm.push(shift(dl, d_skip));
                grid.baseline.push(shift(bl, b_skip));
            }
        }
        grid.exact = grid
            .dlm
            .iter()
            .zip(&grid.baseline)
            .map(|pair| match pair {
                (Lerp::At(d), Lerp::At(b)) => Some((*d, *b)),
                _ => None,
            })
            .collect();
        grid
    }

    /// The advantage of one draw's two kind curves at every grid point.
    pub(super) fn advantage_into(
        &self,
        d: &[f64],
        b: &[f64],
        direction: Direction,
        out: &mut Vec<f64>,
    ) {
        out.clear();
        match &self.exact {
            Some(indices) => {
                out.extend(
                    indices
                        .iter()
                        .map(|&(i, j)| advantage_at(d[i], b[j], direction)),
                );
            }
            None => out.extend(
                self.dlm
                    .iter()
                    .zip(&self.baseline)
                    .map(|(dl, bl)| advantage_at(dl.value(d), bl.value(b), direction)),
            ),
        }
    }
}
