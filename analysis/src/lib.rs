//! Analysis of a results folder (design.md, "Analysis"): tidy tables (Polars), where
//! the DLM overtakes AR and how sure we are (crossover detection with bootstrap
//! intervals), the study's figures (plotters) and a report.
//!
//! `analyze` is the entry point; the crossover logic (`curve`, `crossover/`) works on
//! plain vectors and knows nothing of Polars or files. One folder per stage, in the
//! order `analyze` runs them:
//!
//! 1. `ingest`    - the run folders read into records (one stderr for both objectives)
//! 2. `pairs`     - who is compared with whom: groups, curves, per-seed replicates
//! 3. `crossover` - where the DLM overtakes AR: detection, bootstrap intervals, the table
//!    `moe`       - mixtures of experts against dense at equal active size
//! 4. `fits`      - scaling-law fits: R_D*, critical compute, data potential
//! 5. `figures`   - the study's figures on one frame
//! 6. `report`    - tidy tables, report.md/html, the printed summary
//!
//! Under all: `curve`, `quantile`, `rng`, `format`, `error`, `progress`; `synthetic` for
//! tests. No two files import each other.

pub mod crossover;
pub mod curve;
mod error;
pub mod figures;
pub mod fits;
pub mod format;
pub mod ingest;
pub mod moe;
pub mod pairs;
pub mod progress;
pub mod quantile;
pub mod report;
mod rng;
pub mod synthetic;

pub use error::{AnalysisError, Result};
pub use report::summary::Summary;

use std::path::Path;

/// How to analyse.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AnalyzeOptions {
    /// Moving-average window over evaluation points (1 = none; an even window is
    /// widened to the next odd one so the average stays centred).
    pub smooth: usize,
    /// Bootstrap draws per crossover (0 = no intervals).
    pub bootstrap: usize,
    /// Seed of every bootstrap draw, so a report is reproducible.
    pub seed: u64,
    /// Draw the figures (the slowest part; tables and crossovers need none).
    pub figures: bool,
    /// Show a progress bar on a terminal when a stage runs longer than 1.5 s.
    pub progress: bool,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        Self {
            smooth: 1,
            bootstrap: 1000,
            seed: 0,
            figures: true,
            progress: false,
        }
    }
}

/// Read every job under `results_dir`, and write tables, crossovers, figures and the
/// report under `results_dir/analysis/`.
pub fn analyze(results_dir: &Path, options: &AnalyzeOptions) -> Result<Summary> {
    // 1. Read the jobs; unreadable files become warnings.
    let (runs, mut warnings) = ingest::read::read_results_with(results_dir, |jobs| {
        Some(progress::Stage::new("reading", jobs, options.progress))
    })?;
    let groups = pairs::groups::group_runs(&runs);
    warnings.extend(pairs::groups::unpaired_warnings(
        &runs,
        &groups,
        results_dir,
    ));
    let out = results_dir.join("analysis");
    std::fs::create_dir_all(&out).map_err(error::io_error(&out))?;
    // 2. Tidy tables.
    let mut tables = report::tables::build(&runs, &groups).map_err(error::table_error(&out))?;
    report::tables::write(&mut tables, &out)?;
    // 3. Crossovers.
    let settings = crossover::uncertainty::Settings {
        smooth: curve::odd_window(options.smooth.max(1)),
        draws: options.bootstrap,
        seed: options.seed,
    };
    let stage = progress::Stage::new(
        "crossovers",
        crossover::table::comparisons(&runs, &groups),
        options.progress,
    );
    let rows = crossover::table::compute_with(&runs, &groups, settings, &|| stage.tick());
    stage.finish();
    crossover::table::write_csv(&rows, &out.join("crossover.csv"))?;
    error::write_file(
        &out.join("crossover.md"),
        crossover::table::markdown(&rows).as_bytes(),
    )?;
    // 4. Scaling-law fits: R_D* per objective, critical compute, data potential.
    let fits = fits::compute(
        &runs,
        &groups,
        &rows,
        fits::results::FitSettings {
            draws: settings.draws,
            seed: settings.seed,
            smooth: settings.smooth,
        },
        results_dir,
    );
    fits::output::write_csv(&fits, &out.join("fits.csv"))?;
    warnings.extend(fits.warnings.iter().cloned());
    // 4b. Mixtures of experts against dense models (only when the sweep has both).
    let moe_rows = moe::compare::compare(&runs);
    if !moe_rows.is_empty() {
        moe::table::write_csv(&moe_rows, &out.join("moe_vs_dense.csv"))?;
    }
    // 5. Figures.
    let rendered = if options.figures {
        let context = figures::frame::Context {
            runs: &runs,
            groups: &groups,
            crossovers: &rows,
            smooth: settings.smooth,
            fits: &fits,
            moe: &moe_rows,
        };
        figures::render_all(&context, &out.join("figures"))?
    } else {
        Vec::new()
    };
    // 6. Report.
    let blocks = report::contents::blocks(&report::contents::ReportInputs {
        runs: &runs,
        groups: &groups,
        rows: &rows,
        figures: &rendered,
        fits: &fits,
        moe: &moe_rows,
        warnings: &warnings,
        out: &out,
        draws: settings.draws,
        seed: settings.seed,
        smooth: settings.smooth,
    });
    let title = format!(
        "Crossover analysis: {}",
        results_dir
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    error::write_file(
        &out.join("report.md"),
        report::render::markdown(&title, &blocks).as_bytes(),
    )?;
    error::write_file(
        &out.join("report.html"),
        report::render::html(&title, &blocks)?.as_bytes(),
    )?;
    Ok(Summary::new(
        results_dir,
        &runs,
        groups.len(),
        &rows,
        rendered,
        warnings,
        fits.headlines(),
    ))
}
