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

use crossover::table::CrossoverRow;
use crossover::uncertainty::Settings;
use figures::frame::Rendered;
use fits::results::{FitSettings, Fits};
use ingest::records::{Run, Warning};
use moe::compare::MoeRow;
use pairs::groups::Group;
use std::path::{Path, PathBuf};

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
    let mut study = read_study(results_dir, options)?;
    write_tables(&study)?;
    let rows = find_crossovers(&study, options)?;
    let fits = fit_scaling_laws(&mut study, &rows)?;
    let moe_rows = compare_moe(&study)?;
    let rendered = if options.figures {
        draw_figures(&study, &rows, &fits, &moe_rows)?
    } else {
        Vec::new()
    };
    write_report(&study, &rows, &rendered, &fits, &moe_rows)?;
    Ok(Summary::new(
        results_dir,
        &study.runs,
        study.groups.len(),
        &rows,
        rendered,
        study.warnings,
        fits.headlines(),
    ))
}

/// A results folder as read, and what every later stage works from.
struct Study {
    /// The sweep's results folder, and its analysis/ folder (created).
    results: PathBuf,
    out: PathBuf,
    runs: Vec<Run>,
    groups: Vec<Group>,
    /// Files that could not be read, groups without a pair, runs the fits left out.
    warnings: Vec<Warning>,
    settings: Settings,
}

/// Read the jobs (unreadable files become warnings), group them, and make the output
/// folder.
fn read_study(results_dir: &Path, options: &AnalyzeOptions) -> Result<Study> {
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
    let settings = Settings {
        smooth: curve::odd_window(options.smooth.max(1)),
        draws: options.bootstrap,
        seed: options.seed,
    };
    Ok(Study {
        results: results_dir.to_owned(),
        out,
        runs,
        groups,
        warnings,
        settings,
    })
}

/// The tidy tables.
fn write_tables(study: &Study) -> Result<()> {
    let tables = report::tables::build(&study.runs, &study.groups)
        .map_err(error::table_error(&study.out))?;
    report::tables::write(&tables, &study.out)?;
    Ok(())
}

/// Every crossover with its interval, written as crossover.csv and crossover.md.
fn find_crossovers(study: &Study, options: &AnalyzeOptions) -> Result<Vec<CrossoverRow>> {
    let stage = progress::Stage::new(
        "crossovers",
        crossover::table::comparisons(&study.runs, &study.groups),
        options.progress,
    );
    let rows = crossover::table::compute_with(&study.runs, &study.groups, study.settings, &|| {
        stage.tick()
    });
    stage.finish();
    crossover::table::write_csv(&rows, &study.out.join("crossover.csv"))?;
    error::write_file(
        &study.out.join("crossover.md"),
        crossover::table::markdown(&rows).as_bytes(),
    )?;
    Ok(rows)
}

/// Scaling-law fits (R_D* per objective, critical compute, data potential), written
/// as fits.csv; the runs they left out join the warnings.
fn fit_scaling_laws(study: &mut Study, rows: &[CrossoverRow]) -> Result<Fits> {
    let fits = fits::compute(
        &study.runs,
        &study.groups,
        rows,
        FitSettings {
            draws: study.settings.draws,
            seed: study.settings.seed,
            smooth: study.settings.smooth,
        },
        &study.results,
    );
    fits::output::write_csv(&fits, &study.out.join("fits.csv"))?;
    study.warnings.extend(fits.warnings.iter().cloned());
    Ok(fits)
}

/// Mixtures of experts against dense models, written as moe_vs_dense.csv (only
/// when the sweep has both).
fn compare_moe(study: &Study) -> Result<Vec<MoeRow>> {
    let moe_rows = moe::compare::compare(&study.runs);
    if !moe_rows.is_empty() {
        moe::table::write_csv(&moe_rows, &study.out.join("moe_vs_dense.csv"))?;
    }
    Ok(moe_rows)
}

/// The figures, under analysis/figures/.
fn draw_figures(
    study: &Study,
    rows: &[CrossoverRow],
    fits: &Fits,
    moe_rows: &[MoeRow],
) -> Result<Vec<Rendered>> {
    let context = figures::frame::Context {
        runs: &study.runs,
        groups: &study.groups,
        crossovers: rows,
        smooth: study.settings.smooth,
        fits,
        moe: moe_rows,
    };
    figures::render_all(&context, &study.out.join("figures"))
}

/// The report, as report.md and a self-contained report.html.
fn write_report(
    study: &Study,
    rows: &[CrossoverRow],
    rendered: &[Rendered],
    fits: &Fits,
    moe_rows: &[MoeRow],
) -> Result<()> {
    let blocks = report::contents::blocks(&report::contents::ReportInputs {
        runs: &study.runs,
        groups: &study.groups,
        rows,
        figures: rendered,
        fits,
        moe: moe_rows,
        warnings: &study.warnings,
        out: &study.out,
        draws: study.settings.draws,
        seed: study.settings.seed,
        smooth: study.settings.smooth,
    });
    let title = format!(
        "Crossover analysis: {}",
        study
            .results
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    error::write_file(
        &study.out.join("report.md"),
        report::render::markdown(&title, &blocks).as_bytes(),
    )?;
    error::write_file(
        &study.out.join("report.html"),
        report::render::html(&title, &blocks)?.as_bytes(),
    )?;
    Ok(())
}
