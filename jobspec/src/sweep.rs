//! Sweep files: a base job and overrides, expanded into jobs with stable ids.
//!
//! ```yaml
//! name: study
//! base: { objective: ar, data: {...}, train: {...} }
//! grid:                 # cartesian product, first key outermost
//!   objective: [ar, dlm]
//! zip:                  # varied together: one more (innermost) axis
//!   data.unique_tokens: [1B, 10B]
//!   train.epochs: [96, 9.6]
//! include:              # extra jobs: overrides applied on base
//!   - { objective: { ar_masked: 0.3 } }
//! exclude:              # grid jobs matching every key of an entry are dropped
//!   - { objective: dlm, data.unique_tokens: 10B }
//! ```
//!
//! Every job is parsed and validated here, before anything runs; an error names the
//! file, line, column and key that produced it.
//!
//! Length: 600 lines, the tests in `sweep_tests.rs`. Expansion (`Reader`) and the
//! errors it positions in the file are one pass over the YAML; the stable job id is
//! at the end.

use crate::config::JobConfig;
use crate::count::TokenCount;
use crate::error::{Error, Result};
use crate::yamlpos::{self, Segment};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    name: String,
    base: Value,
    #[serde(default)]
    grid: Map<String, Value>,
    #[serde(default)]
    zip: Map<String, Value>,
    #[serde(default)]
    include: Vec<Map<String, Value>>,
    #[serde(default)]
    exclude: Vec<Map<String, Value>>,
    #[serde(default)]
    slurm: Option<SlurmSection>,
}

/// The optional `slurm:` section: how `harness run --backend slurm` submits the sweep
/// (flags override each field). It is no part of any job's config, so it never
/// changes a job id. Values are plain text here; the harness validates every one
/// before it reaches an sbatch script.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSection {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// Time limit per task in a Slurm format (`30`, `4:00:00`, `1-12:00:00`).
    pub time: Option<String>,
    /// Generic resources per task, `name[:type]:count` (`gpu:1`, `gpu:a100:1`).
    pub gres: Option<String>,
    pub cpus_per_task: Option<u32>,
    /// Memory per node, a number with an optional K/M/G/T suffix.
    pub mem: Option<String>,
    /// At most this many tasks run at once (`--array=0-N%max_running`).
    pub max_running: Option<u32>,
    /// Let Slurm requeue preempted or failed-node tasks (they resume from checkpoints).
    pub requeue: Option<bool>,
    /// LibTorch threads per trainer (default: the task's CPUs).
    pub threads: Option<u32>,
    /// Seconds before the time limit at which Slurm signals a task so that it
    /// checkpoints and requeues itself (default 120; 0: no signal, no requeue).
    pub signal_lead: Option<u32>,
    /// Requeues after time limits per task before it waits for the next `harness run`
    /// (default 20).
    pub max_requeues: Option<u32>,
    /// Extra lines, each `#SBATCH --option[=value]`.
    #[serde(default)]
    pub extra: Vec<String>,
    /// Shell lines run before the trainer (modules, environment), verbatim.
    pub setup: Option<String>,
}

/// A parsed sweep: its name and the expanded jobs, in grid order then includes.
#[derive(Debug)]
pub struct Sweep {
    pub name: String,
    pub path: PathBuf,
    pub jobs: Vec<Job>,
    /// The dotted keys that vary: grid keys, zip keys, then keys only includes set.
    pub axes: Vec<String>,
    /// Jobs dropped because an earlier job has the same resolved config.
    pub duplicates: usize,
    pub slurm: Option<SlurmSection>,
}

/// One expanded job: its id, resolved config, and its value for every axis (the value
/// it inherits from `base` where its overrides do not set an axis, else null).
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub config: JobConfig,
    pub values: Vec<(String, Value)>,
}

/// Where an override was written, to point errors at it.
#[derive(Clone, Copy, Debug)]
enum Source {
    Grid,
    Zip,
    Include(usize),
}

type Override = (String, Value, Source);

