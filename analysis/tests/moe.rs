//! Mixtures of experts in the analysis: moe_vs_dense.csv against hand-worked paired
//! intervals, the runs table's parameter counts, and the expert-load figure.

mod common;

use analysis::synthetic::{SyntheticJob, write_job};
use jobspec::Objective;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const EPOCHS: [f64; 3] = [1.0, 4.0, 16.0];

/// Per-item validation losses at each epoch: `base` minus `drop` per milestone.
fn items(base: &[f64], drop: f64) -> Vec<Vec<f64>> {
    (0..EPOCHS.len())
        .map(|k| base.iter().map(|v| v - drop * k as f64).collect())
        .collect()
}

const DENSE: [f64; 4] = [3.0, 2.8, 3.2, 3.0];
/// The mixture's items at the last milestone are the dense ones minus these.
const LEAD: [f64; 4] = [0.1, 0.1, 0.2, 0.05];

/// tiny and moe-tiny for AR and the DLM, plus an AR `small` (a different active size),
/// 20k unique tokens, seed 0; the mixtures log expert load.
fn tree(root: &Path) -> PathBuf {
    let results = root.join("moe");
    for objective in [Objective::Ar, Objective::Dlm] {
        let dense = SyntheticJob::new(objective, 0, "tiny", 20_000).item_metric(
            "val_loss",
            "loss",
            &EPOCHS,
            &items(&DENSE, 0.2),
        );
        let mut moe_items = items(&DENSE, 0.2);
        for (value, lead) in moe_items[2].iter_mut().zip(LEAD) {
            *value -= lead;
        }
        let mut moe = SyntheticJob::new(objective, 0, "moe-tiny", 20_000)
            .item_metric("val_loss", "loss", &EPOCHS, &moe_items);
        for (k, &epoch) in EPOCHS.iter().enumerate() {
            for block in 0..4 {
                for expert in 0..8u32 {
                    // Block 3 drifts towards expert 0 (collapse), the others stay even.
                    let skew = if block == 3 { 0.05 * k as f64 } else { 0.0 };
                    let share = if expert == 0 {
                        0.125 + 7.0 * skew
                    } else {
                        0.125 - skew
                    };
                    moe.expert_load.push((epoch, block, expert, share));
                }
            }
        }
        for job in [dense, moe] {
            write_job(&results, &job).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let small = SyntheticJob::new(Objective::Ar, 0, "small", 20_000).item_metric(
        "val_loss",
        "loss",
        &EPOCHS,
        &items(&DENSE, 0.25),
    );
    write_job(&results, &small).unwrap_or_else(|e| panic!("{e}"));
    results
}

fn moe_csv(results: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(results.join("analysis/moe_vs_dense.csv"))
        .unwrap_or_else(|e| panic!("{e}"));
    let header = reader.headers().unwrap_or_else(|e| panic!("{e}")).clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap_or_else(|e| panic!("{e}"));
            header
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn mixtures_are_compared_with_dense_runs_at_equal_active_size_with_paired_intervals() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let results = tree(root.path());
    let summary =
        analysis::analyze(&results, &common::quick_options()).unwrap_or_else(|e| panic!("{e}"));
    let rows = moe_csv(&results);
    // AR: vs tiny (equal active) and vs small (equal FLOPs); DLM: vs tiny.
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let number = |row: &HashMap<String, String>, field: &str| -> f64 {
        row[field]
            .parse()
            .unwrap_or_else(|e| panic!("{field}: {e}"))
    };
    let n = LEAD.len() as f64;
    let mean = LEAD.iter().sum::<f64>() / n;
    let sd = (LEAD.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let half = 1.644_853_626_951_472_2 * sd / n.sqrt();
    for row in &rows {
        assert_eq!(row["moe_preset"], "moe-tiny");
        match row["dense_preset"].as_str() {
            "tiny" => {
                assert_eq!(row["matched"], "equal active params", "{row:?}");
                assert_eq!(row["paired_items"], "4");
                let lead = number(row, "moe_advantage");
                assert!((lead - mean).abs() < 1e-9, "{lead} vs {mean}");
                assert!(
                    (number(row, "low_90") - (mean - half)).abs() < 1e-9,
                    "{row:?}"
                );
                assert!(
                    (number(row, "high_90") - (mean + half)).abs() < 1e-9,
                    "{row:?}"
                );
                let active: f64 = number(row, "moe_active_params");
                let total: f64 = number(row, "moe_params");
                assert!(total > 2.5 * active, "{row:?}");
            }
            "small" => {
                assert_eq!(row["matched"], "equal FLOPs", "{row:?}");
                assert_eq!(row["objective"], "ar");
                assert_eq!(row["interval"], "stderr, unpaired");
            }
            other => panic!("unexpected dense partner {other}"),
        }
    }
    let report = std::fs::read_to_string(results.join("analysis/report.md"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report.contains("## Mixture of experts vs dense"),
        "{report}"
    );
    assert!(report.contains("active)"), "runs table shows active params");
    // runs.csv carries total and active parameters and the layout.
    let runs = std::fs::read_to_string(results.join("analysis/runs.csv"))
        .unwrap_or_else(|e| panic!("{e}"));
    let header = runs.lines().next().unwrap_or_default();
    for column in ["active_params", "experts", "top_k"] {
        assert!(header.split(',').any(|h| h == column), "{header}");
    }
    // The expert-load table; both figures, with something drawn on them.
    assert!(results.join("analysis/expert_load.parquet").exists());
    for name in ["expert_load", "moe_vs_dense"] {
        let figure = summary
            .figures
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no {name} figure: {:?}", summary.figures));
        let (_, _, pixels) = common::png_pixels(&figure.png);
        assert!(
            common::luminance_spread(&pixels) > 10.0,
            "{name} looks blank"
        );
    }
}

#[test]
fn a_dense_sweep_has_no_moe_section_or_figure() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let results = common::study_tree(root.path());
    let summary =
        analysis::analyze(&results, &common::quick_options()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!results.join("analysis/moe_vs_dense.csv").exists());
    assert!(!results.join("analysis/expert_load.csv").exists());
    assert!(
        summary
            .figures
            .iter()
            .all(|f| f.name != "expert_load" && f.name != "moe_vs_dense")
    );
    let report = std::fs::read_to_string(results.join("analysis/report.md"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!report.contains("Mixture of experts"));
}
