//! Curves as plain data: points (x, value, stderr), linear interpolation, the moving
//! average, and the mean over seed replicates. No Polars here, so the crossover logic
//! on top is tested as tables of cases.

/// One evaluation: position on the x axis (tokens, epochs or FLOPs), the metric's
/// value, and its standard error (NaN when unknown).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub stderr: f64,
}

impl Point {
    pub fn new(x: f64, y: f64, stderr: f64) -> Self {
        Self { x, y, stderr }
    }
}

/// A metric's evaluations, sorted by x, one point per x.
pub type Curve = Vec<Point>;

/// Which way is better for a metric: losses fall, accuracies rise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    LowerBetter,
    HigherBetter,
}

impl Direction {
    /// The direction of an eval.csv metric: `loss` (and anything named like a loss or
    /// perplexity) is lower-better, accuracies are higher-better.
    pub fn of_metric(metric: &str) -> Self {
        if metric.contains("loss") || metric.contains("ppl") || metric.contains("perplexity") {
            Self::LowerBetter
        } else {
            Self::HigherBetter
        }
    }

    /// +1 when higher is better, -1 when lower is: `sign * (a - b) >= 0` says a is at
    /// least as good as b.
    pub fn sign(self) -> f64 {
        match self {
            Self::HigherBetter => 1.0,
            Self::LowerBetter => -1.0,
        }
    }

    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        self.sign() * (a - b) > 0.0
    }
}

/// Sort by x, drop non-finite x or y, and average points that share an x (a resumed
/// job may log a milestone twice).
pub fn normalized(points: &[Point]) -> Curve {
    let mut sorted: Vec<Point> = points
        .iter()
        .copied()
        .filter(|p| p.x.is_finite() && p.y.is_finite())
        .collect();
    sorted.sort_by(|a, b| a.x.total_cmp(&b.x));
    let mut out: Curve = Vec::with_capacity(sorted.len());
    let mut run = 1.0;
    for point in sorted {
        match out.last_mut() {
            Some(last) if last.x == point.x => {
                run += 1.0;
                last.y += (point.y - last.y) / run;
                last.stderr = last.stderr.max(point.stderr);
            }
            _ => {
                run = 1.0;
                out.push(point);
            }
        }
    }
    out
}

/// Linear interpolation of a sorted curve at x; None outside its range.
pub fn interpolate(curve: &[Point], x: f64) -> Option<Point> {
    interpolate_by(curve, x, |lo, hi| (x - lo) / (hi - lo))
}

/// Interpolation in log x: crossings are read where curves are smooth (log2-spaced
/// milestones, power-law-like curves), so the straight line between two evaluations is
/// drawn in log x. Falls back to linear weights when an end is at x <= 0; None outside
/// the curve's range.
pub fn interpolate_log(curve: &[Point], x: f64) -> Option<Point> {
    interpolate_by(curve, x, |lo, hi| {
        if lo > 0.0 {
            (x / lo).ln() / (hi / lo).ln()
        } else {
            (x - lo) / (hi - lo)
        }
    })
}

/// The point at x between the two evaluations that bracket it, with `weight(lo.x,
/// hi.x)` the share of the way from the left one to the right one.
fn interpolate_by(curve: &[Point], x: f64, weight: impl Fn(f64, f64) -> f64) -> Option<Point> {
    let first = curve.first()?;
    let last = curve.last()?;
    if x < first.x || x > last.x {
        return None;
    }
    // First point with x >= the query: the right end of the bracketing segment.
    let right = curve.partition_point(|p| p.x < x);
    let hi = curve[right];
    if hi.x == x || right == 0 {
        return Some(Point { x, ..hi });
    }
    let lo = curve[right - 1];
    let w = weight(lo.x, hi.x);
    Some(Point {
        x,
        y: lo.y + w * (hi.y - lo.y),
        stderr: lo.stderr + w * (hi.stderr - lo.stderr),
    })
}

/// The running best of a curve (cumulative min of a loss, max of an accuracy): what a
/// run stopped at its best checkpoint so far would report at x. Monotone, so two of
/// them cross at most in one sustained place. Each point keeps the stderr of the
/// evaluation that set the best.
pub fn running_best(curve: &[Point], direction: Direction) -> Curve {
    let mut best: Option<Point> = None;
    curve
        .iter()
        .map(|&p| {
            let kept = match best {
                Some(b) if !direction.better(p.y, b.y) => b,
                _ => p,
            };
            best = Some(kept);
            Point::new(p.x, kept.y, kept.stderr)
        })
        .collect()
}