impl Sweep {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text, path)
    }

    pub fn from_yaml(text: &str, path: &Path) -> Result<Self> {
        let reader = Reader { text, path };
        let file: SweepFile =
            serde_saphyr::from_str(text).map_err(|error| reader.syntax(&error))?;
        check_name(&file.name).map_err(|message| reader.at(&[Segment::Key("name")], message))?;
        let mut drafts = reader.grid_jobs(&file)?;
        reader.apply_excludes(&file, &mut drafts)?;
        for (index, entry) in file.include.iter().enumerate() {
            let source = Source::Include(index);
            drafts.push(overrides(entry, source));
        }
        let axes = axes(&file);
        let mut jobs: Vec<Job> = Vec::with_capacity(drafts.len());
        let mut seen: HashMap<String, usize> = HashMap::with_capacity(drafts.len());
        let mut duplicates = 0;
        for draft in &drafts {
            let job = reader.job(&file.base, draft, &axes)?;
            match seen.get(&job.id) {
                None => {
                    seen.insert(job.id.clone(), jobs.len());
                    jobs.push(job);
                }
                Some(&first) if jobs[first].config == job.config => duplicates += 1,
                Some(&first) => return Err(reader.spread_only(draft, &jobs[first], &job)),
            }
        }
        Ok(Self {
            name: file.name,
            path: path.to_owned(),
            jobs,
            axes,
            duplicates,
            slurm: file.slurm,
        })
    }
}

fn overrides(entry: &Map<String, Value>, source: Source) -> Vec<Override> {
    entry
        .iter()
        .map(|(key, value)| (key.clone(), value.clone(), source))
        .collect()
}

fn axes(file: &SweepFile) -> Vec<String> {
    let mut axes: Vec<String> = file.grid.keys().chain(file.zip.keys()).cloned().collect();
    for key in file.include.iter().flat_map(Map::keys) {
        if !axes.contains(key) {
            axes.push(key.clone());
        }
    }
    axes
}

