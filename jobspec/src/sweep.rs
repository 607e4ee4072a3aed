//! Sweep files: a base job and a grid of overrides, expanded into jobs with stable ids.
//!
//! ```yaml
//! name: smoke
//! base: { objective: ar, data: {...}, train: {...} }
//! grid:                 # cartesian product, first key outermost
//!   objective: [ar, dlm, {ar_masked: 0.3}]
//!   data.unique_tokens: [50k, 200k]
//! ```

use crate::config::JobConfig;
use crate::error::{Error, Result};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    name: String,
    base: Value,
    #[serde(default)]
    grid: Map<String, Value>,
}

/// A parsed sweep: its name and the expanded jobs, in grid order.
#[derive(Debug)]
pub struct Sweep {
    pub name: String,
    pub path: PathBuf,
    pub jobs: Vec<Job>,
    /// The dotted keys that vary, in grid order.
    pub axes: Vec<String>,
}

/// One expanded job: its id, resolved config, and the grid values that made it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub config: JobConfig,
    pub values: Vec<(String, Value)>,
}

impl Sweep {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text, path)
    }

    pub fn from_yaml(text: &str, path: &Path) -> Result<Self> {
        let file: SweepFile = serde_saphyr::from_str(text).map_err(|error| Error::Parse {
            path: path.to_owned(),
            message: error.to_string(),
        })?;
        check_name(&file.name).map_err(|message| invalid(path, "name", message))?;
        let mut axes = Vec::new();
        let mut levels = Vec::new();
        for (key, values) in &file.grid {
            let Value::Array(values) = values else {
                return Err(invalid(
                    path,
                    &format!("grid.{key}"),
                    "must be a list of values".into(),
                ));
            };
            if values.is_empty() {
                return Err(invalid(
                    path,
                    &format!("grid.{key}"),
                    "is empty: give at least one value".into(),
                ));
            }
            axes.push(key.clone());
            levels.push(values.clone());
        }
        let mut jobs = Vec::new();
        for combination in cartesian(&levels) {
            let mut config = file.base.clone();
            let mut values = Vec::new();
            for (key, value) in axes.iter().zip(combination) {
                set_dotted(&mut config, key, value.clone())
                    .map_err(|message| invalid(path, &format!("grid.{key}"), message))?;
                values.push((key.clone(), value));
            }
            let parsed: JobConfig =
                serde_json::from_value(config).map_err(|error| Error::Parse {
                    path: path.to_owned(),
                    message: format!("job {}: {error}", describe(&values)),
                })?;
            let config = parsed.resolved(path)?;
            jobs.push(Job {
                id: job_id(&config),
                config,
                values,
            });
        }
        Ok(Self {
            name: file.name,
            path: path.to_owned(),
            jobs,
            axes,
        })
    }
}

/// Cartesian product, first axis outermost.
fn cartesian(levels: &[Vec<Value>]) -> Vec<Vec<Value>> {
    levels.iter().fold(vec![Vec::new()], |partial, level| {
        partial
            .iter()
            .flat_map(|prefix| {
                level.iter().map(move |value| {
                    let mut next = prefix.clone();
                    next.push(value.clone());
                    next
                })
            })
            .collect()
    })
}