/// The x's of both curves inside their overlap, sorted and distinct: the grid on
/// which two curves with unequal evaluation points are compared.
pub fn union_grid(a: &[Point], b: &[Point]) -> Vec<f64> {
    let (Some(a0), Some(a1), Some(b0), Some(b1)) = (a.first(), a.last(), b.first(), b.last())
    else {
        return Vec::new();
    };
    let (lo, hi) = (a0.x.max(b0.x), a1.x.min(b1.x));
    let mut xs: Vec<f64> = a
        .iter()
        .chain(b)
        .map(|p| p.x)
        .filter(|&x| x >= lo && x <= hi)
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    xs
}

/// Centred moving average over an odd window (an even `window` is widened to the next
/// odd one, so no point looks forward more than back). Near the ends the window shrinks
/// symmetrically (the first and last points are kept as they are) rather than leaning
/// on one side, which would bend the ends of a trending curve. The stderr of a mean of
/// k independent points is sqrt(sum s^2) / k. A window of 0 or 1 is a no-op.
pub fn smoothed(curve: &[Point], window: usize) -> Curve {
    let half = window / 2;
    if half == 0 {
        return curve.to_vec();
    }
    let n = curve.len();
    (0..n)
        .map(|i| {
            let h = half.min(i).min(n - 1 - i);
            let span = &curve[i - h..=i + h];
            let k = span.len() as f64;
            let y = span.iter().map(|p| p.y).sum::<f64>() / k;
            let variance: f64 = span.iter().map(|p| p.stderr * p.stderr).sum();
            Point::new(curve[i].x, y, variance.sqrt() / k)
        })
        .collect()
}

/// The odd window `smoothed` uses for a requested one.
pub fn odd_window(window: usize) -> usize {
    (window / 2) * 2 + 1
}

/// Pointwise mean of replicate curves on the union of their x's. At each x the
/// replicates that reach it are averaged (a partial seed contributes where it has data
/// rather than cutting every other seed short). With one replicate at x its own stderr
/// is kept; with several, the stderr is the standard error of the mean across them
/// (seed spread / sqrt(n)).
pub fn mean_curve(replicates: &[&[Point]]) -> Curve {
    match replicates {
        [] => Vec::new(),
        [only] => only.to_vec(),
        many => {
            let mut grid: Vec<f64> = many.iter().flat_map(|c| c.iter().map(|p| p.x)).collect();
            grid.sort_by(f64::total_cmp);
            grid.dedup();
            grid.iter().filter_map(|&x| mean_at(many, x)).collect()
        }
    }
}

fn mean_at(replicates: &[&[Point]], x: f64) -> Option<Point> {
    let points: Vec<Point> = replicates
        .iter()
        .filter_map(|curve| interpolate_log(curve, x))
        .collect();
    match points.as_slice() {
        [] => None,
        [only] => Some(*only),
        many => {
            let n = many.len() as f64;
            let mean = many.iter().map(|p| p.y).sum::<f64>() / n;
            let variance = many.iter().map(|p| (p.y - mean).powi(2)).sum::<f64>() / (n - 1.0);
            Some(Point::new(x, mean, (variance / n).sqrt()))
        }
    }
}

/// Best value a curve reached and where (the first x reaching it).
pub fn best(curve: &[Point], direction: Direction) -> Option<Point> {
    curve.iter().copied().reduce(|best, p| {
        if direction.better(p.y, best.y) {
            p
        } else {
            best
        }
    })
}

