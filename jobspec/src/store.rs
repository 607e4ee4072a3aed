//! Writing a sweep's run folder: `<results>/sweep.yaml`, `plan.csv` and
//! `jobs/<id>/{job.yaml,status.json}`. Shared by `trainer init` and `harness run`.

use crate::config::{JobConfig, TokenizerSpec};
use crate::error::{Result, io_error};
use crate::status::{JOB_FILE, Status, read_status, write_atomic, write_status};
use crate::sweep::{Sweep, job_id};
use std::path::{Path, PathBuf};

pub const SWEEP_COPY: &str = "sweep.yaml";
pub const PLAN_FILE: &str = "plan.csv";
pub const JOBS_DIR: &str = "jobs";

/// Read a sweep the way its jobs will run: relative corpus and tokenizer paths made
/// absolute (job folders live elsewhere), ids computed from those resolved configs.
pub fn load_sweep(sweep_path: &Path) -> Result<Sweep> {
    let mut sweep = Sweep::from_file(sweep_path)?;
    let sweep_dir = sweep_path.parent().unwrap_or(Path::new("."));
    for job in &mut sweep.jobs {
        // Hashing is most of planning's cost: only rehash configs that changed.
        if absolutize_paths(&mut job.config, sweep_dir) {
            job.id = job_id(&job.config);
        }
    }
    Ok(sweep)
}

/// Create `<results>/sweep.yaml`, `plan.csv` and `jobs/<id>/{job.yaml,status.json}`;
/// existing job folders (same id = same config) are left untouched, except that
/// job.yaml follows a change of `train.devices`, `train.nodes` or
/// `train.shard_optimizer`. Returns the job
/// folders in grid order.
pub fn write_sweep(sweep_path: &Path, results: &Path) -> Result<Vec<PathBuf>> {
    let sweep = load_sweep(sweep_path)?;
    write_jobs(&sweep, sweep_path, results)
}

/// The writing half of [`write_sweep`], for a sweep already loaded with [`load_sweep`].
pub fn write_jobs(sweep: &Sweep, sweep_path: &Path, results: &Path) -> Result<Vec<PathBuf>> {
    let jobs_dir = results.join(JOBS_DIR);
    std::fs::create_dir_all(&jobs_dir).map_err(io_error(&jobs_dir))?;
    let text = std::fs::read(sweep_path).map_err(io_error(sweep_path))?;
    write_atomic(&results.join(SWEEP_COPY), &text)?;
    let mut folders = Vec::new();
    for job in &sweep.jobs {
        let folder = jobs_dir.join(&job.id);
        std::fs::create_dir_all(&folder).map_err(io_error(&folder))?;
        let job_file = folder.join(JOB_FILE);
        if !job_file.exists() || spread_changed(&job_file, &job.config) {
            write_atomic(&job_file, job.config.to_yaml().as_bytes())?;
        }
        if read_status(&folder)?.is_none() {
            write_status(&folder, &Status::pending())?;
        }
        folders.push(folder);
    }
    write_atomic(&results.join(PLAN_FILE), plan_csv(sweep).as_bytes())?;
    Ok(folders)
}

/// Whether an existing job.yaml asks for another spread (`train.devices`,
/// `train.nodes`, `train.shard_optimizer`, `train.activation_checkpointing`) than the
/// sweep now does. The spread is not
/// part of the job id (a job computes the same however it is spread), so the same
/// folder is rewritten to run the new way and resume from its checkpoints; every
/// other field is fixed by the id.
fn spread_changed(job_file: &Path, config: &crate::JobConfig) -> bool {
    crate::JobConfig::from_file(job_file)
        .is_ok_and(|old| old.train.spread() != config.train.spread())
}

/// plan.csv: the job id and every varying value (as JSON), one row per job.
pub fn plan_csv(sweep: &Sweep) -> String {
    let mut plan = format!("id,{}\n", sweep.axes.join(","));
    for job in &sweep.jobs {
        let values: Vec<String> = job
            .values
            .iter()
            .map(|(_, value)| csv_field(&value.to_string()))
            .collect();
        plan.push_str(&format!("{},{}\n", job.id, values.join(",")));
    }
    plan
}

/// When `<results>/sweep.yaml` differs from the sweep file, rename it (and plan.csv)
/// to `<name>.<unix time>` so the earlier definition stays beside its results.
/// Returns the kept copy, if any.
pub fn archive_changed_sweep(sweep_path: &Path, results: &Path) -> Result<Option<PathBuf>> {
    if !sweep_changed(sweep_path, results)? {
        return Ok(None);
    }
    let stamp = crate::status::now();
    let kept = results.join(format!("{SWEEP_COPY}.{stamp}"));
    let copy = results.join(SWEEP_COPY);
    std::fs::rename(&copy, &kept).map_err(io_error(&copy))?;
    let plan = results.join(PLAN_FILE);
    if plan.exists() {
        let kept_plan = results.join(format!("{PLAN_FILE}.{stamp}"));
        std::fs::rename(&plan, &kept_plan).map_err(io_error(&plan))?;
    }
    Ok(Some(kept))
}

