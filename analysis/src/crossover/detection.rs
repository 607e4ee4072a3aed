//! Crossover detection: where the DLM overtakes its baseline for good.
//!
//! Definition (design.md, "Analysis"): both curves are interpolated in log x on the
//! union of their evaluation x's within their overlap; the advantage is
//! g(x) = sign * (dlm(x) - baseline(x)), with sign +1 for higher-better metrics and -1
//! for lower-better ones. The crossover is the first x after which g >= 0 until the
//! end: the zero of g on the segment following the last grid point where g < 0. Between
//! grid points both curves are linear in log x, so g is too and the zero is exact in
//! log x; the two evaluations that bracket it are reported with it, since the curves
//! are only known there (milestones are log2-spaced, a factor of 2 apart).
//!
//! Two kinds of comparison (issue 15): `raw` compares the curves as trained;
//! `early_stopped` compares their running bests (cumulative min of a loss, max of an
//! accuracy), i.e. each run stopped at its best checkpoint so far. An AR that overfits
//! after its best point can be passed by the DLM raw while still winning early-stopped.

use crate::curve::{Curve, Direction, Point, interpolate_log, running_best, union_grid};

/// Which curves a crossover compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Running bests: each side stopped at its best checkpoint so far (the headline).
    EarlyStopped,
    /// The curves as trained.
    Raw,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::EarlyStopped, Kind::Raw];

    pub fn name(self) -> &'static str {
        match self {
            Self::EarlyStopped => "early_stopped",
            Self::Raw => "raw",
        }
    }

    /// The curve this kind compares, from a side's combined curve.
    pub fn curve(self, combined: &[Point], direction: Direction) -> Curve {
        match self {
            Self::EarlyStopped => running_best(combined, direction),
            Self::Raw => combined.to_vec(),
        }
    }
}

/// What happened between a DLM curve and its baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    /// The DLM stays at least as good as the baseline from x on; `before` and `after`
    /// are the evaluations that bracket the crossing.
    Crossed { x: f64, before: f64, after: f64 },
    /// The DLM is behind at the last shared evaluation; `gap` is dlm - baseline there,
    /// in the metric's units (so its sign depends on the metric's direction).
    NotReached { gap: f64 },
    /// The DLM is at least as good from the first shared evaluation (at `x`).
    AheadFromStart { x: f64 },
    /// The curves share no x range.
    NoOverlap,
}

impl Outcome {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Crossed { .. } => "crossed",
            Self::NotReached { .. } => "not_reached",
            Self::AheadFromStart { .. } => "ahead_from_start",
            Self::NoOverlap => "no_overlap",
        }
    }

    /// The crossing as a number for quantiles: "ahead from the start" crosses at the
    /// first shared x (or before: it is censored from below), "not reached" at
    /// infinity (censored from above).
    pub fn censored_x(&self) -> Option<f64> {
        match *self {
            Self::Crossed { x, .. } | Self::AheadFromStart { x } => Some(x),
            Self::NotReached { .. } => Some(f64::INFINITY),
            Self::NoOverlap => None,
        }
    }

    /// The evaluations bracketing a crossing.
    pub fn bracket(&self) -> Option<(f64, f64)> {
        match *self {
            Self::Crossed { before, after, .. } => Some((before, after)),
            _ => None,
        }
    }

    /// Human-readable form used in tables and the terminal summary.
    pub fn describe(&self, format_x: impl Fn(f64) -> String) -> String {
        match *self {
            Self::Crossed { x, before, after } => format!(
                "crossed at {} (between evaluations at {} and {})",
                format_x(x),
                format_x(before),
                format_x(after)
            ),
            Self::NotReached { gap } => format!("not reached (gap at the end = {gap:+.4})"),
            Self::AheadFromStart { .. } => "DLM ahead from the first evaluation".into(),
            Self::NoOverlap => "no overlap".into(),
        }
    }
}

/// Differences this small relative to the values count as ties (at least as good), so
/// identical curves interpolated at shared points do not flicker on rounding error.
const TIE_TOLERANCE: f64 = 1e-9;