/// The sweep's text and path, for errors that point into it.
struct Reader<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Reader<'_> {
    /// The grid's product (first key outermost) with the zip as the innermost axis.
    fn grid_jobs(&self, file: &SweepFile) -> Result<Vec<Vec<Override>>> {
        let mut levels: Vec<Vec<Vec<Override>>> = Vec::new();
        for (key, values) in &file.grid {
            let values = self.axis_values("grid", key, values)?;
            levels.push(
                values
                    .iter()
                    .map(|value| vec![(key.clone(), value.clone(), Source::Grid)])
                    .collect(),
            );
        }
        if !file.zip.is_empty() {
            levels.push(self.zip_rows(&file.zip)?);
        }
        Ok(cartesian(&levels))
    }

    fn axis_values<'v>(&self, section: &str, key: &str, values: &'v Value) -> Result<&'v [Value]> {
        let place = [Segment::Key(section), Segment::Key(key)];
        match values {
            Value::Array(values) if values.is_empty() => {
                Err(self.at(&place, "is empty: give at least one value".into()))
            }
            Value::Array(values) => Ok(values),
            _ => Err(self.at(&place, "must be a list of values".into())),
        }
    }

    /// Zip columns of equal length, read row by row.
    fn zip_rows(&self, zip: &Map<String, Value>) -> Result<Vec<Vec<Override>>> {
        let mut columns = Vec::new();
        for (key, values) in zip {
            columns.push((key, self.axis_values("zip", key, values)?));
        }
        let length = columns.first().map_or(0, |(_, values)| values.len());
        for (key, values) in &columns {
            if values.len() != length {
                let (first, _) = columns[0];
                return Err(self.at(
                    &[Segment::Key("zip"), Segment::Key(key)],
                    format!(
                        "has {} values but `{first}` has {length}: zipped lists must have equal lengths",
                        values.len()
                    ),
                ));
            }
        }
        Ok((0..length)
            .map(|row| {
                columns
                    .iter()
                    .map(|(key, values)| ((*key).clone(), values[row].clone(), Source::Zip))
                    .collect()
            })
            .collect())
    }

    /// Drop the grid jobs that match every key of an exclude entry. An entry must
    /// name grid or zip keys and match at least one job, else it is likely a typo.
    fn apply_excludes(&self, file: &SweepFile, drafts: &mut Vec<Vec<Override>>) -> Result<()> {
        for (index, entry) in file.exclude.iter().enumerate() {
            for key in entry.keys() {
                if !file.grid.contains_key(key) && !file.zip.contains_key(key) {
                    return Err(self.at(
                        &[
                            Segment::Key("exclude"),
                            Segment::Index(index),
                            Segment::Key(key),
                        ],
                        "is not a grid or zip key; exclude can only drop grid jobs".into(),
                    ));
                }
            }
            let before = drafts.len();
            drafts.retain(|draft| !matches_entry(draft, entry));
            if drafts.len() == before {
                return Err(self.at(
                    &[Segment::Key("exclude"), Segment::Index(index)],
                    "matches no grid job; check its values".into(),
                ));
            }
        }
        Ok(())
    }

    /// Apply a job's overrides to base, parse, resolve and validate it.
    fn job(&self, base: &Value, draft: &[Override], axes: &[String]) -> Result<Job> {
        let mut config = base.clone();
        for (key, value, source) in draft {
            set_dotted(&mut config, key, value.clone())
                .map_err(|message| self.at(&override_place(key, *source), message))?;
        }
        let parsed: JobConfig = match serde_json::from_value(config.clone()) {
            Ok(parsed) => parsed,
            Err(error) => return Err(self.parse_error(&config, draft, &error.to_string())),
        };
        let resolved = parsed.resolved(self.path).map_err(|error| match error {
            Error::Invalid { field, message, .. } => self.in_job(draft, &field, message),
            other => other,
        })?;
        let values = axis_values(axes, draft, &config, &resolved);
        let config = resolved;
        Ok(Job {
            id: job_id(&config),
            config,
            values,
        })
    }

    /// serde_json does not say which field failed; parsing the same job again from
    /// YAML does, through its position in that YAML.
    fn parse_error(&self, config: &Value, draft: &[Override], fallback: &str) -> Error {
        let Ok(yaml) = serde_saphyr::to_string(config) else {
            return self.in_job(draft, "", fallback.to_owned());
        };
        match serde_saphyr::from_str::<JobConfig>(&yaml) {
            Err(error) => {
                let (line, column) = error
                    .location()
                    .map_or((0, 0), |at| (at.line() as usize, at.column() as usize));
                let message = bare_message(&error);
                // A missing field has no position of its own: point at its section.
                let field = if message.starts_with("missing field") {
                    String::new()
                } else {
                    yamlpos::key_at(&yaml, line, column)
                };
                self.in_job(draft, &field, message)
            }
            Ok(_) => self.in_job(draft, "", fallback.to_owned()),
        }
    }

    /// An error in field `field` (dotted) of a job: pointed at the override that set
    /// it, or else at base.
    fn in_job(&self, draft: &[Override], field: &str, message: String) -> Error {
        let related = |key: &str| {
            field == key
                || field.starts_with(&format!("{key}."))
                || key.starts_with(&format!("{field}."))
        };
        let job = describe(draft);
        let message = if job.is_empty() {
            message
        } else {
            format!("{message} (job {job})")
        };
        if let Some((key, _, source)) = draft.iter().find(|(key, _, _)| related(key)) {
            return self.at(&override_place(key, *source), message);
        }
        let mut place = vec![Segment::Key("base")];
        place.extend(field.split('.').filter(|p| !p.is_empty()).map(Segment::Key));
        self.at(&place, message)
    }

    /// Two jobs that differ only in how they are spread over processes or memory
    /// (`SPREAD_FIELDS`: left out of the job id) would be one job run twice into one
    /// folder: an error at the override that makes the second one.
    fn spread_only(&self, draft: &[Override], first: &Job, second: &Job) -> Error {
        let spread = |job: &Job| {
            let (devices, nodes, shard_optimizer, checkpointing) = job.config.train.spread();
            format!(
                "devices {devices}, nodes {nodes}, shard_optimizer {shard_optimizer}, activation_checkpointing {checkpointing}"
            )
        };
        let field = draft
            .iter()
            .map(|(key, _, _)| key.as_str())
            .find(|key| SPREAD_FIELDS.contains(key))
            .unwrap_or("train.devices");
        let message = format!(
            "two jobs differ only in how they are spread over processes or memory ({} against {}): that changes where a job runs, not what it computes, so both are job {} with one folder; give each job one spread (set it in base, or vary it together with a field that changes the job)",
            spread(first),
            spread(second),
            first.id
        );
        self.in_job(draft, field, message)
    }

    /// An error at `place`, with the line and column where the text writes it.
    fn at(&self, place: &[Segment], message: String) -> Error {
        let (line, column) = yamlpos::find(self.text, place);
        Error::Located {
            path: self.path.to_owned(),
            line,
            column,
            key: label(place),
            message,
        }
    }

    /// A YAML syntax or schema error, with the key written at its position.
    fn syntax(&self, error: &serde_saphyr::Error) -> Error {
        let (line, column) = error
            .location()
            .map_or((1, 1), |at| (at.line() as usize, at.column() as usize));
        Error::Located {
            path: self.path.to_owned(),
            line,
            column,
            key: yamlpos::key_at(self.text, line, column),
            message: bare_message(error),
        }
    }
}

fn override_place(key: &str, source: Source) -> Vec<Segment<'_>> {
    match source {
        Source::Grid => vec![Segment::Key("grid"), Segment::Key(key)],
        Source::Zip => vec![Segment::Key("zip"), Segment::Key(key)],
        Source::Include(index) => vec![
            Segment::Key("include"),
            Segment::Index(index),
            Segment::Key(key),
        ],
    }
}

