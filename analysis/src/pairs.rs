//! Which runs are compared with which: groups of jobs identical in every config field
//! but the objective and the seed, and curves cut out of their eval rows.

use crate::curve::{Curve, Point, normalized};
use crate::ingest::{EvalRow, Run};
use serde_json::Value;
use std::collections::BTreeMap;

/// Jobs that differ only in objective and seed: the runs one crossover compares.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub index: usize,
    /// The config fields that vary between groups, e.g. `unique_tokens=20000 preset=nano`
    /// (`all` when there is one group).
    pub label: String,
    pub unique_tokens: u64,
    pub preset: String,
    pub params: Option<u64>,
    /// Indices into the runs slice.
    pub runs: Vec<usize>,
}

impl Group {
    /// Objectives present, `dlm` and `ar` first, then the controls by label.
    pub fn objectives(&self, runs: &[Run]) -> Vec<String> {
        let mut labels: Vec<String> = self
            .runs
            .iter()
            .map(|&i| runs[i].objective.clone())
            .collect();
        labels.sort_by_key(|label| (objective_rank(label), label.clone()));
        labels.dedup();
        labels
    }

    /// The runs of one objective (its seed replicates).
    pub fn replicates<'a>(&self, runs: &'a [Run], objective: &str) -> Vec<&'a Run> {
        self.runs
            .iter()
            .map(|&i| &runs[i])
            .filter(|run| run.objective == objective)
            .collect()
    }
}

/// Sort order of objectives in tables and legends.
pub fn objective_rank(label: &str) -> u8 {
    match label {
        "dlm" => 0,
        "ar" => 1,
        _ => 2,
    }
}

/// The job config without objective and seed, flattened to `path -> value` pairs.
fn comparison_key(run: &Run) -> BTreeMap<String, String> {
    let mut value = serde_json::to_value(&run.config).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("objective");
        map.remove("seed");
    }
    let mut flat = BTreeMap::new();
    flatten(&value, "", &mut flat);
    flat
}

fn flatten(value: &Value, prefix: &str, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(inner, &path, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Group runs by their comparison key, in order of (model params, unique tokens, key).
pub fn group_runs(runs: &[Run]) -> Vec<Group> {
    let mut by_key: BTreeMap<Vec<(String, String)>, Vec<usize>> = BTreeMap::new();
    let keys: Vec<BTreeMap<String, String>> = runs.iter().map(comparison_key).collect();
    for (index, key) in keys.iter().enumerate() {
        by_key
            .entry(key.clone().into_iter().collect())
            .or_default()
            .push(index);
    }
    let varying = varying_fields(&keys);
    let mut groups: Vec<Group> = by_key
        .into_values()
        .map(|members| {
            let first = &runs[members[0]];
            let label = varying
                .iter()
                .map(|field| {
                    let value = keys[members[0]]
                        .get(field)
                        .map_or("-", |v| v.trim_matches('"'));
                    format!("{}={value}", short_field(field))
                })
                .collect::<Vec<_>>()
                .join(" ");
            Group {
                index: 0,
                label: if label.is_empty() {
                    "all".into()
                } else {
                    label
                },
                unique_tokens: first.config.data.unique_tokens.get(),
                preset: first
                    .config
                    .model
                    .preset
                    .clone()
                    .unwrap_or_else(|| "custom".into()),
                params: first.params,
                runs: members,
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        (a.params, a.unique_tokens, &a.label).cmp(&(b.params, b.unique_tokens, &b.label))
    });
    for (index, group) in groups.iter_mut().enumerate() {
        group.index = index;
    }
    groups
}

/// Fields whose value differs between some runs (objective and seed excluded). The
/// model's derived fields (d_model, ...) are dropped when the preset already varies.
fn varying_fields(keys: &[BTreeMap<String, String>]) -> Vec<String> {
    let Some(first) = keys.first() else {
        return Vec::new();
    };
    let mut fields: Vec<String> = first
        .keys()
        .chain(keys.iter().flat_map(|k| k.keys()))
        .filter(|field| keys.iter().any(|k| k.get(*field) != first.get(*field)))
        .cloned()
        .collect();
    fields.sort();
    fields.dedup();
    if fields.iter().any(|f| f == "model.preset") {
        fields.retain(|f| !f.starts_with("model.") || f == "model.preset");
    }
    fields
}

/// `data.unique_tokens` reads `unique_tokens` in labels.
fn short_field(field: &str) -> &str {
    field.rsplit('.').next().unwrap_or(field)
}

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
