//! Which runs are compared with which: groups of jobs identical in every config field
//! but the objective and the seed, and curves cut out of their eval rows.

use crate::crossover::uncertainty::Replicate;
use crate::curve::{Curve, Point, normalized};
use crate::ingest::{EvalRow, Run, Warning};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Jobs that differ only in objective and seed: the runs one crossover compares.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub index: usize,
    /// The config fields that vary between groups, e.g. `unique_tokens=20000 preset=nano`
    /// (`all` when there is one group).
    pub label: String,
    /// The varying fields other than the budget and the model (e.g. `epochs=4` in a
    /// grid over epochs); empty when only budgets and models vary.
    pub variant: String,
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

/// Config fields that do not change what is trained (issue 15): evaluation settings,
/// logging and checkpoint cadence, gradient accumulation and the device. Runs that
/// differ only in these are compared.
fn affects_training(field: &str) -> bool {
    !(field.starts_with("eval.")
        || matches!(
            field,
            "train.log_every"
                | "train.checkpoint_minutes"
                | "train.micro_batch_size"
                | "train.device"
                | "train.devices"
                | "train.nodes"
        ))
}

/// The job config without objective, seed and the fields that do not affect training,
/// flattened to `path -> value` pairs.
pub(crate) fn comparison_key(run: &Run) -> BTreeMap<String, String> {
    let mut value = serde_json::to_value(&run.config).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("objective");
        map.remove("seed");
    }
    let mut flat = BTreeMap::new();
    flatten(&value, "", &mut flat);
    flat.retain(|field, _| affects_training(field));
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

type Key = Vec<(String, String)>;

/// Runs with the same key except `dlm.*` (which only the DLM reads); each distinct
/// `dlm.*` setting of the DLM runs makes its own group with every non-DLM run.
fn keyed_members(
    runs: &[Run],
    keys: &[BTreeMap<String, String>],
) -> Vec<(BTreeMap<String, String>, Vec<usize>)> {
    let is_dlm_field = |field: &str| field.starts_with("dlm.");
    let mut by_base: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    for (index, key) in keys.iter().enumerate() {
        let base: Key = key
            .iter()
            .filter(|(f, _)| !is_dlm_field(f))
            .map(|(f, v)| (f.clone(), v.clone()))
            .collect();
        by_base.entry(base).or_default().push(index);
    }
    let mut out = Vec::new();
    for (base, members) in by_base {
        let (dlm, others): (Vec<usize>, Vec<usize>) = members
            .into_iter()
            .partition(|&i| runs[i].objective == "dlm");
        let mut variants: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
        for &i in &dlm {
            let sub: Key = keys[i]
                .iter()
                .filter(|(f, _)| is_dlm_field(f))
                .map(|(f, v)| (f.clone(), v.clone()))
                .collect();
            variants.entry(sub).or_default().push(i);
        }
        let base_map: BTreeMap<String, String> = base.into_iter().collect();
        if variants.is_empty() {
            out.push((base_map, others));
            continue;
        }
        for (sub, dlm_members) in variants {
            let mut key = base_map.clone();
            key.extend(sub);
            let mut all: Vec<usize> = others.iter().copied().chain(dlm_members).collect();
            all.sort_unstable();
            out.push((key, all));
        }
    }
    out
}

/// Group runs by their comparison key, in order of (model params, unique tokens, key).
pub fn group_runs(runs: &[Run]) -> Vec<Group> {
    let keys: Vec<BTreeMap<String, String>> = runs.iter().map(comparison_key).collect();
    let keyed = keyed_members(runs, &keys);
    let group_keys: Vec<BTreeMap<String, String>> = keyed.iter().map(|(k, _)| k.clone()).collect();
    let varying = varying_fields(&group_keys);
    let describe = |key: &BTreeMap<String, String>, fields: &[&String]| {
        fields
            .iter()
            .map(|field| {
                let value = key.get(*field).map_or("-", |v| v.trim_matches('"'));
                // Whole floats read as integers: `epochs=4`, not `epochs=4.0`.
                let value = value
                    .strip_suffix(".0")
                    .filter(|v| v.parse::<f64>().is_ok())
                    .unwrap_or(value);
                format!("{}={value}", short_field(field))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let all_fields: Vec<&String> = varying.iter().collect();
    let variant_fields: Vec<&String> = varying
        .iter()
        .filter(|f| *f != "data.unique_tokens" && !f.starts_with("model."))
        .collect();
    let mut groups: Vec<Group> = keyed
        .into_iter()
        .map(|(key, members)| {
            let first = &runs[members[0]];
            let label = describe(&key, &all_fields);
            Group {
                index: 0,
                label: if label.is_empty() {
                    "all".into()
                } else {
                    label
                },
                variant: describe(&key, &variant_fields),
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

/// A warning for each group that cannot be compared (no DLM, or nothing but the DLM):
/// its runs appear in the tables and figures but in no crossover.
pub fn unpaired_warnings(
    runs: &[Run],
    groups: &[Group],
    results: &std::path::Path,
) -> Vec<Warning> {
    groups
        .iter()
        .filter_map(|group| {
            let objectives = group.objectives(runs);
            let has_dlm = objectives.iter().any(|o| o == "dlm");
            if has_dlm && objectives.len() > 1 {
                return None;
            }
            let first = &runs[*group.runs.first()?];
            Some(Warning {
                path: results.join("jobs").join(&first.id),
                message: format!(
                    "group `{}` has only {} run(s): not compared (no {} with the same training config)",
                    group.label,
                    objectives.join(", "),
                    if has_dlm { "baseline" } else { "DLM" }
                ),
            })
        })
        .collect()
}

/// Fields whose value differs between some groups (objective and seed excluded), among
/// the groups that have the field: a group without a DLM has no `dlm.*` fields, and a
/// sweep with one DLM setting should not label every group by it. The model's derived
/// fields (d_model, ...) are dropped when the preset already varies.
fn varying_fields(keys: &[BTreeMap<String, String>]) -> Vec<String> {
    let mut fields: Vec<String> = keys
        .iter()
        .flat_map(|k| k.keys())
        .filter(|field| {
            let mut values = keys.iter().filter_map(|k| k.get(*field));
            let first = values.next();
            values.any(|v| Some(v) != first)
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_field_varies_only_between_groups_that_have_it() {
        let dlm = key(&[("train.epochs", "512"), ("dlm.eps", "0.001")]);
        let ar_only = key(&[("train.epochs", "32")]);
        let other_dlm = key(&[("train.epochs", "512"), ("dlm.eps", "0.01")]);
        // An AR-only group (no dlm.* fields) does not make the DLM's settings vary.
        assert_eq!(
            varying_fields(&[dlm.clone(), ar_only.clone()]),
            vec!["train.epochs".to_string()]
        );
        // Two DLM settings do.
        assert_eq!(
            varying_fields(&[dlm, ar_only, other_dlm]),
            vec!["dlm.eps".to_string(), "train.epochs".to_string()]
        );
        assert!(varying_fields(&[]).is_empty());
    }
}
