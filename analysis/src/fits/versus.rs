//! The fits that compare the DLM with AR across budgets: critical compute, from the
//! crossover rows, and the data potential, from each objective's best value per budget
//! (the formulas are in `critical` and `potential`; this file picks their points).

use super::critical::{self, Crossing};
use super::points::Family;
use super::potential::{self, Best};
use super::results::{
    BudgetCrossing, CriticalFit, FitSettings, Missing, PotentialFit, PotentialRatio,
};
use crate::crossover::detection::{Kind, Outcome};
use crate::crossover::table::CrossoverRow;
use crate::curve::{Direction, Point, mean_curve, smoothed};
use crate::ingest::records::Run;
use crate::pairs::curves::{Axis, curve, headline_metrics, metrics};
use crate::pairs::groups::Group;
use crate::rng::stream;
use std::collections::BTreeMap;

pub(super) fn critical_fits(
    runs: &[Run],
    groups: &[Group],
    crossovers: &[CrossoverRow],
    settings: FitSettings,
) -> Vec<CriticalFit> {
    let mut out = Vec::new();
    for kind in [Kind::Raw, Kind::EarlyStopped] {
        // Per (family, budget): the row of the longest run.
        let mut chosen: BTreeMap<(Family, u64), (f64, &CrossoverRow, &Group)> = BTreeMap::new();
        // Only comparisons whose runs are all done: a failed or running run's curve
        // stops short of its schedule.
        for row in crossovers.iter().filter(|r| {
            r.kind == kind
                && r.complete
                && r.axis == Axis::Flops
                && r.baseline == "ar"
                && r.task == "val_loss"
                && r.metric == "loss"
        }) {
            let Some(group) = groups.iter().find(|g| g.index == row.group) else {
                continue;
            };
            let epochs = group
                .runs
                .first()
                .map_or(0.0, |&i| runs[i].config.train.epochs);
            let key = (Family::of_group(group), group.unique_tokens);
            if chosen.get(&key).is_none_or(|(e, _, _)| epochs > *e) {
                chosen.insert(key, (epochs, row, group));
            }
        }
        let mut by_family: BTreeMap<Family, Vec<BudgetCrossing>> = BTreeMap::new();
        for ((family, budget), (epochs, row, group)) in chosen {
            by_family.entry(family).or_default().push(BudgetCrossing {
                unique_tokens: budget,
                epochs,
                outcome: row.outcome(),
                high: row.estimate.high,
                crossing: match row.outcome() {
                    Outcome::Crossed { x, .. } => Some(Crossing {
                        unique_tokens: budget as f64,
                        flops: x,
                        low: row.estimate.low,
                        high: row.estimate.high,
                    }),
                    _ => None,
                },
                end_flops: overlap_end(runs, group),
            });
        }
        for (family, budgets) in by_family {
            let mut fit = CriticalFit {
                family,
                kind,
                budgets,
                law: None,
                interval: None,
            };
            let crossings = fit.crossings();
            if crossings.len() >= critical::MIN_BUDGETS && censored_budgets(&fit.budgets).is_empty()
            {
                let points: Vec<(f64, f64)> = crossings
                    .iter()
                    .map(|c| (c.unique_tokens, c.flops))
                    .collect();
                fit.law = critical::fit(&points);
                let seed = stream(settings.seed, &format!("C_crit {}", fit.family.label()));
                fit.interval = fit
                    .law
                    .and_then(|_| critical::bootstrap(&crossings, settings.draws, seed));
            }
            out.push(fit);
        }
    }
    out
}

/// The largest FLOPs at which both the DLM and AR have a validation loss in a group.
fn overlap_end(runs: &[Run], group: &Group) -> f64 {
    let side = |objective: &str| {
        group
            .replicates(runs, objective)
            .iter()
            .flat_map(|r| r.eval.iter())
            .filter(|e| e.task == "val_loss" && e.metric == "loss" && e.value.is_finite())
            .map(|e| e.flops)
            .fold(f64::NAN, f64::max)
    };
    side("dlm").min(side("ar"))
}

