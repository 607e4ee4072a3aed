//! `analyze` on a synthetic results folder with known answers (tests/common/mod.rs).

mod common;

use analysis::crossover::Outcome;
use analysis::pairs::Axis;
use std::path::Path;

fn crossover_csv(results: &Path) -> Vec<csv::StringRecord> {
    let mut reader = csv::Reader::from_path(results.join("analysis/crossover.csv"))
        .unwrap_or_else(|e| panic!("{e}"));
    reader
        .records()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

#[test]
fn reads_every_job_and_reports_bad_files_by_path() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let results = common::study_tree(root.path());
    let summary =
        analysis::analyze(&results, &common::quick_options()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.runs, 10, "{summary}");
    let states: Vec<(String, usize)> = summary.runs_by_state.clone().into_iter().collect();
    assert_eq!(
        states,
        vec![
            ("done".into(), 8),
            ("failed".into(), 1),
            ("running".into(), 1)
        ]
    );
    assert_eq!(summary.groups, 3);
    let warnings: Vec<String> = summary.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("000000broken/job.yaml") && w.contains("job skipped")),
        "{warnings:#?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("train.csv") && w.contains("no readable rows")),
        "{warnings:#?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("eval.csv") && w.contains("bad row at line")),
        "{warnings:#?}"
    );
    let text = summary.to_string();
    assert!(
        text.contains("read 10 runs") && text.contains("report: "),
        "{text}"
    );
}

#[test]
fn writes_tidy_tables_as_parquet_and_csv() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let results = common::study_tree(root.path());
    analysis::analyze(
        &results,
        &analysis::AnalyzeOptions {
            figures: false,
            ..common::quick_options()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = results.join("analysis");
    for name in ["runs", "train", "eval", "last"] {
        for extension in ["parquet", "csv"] {
            let path = out.join(format!("{name}.{extension}"));
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            assert!(size > 100, "{} is missing or empty", path.display());
        }
    }
    let runs = std::fs::read_to_string(out.join("runs.csv")).unwrap_or_default();
    assert_eq!(runs.lines().count(), 11, "{runs}");
    assert!(
        runs.lines().any(|l| l.contains("ar_dropout(0.1)")
            && l.contains("failed")
            && l.contains("CUDA out of memory")),
        "{runs}"
    );
    assert!(runs.lines().any(|l| l.contains(",dlm,running,")), "{runs}");
    // 2 evaluations for the failed job, 3 for the running one, 5 for the rest, 3
    // metrics each, plus the DLM diagnostic rows of group A (2 seeds x 5).
    let eval = std::fs::read_to_string(out.join("eval.csv")).unwrap_or_default();
    assert_eq!(eval.lines().count() - 1, (8 * 5 + 2 + 3) * 3 + 10);
    let last = std::fs::read_to_string(out.join("last.csv")).unwrap_or_default();
    assert!(
        last.lines()
            .next()
            .unwrap_or_default()
            .contains("last_value"),
        "{last}"
    );
}

/// The known answers of tests/common/mod.rs.
#[test]
fn crossovers_match_the_hand_worked_answers() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let results = common::study_tree(root.path());
    let (runs, _) = analysis::ingest::read_results(&results).unwrap_or_else(|e| panic!("{e}"));
    let groups = analysis::pairs::group_runs(&runs);
    let rows = analysis::crossovers::compute(
        &runs,
        &groups,
        analysis::uncertainty::Settings {
            draws: 100,
            ..Default::default()
        },
    );
    let find = |group: &str, baseline: &str, metric: &str, axis: Axis| {
        rows.iter()
            .find(|r| {
                r.group_label == group
                    && r.baseline == baseline
                    && r.task != "val_loss"
                    && r.metric == metric
                    && r.axis == axis
                    || r.group_label == group
                        && r.baseline == baseline
                        && r.task == "val_loss"
                        && metric == "loss"
                        && r.axis == axis
            })
            .map(|r| r.outcome())
            .unwrap_or_else(|| panic!("no row for {group} {baseline} {metric}"))
    };
    let a = "unique_tokens=20000 preset=nano";
    let crossed = |outcome: Outcome, expected: f64| match outcome {
        Outcome::Crossed { x } => assert!(
            (x - expected).abs() < 1e-6,
            "crossed at {x}, expected {expected}"
        ),
        other => panic!("expected a crossing at {expected}, got {other:?}"),
    };
    crossed(find(a, "ar", "acc_norm", Axis::Epochs), 6.0);
    crossed(find(a, "ar", "acc_norm", Axis::Tokens), 120_000.0);
    crossed(find(a, "ar", "loss", Axis::Epochs), 7.2);
    crossed(
        find(a, "ar_masked(0.3)", "acc_norm", Axis::Epochs),
        8.0 + 8.0 / 3.0,
    );
    assert!(
        matches!(find(a, "ar", "acc", Axis::Epochs), Outcome::AheadFromStart { x } if x == 1.0)
    );
    assert!(
        matches!(find(a, "ar_dropout(0.1)", "acc_norm", Axis::Epochs), Outcome::NotReached { gap } if (gap + 0.04).abs() < 1e-9)
    );
    let b = "unique_tokens=40000 preset=nano";
    assert!(matches!(
        find(b, "ar", "acc_norm", Axis::Epochs),
        Outcome::AheadFromStart { .. }
    ));
    assert!(
        matches!(find(b, "ar", "loss", Axis::Epochs), Outcome::NotReached { gap } if (gap - 0.2).abs() < 1e-9)
    );
    let c = "unique_tokens=20000 preset=tiny";
    assert!(
        matches!(find(c, "ar", "acc_norm", Axis::Flops), Outcome::NotReached { gap } if (gap + 0.05).abs() < 1e-9)
    );
    // The diagnostic metric is never compared.
    assert!(rows.iter().all(|r| r.metric != "score_mc_stderr"));
}

