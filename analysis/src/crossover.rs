//! Crossover detection: where the DLM overtakes its baseline for good.
//!
//! Definition (design.md, "Analysis"): both curves are interpolated linearly on the
//! union of their evaluation x's within their overlap; the advantage is
//! g(x) = sign * (dlm(x) - baseline(x)), with sign +1 for higher-better metrics and -1
//! for lower-better ones. The crossover is the first x after which g >= 0 until the
//! end: the zero of g on the segment following the last grid point where g < 0. Between
//! grid points both curves are linear, so g is too and the zero is exact.

use crate::curve::{Curve, Direction, Point, interpolate, union_grid};

/// What happened between a DLM curve and its baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    /// The DLM stays at least as good as the baseline from x on.
    Crossed { x: f64 },
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
            Self::Crossed { x } | Self::AheadFromStart { x } => Some(x),
            Self::NotReached { .. } => Some(f64::INFINITY),
            Self::NoOverlap => None,
        }
    }

    /// Human-readable form used in tables and the terminal summary.
    pub fn describe(&self, format_x: impl Fn(f64) -> String) -> String {
        match *self {
            Self::Crossed { x } => format!("crossed at {}", format_x(x)),
            Self::NotReached { gap } => format!("not reached (gap at the end = {gap:+.4})"),
            Self::AheadFromStart { .. } => "DLM ahead from the first evaluation".into(),
            Self::NoOverlap => "no overlap".into(),
        }
    }
}

/// Differences this small relative to the values count as ties (at least as good), so
/// identical curves interpolated at shared points do not flicker on rounding error.
const TIE_TOLERANCE: f64 = 1e-9;

/// The crossover of `dlm` over `baseline` (both sorted by x; see `curve::normalized`).
pub fn find_crossing(dlm: &[Point], baseline: &[Point], direction: Direction) -> Outcome {
    let grid = union_grid(dlm, baseline);
    let advantage: Vec<(f64, f64)> = grid
        .iter()
        .filter_map(|&x| {
            let d = interpolate(dlm, x)?.y;
            let b = interpolate(baseline, x)?.y;
            let scale = d.abs().max(b.abs()).max(1.0);
            let g = direction.sign() * (d - b);
            Some((
                x,
                if g.abs() <= TIE_TOLERANCE * scale {
                    0.0
                } else {
                    g
                },
            ))
        })
        .collect();
    let Some(&(first_x, _)) = advantage.first() else {
        return Outcome::NoOverlap;
    };
    let Some(behind) = advantage.iter().rposition(|&(_, g)| g < 0.0) else {
        return Outcome::AheadFromStart { x: first_x };
    };
    let (x0, g0) = advantage[behind];
    match advantage.get(behind + 1) {
        None => Outcome::NotReached {
            gap: direction.sign() * g0,
        },
        Some(&(x1, g1)) => Outcome::Crossed {
            x: x0 + (x1 - x0) * (-g0) / (g1 - g0),
        },
    }
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

    const CASES: &[Case] = &[
        Case {
            name: "clean crossing, accuracy",
            dlm: &[(1.0, 0.2), (2.0, 0.3), (3.0, 0.5), (4.0, 0.6)],
            baseline: &[(1.0, 0.3), (2.0, 0.4), (3.0, 0.4), (4.0, 0.4)],
            direction: HigherBetter,
            // g: -0.1, -0.1, +0.1: zero halfway between 2 and 3.
            expected: Outcome::Crossed { x: 2.5 },
        },
        Case {
            name: "clean crossing, loss (lower is better)",
            dlm: &[(0.0, 4.0), (10.0, 2.0)],
            baseline: &[(0.0, 3.0), (10.0, 3.0)],
            direction: LowerBetter,
            expected: Outcome::Crossed { x: 5.0 },
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
            // g: -1, +1, -1, +1, +1: crossings at 1.5 and 3.5; the second holds.
            dlm: &[(1.0, 0.0), (2.0, 2.0), (3.0, 0.0), (4.0, 2.0), (5.0, 2.0)],
            baseline: &[(1.0, 1.0), (2.0, 1.0), (3.0, 1.0), (4.0, 1.0), (5.0, 1.0)],
            direction: HigherBetter,
            expected: Outcome::Crossed { x: 3.5 },
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
            expected: Outcome::Crossed { x: 2.0 },
        },
        Case {
            name: "tie at the last point after trailing: crossed at the end",
            dlm: &[(1.0, 0.1), (2.0, 0.3)],
            baseline: &[(1.0, 0.3), (2.0, 0.3)],
            direction: HigherBetter,
            expected: Outcome::Crossed { x: 2.0 },
        },
        Case {
            name: "unequal evaluation points: interpolated on the union within the overlap",
            // Baseline at 0, 4, 8 (flat 0.5); DLM at 1, 3, 5, 9 rising 0.1 per unit x
            // from 0.2 at x=1: dlm(x) = 0.1 + 0.1 x reaches 0.5 at x = 4.
            dlm: &[(1.0, 0.2), (3.0, 0.4), (5.0, 0.6), (9.0, 1.0)],
            baseline: &[(0.0, 0.5), (4.0, 0.5), (8.0, 0.5)],
            direction: HigherBetter,
            expected: Outcome::Crossed { x: 4.0 },
        },
        Case {
            name: "unequal points: crossing inside a segment that only one side samples",
            dlm: &[(0.0, 0.0), (10.0, 1.0)],
            baseline: &[(0.0, 0.5), (2.0, 0.5), (10.0, 0.5)],
            direction: HigherBetter,
            expected: Outcome::Crossed { x: 5.0 },
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
                (Outcome::Crossed { x: a }, Outcome::Crossed { x: b }) => (a - b).abs() < 1e-9,
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

    #[test]
    fn describe_outcomes() {
        let fmt = |x: f64| format!("{x:.1}");
        assert_eq!(Outcome::Crossed { x: 2.5 }.describe(fmt), "crossed at 2.5");
        assert_eq!(
            Outcome::NotReached { gap: -0.15 }.describe(fmt),
            "not reached (gap at the end = -0.1500)"
        );
    }
}