/// "not reached inside the run at 25M", one per censored budget (`critical::censored_reason`).
fn censored_budgets(budgets: &[BudgetCrossing]) -> Vec<String> {
    budgets
        .iter()
        .filter_map(|b| {
            let why = critical::censored_reason(&b.outcome, b.high)?;
            Some(format!(
                "{why} at {}",
                crate::format::count(b.unique_tokens as f64)
            ))
        })
        .collect()
}

/// One line per model size whose raw C_crit law is missing.
pub(super) fn critical_missing(groups: &[Group], fits: &[CriticalFit]) -> Vec<Missing> {
    const QUANTITY: &str = "C_crit exponent b (raw)";
    let raw: Vec<&CriticalFit> = fits.iter().filter(|f| f.kind == Kind::Raw).collect();
    if raw.is_empty() {
        let has_pairs = !groups.is_empty();
        let line = format!(
            "C_crit(U) needs DLM-vs-AR crossovers on validation loss at at least {} budgets; this sweep has {}",
            critical::MIN_BUDGETS,
            if has_pairs {
                "no group with both a DLM and an AR run evaluated on validation loss"
            } else {
                "no runs"
            }
        );
        return vec![Missing {
            model: String::new(),
            quantity: QUANTITY,
            line,
        }];
    }
    raw.iter()
        .filter(|f| f.law.is_none())
        .map(|f| {
            // With enough crossings the refusal is about censoring; with too few, the
            // line below says so and names the other budgets' outcomes.
            let censored = censored_budgets(&f.budgets);
            if !censored.is_empty() && f.crossings().len() >= critical::MIN_BUDGETS {
                return Missing {
                    model: f.family.label(),
                    quantity: QUANTITY,
                    line: format!(
                        "C_crit(U) for {} (where the DLM's validation loss crosses AR's on the learning curve of the longest run at each budget, at one model size) is not fitted: {} of {} budget(s) are censored ({}), and dropping them biases the exponent; run those budgets longer (or start evaluating earlier) until the DLM crosses inside the run",
                        f.family.label(),
                        censored.len(),
                        f.budgets.len(),
                        censored.join("; ")
                    ),
                };
            }
            let others: Vec<String> = f
                .budgets
                .iter()
                .filter(|b| b.crossing.is_none())
                .map(|b| format!("{} at {}", b.outcome.kind().replace('_', " "), crate::format::count(b.unique_tokens as f64)))
                .collect();
            let line = format!(
                "C_crit(U) for {} needs the DLM to overtake AR on validation loss (raw, FLOPs axis) at at least {} budgets; this sweep has {} budget(s), {} with a crossing{}",
                f.family.label(),
                critical::MIN_BUDGETS,
                f.budgets.len(),
                f.crossings().len(),
                if others.is_empty() { String::new() } else { format!(" ({})", others.join(", ")) }
            );
            Missing {
                model: f.family.label(),
                quantity: QUANTITY,
                line,
            }
        })
        .collect()
}

/// Best value per (family, task, metric, objective, budget) over done runs, at equal
/// compute (`potential::at_equal_compute`).
type BestValues = BTreeMap<(Family, String, String), [BTreeMap<u64, Best>; 2]>;

/// Seed-mean curves (tokens axis) of each (family, task, metric, budget) and side.
type BudgetCurves = BTreeMap<(Family, String, String, u64), [Vec<Vec<Point>>; 2]>;

