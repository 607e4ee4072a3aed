//! The fits stage of `analyze` (issue 16) on synthetic sweeps: one laid out for the
//! fits with known answers (tests/support/fits_tree.rs), and degenerate ones that must
//! say what they lack without panicking.

mod common;
#[path = "support/fits_tree.rs"]
mod fits_tree;

use analysis::synthetic::{SyntheticJob, log2_epochs, write_job};
use jobspec::Objective;
use jobspec::status::State;
use std::path::Path;

/// fits.csv as (header-keyed) rows.
fn fits_csv(results: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader =
        csv::Reader::from_path(results.join("analysis/fits.csv")).unwrap_or_else(|e| panic!("{e}"));
    let header = reader.headers().unwrap_or_else(|e| panic!("{e}")).clone();
    reader
        .records()
        .map(|r| {
            let record = r.unwrap_or_else(|e| panic!("{e}"));
            header
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn number(row: &std::collections::HashMap<String, String>, column: &str) -> f64 {
    row.get(column)
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The one row with these objective and quantity (and budget, when given).
fn row<'a>(
    rows: &'a [std::collections::HashMap<String, String>],
    objective: &str,
    quantity: &str,
    task: &str,
    budget: Option<u64>,
) -> &'a std::collections::HashMap<String, String> {
    rows.iter()
        .find(|r| {
            r["objective"] == objective
                && r["quantity"] == quantity
                && (task.is_empty() || r["task"] == task)
                && budget.is_none_or(|b| r["unique_tokens"] == b.to_string())
        })
        .unwrap_or_else(|| panic!("no {objective} {quantity} {task} {budget:?} in {rows:#?}"))
}

#[test]
fn a_sweep_laid_out_for_the_fits_recovers_the_known_answers() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let results = fits_tree::fits_tree(root.path());
    let summary =
        analysis::analyze(&results, &common::quick_options()).unwrap_or_else(|e| panic!("{e}"));
    let rows = fits_csv(&results);
    // R_D* and beta per objective, each interval covering the truth.
    for (objective, truth) in [("ar", fits_tree::AR), ("dlm", fits_tree::DLM)] {
        let rd = row(&rows, objective, "R_D* at fixed N", "", None);
        let estimate = number(rd, "estimate");
        assert!(
            (estimate / truth.rd - 1.0).abs() < 0.1,
            "{objective}: R_D* {estimate} vs {}",
            truth.rd
        );
        assert!(
            number(rd, "low_5") <= truth.rd && truth.rd <= number(rd, "high_95"),
            "{objective}: {rd:?}"
        );
        assert_eq!(rd["points"], "28", "{rd:?}");
        assert!(rd["method"].contains("Huber"), "{rd:?}");
        let beta = number(row(&rows, objective, "beta", "", None), "estimate");
        assert!((beta - truth.beta).abs() < 0.1, "{objective}: beta {beta}");
    }
    // The crossing epoch does not depend on the budget: C_crit is proportional to U.
    let b = row(&rows, "dlm vs ar", "C_crit exponent b (raw)", "", None);
    assert!((number(b, "estimate") - 1.0).abs() < 0.1, "{b:?}");
    assert_eq!(b["points"], "4", "{b:?}");
    // The data potential at the smallest budget, on validation loss and on accuracy.
    let truth = fits_tree::data_potential();
    for task in ["val_loss", "cloze"] {
        let potential = row(
            &rows,
            "dlm vs ar",
            "data potential U_AR/U",
            task,
            Some(fits_tree::BUDGETS[0]),
        );
        let ratio = number(potential, "estimate");
        assert!(
            (ratio / truth - 1.0).abs() < 0.1,
            "{task}: {ratio} vs {truth}"
        );
        assert_eq!(potential["censored"], "", "{potential:?}");
    }
    // Beyond AR's largest budget the ratio is censored, not extrapolated.
    let censored = row(
        &rows,
        "dlm vs ar",
        "data potential U_AR/U",
        "val_loss",
        Some(fits_tree::BUDGETS[1]),
    );
    assert_eq!(censored["censored"], "above", "{censored:?}");
    assert!(
        summary
            .fits
            .iter()
            .any(|l| l.starts_with("R_D* at fixed N for dlm")),
        "{summary}"
    );
    let text = summary.to_string();
    assert!(text.contains("fit: C_crit exponent b (raw)"), "{text}");
    // The three figures, not blank: DLM red and AR blue on them.
    for name in [
        "fits_loss_vs_epochs",
        "fits_critical_compute",
        "fits_data_potential",
    ] {
        let figure = summary
            .figures
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no {name}: {summary}"));
        let (width, height, pixels) = common::png_pixels(&figure.png);
        assert_eq!((width, height), (1600, 1000));
        assert!(
            common::luminance_spread(&pixels) > 5.0,
            "{} looks blank",
            figure.png.display()
        );
        // DLM red on every figure (C_crit is a DLM-vs-AR quantity drawn in red), AR
        // blue on the other two.
        let (red, blue) = common::red_and_blue(&pixels);
        assert!(red > 500, "{name}: {red} red pixels");
        if name != "fits_critical_compute" {
            assert!(blue > 500, "{name}: {blue} blue pixels");
        }
    }
    let report = std::fs::read_to_string(results.join("analysis/report.md")).unwrap_or_default();
    for expected in [
        "## Fits",
        "![fits loss vs epochs](figures/fits_loss_vs_epochs.png)",
        "data potential U_AR/U",
    ] {
        assert!(report.contains(expected), "no `{expected}` in\n{report}");
    }
    assert!(!report.contains("Not fitted:"), "{report}");
}

/// Jobs of both objectives at each (budget, epochs), evaluated on validation loss at
/// log2 milestones, with `edit` applied to each job before it is written.
fn sweep(
    root: &Path,
    name: &str,
    budgets: &[u64],
    epochs: &[f64],
    edit: impl Fn(SyntheticJob) -> SyntheticJob,
) -> std::path::PathBuf {
    let results = root.join(name);
    for &budget in budgets {
        for &count in epochs {
            for objective in [Objective::Ar, Objective::Dlm] {
                let milestones = log2_epochs(count);
                let loss: Vec<f64> = milestones
                    .iter()
                    .map(|&e| 2.0 + 3.0 / (1.0 + e * budget as f64 / 1e4).powf(0.3))
                    .collect();
                let mut job = SyntheticJob::new(objective, 0, "nano", budget).metric(
                    "val_loss",
                    "loss",
                    &milestones,
                    &loss,
                    0.01,
                );
                job.epochs = count;
                write_job(&results, &edit(job)).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
    results
}

/// Analyse and return (fits.csv notes, summary text, report).
fn analyse(results: &Path) -> (Vec<String>, String, String) {
    let summary =
        analysis::analyze(results, &common::quick_options()).unwrap_or_else(|e| panic!("{e}"));
    let notes = fits_csv(results)
        .into_iter()
        .filter(|r| r["estimate"].is_empty())
        .map(|r| r["note"].clone())
        .collect();
    let report = std::fs::read_to_string(results.join("analysis/report.md")).unwrap_or_default();
    (notes, summary.to_string(), report)
}

#[test]
fn degenerate_sweeps_say_what_they_lack() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let keep = |job: SyntheticJob| job;
    let one_budget = sweep(
        root.path(),
        "one-budget",
        &[20_000],
        &[1.0, 4.0, 16.0],
        keep,
    );
    let (notes, summary, report) = analyse(&one_budget);
    assert!(
        !summary.contains("fits_"),
        "no fit, no fit figure: {summary}"
    );
    let line = "R_D* at fixed N for dlm (model nano) needs at least 3 budgets x 3 epoch counts of done runs evaluated at the end of their schedule; this sweep has 1 budget(s) x 3 epoch count(s) (3 run(s))";
    assert!(notes.iter().any(|n| n == line), "{notes:#?}");
    assert!(
        summary.contains(&format!("not fitted: {line}")),
        "{summary}"
    );
    assert!(report.contains(line), "{report}");
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("C_crit(U) for model nano needs")),
        "{notes:#?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("Data potential for model nano needs")
                && n.ends_with("done AR runs at 1 budget(s) and done DLM runs at 1")),
        "{notes:#?}"
    );

    let one_epoch_count = sweep(
        root.path(),
        "one-epoch-count",
        &[20_000, 40_000, 80_000],
        &[4.0],
        keep,
    );
    let (notes, _, _) = analyse(&one_epoch_count);
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("R_D* at fixed N for ar (model nano)")
                && n.ends_with("3 budget(s) x 1 epoch count(s) (3 run(s))")),
        "{notes:#?}"
    );

    let budgets = [20_000, 40_000, 80_000];
    let epochs = [1.0, 4.0, 16.0];
    let failed = sweep(root.path(), "all-failed", &budgets, &epochs, |job| {
        job.state(State::Failed, Some("CUDA out of memory"))
    });
    let (notes, _, _) = analyse(&failed);
    assert!(
        notes
            .iter()
            .any(|n| n.ends_with("this sweep has 0 budget(s) x 0 epoch count(s) (0 run(s))")),
        "{notes:#?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("this sweep has no done runs")),
        "{notes:#?}"
    );

    // Final losses that are not numbers: left out, each with a warning.
    let nan = sweep(root.path(), "nan", &budgets, &epochs, |mut job| {
        if let Some(last) = job.evals.last_mut() {
            last.value = f64::NAN;
        }
        job
    });
    let (notes, summary, _) = analyse(&nan);
    assert!(
        summary.contains("final validation loss is NaN: left out of the scaling-law fits"),
        "{summary}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("R_D* at fixed N for ar") && n.contains("(0 run(s))")),
        "{notes:#?}"
    );
}

