//! A run as one seed's replicate of a metric, the input of the bootstrap: its curve,
//! its points on every axis, and its per-item scores.

use crate::curve::{Curve, Point};
use crate::ingest::records::{EvalRow, Run};
use crate::pairs::curves::Axis;
use std::collections::{BTreeMap, HashMap};

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
    pub(crate) fn axes(&self) -> usize {
        1 + self.other_axes.len()
    }

    /// The curve on `axis` (0: the curve's own) with the values `ys`, one per point.
    pub(crate) fn on_axis(&self, axis: usize, ys: &[f64]) -> Curve {
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

    pub(crate) fn values(&self) -> Vec<f64> {
        self.curve.iter().map(|p| p.y).collect()
    }
}

/// The item indices any of `runs` scored on (task, metric), sorted.
pub fn item_ids(runs: &[&Run], task: &str, metric: &str) -> Vec<u64> {
    let mut ids: Vec<u64> = runs
        .iter()
        .filter_map(|run| run.item_series(task, metric))
        .flat_map(|series| series.items.iter().map(|&i| u64::from(i)))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A run as a bootstrap replicate of (task, metric): its evaluations by step (a step
/// logged twice, as a resumed job may, is averaged) on the tokens axis, with the same
/// points' epochs and FLOPs as `other_axes` (in `Axis::ALL` order), and its item scores
/// at each point in the order of `ids` when it scored items at every point.
pub fn replicate(run: &Run, task: &str, metric: &str, ids: &[u64]) -> Replicate {
    let mut by_step: BTreeMap<u64, Vec<&EvalRow>> = BTreeMap::new();
    for row in run
        .eval
        .iter()
        .filter(|r| r.task == task && r.metric == metric && r.value.is_finite())
    {
        by_step.entry(row.step).or_default().push(row);
    }
    let mut steps = Vec::new();
    let mut axes: [Vec<f64>; 3] = Default::default();
    let mut curve = Curve::new();
    for (&step, rows) in &by_step {
        let Some(last) = rows.last() else { continue };
        let xs = Axis::ALL.map(|axis| axis.of(last));
        if xs.iter().any(|x| !x.is_finite()) {
            continue;
        }
        let value = rows.iter().map(|r| r.value).sum::<f64>() / rows.len() as f64;
        let stderr = rows.iter().map(|r| r.stderr).fold(f64::NAN, f64::max);
        curve.push(Point::new(xs[0], value, stderr));
        for (axis, x) in axes.iter_mut().zip(xs) {
            axis.push(x);
        }
        steps.push(step);
    }
    let [_, epochs, flops] = axes;
    Replicate {
        seed: run.config.seed,
        items: item_matrix(run, task, metric, &steps, ids),
        curve,
        other_axes: vec![epochs, flops],
    }
}

fn item_matrix(
    run: &Run,
    task: &str,
    metric: &str,
    steps: &[u64],
    ids: &[u64],
) -> Option<Vec<Vec<f64>>> {
    if ids.is_empty() {
        return None;
    }
    let series = run.item_series(task, metric)?;
    let mut at: HashMap<u64, Vec<f64>> = HashMap::new();
    for ((&step, &item), &value) in series.steps.iter().zip(&series.items).zip(&series.values) {
        let Ok(position) = ids.binary_search(&u64::from(item)) else {
            continue;
        };
        at.entry(u64::from(step))
            .or_insert_with(|| vec![f64::NAN; ids.len()])[position] = value;
    }
    steps.iter().map(|step| at.remove(step)).collect()
}