fn best_values(runs: &[Run], groups: &[Group], smooth: usize) -> BestValues {
    let mut curves: BudgetCurves = BTreeMap::new();
    for group in groups {
        let members: Vec<&Run> = group.runs.iter().map(|&i| &runs[i]).collect();
        for (task, metric) in headline_metrics(&metrics(&members)) {
            for (side, objective) in ["ar", "dlm"].iter().enumerate() {
                let seeds: Vec<Vec<Point>> = group
                    .replicates(runs, objective)
                    .iter()
                    .filter(|r| r.state == "done")
                    .map(|r| smoothed(&curve(r, &task, &metric, Axis::Tokens), smooth))
                    .filter(|c| !c.is_empty())
                    .collect();
                let refs: Vec<&[Point]> = seeds.iter().map(Vec::as_slice).collect();
                let mean = mean_curve(&refs);
                if mean.is_empty() {
                    continue;
                }
                let key = (
                    Family::of_group(group),
                    task.clone(),
                    metric.clone(),
                    group.unique_tokens,
                );
                curves.entry(key).or_default()[side].push(mean);
            }
        }
    }
    let mut out: BestValues = BTreeMap::new();
    for ((family, task, metric, budget), [ar, dlm]) in curves {
        let direction = Direction::of_metric(&metric);
        let bests = potential::at_equal_compute([&ar, &dlm], budget as f64, direction);
        let slot = out.entry((family, task, metric)).or_default();
        for (side, best) in bests.into_iter().enumerate() {
            if let Some(best) = best {
                slot[side].insert(budget, best);
            }
        }
    }
    out
}

pub(super) fn potential_fits(
    runs: &[Run],
    groups: &[Group],
    settings: FitSettings,
) -> Vec<PotentialFit> {
    let mut out = Vec::new();
    let mut values: Vec<_> = best_values(runs, groups, settings.smooth)
        .into_iter()
        .collect();
    // Validation loss first, then the tasks (the order of every other table).
    values.sort_by_key(|((family, task, metric), _)| {
        (
            family.clone(),
            task != "val_loss",
            task.clone(),
            metric.clone(),
        )
    });
    for ((family, task, metric), [ar, dlm]) in values {
        let direction = Direction::of_metric(&metric);
        let ar: Vec<Best> = ar.into_values().collect();
        let dlm: Vec<Best> = dlm.into_values().collect();
        let ratios = if ar.len() >= potential::MIN_AR_BUDGETS {
            // Draws capped as the law's refits are: a sweep with hundreds of budgets
            // would otherwise spend seconds per metric here.
            let draws = settings.draws.min(super::law::MAX_FIT_DRAWS);
            let name = format!("potential {} {task} {metric}", family.label());
            let seed = stream(settings.seed, &name);
            let intervals = potential::intervals(&ar, &dlm, direction, draws, seed);
            dlm.iter()
                .zip(intervals)
                .filter_map(|(d, interval)| {
                    let ratio = potential::ratio(&ar, d, direction)?;
                    let (low, high) = interval.unwrap_or((f64::NAN, f64::NAN));
                    Some(PotentialRatio {
                        dlm: *d,
                        ratio,
                        low,
                        high,
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        out.push(PotentialFit {
            family,
            task,
            metric,
            direction,
            ar,
            dlm,
            ratios,
        });
    }
    out
}

/// One line per model size whose data potential cannot be read.
pub(super) fn potential_missing(runs: &[Run], fits: &[PotentialFit]) -> Vec<Missing> {
    const QUANTITY: &str = "data potential U_AR/U";
    let mut families: Vec<Family> = fits.iter().map(|f| f.family.clone()).collect();
    families.dedup();
    let mut lines = Vec::new();
    if families.is_empty() {
        let what = if runs.iter().any(|r| r.state == "done") {
            "no done AR and DLM runs with evaluations"
        } else {
            "no done runs"
        };
        lines.push(Missing {
            model: String::new(),
            quantity: QUANTITY,
            line: format!(
                "Data potential needs AR's best value at at least {} budgets and a DLM to compare; this sweep has {what}",
                potential::MIN_AR_BUDGETS
            ),
        });
    }
    for family in families {
        let of: Vec<&PotentialFit> = fits.iter().filter(|f| f.family == family).collect();
        if of.iter().any(|f| !f.ratios.is_empty()) {
            continue;
        }
        let ar = of.iter().map(|f| f.ar.len()).max().unwrap_or(0);
        let dlm = of.iter().map(|f| f.dlm.len()).max().unwrap_or(0);
        lines.push(Missing {
            model: family.label(),
            quantity: QUANTITY,
            line: format!(
                "Data potential for {} needs AR's best value at at least {} budgets and a DLM at one or more; this sweep has done AR runs at {ar} budget(s) and done DLM runs at {dlm}",
                family.label(),
                potential::MIN_AR_BUDGETS
            ),
        });
    }
    lines
}
