//! `harness status`, `cancel` and `clean --failed`: reading and adjusting the job
//! folders of a results folder.

use crate::lock;
use crate::process::{self, SIGTERM};
use crate::target::{JobRow, plain};
use jobspec::status::{State, read_status, write_status};
use serde_json::{Map, Value, json};

/// One job's row in the status table.
#[derive(Debug)]
pub struct JobState {
    pub row: JobRow,
    pub state: State,
    pub step: u64,
    pub total_steps: u64,
    pub attempts: u32,
    pub failures: u32,
    pub error: Option<String>,
    pub pid: Option<u32>,
    /// The job's newest Slurm task, for sweeps run with `--backend slurm`.
    pub slurm: Option<crate::slurm::TaskRecord>,
}

pub fn collect(rows: Vec<JobRow>) -> anyhow::Result<Vec<JobState>> {
    rows.into_iter()
        .map(|row| {
            let status = read_status(&row.folder)?;
            let status = status.unwrap_or_else(jobspec::status::Status::pending);
            Ok(JobState {
                row,
                state: status.state,
                step: status.step,
                total_steps: status.total_steps,
                attempts: status.attempts,
                failures: status.failures,
                error: status.error,
                pid: status.pid,
                slurm: None,
            })
        })
        .collect()
}

pub fn table(axes: &[String], jobs: &[JobState]) -> String {
    let mut header: Vec<String> = vec!["id".into()];
    header.extend(axes.iter().cloned());
    let slurm = jobs.iter().any(|job| job.slurm.is_some());
    if slurm {
        header.push("slurm".into());
    }
    header.extend(["state", "step", "attempts", "error"].map(String::from));
    let mut rows = vec![header];
    for job in jobs {
        let mut row = vec![job.row.id.clone()];
        row.extend(job.row.values.iter().map(|(_, value)| plain(value)));
        if slurm {
            row.push(job.slurm.as_ref().map_or_else(
                || "-".into(),
                |task| format!("{} {}", task.name(), task.state),
            ));
        }
        row.push(job.state.label().into());
        row.push(format!("{}/{}", job.step, job.total_steps));
        row.push(job.attempts.to_string());
        let error = job.error.clone().unwrap_or_default();
        row.push(error.chars().take(80).collect());
        rows.push(row);
    }
    let mut out = crate::plan::align(&rows);
    let count = |state: State| jobs.iter().filter(|job| job.state == state).count();
    out.push_str(&format!(
        "{} jobs: {} done, {} running, {} failed, {} cancelled, {} pending\n",
        jobs.len(),
        count(State::Done),
        count(State::Running),
        count(State::Failed),
        count(State::Cancelled),
        count(State::Pending)
    ));
    out
}

/// A task's Slurm record with `active` added: whether Slurm will still run it (the
/// harness's rule, so scripts polling `status --json` need not keep their own list of
/// Slurm's transient states such as SIGNALING or REQUEUE_FED).
fn slurm_json(record: &crate::slurm::TaskRecord) -> Value {
    let mut value = json!(record);
    if let Value::Object(map) = &mut value {
        map.insert("active".into(), Value::Bool(record.active()));
    }
    value
}

pub fn to_json(jobs: &[JobState], results: &std::path::Path, changed: bool) -> Value {
    let rows: Vec<Value> = jobs
        .iter()
        .map(|job| {
            let values: Map<String, Value> = job.row.values.iter().cloned().collect();
            json!({
                "id": job.row.id,
                "values": values,
                "state": job.state,
                "step": job.step,
                "total_steps": job.total_steps,
                "attempts": job.attempts,
                "failures": job.failures,
                "error": job.error,
                "pid": job.pid,
                "slurm": job.slurm.as_ref().map(slurm_json),
            })
        })
        .collect();
    json!({
        "results": results.display().to_string(),
        "sweep_changed": changed,
        "jobs": rows,
    })
}

