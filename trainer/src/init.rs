//! Write the job folders a sweep implies (until the harness orchestrates sweeps, this
//! lets `trainer init sweeps/smoke.yaml` followed by `trainer run <job>` work alone).

use crate::error::{Result, io_error};
use crate::runfolder::{self, Status, write_atomic};
use jobspec::{Sweep, TokenizerSpec};
use std::path::{Path, PathBuf};

/// Create `<results>/sweep.yaml`, `plan.csv` and `jobs/<id>/{job.yaml,status.json}`;
/// existing job folders (same id = same config) are left untouched. Returns the job
/// folders in grid order.
pub fn write_sweep(sweep_path: &Path, results: &Path) -> Result<Vec<PathBuf>> {
    let mut sweep = Sweep::from_file(sweep_path)?;
    let sweep_dir = sweep_path.parent().unwrap_or(Path::new("."));
    for job in &mut sweep.jobs {
        absolutize_paths(&mut job.config, sweep_dir);
        job.id = jobspec::job_id(&job.config);
    }
    let jobs_dir = results.join("jobs");
    std::fs::create_dir_all(&jobs_dir).map_err(io_error(&jobs_dir))?;
    let text = std::fs::read(sweep_path).map_err(io_error(sweep_path))?;
    write_atomic(&results.join("sweep.yaml"), &text)?;
    let mut plan = format!("id,{}\n", sweep.axes.join(","));
    let mut folders = Vec::new();
    for job in &sweep.jobs {
        let values: Vec<String> = job
            .values
            .iter()
            .map(|(_, value)| csv_field(&value.to_string()))
            .collect();
        plan.push_str(&format!("{},{}\n", job.id, values.join(",")));
        let folder = jobs_dir.join(&job.id);
        std::fs::create_dir_all(&folder).map_err(io_error(&folder))?;
        let job_file = folder.join(runfolder::JOB_FILE);
        if !job_file.exists() {
            write_atomic(&job_file, job.config.to_yaml().as_bytes())?;
        }
        if runfolder::read_status(&folder)?.is_none() {
            runfolder::write_status(&folder, &Status::pending())?;
        }
        folders.push(folder);
    }
    write_atomic(&results.join("plan.csv"), plan.as_bytes())?;
    Ok(folders)
}

/// Corpus and tokenizer paths in a sweep are relative to the sweep file; job folders
/// live elsewhere, so they get absolute paths. Built-in corpus names stay as they are.
fn absolutize_paths(config: &mut jobspec::JobConfig, sweep_dir: &Path) {
    let absolute = |text: &str| -> Option<String> {
        let candidate = sweep_dir.join(text);
        (Path::new(text).is_relative() && candidate.exists()).then(|| {
            std::fs::canonicalize(&candidate)
                .unwrap_or(candidate)
                .display()
                .to_string()
        })
    };
    if let Some(path) = absolute(&config.data.corpus) {
        config.data.corpus = path;
    }
    if let TokenizerSpec::File(file) = &config.data.tokenizer
        && let Some(path) = absolute(file)
    {
        config.data.tokenizer = TokenizerSpec::File(path);
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