/// A done run whose last evaluation is before its planned end is not a point of the
/// law (a milestone mid-schedule is not a run trained for that long): it is left out
/// with a warning.
#[test]
fn a_run_without_an_evaluation_at_its_end_is_left_out_with_a_warning() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let results = sweep(
        root.path(),
        "cut",
        &[20_000, 40_000, 80_000],
        &[1.0, 4.0, 16.0],
        |mut job| {
            if job.epochs == 16.0 && job.objective == Objective::Dlm {
                job.evals.retain(|e| e.epoch < 16.0);
            }
            job
        },
    );
    let summary =
        analysis::analyze(&results, &common::quick_options()).unwrap_or_else(|e| panic!("{e}"));
    let warnings: Vec<String> = summary
        .warnings
        .iter()
        .map(ToString::to_string)
        .filter(|w| w.contains("its last validation loss is at epoch 8 of 16 planned"))
        .collect();
    assert_eq!(warnings.len(), 3, "{summary}");
    let rows = fits_csv(&results);
    let dlm = row(&rows, "dlm", "R_D* at fixed N", "", None);
    assert_eq!(dlm["points"], "6", "{dlm:?}");
    let ar = row(&rows, "ar", "R_D* at fixed N", "", None);
    assert_eq!(ar["points"], "9", "{ar:?}");
}