/// SIGTERM the harness running `results` (it stops its workers gracefully); when none
/// runs, SIGTERM trainers still recorded as running (left by a killed harness).
/// Returns a line per process signalled.
pub fn cancel(results: &std::path::Path, jobs: &[JobState]) -> anyhow::Result<Vec<String>> {
    if let Some(pid) = lock::holder(results)? {
        process::signal(pid, SIGTERM)?;
        return Ok(vec![format!("sent SIGTERM to harness pid {pid}")]);
    }
    let mut lines = Vec::new();
    for job in jobs.iter().filter(|job| job.state == State::Running) {
        if let Some(pid) = job.pid.filter(|pid| process::alive(*pid, "trainer")) {
            process::signal(pid, SIGTERM)?;
            lines.push(format!(
                "sent SIGTERM to trainer pid {pid} ({})",
                job.row.id
            ));
        }
    }
    Ok(lines)
}

/// Reset failed jobs to pending (checkpoints kept, so they resume). Returns their ids.
/// Delete (or, on a dry run, count) the AdamW moments in every checkpoint of every
/// done job: (files, bytes). A done job never resumes; its weights stay.
pub fn clean_checkpoints(jobs: &[JobState], dry_run: bool) -> anyhow::Result<(usize, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for job in jobs.iter().filter(|job| job.state == State::Done) {
        let root = job.row.folder.join(jobspec::status::CHECKPOINTS);
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        for entry in entries {
            let moments = entry
                .map_err(|error| anyhow::anyhow!("listing {}: {error}", root.display()))?
                .path()
                .join(jobspec::status::OPTIMIZER_FILE);
            let Ok(meta) = std::fs::metadata(&moments) else {
                continue;
            };
            if !dry_run {
                std::fs::remove_file(&moments)
                    .map_err(|error| anyhow::anyhow!("deleting {}: {error}", moments.display()))?;
            }
            files += 1;
            bytes += meta.len();
        }
    }
    Ok((files, bytes))
}

pub fn clean_failed(jobs: &[JobState]) -> anyhow::Result<Vec<String>> {
    let mut reset = Vec::new();
    for job in jobs.iter().filter(|job| job.state == State::Failed) {
        let Some(mut status) = read_status(&job.row.folder)? else {
            continue;
        };
        status.state = State::Pending;
        status.failures = 0;
        status.error = None;
        status.pid = None;
        write_status(&job.row.folder, &status)?;
        reset.push(job.row.id.clone());
    }
    Ok(reset)
}

/// Merge Slurm's view (`slurm::records_by_job`) into the status rows of a sweep that
/// was submitted to Slurm: each job's state is the one both agree on, with Slurm's note
/// in front of the job's own error.
pub fn merge_slurm(
    jobs: &mut [JobState],
    by_job: &std::collections::HashMap<String, crate::slurm::TaskRecord>,
) {
    for job in jobs.iter_mut() {
        let record = by_job.get(&job.row.id);
        let (state, note) = crate::slurm::merged_state(job.state, record);
        job.error = match (note, job.error.take()) {
            (Some(note), Some(error)) if state == job.state => Some(format!("{note}: {error}")),
            (Some(note), _) => Some(note),
            (None, error) => error,
        };
        job.state = state;
        job.slurm = record.cloned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_slurm_record_says_whether_slurm_still_runs_the_task() {
        let cases = [
            ("PENDING", true),
            ("RUNNING", true),
            ("SIGNALING", true),
            ("REQUEUE_FED", true),
            ("COMPLETED", false),
            ("TIMEOUT", false),
            ("FAILED", false),
        ];
        for (state, active) in cases {
            let record = crate::slurm::TaskRecord {
                array: "12".into(),
                task: 3,
                state: state.into(),
                reason: "None".into(),
                exit_code: None,
                signal: None,
                restarts: 1,
                time_left: None,
            };
            let value = slurm_json(&record);
            assert_eq!(value["active"], active, "{state}");
            assert_eq!(value["state"], state);
            assert_eq!(value["restarts"], 1);
        }
    }
}