fn label(place: &[Segment]) -> String {
    let mut out = String::new();
    for segment in place {
        match segment {
            Segment::Key(key) if out.is_empty() => out.push_str(key),
            Segment::Key(key) => out.push_str(&format!(".{key}")),
            Segment::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// serde-saphyr's message without its `error: line L column C:` prefix and snippet
/// (the position is reported separately).
fn bare_message(error: &serde_saphyr::Error) -> String {
    let text = error.without_snippet().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let text = match text
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((position, rest)) if position.contains("column") => rest,
        _ => text,
    };
    let text = text.lines().next().unwrap_or_default().trim();
    // Some messages repeat the position at their end.
    match text.rfind(" at line ") {
        Some(at) if text[at..].contains(", column ") => text[..at].to_owned(),
        _ => text.to_owned(),
    }
}

/// Whether a job's overrides match every key of an exclude entry.
fn matches_entry(draft: &[Override], entry: &Map<String, Value>) -> bool {
    entry.iter().all(|(key, wanted)| {
        draft
            .iter()
            .any(|(k, value, _)| k == key && loosely_equal(value, wanted))
    })
}

/// Equal as written, or as numbers, or as token counts (`1000` = `1k`).
fn loosely_equal(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let count = |value: &Value| match value {
        Value::String(text) => TokenCount::parse(text).ok().map(|c| c.get() as f64),
        Value::Number(number) => number.as_f64(),
        _ => None,
    };
    matches!((count(a), count(b)), (Some(x), Some(y)) if x == y)
}

/// Cartesian product, first level outermost; each level contributes a group of overrides.
fn cartesian(levels: &[Vec<Vec<Override>>]) -> Vec<Vec<Override>> {
    levels.iter().fold(vec![Vec::new()], |partial, level| {
        partial
            .iter()
            .flat_map(|prefix| {
                level.iter().map(move |group| {
                    let mut next = prefix.clone();
                    next.extend(group.iter().cloned());
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

/// A job's value on every axis: its override, else what base wrote, else the default
/// the resolved config holds (serialised only when needed: it is the slow path).
fn axis_values(
    axes: &[String],
    draft: &[Override],
    merged: &Value,
    resolved: &JobConfig,
) -> Vec<(String, Value)> {
    let mut defaults: Option<Value> = None;
    axes.iter()
        .map(|axis| {
            let written = draft
                .iter()
                .find(|(key, _, _)| key == axis)
                .map(|(_, value, _)| value.clone())
                .or_else(|| get_dotted(merged, axis).cloned());
            let value = written.unwrap_or_else(|| {
                let defaults = defaults
                    .get_or_insert_with(|| serde_json::to_value(resolved).unwrap_or(Value::Null));
                get_dotted(defaults, axis).cloned().unwrap_or(Value::Null)
            });
            (axis.clone(), value)
        })
        .collect()
}

fn get_dotted<'v>(root: &'v Value, key: &str) -> Option<&'v Value> {
    key.split('.').try_fold(root, |node, part| node.get(part))
}

fn describe(draft: &[Override]) -> String {
    draft
        .iter()
        .map(|(key, value, _)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Names become folder names under the results root: letters, digits, `-`, `_` and
/// `.`, not starting with `.`, so a name can hold no `/`, `..` or absolute path.
fn check_name(name: &str) -> std::result::Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.starts_with('.') || !name.chars().all(allowed) || name.len() > 100 {
        return Err(format!(
            "`{name}` must be 1-100 letters, digits, '-', '_' or '.', not starting with '.' (it names a folder under the results root)"
        ));
    }
    Ok(())
}

/// The fields that say how a job is spread over processes or held in memory, not what
/// it computes.
const SPREAD_FIELDS: [&str; 4] = [
    "train.devices",
    "train.nodes",
    "train.shard_optimizer",
    "train.activation_checkpointing",
];

/// Short hash of the canonical resolved config (keys sorted, numbers normalised by
/// serde), so key order and formatting in the YAML do not change a job's id.
///
/// `train.devices`, `train.nodes`, `train.shard_optimizer` and
/// `train.activation_checkpointing` are left out: they decide how a job is spread over
/// processes or memory, not what it computes (a batch and its noise are drawn for the
/// whole batch before it is split), so a job keeps its id, its folder and its
/// checkpoints whether it runs on one GPU or eight; a folder can be resumed with a
/// different number.
pub fn job_id(config: &JobConfig) -> String {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    if let Some(Value::Object(train)) = value.get_mut("train") {
        for field in SPREAD_FIELDS {
            train.remove(field.trim_start_matches("train."));
        }
    }
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

#[cfg(test)]
#[path = "sweep_tests.rs"]
mod tests;
