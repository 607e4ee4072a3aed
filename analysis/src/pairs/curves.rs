//! Curves cut out of a run's eval rows: the x axes a crossover is reported on, and the
//! metrics compared and plotted.

use crate::curve::{Curve, Point, normalized};
use crate::ingest::records::{EvalRow, Run};

/// The x axes a crossover is reported on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    Tokens,
    Epochs,
    Flops,
}

impl Axis {
    pub const ALL: [Axis; 3] = [Axis::Tokens, Axis::Epochs, Axis::Flops];

    pub fn name(self) -> &'static str {
        match self {
            Self::Tokens => "tokens",
            Self::Epochs => "epochs",
            Self::Flops => "flops",
        }
    }

    pub fn of(self, row: &EvalRow) -> f64 {
        match self {
            Self::Tokens => row.tokens,
            Self::Epochs => row.epoch,
            Self::Flops => row.flops,
        }
    }

    /// Compact human form of a position on this axis.
    pub fn format(self, x: f64) -> String {
        match self {
            Self::Tokens => crate::format::count(x),
            Self::Epochs => crate::format::epochs(x),
            Self::Flops => format!("{x:.2e}"),
        }
    }
}

/// A run's curve for one task and metric on one axis.
pub fn curve(run: &Run, task: &str, metric: &str, axis: Axis) -> Curve {
    let points: Vec<Point> = run
        .eval
        .iter()
        .filter(|row| row.task == task && row.metric == metric)
        .map(|row| Point::new(axis.of(row), row.value, row.stderr))
        .collect();
    normalized(&points)
}

/// Metrics that are curves to compare: every (task, metric) in the eval rows except the
/// diagnostic `score_mc_stderr`; validation loss first, then tasks by name.
pub fn metrics(runs: &[&Run]) -> Vec<(String, String)> {
    sorted_metrics(
        runs.iter()
            .flat_map(|run| run.eval.iter())
            .filter(|row| row.metric != "score_mc_stderr")
            .map(|row| (row.task.clone(), row.metric.clone())),
    )
}

/// Distinct (task, metric) pairs, validation loss first, then by task and metric.
pub fn sorted_metrics(pairs: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = pairs.collect();
    pairs.sort_by_key(|(task, metric)| (task != "val_loss", task.clone(), metric.clone()));
    pairs.dedup();
    pairs
}

/// The metric a task is plotted by: acc_norm when it exists (the study's choice), then
/// acc, then whatever the task reports.
pub fn headline_metrics(all: &[(String, String)]) -> Vec<(String, String)> {
    let mut tasks: Vec<&String> = all.iter().map(|(task, _)| task).collect();
    tasks.dedup();
    tasks
        .into_iter()
        .filter_map(|task| {
            let of_task: Vec<&(String, String)> = all.iter().filter(|(t, _)| t == task).collect();
            ["loss", "acc_norm", "acc"]
                .iter()
                .find_map(|m| of_task.iter().find(|(_, metric)| metric == m))
                .or(of_task.first())
                .map(|pair| (*pair).clone())
        })
        .collect()
}
