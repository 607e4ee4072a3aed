//! The bootstrap's inner loop, planned once per comparison (issue 20).
//!
//! A draw changes the values of the curves, never their evaluation points: items are
//! reweighted, seeds are picked again, or points are jittered, but every curve keeps
//! its x's. So where each point of a side's combined curve comes from, and where each
//! point of the advantage grid falls between two evaluations (the log-x weight), is
//! computed once; a draw is then a handful of passes over plain `f64` buffers that are
//! allocated once per comparison. The arithmetic is the general path's, in the same
//! order and from the same random stream, so both give identical estimates (tested);
//! `uncertainty` falls back to the general path for what a plan cannot express (seed
//! replicates with different evaluation points under a seed level).

use crate::crossover::detection::crossing_of;
use crate::crossover::draw_geometry::{Combine, Grid, Side, axis_xs};
use crate::crossover::resample::{
    DrawSet, Method, SeedDraw, combined_unsmoothed_on, item_counts_into, stderr_noise,
};
use crate::curve::{Curve, Direction};
use crate::pairs::replicates::Replicate;
use crate::rng::Rng;

/// A replicate's per-item scores, item-major (`scores[i * points + k]`: item i at
/// point k) with non-finite scores as 0 and `finite` marking them, so one resample
/// reweights every point in one pass over the items.
#[derive(Clone, Debug)]
struct ItemMatrix {
    points: usize,
    items: usize,
    scores: Vec<f64>,
    /// None when every score is finite.
    finite: Option<Vec<f64>>,
}

impl ItemMatrix {
    fn new(by_point: &[Vec<f64>]) -> Option<Self> {
        let points = by_point.len();
        let items = by_point.first().map_or(0, Vec::len);
        if by_point.iter().any(|row| row.len() != items) {
            return None;
        }
        let mut scores = vec![0.0; points * items];
        let mut finite = vec![1.0; points * items];
        let mut all_finite = true;
        for (k, row) in by_point.iter().enumerate() {
            for (i, &s) in row.iter().enumerate() {
                if s.is_finite() {
                    scores[i * points + k] = s;
                } else {
                    finite[i * points + k] = 0.0;
                    all_finite = false;
                }
            }
        }
        Some(Self {
            points,
            items,
            scores,
            finite: (!all_finite).then_some(finite),
        })
    }

    /// Every point's count-weighted mean over its finite scores (the fallback value
    /// where no drawn item was scored), as `resample::reweighted` sums them: item by
    /// item, in item order, skipping items drawn 0 times.
    fn reweight(
        &self,
        counts: &[f64],
        fallback: &[f64],
        sum: &mut Vec<f64>,
        weight: &mut Vec<f64>,
    ) {
        sum.clear();
        sum.resize(self.points, 0.0);
        weight.clear();
        weight.resize(self.points, 0.0);
        let mut total = 0.0;
        for (i, &count) in counts.iter().enumerate().take(self.items) {
            if count <= 0.0 {
                continue;
            }
            let row = &self.scores[i * self.points..(i + 1) * self.points];
            match &self.finite {
                None => {
                    for (s, &score) in sum.iter_mut().zip(row) {
                        *s += count * score;
                    }
                    // Every point's weight is the same sum, in the same order.
                    total += count;
                }
                Some(finite) => {
                    let mask = &finite[i * self.points..(i + 1) * self.points];
                    for ((s, w), (&score, &f)) in sum
                        .iter_mut()
                        .zip(weight.iter_mut())
                        .zip(row.iter().zip(mask))
                    {
                        if f > 0.0 {
                            *s += count * score;
                            *w += count;
                        }
                    }
                }
            }
        }
        if self.finite.is_none() {
            weight.fill(total);
        }
        for ((s, &w), &y) in sum.iter_mut().zip(weight.iter()).zip(fallback) {
            *s = if w > 0.0 { *s / w } else { y };
        }
    }
}

/// Everything a comparison's draws reuse.
pub struct Plan<'a> {
    dlm: &'a [Replicate],
    baseline: &'a [Replicate],
    method: Method,
    direction: Direction,
    smooth: usize,
    /// Per axis: both sides, and the advantage grid.
    axes: Vec<([Side; 2], Grid)>,
    items: Option<[Vec<ItemMatrix>; 2]>,
    /// The stderr fallback's base curves (unsmoothed seed means) per axis and side.
    stderr: Vec<[Curve; 2]>,
    /// Per axis: an earlier axis whose draws give the same advantage values (same
    /// combination and interpolation, x's rescaled), so only crossings are recomputed.
    shared: Vec<Option<usize>>,
    /// Each replicate's own values per side (a point's value where no drawn item was
    /// scored).
    own: [Vec<Vec<f64>>; 2],
}

