//! Validation loss against accuracy for the same checkpoints, per objective: the
//! study's claim that a rising validation loss does not imply a falling accuracy
//! (arXiv 2511.03276, section on overfitting). Each run is a path through its
//! evaluations in training order; its last checkpoint is drawn larger.

use super::frame::{
    Context, Figure, Planned, font, objective_color, padded_range, panel_title, series_label,
    shade, skipped, text, titled_panels,
};
use crate::ingest::records::Run;
use crate::pairs::curves::{headline_metrics, metrics};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;

pub struct LossAccuracy<'a> {
    context: &'a Context<'a>,
    panels: Vec<(String, String)>,
}

pub fn figure<'a>(context: &'a Context<'a>) -> Planned<LossAccuracy<'a>> {
    let all: Vec<&Run> = context.runs.iter().collect();
    let found = metrics(&all);
    if !found.iter().any(|(task, _)| task == "val_loss") {
        return skipped("loss_vs_accuracy", "no validation loss evaluated");
    }
    let panels: Vec<(String, String)> = headline_metrics(&found)
        .into_iter()
        .filter(|(task, _)| task != "val_loss")
        .collect();
    if panels.is_empty() {
        return skipped("loss_vs_accuracy", "no accuracy tasks evaluated");
    }
    Ok(LossAccuracy { context, panels })
}

/// (validation loss, value) at every step where a run evaluated both, in step order.
pub fn paired(run: &Run, task: &str, metric: &str) -> Vec<(f64, f64)> {
    let mut loss = BTreeMap::new();
    let mut value = BTreeMap::new();
    for row in &run.eval {
        if row.task == "val_loss" && row.metric == "loss" {
            loss.insert(row.step, row.value);
        } else if row.task == task && row.metric == metric {
            value.insert(row.step, row.value);
        }
    }
    loss.iter()
        .filter_map(|(step, &l)| value.get(step).map(|&v| (l, v)))
        .filter(|(l, v)| l.is_finite() && v.is_finite())
        .collect()
}

impl Figure for LossAccuracy<'_> {
    fn name(&self) -> String {
        "loss_vs_accuracy".into()
    }

    fn caption(&self) -> String {
        "Validation loss vs accuracy at the same checkpoints, one path per run in training order (large dot = last checkpoint); AR blue, DLM red, controls green/purple, darker = more unique tokens.".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        titled_panels(
            root,
            "Validation loss vs accuracy (same checkpoints)",
            &self.panels,
            |panel, task, metric, index| self.draw_panel(panel, task, metric, index == 0),
        )
    }
}

impl LossAccuracy<'_> {
    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        task: &str,
        metric: &str,
        legend: bool,
    ) -> Result<(), String> {
        let mut budgets: Vec<u64> = self
            .context
            .groups
            .iter()
            .map(|g| g.unique_tokens)
            .collect();
        budgets.sort_unstable();
        budgets.dedup();
        let paths: Vec<(&Run, Vec<(f64, f64)>)> = self
            .context
            .runs
            .iter()
            .map(|run| (run, paired(run, task, metric)))
            .filter(|(_, p)| !p.is_empty())
            .collect();
        let (Some((x0, x1)), Some((y0, y1))) = (
            padded_range(paths.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)), false),
            padded_range(paths.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)), false),
        ) else {
            return Ok(());
        };
        let mut chart = ChartBuilder::on(area)
            .caption(panel_title(task, metric), font(28))
            .margin(16)
            .x_label_area_size(64)
            .y_label_area_size(96)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(text)?;
        chart
            .configure_mesh()
            .x_desc("validation loss")
            .y_desc(metric)
            .axis_desc_style(font(24))
            .label_style(font(20))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(text)?;
        let mut labelled = std::collections::BTreeSet::new();
        for (run, path) in &paths {
            let budget = run.config.data.unique_tokens.get();
            let color = objective_color(&run.objective, shade(budget, &budgets));
            chart
                .draw_series(
                    path.iter()
                        .map(|&p| Circle::new(p, 5, color.mix(0.7).filled())),
                )
                .map_err(text)?;
            if let Some(&last) = path.last() {
                chart
                    .draw_series([Circle::new(last, 10, color.filled())])
                    .map_err(text)?;
            }
            let line = chart
                .draw_series(LineSeries::new(path.clone(), color.stroke_width(2)))
                .map_err(text)?;
            let label = series_label(&run.objective, budget);
            if labelled.insert(label.clone()) {
                line.label(label).legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], color.stroke_width(4))
                });
            }
        }
        if legend {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font(font(18))
                .draw()
                .map_err(text)?;
        }
        Ok(())
    }
}
