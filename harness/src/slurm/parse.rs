//! Reading what squeue and sacct print (pipe-separated, no header; not `--json`,
//! whose layout changes across Slurm versions). Pure, so tested as tables of cases.
//!
//! Array records come in three shapes: one task (`12_3`), or a collapsed group of
//! tasks that share a state, e.g. still pending (`12_[3-7%2]`) or cancelled before
//! they started (`12_[1,4,9]`). Groups are expanded to one record per task.

use serde::Serialize;

/// One array task as Slurm reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaskRecord {
    /// The array's Slurm job id (what sbatch printed).
    pub array: String,
    pub task: u32,
    /// Slurm's state name, e.g. PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT.
    pub state: String,
    /// Why it is pending or how it ended (squeue only).
    pub reason: String,
    /// The batch script's exit code, when Slurm gives one.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// Times Slurm requeued it (after time limits, preemption or node failures;
    /// squeue only, 0 where unknown).
    pub restarts: u32,
    /// Time left of its allocation as squeue prints it (`1-02:03:04`), when running.
    pub time_left: Option<String>,
}

impl TaskRecord {
    /// `12_3`, as squeue and scancel name the task.
    pub fn name(&self) -> String {
        format!("{}_{}", self.array, self.task)
    }

    /// Queued or running: Slurm will (still) run it, so it must not be submitted again.
    pub fn active(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING"
                | "RUNNING"
                | "CONFIGURING"
                | "COMPLETING"
                | "REQUEUED"
                | "REQUEUE_FED"
                | "REQUEUE_HOLD"
                | "RESIZING"
                | "SUSPENDED"
                | "STOPPED"
                | "SIGNALING"
                | "STAGE_OUT"
                | "RESV_DEL_HOLD"
        )
    }
}

/// The task ids of `12_[1,3-5%2]` as (`12`, [1, 3, 4, 5]); `12_7` as (`12`, [7]).
/// A job id without `_` is not an array task: None.
pub fn array_tasks(id: &str) -> Option<(String, Vec<u32>)> {
    let (array, tasks) = id.split_once('_')?;
    if array.is_empty() || !array.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let list = match tasks.strip_prefix('[') {
        Some(inside) => inside.strip_suffix(']')?,
        None => tasks,
    };
    // `%N` is the concurrency cap, not a task.
    let list = list.split_once('%').map_or(list, |(list, _)| list);
    let mut ids = Vec::new();
    for part in list.split(',') {
        // Ranges may have a step: `0-10:2`.
        let (range, step) = match part.split_once(':') {
            Some((range, step)) => (range, step.parse::<usize>().ok()?.max(1)),
            None => (part, 1),
        };
        let (first, last) = match range.split_once('-') {
            Some((first, last)) => (first.parse::<u32>().ok()?, last.parse::<u32>().ok()?),
            None => {
                let task = range.parse::<u32>().ok()?;
                (task, task)
            }
        };
        if last < first {
            return None;
        }
        ids.extend((first..=last).step_by(step));
    }
    Some((array.to_owned(), ids))
}

/// A wait status as squeue's `exit_code` field gives it (768 = exit 3): the exit
/// code, and the signal when one ended the process.
pub fn split_wait_status(raw: i32) -> (Option<i32>, Option<i32>) {
    let signal = raw & 0x7f;
    if signal != 0 {
        (None, Some(signal))
    } else {
        (Some((raw >> 8) & 0xff), None)
    }
}

/// sacct's `ExitCode`, `code:signal` (`3:0`, `0:15`).
pub fn split_exit_pair(text: &str) -> (Option<i32>, Option<i32>) {
    let (code, signal) = text.split_once(':').unwrap_or((text, "0"));
    let signal = signal
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|signal| *signal != 0);
    (code.trim().parse().ok(), signal)
}

/// One line of `squeue -h -t all -O JobArrayID:|,State:|,Reason:|,exit_code:|`.
pub fn squeue_line(line: &str) -> Vec<TaskRecord> {
    let fields: Vec<&str> = line.split('|').map(str::trim).collect();
    let [id, state, reason, exit, ..] = fields.as_slice() else {
        return Vec::new();
    };
    let (exit_code, signal) = match exit.parse::<i32>() {
        Ok(raw) => split_wait_status(raw),
        Err(_) => (None, None),
    };
    let restarts = fields.get(4).and_then(|n| n.parse().ok()).unwrap_or(0);
    let time_left = fields
        .get(5)
        .filter(|left| !left.is_empty() && !matches!(**left, "INVALID" | "UNLIMITED" | "N/A"))
        .map(|left| (*left).to_owned());
    let mut found = records(id, state, reason, exit_code, signal);
    for record in &mut found {
        record.restarts = restarts;
        record.time_left = if state == &"RUNNING" {
            time_left.clone()
        } else {
            None
        };
    }
    found
}

/// One line of `sacct -X -P --noheader -o JobID,State,ExitCode`. Step lines
/// (`12_3.batch`) are skipped; a state like `CANCELLED by 0` keeps its first word.
pub fn sacct_line(line: &str) -> Vec<TaskRecord> {
    let fields: Vec<&str> = line.split('|').map(str::trim).collect();
    let [id, state, exit, ..] = fields.as_slice() else {
        return Vec::new();
    };
    if id.contains('.') {
        return Vec::new();
    }
    let state = state.split_whitespace().next().unwrap_or_default();
    let (exit_code, signal) = split_exit_pair(exit);
    records(id, state, "", exit_code, signal)
}