impl<'a> Plan<'a> {
    /// A plan for `axes` axes, when one can express the method's draws; `grids` are the
    /// point estimate's advantage x's per axis, which the plan's grids must equal.
    pub fn new(
        dlm: &'a [Replicate],
        baseline: &'a [Replicate],
        method: Method,
        direction: Direction,
        smooth: usize,
        grids: &[Vec<f64>],
    ) -> Option<Self> {
        if !plannable(dlm, baseline, grids.len(), method.seed_level()) {
            return None;
        }
        let planned = planned_axes(dlm, baseline, method.seed_level(), grids)?;
        let items = if method.paired() {
            Some(item_matrices(dlm, baseline)?)
        } else {
            None
        };
        let stderr = if method == Method::Stderr {
            (0..grids.len())
                .map(|axis| [dlm, baseline].map(|side| combined_unsmoothed_on(side, axis)))
                .collect()
        } else {
            Vec::new()
        };
        let own = [dlm, baseline].map(|side| {
            side.iter()
                .map(|r| r.curve.iter().map(|p| p.y).collect())
                .collect()
        });
        let shared = shared_axes(&planned, &stderr, method);
        Some(Self {
            shared,
            own,
            dlm,
            baseline,
            method,
            direction,
            smooth,
            axes: planned,
            items,
            stderr,
        })
    }

    /// `draws` draws from `rng`: per axis, both kinds (`Kind::ALL` order).
    pub fn run(&self, draws: usize, rng: &mut Rng) -> Vec<[DrawSet; 2]> {
        let mut out: Vec<[DrawSet; 2]> = self
            .axes
            .iter()
            .map(|(_, grid)| {
                [(); 2].map(|()| DrawSet {
                    outcomes: Vec::with_capacity(draws),
                    values: Vec::with_capacity(grid.xs.len() * draws),
                })
            })
            .collect();
        let mut buffers = Buffers::new([self.dlm.len(), self.baseline.len()]);
        let identity: Vec<[bool; 2]> = self
            .axes
            .iter()
            .map(|(sides, _)| [sides[0].is_identity(), sides[1].is_identity()])
            .collect();
        for d in 0..draws {
            if self.method != Method::Stderr {
                self.draw_values(rng, &mut buffers);
            }
            let noise = (self.method == Method::Stderr).then(|| stderr_noise(&self.stderr, rng));
            for (axis, (planned, grid)) in self.axes.iter().enumerate() {
                if let Some(earlier) = self.shared[axis] {
                    // The same values on a rescaled axis: only the crossing's x moves.
                    copy_shared(&mut out, axis, earlier, d, grid, self.direction);
                    continue;
                }
                let noise = noise.as_ref().map(|n| &n[axis]);
                self.combine_sides(axis, planned, noise, identity[axis], &mut buffers);
                self.record_kinds(grid, identity[axis], &mut buffers, &mut out[axis]);
            }
        }
        out
    }

    /// One draw's values of every replicate, smoothed: reweighted by one item resample
    /// when there are items, then the seed level when the method has one (the general
    /// path's random stream: item counts first).
    fn draw_values(&self, rng: &mut Rng, b: &mut Buffers) {
        if self.items.is_some() {
            item_counts_into(self.items_n(), rng, &mut b.counts);
        }
        let sides = [self.dlm, self.baseline];
        for s in 0..2 {
            for r in 0..sides[s].len() {
                let own = &self.own[s][r];
                let values = match &self.items {
                    Some(matrices) => {
                        matrices[s][r].reweight(&b.counts, own, &mut b.raw[s][r], &mut b.weight);
                        &b.raw[s][r]
                    }
                    None => own,
                };
                smooth_into(values, self.smooth, &mut b.smooth[s][r]);
            }
        }
        if self.method.seed_level() {
            b.seeds = Some(SeedDraw::new(self.dlm, self.baseline, rng));
        }
    }