/// The advantage g(x) = sign * (dlm(x) - baseline(x)) on the union of both curves'
/// evaluation x's (x > 0, inside the overlap), interpolated in log x; ties are 0.
pub fn advantage(dlm: &[Point], baseline: &[Point], direction: Direction) -> Vec<(f64, f64)> {
    let positive = |c: &[Point]| -> Curve { c.iter().copied().filter(|p| p.x > 0.0).collect() };
    let (dlm, baseline) = (positive(dlm), positive(baseline));
    union_grid(&dlm, &baseline)
        .iter()
        .filter_map(|&x| {
            let d = interpolate_log(&dlm, x)?.y;
            let b = interpolate_log(&baseline, x)?.y;
            Some((x, advantage_at(d, b, direction)))
        })
        .collect()
}

/// sign * (d - b), with near-ties set to 0.
pub fn advantage_at(d: f64, b: f64, direction: Direction) -> f64 {
    let scale = d.abs().max(b.abs()).max(1.0);
    let g = direction.sign() * (d - b);
    if g.abs() <= TIE_TOLERANCE * scale {
        0.0
    } else {
        g
    }
}

/// Where an advantage (sorted by x > 0) rises to 0 and stays there: the zero on the
/// segment after the last point below 0, linear in log x.
pub fn crossing_of_advantage(advantage: &[(f64, f64)], direction: Direction) -> Outcome {
    let (xs, gs): (Vec<f64>, Vec<f64>) = advantage.iter().copied().unzip();
    crossing_of(&xs, &gs, direction)
}

/// `crossing_of_advantage` with the grid's x's and the advantage in two slices.
pub fn crossing_of(xs: &[f64], gs: &[f64], direction: Direction) -> Outcome {
    let Some(&first_x) = xs.first() else {
        return Outcome::NoOverlap;
    };
    let Some(behind) = gs.iter().rposition(|&g| g < 0.0) else {
        return Outcome::AheadFromStart { x: first_x };
    };
    let (x0, g0) = (xs[behind], gs[behind]);
    match xs.get(behind + 1).zip(gs.get(behind + 1)) {
        None => Outcome::NotReached {
            gap: direction.sign() * g0,
        },
        Some((&x1, &g1)) => {
            let t = -g0 / (g1 - g0);
            let x = if t >= 1.0 { x1 } else { x0 * (x1 / x0).powf(t) };
            Outcome::Crossed {
                x,
                before: x0,
                after: x1,
            }
        }
    }
}

/// The crossover of `dlm` over `baseline` (both sorted by x; see `curve::normalized`).
pub fn find_crossing(dlm: &[Point], baseline: &[Point], direction: Direction) -> Outcome {
    crossing_of_advantage(&advantage(dlm, baseline, direction), direction)
}

/// Best value each side reached, and where.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BestVsBest {
    pub dlm: Option<Point>,
    pub baseline: Option<Point>,
}

impl BestVsBest {
    pub fn of(dlm: &[Point], baseline: &[Point], direction: Direction) -> Self {
        Self {
            dlm: crate::curve::best(dlm, direction),
            baseline: crate::curve::best(baseline, direction),
        }
    }

    /// sign * (dlm best - baseline best): positive when the DLM's best is better.
    pub fn advantage(&self, direction: Direction) -> Option<f64> {
        Some(direction.sign() * (self.dlm?.y - self.baseline?.y))
    }
}