/// Set `a.b.c` inside nested maps, creating maps on the way.
fn set_dotted(root: &mut Value, key: &str, value: Value) -> std::result::Result<(), String> {
    let mut node = root;
    let parts: Vec<&str> = key.split('.').collect();
    for (index, part) in parts.iter().enumerate() {
        if part.is_empty() {
            return Err(format!("`{key}` has an empty part"));
        }
        let Value::Object(map) = node else {
            return Err(format!(
                "`{}` is not a section, cannot set `{key}`",
                parts[..index].join(".")
            ));
        };
        if index + 1 == parts.len() {
            map.insert((*part).to_owned(), value);
            return Ok(());
        }
        node = map
            .entry((*part).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(())
}

fn describe(values: &[(String, Value)]) -> String {
    values
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Names become folder names: letters, digits, `-`, `_` and `.`, not starting with `.`.
fn check_name(name: &str) -> std::result::Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.starts_with('.') || !name.chars().all(allowed) || name.len() > 100 {
        return Err(format!(
            "`{name}` must be 1-100 letters, digits, '-', '_' or '.', not starting with '.'"
        ));
    }
    Ok(())
}

/// Short hash of the canonical resolved config (keys sorted, numbers normalised by
/// serde), so key order and formatting in the YAML do not change a job's id.
pub fn job_id(config: &JobConfig) -> String {
    let value = serde_json::to_value(config).unwrap_or(Value::Null);
    let canonical = canonical_json(&value);
    blake3::hash(canonical.as_bytes()).to_hex()[..12].to_owned()
}

fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> = entries
                .into_iter()
                .map(|(key, value)| {
                    format!("{}:{}", Value::String(key.clone()), canonical_json(value))
                })
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(canonical_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

fn invalid(path: &Path, field: &str, message: String) -> Error {
    Error::Invalid {
        path: path.to_owned(),
        field: field.into(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "
name: t
base:
  objective: ar
  model: { preset: nano }
  data: { corpus: c, tokenizer: bytes, seq_len: 16, unique_tokens: 1k, val_tokens: 1k }
  train: { epochs: 1, batch_size: 2, lr: 1e-3 }
";

    fn sweep(grid: &str) -> Result<Sweep> {
        Sweep::from_yaml(&format!("{BASE}{grid}"), Path::new("t.yaml"))
    }

    #[test]
    fn product_order_first_key_outermost() {
        let sweep = sweep("grid:\n  objective: [ar, dlm]\n  seed: [0, 1, 2]\n").expect("expands");
        let seen: Vec<String> = sweep
            .jobs
            .iter()
            .map(|job| format!("{}/{}", job.config.objective.label(), job.config.seed))
            .collect();
        assert_eq!(seen, ["ar/0", "ar/1", "ar/2", "dlm/0", "dlm/1", "dlm/2"]);
    }

    #[test]
    fn dotted_overrides_and_suffixes() {
        let sweep =
            sweep("grid:\n  data.unique_tokens: [2k, 1.5M]\n  objective: [{ar_masked: 0.3}]\n")
                .expect("expands");
        assert_eq!(sweep.jobs[1].config.data.unique_tokens.get(), 1_500_000);
        assert_eq!(
            sweep.jobs[0].config.objective,
            crate::Objective::ArMasked(0.3)
        );
        assert_eq!(
            sweep.jobs[0].config.model.n_layer,
            Some(2),
            "preset resolved"
        );
    }

    #[test]
    fn ids_ignore_key_order_and_formatting() {
        let a = Sweep::from_yaml(BASE, Path::new("a")).expect("a");
        let reordered = "
name: t
base:
  train: {lr: 0.001, batch_size: 2, epochs: 1.0}
  data: {val_tokens: 1000, unique_tokens: 1000, seq_len: 16, tokenizer: bytes, corpus: c}
  model: {preset: nano}
  objective: ar
";
        let b = Sweep::from_yaml(reordered, Path::new("b")).expect("b");
        assert_eq!(a.jobs[0].id, b.jobs[0].id);
        let c = sweep("grid:\n  seed: [1]\n").expect("c");
        assert_ne!(a.jobs[0].id, c.jobs[0].id);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("grid:\n  seed: []\n", "grid.seed"),
            ("grid:\n  objective: [sgd]\n", "sgd"),
            ("grid:\n  train.lr: [-1]\n", "train.lr"),
            ("grid:\n  data.seq_len: [4096]\n", "max_seq_len"),
            ("grid:\n  train.bogus: [1]\n", "bogus"),
        ];
        for (grid, needle) in cases {
            let message = sweep(grid).expect_err(grid).to_string();
            assert!(message.contains(needle), "{grid}: {message}");
        }
        let bad_name = Sweep::from_yaml(&BASE.replace("name: t", "name: ../x"), Path::new("t"));
        assert!(bad_name.expect_err("name").to_string().contains("name"));
    }
}