fn records(
    id: &str,
    state: &str,
    reason: &str,
    exit_code: Option<i32>,
    signal: Option<i32>,
) -> Vec<TaskRecord> {
    let Some((array, tasks)) = array_tasks(id) else {
        return Vec::new();
    };
    tasks
        .into_iter()
        .map(|task| TaskRecord {
            array: array.clone(),
            task,
            state: state.to_owned(),
            reason: reason.to_owned(),
            exit_code,
            signal,
            restarts: 0,
            time_left: None,
        })
        .collect()
}

/// sbatch `--parsable` prints `jobid` or `jobid;cluster`.
pub fn sbatch_job_id(stdout: &str) -> Option<String> {
    let first = stdout.lines().next()?.trim();
    let id = first.split(';').next()?.trim();
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_ranges() {
        type Case = (&'static str, Option<(&'static str, &'static [u32])>);
        let cases: [Case; 12] = [
            ("12_3", Some(("12", &[3]))),
            ("12_[3-7]", Some(("12", &[3, 4, 5, 6, 7]))),
            ("12_[1,4,9]", Some(("12", &[1, 4, 9]))),
            ("12_[3-7%2]", Some(("12", &[3, 4, 5, 6, 7]))),
            ("9_[0-2,45,47%3]", Some(("9", &[0, 1, 2, 45, 47]))),
            ("12_[0-6:3]", Some(("12", &[0, 3, 6]))),
            ("12_[5]", Some(("12", &[5]))),
            ("12", None),
            ("12_[7-3]", None),
            ("12_[3-7", None),
            ("x_1", None),
            ("12_a", None),
        ];
        for (id, expected) in cases {
            let expected = expected.map(|(array, tasks)| (array.to_owned(), tasks.to_vec()));
            assert_eq!(array_tasks(id), expected, "{id}");
        }
    }

    fn record(task: u32, state: &str, exit: Option<i32>, signal: Option<i32>) -> TaskRecord {
        TaskRecord {
            array: "3".into(),
            task,
            state: state.into(),
            reason: String::new(),
            exit_code: exit,
            signal,
            restarts: 0,
            time_left: None,
        }
    }

    #[test]
    fn squeue_lines() {
        let with_reason = |mut record: TaskRecord, reason: &str| {
            record.reason = reason.into();
            record
        };
        let cases: [(&str, Vec<TaskRecord>); 5] = [
            (
                "3_1|FAILED|NonZeroExitCode|768|",
                vec![with_reason(
                    record(1, "FAILED", Some(3), None),
                    "NonZeroExitCode",
                )],
            ),
            (
                "3_0|RUNNING|None|0|",
                vec![with_reason(record(0, "RUNNING", Some(0), None), "None")],
            ),
            (
                "3_[2-3%2]|PENDING|JobArrayTaskLimit|0|",
                vec![
                    with_reason(record(2, "PENDING", Some(0), None), "JobArrayTaskLimit"),
                    with_reason(record(3, "PENDING", Some(0), None), "JobArrayTaskLimit"),
                ],
            ),
            (
                "3_4|CANCELLED|None|15|",
                vec![with_reason(record(4, "CANCELLED", None, Some(15)), "None")],
            ),
            ("garbage", vec![]),
        ];
        for (line, expected) in cases {
            assert_eq!(squeue_line(line), expected, "{line}");
        }
    }

    #[test]
    fn sacct_lines() {
        let cases: [(&str, Vec<TaskRecord>); 5] = [
            ("3_1|FAILED|3:0", vec![record(1, "FAILED", Some(3), None)]),
            (
                "3_2|CANCELLED by 0|0:15",
                vec![record(2, "CANCELLED", Some(0), Some(15))],
            ),
            (
                "3_[5-6]|CANCELLED by 0|0:0",
                vec![
                    record(5, "CANCELLED", Some(0), None),
                    record(6, "CANCELLED", Some(0), None),
                ],
            ),
            ("3_1.batch|FAILED|3:0", vec![]),
            ("3_0|TIMEOUT|0:0", vec![record(0, "TIMEOUT", Some(0), None)]),
        ];
        for (line, expected) in cases {
            assert_eq!(sacct_line(line), expected, "{line}");
        }
    }

    #[test]
    fn sbatch_output() {
        let cases = [
            ("42\n", Some("42")),
            ("42;cluster\n", Some("42")),
            ("Submitted batch job 42\n", None),
            ("", None),
        ];
        for (stdout, expected) in cases {
            assert_eq!(sbatch_job_id(stdout).as_deref(), expected, "{stdout}");
        }
    }

    #[test]
    fn squeue_restarts_and_time_left() {
        let [running] = squeue_line("7_2|RUNNING|None|0|3|1-02:03:04|")
            .try_into()
            .expect("one record");
        assert_eq!(
            (running.restarts, running.time_left.as_deref()),
            (3, Some("1-02:03:04"))
        );
        let [pending] = squeue_line("7_1|PENDING|BeginTime|0|1|1:00|")
            .try_into()
            .expect("one record");
        assert_eq!((pending.restarts, pending.time_left), (1, None));
        let [old] = squeue_line("7_0|RUNNING|None|0|")
            .try_into()
            .expect("one record");
        assert_eq!((old.restarts, old.time_left), (0, None));
    }
}
