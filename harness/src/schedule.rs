//! Which jobs a `harness run` starts, as a pure decision on each job's status.

use jobspec::status::{State, Status};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Finished: never run again.
    Skip,
    /// Start (or resume from its checkpoints: the trainer does that by itself).
    Run,
    /// A trainer from an earlier harness is still running it: wait for that process.
    Wait(u32),
    /// Failed more than `--max-retries` times: left failed until `harness clean --failed`.
    GiveUp,
}

/// Decide from status.json; `alive` says whether a recorded trainer pid still runs.
pub fn decide(status: Option<&Status>, max_retries: u32, alive: impl Fn(u32) -> bool) -> Action {
    let Some(status) = status else {
        return Action::Run;
    };
    match status.state {
        State::Done => Action::Skip,
        State::Pending | State::Cancelled => Action::Run,
        State::Running => match status.pid {
            Some(pid) if alive(pid) => Action::Wait(pid),
            // Its process died with no word (kill -9, power loss): resume it.
            _ => Action::Run,
        },
        State::Failed if status.failures <= max_retries => Action::Run,
        State::Failed => Action::GiveUp,
    }
}

/// After a failed run (already counted in `failures`): whether to try again.
pub fn retry(failures: u32, max_retries: u32) -> bool {
    failures <= max_retries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: State, pid: Option<u32>, failures: u32) -> Status {
        Status {
            state,
            pid,
            failures,
            ..Status::pending()
        }
    }

    #[test]
    fn decisions() {
        let alive = |pid: u32| pid == 7;
        let cases = [
            (None, Action::Run),
            (Some(status(State::Pending, None, 0)), Action::Run),
            (Some(status(State::Done, None, 0)), Action::Skip),
            (Some(status(State::Cancelled, None, 0)), Action::Run),
            (Some(status(State::Running, Some(7), 0)), Action::Wait(7)),
            (Some(status(State::Running, Some(8), 0)), Action::Run),
            (Some(status(State::Running, None, 0)), Action::Run),
            (Some(status(State::Failed, None, 0)), Action::Run),
            (Some(status(State::Failed, None, 2)), Action::Run),
            (Some(status(State::Failed, None, 3)), Action::GiveUp),
        ];
        for (status, expected) in cases {
            assert_eq!(decide(status.as_ref(), 2, alive), expected, "{status:?}");
        }
    }

    #[test]
    fn retries_stop_after_the_limit() {
        let cases = [(1, 0, false), (1, 2, true), (2, 2, true), (3, 2, false)];
        for (failures, max_retries, expected) in cases {
            assert_eq!(
                retry(failures, max_retries),
                expected,
                "{failures} {max_retries}"
            );
        }
    }
}
