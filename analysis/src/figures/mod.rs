//! Stage 5, the study's figures (reference/recipes.md, "Figures the users expect"),
//! drawn with plotters as PNG and SVG. Text is rendered with DejaVu Sans compiled into
//! the binary (assets/, Bitstream Vera license), so figures look the same with no
//! system fonts.

mod ablation;
mod crossover_map;
mod expert_load;
mod fits;
pub mod frame;
mod loss_accuracy;
mod moe_vs_dense;
mod pareto;
mod potential;
mod study;

use crate::error::{AnalysisError, Result};
use frame::{Context, Rendered, register_font, render, render_or_skip};
use std::path::Path;

/// Draw every figure into `folder` (created if needed).
pub fn render_all(context: &Context<'_>, folder: &Path) -> Result<Vec<Rendered>> {
    std::fs::create_dir_all(folder).map_err(crate::error::io_error(folder))?;
    register_font().map_err(|message| AnalysisError::Figure {
        path: folder.to_owned(),
        message,
    })?;
    let mut rendered = Vec::new();
    for figure in study::figures(context) {
        rendered.push(render_or_skip(figure, folder)?);
    }
    rendered.push(render_or_skip(loss_accuracy::figure(context), folder)?);
    rendered.push(render_or_skip(crossover_map::figure(context), folder)?);
    rendered.push(render_or_skip(pareto::figure(context), folder)?);
    rendered.push(render_or_skip(ablation::figure(context), folder)?);
    // Mixtures of experts only: not even a skip note for a dense sweep.
    if context.runs.iter().any(|run| run.moe.is_some()) {
        rendered.push(render_or_skip(moe_vs_dense::figure(context), folder)?);
        rendered.push(render_or_skip(expert_load::figure(context), folder)?);
    }
    // The fits' figures: absent (not skipped) without a fit, since the report's Fits
    // section already says, one line per fit, what the sweep lacks.
    for figure in fits::loss_vs_epochs(context) {
        rendered.push(Rendered::Written(render(&figure, folder)?));
    }
    if let Some(figure) = fits::critical_compute(context) {
        rendered.push(Rendered::Written(render(&figure, folder)?));
    }
    for figure in potential::figures(context) {
        rendered.push(Rendered::Written(render(&figure, folder)?));
    }
    Ok(rendered)
}