    /// Both sides' combined values on `axis` into `b.combined`: the stderr draw's
    /// jittered base curve smoothed, or (unless a side is its one replicate as it is)
    /// the replicates combined, mixed by the seed level where there is one.
    fn combine_sides(
        &self,
        axis: usize,
        planned: &[Side; 2],
        noise: Option<&[Vec<f64>; 2]>,
        identity: [bool; 2],
        b: &mut Buffers,
    ) {
        for s in 0..2 {
            if let Some(noise) = noise {
                b.jittered.clear();
                b.jittered.extend(
                    self.stderr[axis][s]
                        .iter()
                        .zip(&noise[s])
                        .map(|(p, &z)| p.y + z),
                );
                smooth_into(&b.jittered, self.smooth, &mut b.combined[s]);
            } else if !identity[s] {
                let mix = b
                    .seeds
                    .as_ref()
                    .map_or((&[][..], 1.0), |d| (d.multipliers[s].as_slice(), d.scale));
                planned[s].combine_into(&b.smooth[s], mix, &mut b.column, &mut b.combined[s]);
            }
        }
    }

    /// Both kinds' draw on one axis: the early-stopped kind from the sides' running
    /// bests, the raw kind from their values; each one's advantage on the grid and its
    /// crossing.
    fn record_kinds(
        &self,
        grid: &Grid,
        identity: [bool; 2],
        b: &mut Buffers,
        sets: &mut [DrawSet; 2],
    ) {
        // The side's combined values: its only replicate's, or the combination.
        let side = |s: usize| -> &[f64] {
            if self.method != Method::Stderr && identity[s] {
                &b.smooth[s][0]
            } else {
                &b.combined[s]
            }
        };
        for (k, set) in sets.iter_mut().enumerate() {
            if k == 0 {
                for (s, curve) in b.kind_curve.iter_mut().enumerate() {
                    curve.clear();
                    curve.extend_from_slice(side(s));
                    running_best_in_place(curve, self.direction);
                }
                grid.advantage_into(&b.kind_curve[0], &b.kind_curve[1], self.direction, &mut b.g);
            } else {
                grid.advantage_into(side(0), side(1), self.direction, &mut b.g);
            }
            set.outcomes
                .push(crossing_of(&grid.xs, &b.g, self.direction));
            set.values.extend_from_slice(&b.g);
        }
    }

    fn items_n(&self) -> usize {
        // The general path counts the DLM's first replicate's first point's items.
        self.dlm
            .first()
            .and_then(|r| r.items.as_ref())
            .and_then(|points| points.first())
            .map_or(0, Vec::len)
    }
}

/// The buffers every draw of a plan reuses, allocated once per comparison.
struct Buffers {
    /// Per side and replicate: the draw's reweighted values, and those smoothed.
    raw: [Vec<Vec<f64>>; 2],
    smooth: [Vec<Vec<f64>>; 2],
    weight: Vec<f64>,
    counts: Vec<f64>,
    /// The draw's seed level (methods with one).
    seeds: Option<SeedDraw>,
    column: Vec<f64>,
    jittered: Vec<f64>,
    /// Per side on the current axis: the combined values, and a kind's curve of them.
    combined: [Vec<f64>; 2],
    kind_curve: [Vec<f64>; 2],
    /// The advantage on the current axis' grid.
    g: Vec<f64>,
}

impl Buffers {
    /// Buffers for sides of `replicates` replicates each.
    fn new(replicates: [usize; 2]) -> Self {
        Self {
            raw: replicates.map(|n| vec![Vec::new(); n]),
            smooth: replicates.map(|n| vec![Vec::new(); n]),
            weight: Vec::new(),
            counts: Vec::new(),
            seeds: None,
            column: Vec::new(),
            jittered: Vec::new(),
            combined: [Vec::new(), Vec::new()],
            kind_curve: [Vec::new(), Vec::new()],
            g: Vec::new(),
        }
    }
}

/// Draw `d` on a rescaled axis from the `earlier` axis' (`Plan::shared`): the same
/// advantage values, with the crossing found on this axis' x's.
fn copy_shared(
    out: &mut [[DrawSet; 2]],
    axis: usize,
    earlier: usize,
    d: usize,
    grid: &Grid,
    direction: Direction,
) {
    let (done, rest) = out.split_at_mut(axis);
    for (k, set) in rest[0].iter_mut().enumerate() {
        let from = &done[earlier][k];
        let n = grid.xs.len();
        let g = &from.values[d * n..(d + 1) * n];
        set.outcomes.push(crossing_of(&grid.xs, g, direction));
        set.values.extend_from_slice(g);
    }
}

