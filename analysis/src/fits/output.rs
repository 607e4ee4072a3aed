//! The fits' rows written: fits.csv and the report's "Fits" section.

use super::results::Fits;
use crate::error::{AnalysisError, Result};
use crate::format;
use crate::report::render::Block;
use std::path::Path;

pub const CSV_HEADER: [&str; 13] = [
    "model",
    "objective",
    "quantity",
    "task",
    "metric",
    "unique_tokens",
    "estimate",
    "low_5",
    "high_95",
    "censored",
    "points",
    "method",
    "note",
];

/// fits.csv: non-numbers are empty, infinities read "inf".
pub fn write_csv(fits: &Fits, path: &Path) -> Result<()> {
    let error = |message: String| AnalysisError::Write {
        path: path.to_owned(),
        message,
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(CSV_HEADER)
        .map_err(|e| error(e.to_string()))?;
    let number = |x: f64| {
        if x.is_nan() {
            String::new()
        } else {
            format!("{}", x + 0.0)
        }
    };
    for row in fits.rows() {
        writer
            .write_record([
                row.model.clone(),
                row.objective.clone(),
                row.quantity.clone(),
                row.task.clone(),
                row.metric.clone(),
                row.unique_tokens.map(|u| u.to_string()).unwrap_or_default(),
                number(row.estimate),
                number(row.low),
                number(row.high),
                row.censored.to_string(),
                row.points.to_string(),
                row.method.clone(),
                row.note.clone(),
            ])
            .map_err(|e| error(e.to_string()))?;
    }
    let bytes = writer.into_inner().map_err(|e| error(e.to_string()))?;
    crate::error::write_file(path, &bytes)
}

/// The report's "Fits" section (its figures are added by the caller).
pub fn blocks(fits: &Fits) -> Vec<Block> {
    let mut blocks = vec![
        Block::Heading(
            "Fits: data-constrained scaling laws, critical compute, data potential".into(),
        ),
        Block::Paragraph(format!(
            "R_D* at fixed N (the data-constrained law of Muennighoff et al. 2023): L = E + B / D'^beta with effective data D' = U + U R_D* (1 - exp(-R / R_D*)), R = epochs - 1, fitted per objective and model size; at one model size the law's A / N'^alpha term is folded into E, so E, B, beta and R_D* are fitted. In the paper N' depends on U through N_opt(U), so a per-size R_D* absorbs that dependence: it compares runs of one size with each other, not with the papers' values (15.4 for AR). It needs a crossed design: at least 2 budgets with 2 or more epoch counts each. Points: each done run's final validation loss only (a milestone in the middle of a cosine schedule is not the loss of a run trained for that many epochs). Huber loss (delta {}) on log-loss residuals, L-BFGS from a grid of starting points; 90% intervals from a bootstrap of the observations (each observed loss jittered by max(its stderr, the pure error between seeds of its cell), refitted, at most {} refits; they cover the law the fit converges to on this design, not a generating R_D* the law's form cannot express). Critical compute, read here as a crossing on a learning curve inside the longest run at each budget, at one model size (not Prabhudesai et al. 2025's closed form from fitted scaling laws): per budget, where the DLM's validation loss overtakes AR's on the FLOPs axis (crossover.csv; raw: the losses as trained at equal FLOPs, early-stopped: the DLM passes AR's best checkpoint), and C_crit(U) = a U^b by least squares in logs; not fitted when any budget is censored (the DLM never crosses inside the run, leads from the first evaluation, or fails to cross in over 5% of its bootstrap draws), since dropping those budgets biases the exponent. Data potential (Ni et al. 2025): the unique tokens AR needs to reach the DLM's best value at U, each side's best at a budget taken at equal compute (checkpoints up to the most training tokens both objectives reached there, stated in the note), read off AR's best-vs-budget curve (a monotone cubic in ln U through its budgets, never extrapolated: beyond AR's largest budget the ratio reads \"more than\"), as U_AR / U. Every row with its method: fits.csv.",
            super::law::HUBER_DELTA,
            super::law::MAX_FIT_DRAWS
        )),
    ];
    let rows: Vec<Vec<String>> = fits
        .rows()
        .into_iter()
        .filter(|r| !r.estimate.is_nan() && !matches!(r.quantity.as_str(), "E" | "B"))
        .map(|r| {
            vec![
                r.model.clone(),
                r.objective.clone(),
                r.quantity.clone(),
                if r.task.is_empty() {
                    "val_loss (final)".into()
                } else {
                    format!("{} ({})", r.task, r.metric)
                },
                r.unique_tokens
                    .map(|u| format::count(u as f64))
                    .unwrap_or_else(|| "-".into()),
                r.estimate_text(),
                r.points.to_string(),
                r.note.clone(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        blocks.push(Block::Table {
            header: [
                "model",
                "objective",
                "quantity",
                "metric",
                "budget U",
                "estimate [5%, 95%]",
                "points",
                "note",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        });
    }
    if !fits.missing.is_empty() {
        blocks.push(Block::Paragraph("Not fitted:".into()));
        blocks.push(Block::List(
            fits.missing.iter().map(|m| m.line.clone()).collect(),
        ));
    }
    if !fits.warnings.is_empty() {
        blocks.push(Block::Paragraph(format!(
            "{} done run(s) left out of the R_D* fits (listed under Warnings).",
            fits.warnings.len()
        )));
    }
    blocks
}