/// Whether `<results>/sweep.yaml` exists and differs from the sweep file.
pub fn sweep_changed(sweep_path: &Path, results: &Path) -> Result<bool> {
    let copy = results.join(SWEEP_COPY);
    if !copy.exists() {
        return Ok(false);
    }
    let old = std::fs::read(&copy).map_err(io_error(&copy))?;
    let new = std::fs::read(sweep_path).map_err(io_error(sweep_path))?;
    Ok(old != new)
}

/// Corpus and tokenizer paths in a sweep are relative to the sweep file; job folders
/// live elsewhere, so they get absolute paths. Built-in corpus names stay as they are.
/// Returns whether anything changed.
pub fn absolutize_paths(config: &mut JobConfig, sweep_dir: &Path) -> bool {
    let mut changed = false;
    let absolute = |text: &str| -> Option<String> {
        let candidate = sweep_dir.join(text);
        if !Path::new(text).is_relative() {
            return None;
        }
        if candidate.exists() {
            return Some(
                std::fs::canonicalize(&candidate)
                    .unwrap_or(candidate)
                    .display()
                    .to_string(),
            );
        }
        // A pattern of file names (`shards/*.parquet`): its folder made absolute.
        let name = candidate.file_name()?.to_str()?;
        let folder = candidate.parent()?;
        (name.contains(['*', '?']) && folder.is_dir()).then(|| {
            std::fs::canonicalize(folder)
                .unwrap_or_else(|_| folder.to_path_buf())
                .join(name)
                .display()
                .to_string()
        })
    };
    if let Some(path) = absolute(&config.data.corpus) {
        config.data.corpus = path;
        changed = true;
    }
    if let TokenizerSpec::File(file) = &config.data.tokenizer
        && let Some(path) = absolute(file)
    {
        config.data.tokenizer = TokenizerSpec::File(path);
        changed = true;
    }
    changed
}

pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative corpus paths become absolute against the sweep's folder: a folder, and
    /// a pattern of file names (its folder made absolute, the pattern kept); built-in
    /// names and paths that do not exist stay as written.
    #[test]
    fn corpus_paths_and_patterns_become_absolute() {
        let temp = tempfile::tempdir().expect("temp dir");
        let root = std::fs::canonicalize(temp.path()).expect("canonical");
        std::fs::create_dir_all(root.join("shards")).expect("shards");
        let yaml = "objective: ar\nmodel: { preset: nano }\ndata: { corpus: x, tokenizer: bytes, seq_len: 16, unique_tokens: 1k, val_tokens: 1k }\ntrain: { epochs: 1, batch_size: 2, lr: 1e-3 }\n";
        for (corpus, expected) in [
            ("shards", root.join("shards").display().to_string()),
            (
                "shards/*.parquet",
                root.join("shards/*.parquet").display().to_string(),
            ),
            ("sotu", "sotu".to_owned()),
            ("missing/*.parquet", "missing/*.parquet".to_owned()),
        ] {
            let mut config: JobConfig = serde_saphyr::from_str(yaml).expect("config");
            config.data.corpus = corpus.into();
            let changed = absolutize_paths(&mut config, &root);
            assert_eq!(config.data.corpus, expected, "{corpus}");
            assert_eq!(changed, expected != corpus, "{corpus}");
        }
    }

    /// A job folder follows the sweep's devices and nodes (same id, job.yaml
    /// rewritten), and is left alone otherwise.
    #[test]
    fn changing_devices_rewrites_the_same_job_folder() {
        let temp = tempfile::tempdir().expect("temp dir");
        let sweep_path = temp.path().join("s.yaml");
        let results = temp.path().join("results");
        let write = |train: &str| {
            let text = format!(
                "name: s\nbase:\n  objective: ar\n  model: {{ preset: nano }}\n  data: {{ corpus: c, tokenizer: bytes, seq_len: 16, unique_tokens: 1k, val_tokens: 1k }}\n  train: {{ epochs: 1, batch_size: 4, lr: 1e-3{train} }}\n"
            );
            std::fs::write(&sweep_path, text).expect("sweep");
            let sweep = Sweep::from_yaml(
                &std::fs::read_to_string(&sweep_path).expect("read"),
                &sweep_path,
            )
            .expect("sweep");
            let folders = write_jobs(&sweep, &sweep_path, &results).expect("write jobs");
            assert_eq!(folders.len(), 1);
            let config = crate::JobConfig::from_file(&folders[0].join(JOB_FILE)).expect("job.yaml");
            (folders[0].clone(), config.train.devices)
        };
        let (one, devices) = write("");
        assert_eq!(devices, 1);
        let (two, devices) = write(", devices: 2");
        assert_eq!((&two, devices), (&one, 2), "same folder, now two devices");
        let (back, devices) = write("");
        assert_eq!((&back, devices), (&one, 1));
    }
}
