//! What the report says: the summary, the crossover table per (group, baseline,
//! metric) with tokens, epochs and FLOPs side by side, the figures and the run table.

use crate::crossover::Outcome;
use crate::crossovers::CrossoverRow;
use crate::figures::Rendered;
use crate::format;
use crate::ingest::{Run, Warning};
use crate::pairs::{Axis, headline_metrics};
use crate::report::Block;
use std::collections::BTreeMap;
use std::path::Path;

/// Runs counted by state, in a stable order.
pub fn states(runs: &[Run]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for run in runs {
        *counts.entry(run.state.clone()).or_insert(0) += 1;
    }
    counts
}

/// The crossover rows a reader looks at first: headline metrics only, one row per
/// (group, baseline, metric) with the three axes as columns.
pub fn crossover_table(rows: &[CrossoverRow]) -> Block {
    let found =
        crate::pairs::sorted_metrics(rows.iter().map(|r| (r.task.clone(), r.metric.clone())));
    let headline = headline_metrics(&found);
    let header = [
        "group",
        "DLM vs",
        "task (metric)",
        "tokens",
        "epochs",
        "FLOPs",
        "P(crossed)",
        "best DLM vs best baseline",
    ];
    let mut table_rows = Vec::new();
    for row in rows.iter().filter(|r| {
        r.axis == Axis::Tokens && headline.contains(&(r.task.clone(), r.metric.clone()))
    }) {
        let on = |axis: Axis| {
            rows.iter()
                .find(|o| {
                    o.axis == axis
                        && o.group == row.group
                        && o.baseline == row.baseline
                        && o.task == row.task
                        && o.metric == row.metric
                })
                .map(cell)
                .unwrap_or_default()
        };
        let best = match (row.best.dlm, row.best.baseline) {
            (Some(d), Some(b)) => format!("{} vs {}", format::value(d.y), format::value(b.y)),
            _ => "-".into(),
        };
        table_rows.push(vec![
            format!(
                "{}{}",
                row.group_label,
                if row.complete { "" } else { " (partial)" }
            ),
            row.baseline.clone(),
            format!("{} ({})", row.task, row.metric),
            on(Axis::Tokens),
            on(Axis::Epochs),
            on(Axis::Flops),
            format::value(row.estimate.share_crossed),
            best,
        ]);
    }
    Block::Table {
        header: header.iter().map(|h| h.to_string()).collect(),
        rows: table_rows,
    }
}

/// "1.2M [0.9M, 1.5M]", "not reached (gap -0.0300)", "ahead from start".
fn cell(row: &CrossoverRow) -> String {
    match row.outcome() {
        Outcome::Crossed { .. } => {
            let interval = row.interval();
            if interval == "-" {
                row.axis
                    .format(row.outcome().censored_x().unwrap_or(f64::NAN))
            } else {
                interval
            }
        }
        Outcome::NotReached { gap } => format!("not reached (gap {gap:+.4})"),
        Outcome::AheadFromStart { .. } => "ahead from start".into(),
        Outcome::NoOverlap => "no overlap".into(),
    }
}

/// One row per run; partial runs show their state and progress.
pub fn run_table(runs: &[Run]) -> Block {
    let header = [
        "id",
        "objective",
        "state",
        "seed",
        "unique tokens",
        "epochs",
        "model",
        "params",
        "step",
        "last val loss",
        "evaluations",
    ];
    let rows = runs
        .iter()
        .map(|run| {
            let last_loss = run
                .eval
                .iter()
                .filter(|e| e.task == "val_loss" && e.metric == "loss")
                .max_by_key(|e| e.step)
                .map(|e| format::value(e.value))
                .unwrap_or_else(|| "-".into());
            vec![
                run.id.clone(),
                run.objective.clone(),
                run.state.clone(),
                run.config.seed.to_string(),
                format::count(run.config.data.unique_tokens.get() as f64),
                format::epochs(run.config.train.epochs),
                run.config
                    .model
                    .preset
                    .clone()
                    .unwrap_or_else(|| "custom".into()),
                run.params
                    .map(|p| format::count(p as f64))
                    .unwrap_or_else(|| "-".into()),
                format!("{}/{}", run.step, run.total_steps),
                last_loss,
                run.eval.len().to_string(),
            ]
        })
        .collect();
    Block::Table {
        header: header.iter().map(|h| h.to_string()).collect(),
        rows,
    }
}

/// Every block of the report, in reading order.
pub fn blocks(
    runs: &[Run],
    rows: &[CrossoverRow],
    figures: &[Rendered],
    warnings: &[Warning],
    out: &Path,
    draws: usize,
    smooth: usize,
) -> Vec<Block> {
    let counts: Vec<String> = states(runs)
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    let mut blocks = vec![
        Block::Paragraph(format!("{} runs read ({}).", runs.len(), counts.join(", "))),
        Block::Heading("Crossovers".into()),
        Block::Paragraph(format!(
            "The crossover is the first x after which the DLM stays at least as good as the baseline until the last shared evaluation (curves interpolated linearly on the union of their evaluation points). Intervals: median and 90% interval over {draws} bootstrap draws (seeds resampled when both sides have several, otherwise each point redrawn from its standard error); smoothing window {smooth} evaluation(s). Full table: crossover.csv, crossover.md."
        )),
        crossover_table(rows),
        Block::Heading("Figures".into()),
    ];
    for figure in figures {
        blocks.push(match figure {
            Rendered::Written(file) => Block::Figure {
                title: file.name.replace('_', " "),
                caption: file.caption.clone(),
                png: file.png.clone(),
                relative: file
                    .png
                    .strip_prefix(out)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| file.png.to_string_lossy().into_owned()),
            },
            Rendered::Skipped { name, reason } => {
                Block::Paragraph(format!("Figure {name} skipped: {reason}."))
            }
        });
    }
    blocks.push(Block::Heading("Runs".into()));
    blocks.push(run_table(runs));
    if !warnings.is_empty() {
        blocks.push(Block::Heading("Warnings".into()));
        blocks.push(Block::List(
            warnings.iter().map(ToString::to_string).collect(),
        ));
    }
    blocks
}