/// Snapshot of crossover.csv's answer columns on the epochs axis.
#[test]
fn crossover_table_snapshot() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let results = common::study_tree(root.path());
    analysis::analyze(
        &results,
        &analysis::AnalyzeOptions {
            figures: false,
            ..common::quick_options()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let round = |field: &str| {
        field
            .parse::<f64>()
            .map(|v| format!("{v:.4}"))
            .unwrap_or_default()
    };
    let lines: Vec<String> = crossover_csv(&results)
        .iter()
        .filter(|r| &r[8] == "epochs")
        .map(|r| {
            format!(
                "{} | {} | {}/{} | {} | {} | {} | {} | complete={}",
                &r[1],
                &r[5],
                &r[6],
                &r[7],
                &r[10],
                round(&r[11]),
                round(&r[12]),
                &r[17],
                &r[20]
            )
        })
        .collect();
    let expected = "\
unique_tokens=20000 preset=nano | ar | val_loss/loss | crossed | 7.2000 |  | seed_bootstrap | complete=true
unique_tokens=20000 preset=nano | ar | hellaswag/acc | ahead_from_start | 1.0000 |  | seed_bootstrap | complete=true
unique_tokens=20000 preset=nano | ar | hellaswag/acc_norm | crossed | 6.0000 |  | seed_bootstrap | complete=true
unique_tokens=20000 preset=nano | ar_dropout(0.1) | val_loss/loss | not_reached |  | 0.3500 | stderr_bootstrap | complete=false
unique_tokens=20000 preset=nano | ar_dropout(0.1) | hellaswag/acc | ahead_from_start | 1.0000 |  | stderr_bootstrap | complete=false
unique_tokens=20000 preset=nano | ar_dropout(0.1) | hellaswag/acc_norm | not_reached |  | -0.0400 | stderr_bootstrap | complete=false
unique_tokens=20000 preset=nano | ar_masked(0.3) | val_loss/loss | crossed | 8.0000 |  | stderr_bootstrap | complete=true
unique_tokens=20000 preset=nano | ar_masked(0.3) | hellaswag/acc | ahead_from_start | 1.0000 |  | stderr_bootstrap | complete=true
unique_tokens=20000 preset=nano | ar_masked(0.3) | hellaswag/acc_norm | crossed | 10.6667 |  | stderr_bootstrap | complete=true
unique_tokens=40000 preset=nano | ar | val_loss/loss | not_reached |  | 0.2000 | stderr_bootstrap | complete=false
unique_tokens=40000 preset=nano | ar | hellaswag/acc | ahead_from_start | 1.0000 |  | stderr_bootstrap | complete=false
unique_tokens=40000 preset=nano | ar | hellaswag/acc_norm | ahead_from_start | 1.0000 |  | stderr_bootstrap | complete=false
unique_tokens=20000 preset=tiny | ar | val_loss/loss | not_reached |  | 0.1500 | stderr_bootstrap | complete=true
unique_tokens=20000 preset=tiny | ar | hellaswag/acc | not_reached |  | -0.0500 | stderr_bootstrap | complete=true
unique_tokens=20000 preset=tiny | ar | hellaswag/acc_norm | not_reached |  | -0.0500 | stderr_bootstrap | complete=true";
    assert_eq!(lines.join("\n"), expected);
}

#[test]
fn the_binary_prints_the_summary() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let results = common::tree_without_controls(root.path());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_analyze"))
        .arg(&results)
        .args(["--smooth", "2", "--bootstrap", "50", "--no-figures"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("read 2 runs") && stdout.contains("DLM vs AR, all: hellaswag acc_norm"),
        "{stdout}"
    );
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_analyze"))
        .arg(root.path().join("nowhere"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no jobs/ folder"));
}