/// Whether a plan can express the draws on `axes` axes: both sides have replicates,
/// each strictly increasing on every axis and placed on each, and with a seed level each
/// side's replicates share their x's.
fn plannable(dlm: &[Replicate], baseline: &[Replicate], axes: usize, seed_level: bool) -> bool {
    let increasing = |r: &Replicate| {
        (0..axes).all(|a| axis_xs(r, a).windows(2).all(|w| w[0] < w[1]))
            && r.other_axes.iter().all(|xs| xs.len() == r.curve.len())
    };
    if dlm.is_empty() || baseline.is_empty() || !dlm.iter().chain(baseline).all(increasing) {
        return false;
    }
    let aligned = |side: &[Replicate]| {
        (0..axes).all(|a| {
            let first = axis_xs(&side[0], a);
            side.iter().all(|r| axis_xs(r, a) == first)
        })
    };
    !seed_level || (aligned(dlm) && aligned(baseline))
}

/// Both sides and the advantage grid on each axis; None where a grid is not the point
/// estimate's (`grids`).
fn planned_axes(
    dlm: &[Replicate],
    baseline: &[Replicate],
    seed_level: bool,
    grids: &[Vec<f64>],
) -> Option<Vec<([Side; 2], Grid)>> {
    let mut planned = Vec::with_capacity(grids.len());
    for (axis, expected) in grids.iter().enumerate() {
        let sides = [
            Side::new(dlm, axis, seed_level),
            Side::new(baseline, axis, seed_level),
        ];
        let grid = Grid::new(&sides[0].xs, &sides[1].xs);
        if &grid.xs != expected {
            return None;
        }
        planned.push((sides, grid));
    }
    Some(planned)
}

/// Each side's replicates' item matrices; None when a replicate has no per-item scores
/// or they do not all score the same number of items.
fn item_matrices(dlm: &[Replicate], baseline: &[Replicate]) -> Option<[Vec<ItemMatrix>; 2]> {
    let matrices = |side: &[Replicate]| -> Option<Vec<ItemMatrix>> {
        side.iter()
            .map(|r| ItemMatrix::new(r.items.as_ref()?))
            .collect()
    };
    let both = [matrices(dlm)?, matrices(baseline)?];
    let n = both[0][0].items;
    if both.iter().flatten().any(|m| m.items != n) {
        return None;
    }
    Some(both)
}

/// Per axis, an earlier axis whose draws give the same advantage values (`Plan::shared`).
fn shared_axes(
    planned: &[([Side; 2], Grid)],
    stderr: &[[Curve; 2]],
    method: Method,
) -> Vec<Option<usize>> {
    // Stderr draws share an axis only where its base curves, and so its noise
    // (`resample::stderr_noise`), are the earlier axis' own.
    let same_base = |a: usize, b: usize| {
        method != Method::Stderr
            || (0..2).all(|s| {
                let (x, y) = (&stderr[a][s], &stderr[b][s]);
                x.len() == y.len()
                    && x.iter()
                        .zip(y.iter())
                        .all(|(p, q)| p.y == q.y && p.stderr.to_bits() == q.stderr.to_bits())
            })
    };
    (0..planned.len())
        .map(|axis| {
            (0..axis).find(|&a| same_draws(&planned[a], &planned[axis]) && same_base(a, axis))
        })
        .collect()
}

/// Whether two axes' plans turn the same replicate values into the same advantage.
fn same_draws(a: &([Side; 2], Grid), b: &([Side; 2], Grid)) -> bool {
    let combine_equal = |x: &Combine, y: &Combine| match (x, y) {
        (Combine::Aligned, Combine::Aligned) => true,
        (Combine::Union(p), Combine::Union(q)) => p == q,
        _ => false,
    };
    a.0.iter()
        .zip(&b.0)
        .all(|(x, y)| x.xs.len() == y.xs.len() && combine_equal(&x.combine, &y.combine))
        && a.1.dlm == b.1.dlm
        && a.1.baseline == b.1.baseline
}

/// `curve::smoothed` on values alone (x's and stderrs do not enter the mean).
fn smooth_into(ys: &[f64], window: usize, out: &mut Vec<f64>) {
    out.clear();
    let half = window / 2;
    if half == 0 {
        out.extend_from_slice(ys);
        return;
    }
    let n = ys.len();
    out.extend((0..n).map(|i| {
        let h = half.min(i).min(n - 1 - i);
        let span = &ys[i - h..=i + h];
        span.iter().sum::<f64>() / span.len() as f64
    }));
}

/// `curve::running_best` on values alone.
fn running_best_in_place(ys: &mut [f64], direction: Direction) {
    let mut best: Option<f64> = None;
    for y in ys.iter_mut() {
        let kept = match best {
            Some(b) if !direction.better(*y, b) => b,
            _ => *y,
        };
        best = Some(kept);
        *y = kept;
    }
}
