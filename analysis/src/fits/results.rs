//! What the fits found: one result type per fit (the law, critical compute, data
//! potential), the lines for fits a sweep lacks the points for, and all of them
//! together (`Fits`).

use super::critical::{Crossing, PowerLaw};
use super::law::{Fitted, LossPoint};
use super::law_bootstrap::LawInterval;
use super::points::Family;
use super::potential::{Best, Ratio};
use crate::crossover::detection::{Kind, Outcome};
use crate::curve::Direction;
use crate::ingest::records::Warning;

/// How the fits draw their intervals.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitSettings {
    /// Bootstrap draws requested (`AnalyzeOptions::bootstrap`; the law's refits are
    /// capped at `law::MAX_FIT_DRAWS`).
    pub draws: usize,
    pub seed: u64,
    /// Moving-average window of the curves whose best values the data potential reads.
    pub smooth: usize,
}

/// The law of one objective at one model size (or why there is none).
#[derive(Clone, Debug)]
pub struct LawFit {
    pub family: Family,
    pub objective: String,
    pub points: Vec<LossPoint>,
    pub fitted: Option<Fitted>,
    pub interval: Option<LawInterval>,
    pub missing: Option<String>,
}

impl LawFit {
    /// The largest repeat count R = epochs - 1 among the points.
    pub fn max_repeats(&self) -> f64 {
        self.points
            .iter()
            .map(|p| p.epochs - 1.0)
            .fold(0.0, f64::max)
    }

    /// When the fitted R_D* is beyond what the sweep resolves (more than 10x its
    /// largest repeat count: D' then differs from fresh data by a few percent at most),
    /// the lower bound to report instead: 10x the largest repeat count, or the
    /// interval's low end when that is lower. None when R_D* is resolved.
    pub fn rd_lower_bound(&self) -> Option<f64> {
        let fitted = self.fitted?;
        let resolvable = RESOLVED_REPEATS * self.max_repeats();
        if fitted.law.rd <= resolvable {
            return None;
        }
        let low = self.interval.map_or(f64::INFINITY, |i| i.rd.0);
        Some(if low.is_finite() {
            resolvable.min(low)
        } else {
            resolvable
        })
    }
}

/// R_D* up to this many times the largest repeat count counts as resolved.
pub const RESOLVED_REPEATS: f64 = 10.0;

/// One budget's DLM-vs-AR crossover on the FLOPs axis (from its longest run).
#[derive(Clone, Debug)]
pub struct BudgetCrossing {
    pub unique_tokens: u64,
    pub epochs: f64,
    pub outcome: Outcome,
    /// The 95% quantile of the crossing's bootstrap (infinite when over 5% of the
    /// draws do not cross inside the run; NaN without draws).
    pub high: f64,
    pub crossing: Option<Crossing>,
    /// The last FLOPs both sides were evaluated at (where a "not reached" stops).
    pub end_flops: f64,
}

/// C_crit(U) of one model size, for one kind of crossover.
#[derive(Clone, Debug)]
pub struct CriticalFit {
    pub family: Family,
    pub kind: Kind,
    pub budgets: Vec<BudgetCrossing>,
    pub law: Option<PowerLaw>,
    /// 5% / 95% of (a, b).
    pub interval: Option<((f64, f64), (f64, f64))>,
}

impl CriticalFit {
    pub fn crossings(&self) -> Vec<Crossing> {
        self.budgets.iter().filter_map(|b| b.crossing).collect()
    }
}

/// The DLM's data potential on one metric at one model size.
#[derive(Clone, Debug)]
pub struct PotentialFit {
    pub family: Family,
    pub task: String,
    pub metric: String,
    pub direction: Direction,
    pub ar: Vec<Best>,
    pub dlm: Vec<Best>,
    /// One per DLM budget (empty when AR's curve has too few budgets).
    pub ratios: Vec<PotentialRatio>,
}

#[derive(Clone, Copy, Debug)]
pub struct PotentialRatio {
    pub dlm: Best,
    pub ratio: Ratio,
    /// 5% / 95% of U_AR / U (NaN without draws; infinite when censored above).
    pub low: f64,
    pub high: f64,
}

/// A fit the sweep lacks the points for: which model and quantity, and the sentence
/// saying what is missing.
#[derive(Clone, Debug, PartialEq)]
pub struct Missing {
    pub model: String,
    pub quantity: &'static str,
    pub line: String,
}

/// Everything the fits found, and what they could not fit.
#[derive(Clone, Debug, Default)]
pub struct Fits {
    pub laws: Vec<LawFit>,
    pub critical: Vec<CriticalFit>,
    pub potential: Vec<PotentialFit>,
    /// One sentence per fit the sweep lacks the points for.
    pub missing: Vec<Missing>,
    /// Done runs left out of the law fits (by path).
    pub warnings: Vec<Warning>,
    pub draws: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fits::law;

    #[test]
    fn r_d_star_beyond_the_sweep_is_a_lower_bound() {
        let point = |epochs: f64| LossPoint {
            unique_tokens: 1e5,
            epochs,
            loss: 3.0,
            stderr: f64::NAN,
        };
        let fit = |rd: f64, low: Option<f64>| LawFit {
            family: Family {
                params: None,
                preset: "nano".into(),
                settings: Vec::new(),
            },
            objective: "ar".into(),
            // Largest repeat count 7: R_D* up to 70 counts as resolved.
            points: vec![point(1.0), point(8.0)],
            fitted: Some(Fitted {
                law: law::Law {
                    e: 1.0,
                    b: 10.0,
                    beta: 0.3,
                    rd,
                },
                cost: 0.0,
                residual_rms: 0.0,
                starts: 1,
            }),
            interval: low.map(|low| LawInterval {
                e: (1.0, 1.0),
                b: (10.0, 10.0),
                beta: (0.3, 0.3),
                rd: (low, f64::INFINITY),
                draws: 100,
            }),
            missing: None,
        };
        let cases = [
            (50.0, None, None),
            (70.0, Some(20.0), None),
            (1e9, None, Some(70.0)),
            (1e9, Some(1e8), Some(70.0)),
            (1e9, Some(40.0), Some(40.0)),
        ];
        for (rd, low, expected) in cases {
            assert_eq!(fit(rd, low).rd_lower_bound(), expected, "{rd} {low:?}");
        }
    }
}