/// Linear shorthand for tests and fixtures: a curve from (x, y) pairs with no stderr.
pub fn curve_from(points: &[(f64, f64)]) -> Curve {
    points.iter().map(|&(x, y)| Point::new(x, y, 0.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{HigherBetter, LowerBetter};

    struct Case {
        name: &'static str,
        dlm: &'static [(f64, f64)],
        baseline: &'static [(f64, f64)],
        direction: Direction,
        expected: Outcome,
    }

    const fn crossed(x: f64, before: f64, after: f64) -> Outcome {
        Outcome::Crossed { x, before, after }
    }

    const CASES: &[Case] = &[
        Case {
            name: "clean crossing, accuracy",
            dlm: &[(1.0, 0.2), (2.0, 0.3), (3.0, 0.5), (4.0, 0.6)],
            baseline: &[(1.0, 0.3), (2.0, 0.4), (3.0, 0.4), (4.0, 0.4)],
            direction: HigherBetter,
            // g: -0.1, -0.1, +0.1: zero halfway between 2 and 3 in log x: sqrt(6).
            expected: crossed(2.449_489_742_783_178, 2.0, 3.0),
        },
        Case {
            name: "clean crossing, loss (lower is better)",
            // Halfway between 1 and 100 in log x is 10.
            dlm: &[(1.0, 4.0), (100.0, 2.0)],
            baseline: &[(1.0, 3.0), (100.0, 3.0)],
            direction: LowerBetter,
            expected: crossed(10.0, 1.0, 100.0),
        },
        Case {
            name: "no crossing: gap at the end is dlm - baseline",
            dlm: &[(1.0, 0.1), (2.0, 0.2), (3.0, 0.25)],
            baseline: &[(1.0, 0.3), (2.0, 0.35), (3.0, 0.4)],
            direction: HigherBetter,
            expected: Outcome::NotReached {
                gap: -0.15000000000000002,
            },
        },
        Case {
            name: "no crossing on a loss: the DLM's loss is higher at the end",
            dlm: &[(1.0, 3.0), (2.0, 2.5)],
            baseline: &[(1.0, 2.0), (2.0, 2.25)],
            direction: LowerBetter,
            expected: Outcome::NotReached { gap: 0.25 },
        },
        Case {
            name: "ahead from the first evaluation",
            dlm: &[(1.0, 0.5), (2.0, 0.6)],
            baseline: &[(1.0, 0.4), (2.0, 0.5)],
            direction: HigherBetter,
            expected: Outcome::AheadFromStart { x: 1.0 },
        },
        Case {
            name: "multiple crossings: the last sustained one counts",
            // g: -1, +1, -1, +1, +1: crossings near 1.5 and 3.5; the second holds, at
            // sqrt(3 x 4) in log x.
            dlm: &[(1.0, 0.0), (2.0, 2.0), (3.0, 0.0), (4.0, 2.0), (5.0, 2.0)],
            baseline: &[(1.0, 1.0), (2.0, 1.0), (3.0, 1.0), (4.0, 1.0), (5.0, 1.0)],
            direction: HigherBetter,
            expected: crossed(3.464_101_615_137_754_6, 3.0, 4.0),
        },
        Case {
            name: "crossing then falling back: not reached",
            dlm: &[(1.0, 0.0), (2.0, 2.0), (3.0, 0.5)],
            baseline: &[(1.0, 1.0), (2.0, 1.0), (3.0, 1.0)],
            direction: HigherBetter,
            expected: Outcome::NotReached { gap: -0.5 },
        },
        Case {
            name: "tie everywhere counts as at least as good",
            dlm: &[(1.0, 0.3), (2.0, 0.4)],
            baseline: &[(1.0, 0.3), (2.0, 0.4)],
            direction: HigherBetter,
            expected: Outcome::AheadFromStart { x: 1.0 },
        },
        Case {
            name: "behind, then tied to the end: crossing at the tie",
            dlm: &[(1.0, 0.1), (2.0, 0.4), (3.0, 0.4)],
            baseline: &[(1.0, 0.3), (2.0, 0.4), (3.0, 0.4)],
            direction: HigherBetter,
            expected: crossed(2.0, 1.0, 2.0),
        },
        Case {
            name: "tie at the last point after trailing: crossed at the end",
            dlm: &[(1.0, 0.1), (2.0, 0.3)],
            baseline: &[(1.0, 0.3), (2.0, 0.3)],
            direction: HigherBetter,
            expected: crossed(2.0, 1.0, 2.0),
        },
        Case {
            name: "unequal evaluation points: interpolated on the union within the overlap",
            // Baseline at 1, 4, 16 (flat 0.5); DLM at 1, 2, 8, 16 rising 0.1 per
            // doubling: dlm = 0.2 + 0.1 log2 x reaches 0.5 at x = 8, between the DLM's
            // evaluation at 8 and the baseline's at 4.
            dlm: &[(1.0, 0.2), (2.0, 0.3), (8.0, 0.5), (16.0, 0.6)],
            baseline: &[(1.0, 0.5), (4.0, 0.5), (16.0, 0.5)],
            direction: HigherBetter,
            expected: crossed(8.0, 4.0, 8.0),
        },
        Case {
            name: "unequal points: crossing inside a segment that only one side samples",
            // dlm = log10 x reaches 0.5 at sqrt(10), between the baseline's 2 and 10.
            dlm: &[(1.0, 0.0), (10.0, 1.0)],
            baseline: &[(1.0, 0.5), (2.0, 0.5), (10.0, 0.5)],
            direction: HigherBetter,
            expected: crossed(3.162_277_660_168_379_5, 2.0, 10.0),
        },
        Case {
            name: "disjoint ranges",
            dlm: &[(0.0, 0.0), (1.0, 1.0)],
            baseline: &[(2.0, 0.5), (3.0, 0.5)],
            direction: HigherBetter,
            expected: Outcome::NoOverlap,
        },
        Case {
            name: "empty curve",
            dlm: &[],
            baseline: &[(2.0, 0.5)],
            direction: HigherBetter,
            expected: Outcome::NoOverlap,
        },
    ];

    #[test]
    fn crossing_cases() {
        for case in CASES {
            let outcome = find_crossing(
                &curve_from(case.dlm),
                &curve_from(case.baseline),
                case.direction,
            );
            let close = match (outcome, case.expected) {
                (
                    Outcome::Crossed {
                        x: a,
                        before,
                        after,
                    },
                    Outcome::Crossed {
                        x: b,
                        before: b0,
                        after: b1,
                    },
                ) => (a - b).abs() < 1e-9 && before == b0 && after == b1,
                (Outcome::NotReached { gap: a }, Outcome::NotReached { gap: b }) => {
                    (a - b).abs() < 1e-9
                }
                (a, b) => a == b,
            };
            assert!(
                close,
                "{}: got {outcome:?}, expected {:?}",
                case.name, case.expected
            );
        }
    }

    #[test]
    fn best_vs_best() {
        let dlm = curve_from(&[(1.0, 3.0), (2.0, 2.0), (3.0, 2.5)]);
        let ar = curve_from(&[(1.0, 2.5), (2.0, 2.2), (3.0, 2.6)]);
        let best = BestVsBest::of(&dlm, &ar, LowerBetter);
        assert_eq!(best.dlm.map(|p| (p.x, p.y)), Some((2.0, 2.0)));
        assert_eq!(best.baseline.map(|p| (p.x, p.y)), Some((2.0, 2.2)));
        assert!((best.advantage(LowerBetter).unwrap_or(f64::NAN) - 0.2).abs() < 1e-12);
    }

    /// Issue 15: an AR that overfits after its best point and a DLM whose best is worse
    /// cross raw (the DLM passes the overfitted AR) but not early-stopped.
    #[test]
    fn early_stopped_crossing_ignores_overfitting() {
        let ar = curve_from(&[(1.0, 3.0), (2.0, 2.5), (4.0, 2.3), (8.0, 2.6), (16.0, 3.0)]);
        let dlm = curve_from(&[
            (1.0, 3.5),
            (2.0, 3.0),
            (4.0, 2.7),
            (8.0, 2.55),
            (16.0, 2.53),
        ]);
        let compare = |kind: Kind| {
            find_crossing(
                &kind.curve(&dlm, LowerBetter),
                &kind.curve(&ar, LowerBetter),
                LowerBetter,
            )
        };
        assert!(
            matches!(compare(Kind::Raw), Outcome::Crossed { before, after, .. } if before == 4.0 && after == 8.0)
        );
        assert!(
            matches!(compare(Kind::EarlyStopped), Outcome::NotReached { gap } if (gap - 0.23).abs() < 1e-9),
            "{:?}",
            compare(Kind::EarlyStopped)
        );
    }

    #[test]
    fn describe_outcomes() {
        let fmt = |x: f64| format!("{x:.1}");
        assert_eq!(
            crossed(2.5, 2.0, 4.0).describe(fmt),
            "crossed at 2.5 (between evaluations at 2.0 and 4.0)"
        );
        assert_eq!(
            Outcome::NotReached { gap: -0.15 }.describe(fmt),
            "not reached (gap at the end = -0.1500)"
        );
    }
}
