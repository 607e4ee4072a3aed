//! The mixture-vs-dense comparisons as moe_vs_dense.csv and the report's section.

use crate::moe::compare::MoeRow;
use crate::pairs::curves::Axis;
use std::path::Path;

pub const CSV_HEADER: [&str; 25] = [
    "objective",
    "seed",
    "unique_tokens",
    "epochs",
    "moe_id",
    "moe_preset",
    "moe_params",
    "moe_active_params",
    "dense_id",
    "dense_preset",
    "dense_params",
    "matched",
    "task",
    "metric",
    "compared_on",
    "at",
    "moe_value",
    "dense_value",
    "moe_best",
    "dense_best",
    "moe_advantage",
    "low_90",
    "high_90",
    "paired_items",
    "interval",
];

/// moe_vs_dense.csv (written only when there are mixtures), atomically.
pub fn write_csv(rows: &[MoeRow], path: &Path) -> crate::error::Result<()> {
    let csv_error = |error: csv::Error| crate::error::AnalysisError::Write {
        path: path.to_owned(),
        message: error.to_string(),
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_HEADER).map_err(csv_error)?;
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let number = |x: f64| {
        if x.is_nan() {
            String::new()
        } else {
            format!("{}", x + 0.0)
        }
    };
    for row in rows {
        writer
            .write_record([
                row.objective.clone(),
                row.seed.to_string(),
                row.unique_tokens.to_string(),
                number(row.epochs),
                row.moe_id.clone(),
                row.moe_preset.clone(),
                opt(row.moe_params),
                opt(row.moe_active_params),
                row.dense_id.clone(),
                row.dense_preset.clone(),
                opt(row.dense_params),
                row.matched.label().into(),
                row.task.clone(),
                row.metric.clone(),
                row.axis.name().into(),
                number(row.at),
                number(row.moe_value),
                number(row.dense_value),
                number(row.moe_best),
                number(row.dense_best),
                number(row.advantage),
                number(row.low),
                number(row.high),
                row.items.to_string(),
                if row.items > 0 {
                    "paired items".into()
                } else {
                    "stderr, unpaired".into()
                },
            ])
            .map_err(csv_error)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|error| crate::error::AnalysisError::Write {
            path: path.to_owned(),
            message: error.to_string(),
        })?;
    crate::error::write_file(path, &bytes)
}

/// The report's section (nothing without mixtures).
pub fn blocks(rows: &[MoeRow]) -> Vec<crate::report::render::Block> {
    use crate::format;
    use crate::report::render::Block;
    if rows.is_empty() {
        return Vec::new();
    }
    let header = [
        "objective",
        "unique tokens",
        "epochs",
        "mixture (total / active)",
        "dense",
        "matched",
        "metric",
        "at",
        "MoE",
        "dense",
        "MoE lead [90%]",
        "best: MoE",
        "best: dense",
    ];
    let count = |v: Option<u64>| v.map_or_else(|| "-".into(), |v| format::count(v as f64));
    let table = rows
        .iter()
        .map(|row| {
            vec![
                row.objective.clone(),
                format::count(row.unique_tokens as f64),
                format::epochs(row.epochs),
                format!(
                    "{} ({} / {})",
                    row.moe_preset,
                    count(row.moe_params),
                    count(row.moe_active_params)
                ),
                format!("{} ({})", row.dense_preset, count(row.dense_params)),
                row.matched.label().into(),
                format!("{} {}", row.task, row.metric),
                match row.axis {
                    Axis::Flops => format!("{:.3e} FLOPs", row.at),
                    _ => format!("{} tokens", format::count(row.at)),
                },
                format::value(row.moe_value),
                format::value(row.dense_value),
                format!(
                    "{} [{}, {}]",
                    format::value(row.advantage),
                    format::value(row.low),
                    format::value(row.high)
                ),
                format::value(row.moe_best),
                format::value(row.dense_best),
            ]
        })
        .collect();
    vec![
        Block::Heading("Mixture of experts vs dense".into()),
        Block::Paragraph(
            "Each mixture-of-experts run beside the dense runs that differ from it only in the model (same objective, seed, data and schedule). At equal active parameters (within 2%) both spend the same FLOPs per token and are compared at their last shared evaluation (same step and tokens); the interval is the paired one over the evaluation's items (both score the same windows and questions). Other pairs are compared at the largest FLOPs both reached, with the two standard errors combined as if independent. MoE lead is positive where the mixture is better (lower loss, higher accuracy). The best columns are each run's best evaluation up to that point (early-stopped), without intervals. The crossover tables above compare the DLM with AR within each model, mixtures included. Full table: moe_vs_dense.csv.".into(),
        ),
        Block::Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: table,
        },
    ]
}
