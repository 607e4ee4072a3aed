//! The smoke sweep on the real corpus, driven through the `trainer` binary alone:
//! init writes the job folders, each job trains AR / DLM / AR-masked, losses fall and
//! validation rows land at every milestone.

use e2e::{binary, csv_column, run_ok, workspace_root};
use std::process::Command;

#[test]
fn smoke_sweep_trains_every_objective_on_a_real_corpus() {
    let trainer = binary("trainer");
    let results = tempfile::tempdir().expect("temp dir");
    let sweep = workspace_root().join("sweeps/smoke.yaml");
    let output = run_ok(
        Command::new(&trainer)
            .arg("init")
            .arg(&sweep)
            .arg("--results")
            .arg(results.path()),
    );
    let jobs: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(jobs.len(), 3, "one job per objective: {jobs:?}");
    let plan = std::fs::read_to_string(results.path().join("plan.csv")).expect("plan.csv");
    assert!(
        plan.starts_with("id,objective\n") && plan.contains("\"ar_masked\""),
        "{plan}"
    );
    // A second init finds the same ids and leaves the folders alone.
    let again = run_ok(
        Command::new(&trainer)
            .arg("init")
            .arg(&sweep)
            .arg("--results")
            .arg(results.path()),
    );
    assert_eq!(
        String::from_utf8_lossy(&again.stdout)
            .lines()
            .collect::<Vec<_>>(),
        jobs
    );

    for job in &jobs {
        let job = std::path::Path::new(job);
        run_ok(
            Command::new(&trainer)
                .args(["run", "--threads", "1"])
                .arg(job),
        );
        let status: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(job.join("status.json")).expect("status"),
        )
        .expect("json");
        assert_eq!(status["state"], "done", "{}", job.display());
        let losses = csv_column(&job.join("train.csv"), "loss");
        let head = losses[..3].iter().sum::<f64>() / 3.0;
        let tail = losses[losses.len() - 3..].iter().sum::<f64>() / 3.0;
        assert!(
            tail < head - 1.0,
            "{}: loss {head:.3} -> {tail:.3}",
            job.display()
        );
        // log2 milestones over 4 epochs: epochs 1, 2 and the end, each with the
        // validation loss and the cloze accuracies.
        let rows = eval_rows(&job.join("eval.csv"));
        let validation: Vec<f64> = rows
            .iter()
            .filter(|r| r.0 == "val_loss")
            .map(|r| r.2)
            .collect();
        assert_eq!(validation.len(), 3, "{}", job.display());
        assert!(
            validation[2] < validation[0],
            "{}: validation {validation:?}",
            job.display()
        );
        let cloze: Vec<&(String, String, f64, f64)> = rows
            .iter()
            .filter(|r| r.0 == "cloze" && r.1 == "acc")
            .collect();
        assert_eq!(cloze.len(), 3, "{}", job.display());
        assert!(
            cloze
                .iter()
                .all(|r| (0.0..=1.0).contains(&r.2) && r.3 > 0.0),
            "{}: {cloze:?}",
            job.display()
        );
        // Any checkpoint scores on the real benchmark files, leaving training state alone.
        if job == std::path::Path::new(&jobs[0]) {
            let before = std::fs::read_to_string(job.join("eval.csv")).expect("eval.csv");
            let output = run_ok(
                Command::new(&trainer)
                    .args(["eval", "--threads", "1", "--tasks", "hellaswag,arc_easy"])
                    .arg(job),
            );
            let printed = String::from_utf8_lossy(&output.stdout);
            assert!(
                printed.contains("hellaswag") && printed.contains("arc_easy"),
                "{printed}"
            );
            let adhoc = eval_rows(&job.join("eval_adhoc.csv"));
            assert_eq!(adhoc.len(), 4, "acc and acc_norm per task: {adhoc:?}");
            assert!(
                adhoc.iter().all(|r| (0.0..=1.0).contains(&r.2)),
                "{adhoc:?}"
            );
            assert_eq!(
                std::fs::read_to_string(job.join("eval.csv")).expect("eval.csv"),
                before
            );
        }
        // Running a finished job again does nothing.
        let rerun = run_ok(Command::new(&trainer).args(["run", "--quiet"]).arg(job));
        assert!(String::from_utf8_lossy(&rerun.stderr).contains("already done"));
    }
}

/// (task, metric, value, stderr) of every eval.csv row.
fn eval_rows(path: &std::path::Path) -> Vec<(String, String, f64, f64)> {
    let text = std::fs::read_to_string(path).expect("eval.csv");
    text.lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let number = |i: usize| fields[i].parse().unwrap_or(f64::NAN);
            (
                fields[4].to_owned(),
                fields[5].to_owned(),
                number(6),
                number(7),
            )
        })
        .collect()
}

#[test]
fn trainer_help_teaches_the_commands() {
    let output = run_ok(Command::new(binary("trainer")).arg("--help"));
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in ["run", "eval", "init", "bench", "Examples:"] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}
