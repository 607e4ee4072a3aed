//! Slurm's command-line clients: sbatch, squeue, sacct, scancel.
//!
//! They run with this process's environment (SLURM_CONF among it, for a cluster
//! whose config is not in /etc/slurm) and with arguments passed as argv, never
//! through a shell.

use super::parse::{TaskRecord, sacct_line, sbatch_job_id, squeue_line};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The local test cluster's config (`scripts/slurm-local.sh up`), for when neither
/// SLURM_CONF nor /etc/slurm/slurm.conf names a cluster: then `just slurm-up &&
/// harness run ... --backend slurm` works without sourcing its env file.
fn local_cluster_conf() -> Option<PathBuf> {
    if std::env::var_os("SLURM_CONF").is_some() || Path::new("/etc/slurm/slurm.conf").exists() {
        return None;
    }
    let root = match std::env::var_os("SLURM_LOCAL_ROOT") {
        Some(root) => PathBuf::from(root),
        None => jobspec::cache_root().join("slurm"),
    };
    Some(root.join("slurm.conf")).filter(|conf| conf.exists())
}

fn run(program: &str, args: &[&str], cwd: Option<&Path>) -> anyhow::Result<Output> {
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null());
    if let Some(conf) = local_cluster_conf() {
        command.env("SLURM_CONF", conf);
    }
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    command.output().with_context(|| {
        format!("running `{program}` (is Slurm installed and on PATH? `just slurm-up` starts a local cluster)")
    })
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_owned()
}

/// Submit `script` from `cwd` (the tasks' working folder); returns the Slurm job id.
pub fn sbatch(script: &Path, cwd: &Path) -> anyhow::Result<String> {
    let script_text = script.display().to_string();
    let output = run("sbatch", &["--parsable", &script_text], Some(cwd))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "sbatch {script_text} failed ({}): {}",
            output.status,
            stderr_of(&output)
        );
    }
    sbatch_job_id(&stdout).with_context(|| format!("sbatch printed no job id: {:?}", stdout.trim()))
}

/// Every task squeue still knows of the arrays `ids` (finished ones too, for
/// MinJobAge seconds). An id Slurm has forgotten gives no records, not an error.
pub fn squeue(ids: &[String]) -> anyhow::Result<Vec<TaskRecord>> {
    let mut records = Vec::new();
    // One id per call: squeue fails a whole call when its only id is unknown.
    for id in ids {
        let format = "JobArrayID:|,State:|,Reason:|,exit_code:|,RestartCnt:|,TimeLeft:|";
        let output = run("squeue", &["-h", "-t", "all", "-j", id, "-O", format], None)?;
        if !output.status.success() {
            let error = stderr_of(&output);
            if error.contains("Invalid job id") {
                continue;
            }
            bail!("squeue -j {id} failed ({}): {error}", output.status);
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        records.extend(stdout.lines().flat_map(squeue_line));
    }
    Ok(records)
}

/// Records from accounting, or None where sacct is missing or accounting is off
/// (many clusters; the local test cluster too).
pub fn sacct(ids: &[String]) -> Option<Vec<TaskRecord>> {
    if ids.is_empty() {
        return Some(Vec::new());
    }
    let list = ids.join(",");
    let args = [
        "-j",
        &list,
        "-X",
        "-P",
        "--noheader",
        "-o",
        "JobID,State,ExitCode",
    ];
    let output = run("sacct", &args, None).ok()?;
    if !output.status.success() {
        return None;
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    Some(stdout.lines().flat_map(sacct_line).collect())
}

/// The newest record of each task: squeue's where it has one (it is live), else
/// sacct's (which outlives MinJobAge). Keyed by (array id, task).
pub fn task_records(ids: &[String]) -> anyhow::Result<BTreeMap<(String, u32), TaskRecord>> {
    let mut merged = BTreeMap::new();
    for record in sacct(ids).unwrap_or_default() {
        merged.insert((record.array.clone(), record.task), record);
    }
    for record in squeue(ids)? {
        merged.insert((record.array.clone(), record.task), record);
    }
    Ok(merged)
}

/// Cancel whole arrays.
pub fn scancel(ids: &[String]) -> anyhow::Result<()> {
    let args: Vec<&str> = ids.iter().map(String::as_str).collect();
    let output = run("scancel", &args, None)?;
    if !output.status.success() {
        bail!(
            "scancel {} failed ({}): {}",
            ids.join(" "),
            output.status,
            stderr_of(&output)
        );
    }
    Ok(())
}