/// The curve the point estimate uses for a side: each replicate smoothed, then averaged.
pub fn combined(replicates: &[Curve], smooth: usize) -> Curve {
    let smooth_each: Vec<Curve> = replicates.iter().map(|c| smoothed(c, smooth)).collect();
    let refs: Vec<&[Point]> = smooth_each.iter().map(Vec::as_slice).collect();
    mean_curve(&refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(points: &[(f64, f64)]) -> Curve {
        points.iter().map(|&(x, y)| Point::new(x, y, 0.0)).collect()
    }

    #[test]
    fn interpolation_cases() {
        let c = curve(&[(1.0, 0.0), (3.0, 2.0), (4.0, 2.0)]);
        for (x, expected) in [
            (1.0, Some(0.0)),
            (2.0, Some(1.0)),
            (3.5, Some(2.0)),
            (0.5, None),
            (4.5, None),
        ] {
            assert_eq!(interpolate(&c, x).map(|p| p.y), expected, "x = {x}");
        }
    }

    #[test]
    fn union_grid_keeps_only_the_overlap() {
        let a = curve(&[(1.0, 0.0), (2.0, 0.0), (8.0, 0.0)]);
        let b = curve(&[(1.5, 0.0), (2.0, 0.0), (4.0, 0.0), (10.0, 0.0)]);
        assert_eq!(union_grid(&a, &b), vec![1.5, 2.0, 4.0, 8.0]);
    }

    #[test]
    fn moving_average_and_its_stderr() {
        let c: Curve = [1.0, 2.0, 6.0, 4.0]
            .iter()
            .enumerate()
            .map(|(i, &y)| Point::new(i as f64, y, 1.0))
            .collect();
        let s = smoothed(&c, 3);
        let ys: Vec<f64> = s.iter().map(|p| p.y).collect();
        // Odd, centred, shrinking symmetrically: the ends stay as they are.
        assert_eq!(ys, vec![1.0, 3.0, 4.0, 4.0]);
        assert_eq!(
            smoothed(&c, 2),
            s,
            "an even window is widened to the next odd one"
        );
        assert!((s[1].stderr - 3f64.sqrt() / 3.0).abs() < 1e-12);
        assert_eq!(smoothed(&c, 1), c);
    }

    #[test]
    fn normalized_sorts_and_merges_duplicates() {
        let c = normalized(&curve(&[
            (2.0, 4.0),
            (1.0, 1.0),
            (2.0, 6.0),
            (f64::NAN, 1.0),
        ]));
        assert_eq!(c, curve(&[(1.0, 1.0), (2.0, 5.0)]));
    }

    #[test]
    fn mean_of_replicates_with_unequal_points() {
        let a = curve(&[(0.0, 0.0), (2.0, 2.0)]);
        let b = curve(&[(0.0, 2.0), (1.0, 2.0), (2.0, 2.0)]);
        let mean = mean_curve(&[&a, &b]);
        let ys: Vec<f64> = mean.iter().map(|p| p.y).collect();
        assert_eq!(ys, vec![1.0, 1.5, 2.0]);
        assert!((mean[0].stderr - 1.0).abs() < 1e-12);
    }

    #[test]
    fn partial_replicates_are_averaged_where_they_exist() {
        let long = curve(&[(1.0, 1.0), (2.0, 1.0), (4.0, 1.0)]);
        let short = curve(&[(1.0, 3.0), (2.0, 3.0)]);
        let mean = mean_curve(&[&long, &short]);
        let ys: Vec<f64> = mean.iter().map(|p| p.y).collect();
        assert_eq!(ys, vec![2.0, 2.0, 1.0]);
    }

    #[test]
    fn log_interpolation_and_running_best() {
        let c = curve(&[(1.0, 0.0), (4.0, 2.0)]);
        // Halfway in log x between 1 and 4 is 2.
        assert_eq!(interpolate_log(&c, 2.0).map(|p| p.y), Some(1.0));
        let loss = curve(&[(1.0, 3.0), (2.0, 2.0), (4.0, 2.5), (8.0, 1.5)]);
        let ys: Vec<f64> = running_best(&loss, Direction::LowerBetter)
            .iter()
            .map(|p| p.y)
            .collect();
        assert_eq!(ys, vec![3.0, 2.0, 2.0, 1.5]);
    }

    #[test]
    fn best_respects_direction() {
        let c = curve(&[(1.0, 3.0), (2.0, 1.0), (3.0, 2.0)]);
        assert_eq!(best(&c, Direction::LowerBetter).map(|p| p.x), Some(2.0));
        assert_eq!(best(&c, Direction::HigherBetter).map(|p| p.x), Some(1.0));
        assert_eq!(Direction::of_metric("loss"), Direction::LowerBetter);
        assert_eq!(Direction::of_metric("acc_norm"), Direction::HigherBetter);
    }
}
