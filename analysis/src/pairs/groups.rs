//! Which runs are compared with which: groups of jobs identical in every config field
//! but the objective and the seed.

use crate::ingest::records::{Run, Warning};
use serde_json::Value;
use std::collections::BTreeMap;

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
