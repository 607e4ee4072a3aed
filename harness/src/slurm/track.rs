//! What was submitted (`<results>/slurm/submissions.json`) and where each job stands
//! once its folder's status.json is read together with Slurm's record of its task.

use super::parse::TaskRecord;
use anyhow::Context;
use jobspec::status::{State, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Files of the Slurm backend, under the results folder.
pub const SLURM_DIR: &str = "slurm";
pub const SUBMISSIONS_FILE: &str = "submissions.json";

/// One `sbatch` of a job array.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// The array's Slurm job id.
    pub slurm_job: String,
    /// The script and the array file (task i = line i+1), relative to `<results>/slurm`.
    pub script: String,
    pub array_file: String,
    /// Job ids in task order: task i runs `jobs[i]`.
    pub jobs: Vec<String>,
    pub submitted_at: u64,
}

pub fn slurm_dir(results: &Path) -> PathBuf {
    results.join(SLURM_DIR)
}

/// Every submission so far, oldest first (none when the sweep never used Slurm).
pub fn read_submissions(results: &Path) -> anyhow::Result<Vec<Submission>> {
    let path = slurm_dir(results).join(SUBMISSIONS_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
}

pub fn write_submissions(results: &Path, submissions: &[Submission]) -> anyhow::Result<()> {
    let path = slurm_dir(results).join(SUBMISSIONS_FILE);
    let text = serde_json::to_string_pretty(submissions)?;
    write_atomic(&path, format!("{text}\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// The Slurm ids of every submitted array.
pub fn array_ids(submissions: &[Submission]) -> Vec<String> {
    submissions.iter().map(|s| s.slurm_job.clone()).collect()
}

/// Each job's Slurm task in its newest submission: job id -> (array id, task).
pub fn newest_tasks(submissions: &[Submission]) -> HashMap<String, (String, u32)> {
    let mut tasks = HashMap::new();
    for submission in submissions {
        for (task, job) in submission.jobs.iter().enumerate() {
            let task = u32::try_from(task).unwrap_or(u32::MAX);
            tasks.insert(job.clone(), (submission.slurm_job.clone(), task));
        }
    }
    tasks
}

/// Each job's newest Slurm record, where Slurm still has one.
pub fn job_records(
    submissions: &[Submission],
    records: &BTreeMap<(String, u32), TaskRecord>,
) -> HashMap<String, TaskRecord> {
    newest_tasks(submissions)
        .into_iter()
        .filter_map(|(job, key)| records.get(&key).map(|record| (job, record.clone())))
        .collect()
}

/// Whether a job goes into the next array: not done and not queued or running in
/// Slurm already. Failed, cancelled, timed-out and never-run jobs all go (the trainer
/// resumes from a job's newest checkpoint by itself).
pub fn needs_submission(folder: State, record: Option<&TaskRecord>) -> bool {
    folder != State::Done && !record.is_some_and(TaskRecord::active)
}

/// A job's state from its folder and its Slurm task, and what to say about it. The
/// folder is the trainer's word and wins when it is final; Slurm tells the rest:
/// queued, never started, or killed before the trainer could write anything.
pub fn merged_state(folder: State, record: Option<&TaskRecord>) -> (State, Option<String>) {
    let Some(record) = record else {
        return (folder, None);
    };
    let task = record.name();
    let exit = exit_text(record);
    match (folder, record.state.as_str()) {
        (State::Done, _) => (State::Done, None),
        (_, "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "CONFIGURING") => (
            State::Pending,
            Some(format!(
                "queued as Slurm task {task} ({}){}",
                record.reason,
                requeues(record)
            )),
        ),
        (_, state) if record.active() => {
            let left = record
                .time_left
                .as_ref()
                .map_or_else(String::new, |left| format!(", {left} left"));
            (
                State::Running,
                Some(format!(
                    "Slurm task {task} {state}{left}{}",
                    requeues(record)
                )),
            )
        }
        (State::Cancelled, "TIMEOUT" | "PREEMPTED" | "CANCELLED" | "FAILED")
        | (State::Running | State::Pending, "TIMEOUT" | "PREEMPTED" | "CANCELLED") => (
            State::Cancelled,
            Some(format!(
                "Slurm task {task} {}: run again to resume from its checkpoint",
                record.state
            )),
        ),
        (State::Failed, state) => (
            State::Failed,
            Some(format!("Slurm task {task} {state}{exit}")),
        ),
        (_, "COMPLETED") => (folder, None),
        (_, state) => (
            State::Failed,
            Some(format!(
                "Slurm task {task} {state}{exit} before the trainer finished (see the job's log.txt and slurm/logs)"
            )),
        ),
    }
}

/// `, requeued N times` when Slurm requeued the task (time limits, preemption).
fn requeues(record: &TaskRecord) -> String {
    match record.restarts {
        0 => String::new(),
        1 => ", requeued once".into(),
        n => format!(", requeued {n} times"),
    }
}

fn exit_text(record: &TaskRecord) -> String {
    match (record.exit_code, record.signal) {
        (_, Some(signal)) => format!(", signal {signal}"),
        (Some(code), None) => format!(", exit code {code}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: &str, exit: Option<i32>, signal: Option<i32>) -> TaskRecord {
        TaskRecord {
            array: "12".into(),
            task: 3,
            state: state.into(),
            reason: "Priority".into(),
            exit_code: exit,
            signal,
            restarts: 0,
            time_left: None,
        }
    }

    #[test]
    fn which_jobs_are_submitted() {
        let running = record("RUNNING", None, None);
        let pending = record("PENDING", None, None);
        let failed = record("FAILED", Some(1), None);
        let cases = [
            (State::Pending, None, true),
            (State::Pending, Some(&pending), false),
            (State::Running, Some(&running), false),
            (State::Running, None, true),
            (State::Failed, Some(&failed), true),
            (State::Cancelled, None, true),
            (State::Done, None, false),
            (State::Done, Some(&failed), false),
        ];
        for (folder, record, expected) in cases {
            assert_eq!(
                needs_submission(folder, record),
                expected,
                "{folder:?} {record:?}"
            );
        }
    }

    #[test]
    fn states_from_folder_and_slurm() {
        use State::*;
        let cases = [
            (Pending, None, Pending, None),
            (Done, Some(record("FAILED", Some(1), None)), Done, None),
            (
                Pending,
                Some(record("PENDING", Some(0), None)),
                Pending,
                Some("queued as Slurm task 12_3 (Priority)"),
            ),
            (
                Failed,
                Some(record("PENDING", Some(0), None)),
                Pending,
                Some("queued"),
            ),
            (
                Pending,
                Some(record("RUNNING", Some(0), None)),
                Running,
                Some("RUNNING"),
            ),
            (
                Failed,
                Some(record("FAILED", Some(1), None)),
                Failed,
                Some("FAILED, exit code 1"),
            ),
            (
                Running,
                Some(record("FAILED", Some(127), None)),
                Failed,
                Some("exit code 127 before"),
            ),
            (
                Running,
                Some(record("OUT_OF_MEMORY", None, Some(9))),
                Failed,
                Some("signal 9"),
            ),
            (
                Cancelled,
                Some(record("TIMEOUT", Some(0), None)),
                Cancelled,
                Some("TIMEOUT: run again"),
            ),
            (
                Running,
                Some(record("CANCELLED", None, Some(15))),
                Cancelled,
                Some("CANCELLED"),
            ),
            (
                Pending,
                Some(record("CANCELLED", Some(0), None)),
                Cancelled,
                Some("CANCELLED"),
            ),
            (
                Cancelled,
                Some(record("FAILED", Some(3), None)),
                Cancelled,
                Some("resume"),
            ),
            (
                Pending,
                Some(record("COMPLETED", Some(0), None)),
                Pending,
                None,
            ),
        ];
        for (folder, record, state, note) in cases {
            let (got_state, got_note) = merged_state(folder, record.as_ref());
            assert_eq!(got_state, state, "{folder:?} {record:?}");
            match note {
                Some(part) => {
                    let got = got_note.unwrap_or_default();
                    assert!(got.contains(part), "{folder:?} {record:?}: {got}");
                }
                None => assert_eq!(got_note, None, "{folder:?} {record:?}"),
            }
        }
    }

    #[test]
    fn the_newest_submission_of_a_job_wins() {
        let submission = |id: &str, jobs: &[&str]| Submission {
            slurm_job: id.into(),
            script: String::new(),
            array_file: String::new(),
            jobs: jobs.iter().map(|job| (*job).to_owned()).collect(),
            submitted_at: 0,
        };
        let tasks = newest_tasks(&[
            submission("5", &["a", "b", "c"]),
            submission("9", &["c", "a"]),
        ]);
        assert_eq!(tasks["a"], ("9".to_owned(), 1));
        assert_eq!(tasks["b"], ("5".to_owned(), 1));
        assert_eq!(tasks["c"], ("9".to_owned(), 0));
    }
}
