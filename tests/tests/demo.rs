//! A reduced demo (seconds, not minutes) through plan, run and analyze on the real
//! corpus: the report and every figure exist, and the crossover table has a row per
//! pair (DLM vs AR and DLM vs AR-masked, per budget, task, metric and axis).

use e2e::{binary, run_ok};
use std::process::Command;

const SWEEP: &str = "
name: demo-mini
base:
  seed: 0
  model: { preset: nano }
  data: { corpus: demo, tokenizer: bytes, seq_len: 64, unique_tokens: 6k, val_tokens: 30k }
  train: { epochs: 4, batch_size: 16, lr: 3e-3, log_every: 2 }
  eval: { at: log2, tasks: [val_loss, cloze], val_loss_tokens: 4k, dlm_draws: 2, cloze_items: 40, score_draws: 2 }
grid:
  objective: [ar, dlm, { ar_masked: 0.3 }]
zip:
  data.unique_tokens: [6k, 12k]
  train.epochs: [4, 2]
";

#[test]
fn reduced_demo_goes_from_plan_to_report() {
    let harness = binary("harness");
    binary("trainer");
    let folder = tempfile::tempdir().expect("temp dir");
    let sweep = folder.path().join("demo-mini.yaml");
    std::fs::write(&sweep, SWEEP).expect("sweep");
    let results = folder.path().join("results");
    let plan = run_ok(
        Command::new(&harness)
            .arg("plan")
            .arg(&sweep)
            .arg("--results")
            .arg(&results),
    );
    assert!(String::from_utf8_lossy(&plan.stdout).contains("6 jobs"));
    run_ok(
        Command::new(&harness)
            .args(["run", "--slots", "2"])
            .arg(&sweep)
            .arg("--results")
            .arg(&results),
    );
    let analyze = run_ok(
        Command::new(&harness)
            .args(["analyze", "--bootstrap", "50"])
            .arg(&sweep)
            .arg("--results")
            .arg(&results),
    );
    let summary = String::from_utf8_lossy(&analyze.stdout);
    assert!(
        summary.contains("6 runs") || summary.contains("read 6"),
        "{summary}"
    );

    let analysis = results.join("analysis");
    for file in [
        "report.md",
        "report.html",
        "crossover.csv",
        "runs.csv",
        "eval.parquet",
    ] {
        assert!(analysis.join(file).is_file(), "{file} missing");
    }
    for figure in [
        "study_nano",
        "loss_vs_accuracy",
        "crossover_map",
        "pareto",
        "ablation",
    ] {
        for extension in ["png", "svg"] {
            let path = analysis
                .join("figures")
                .join(format!("{figure}.{extension}"));
            assert!(
                path.metadata().map(|m| m.len() > 1000).unwrap_or(false),
                "{} missing",
                path.display()
            );
        }
    }
    // A row per (budget, baseline, task/metric, axis, kind): 2 budgets x 2 baselines x
    // (val_loss + cloze acc + cloze acc_norm) x 3 axes x (early_stopped, raw).
    let table = std::fs::read_to_string(analysis.join("crossover.csv")).expect("crossover.csv");
    let header: Vec<&str> = table.lines().next().expect("header").split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (baseline, task, metric, axis, kind) = (
        column("baseline"),
        column("task"),
        column("metric"),
        column("axis"),
        column("kind"),
    );
    let mut pairs = std::collections::BTreeSet::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        pairs.insert(format!(
            "{line_group}|{}|{}|{}|{}|{}",
            fields[baseline],
            fields[task],
            fields[metric],
            fields[axis],
            fields[kind],
            line_group = fields[0]
        ));
    }
    assert_eq!(table.lines().count() - 1, 2 * 2 * 3 * 3 * 2, "{table}");
    assert_eq!(pairs.len(), 2 * 2 * 3 * 3 * 2, "one row per pair and kind");
    for needed in ["ar", "ar_masked(0.3)"] {
        assert!(
            table
                .lines()
                .skip(1)
                .any(|l| l.split(',').nth(baseline) == Some(needed)),
            "no row against {needed}"
        );
    }
}
