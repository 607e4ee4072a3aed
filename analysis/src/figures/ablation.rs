//! AR-control ablation: the value at the last evaluation for AR, AR-masked(p),
//! AR-dropout(p) and the DLM in each group that has a control, as bars with ±1
//! standard error (of the mean over seeds when there are several). Answers whether
//! input noise alone gives AR the DLM's data efficiency (reference/recipes.md).

use super::frame::{
    Context, Figure, Planned, font, objective_color, panel_title, skipped, text, titled_panels,
};
use crate::ingest::records::Run;
use crate::pairs::curves::{headline_metrics, metrics};
use crate::pairs::groups::Group;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub struct Ablation<'a> {
    context: &'a Context<'a>,
    groups: Vec<&'a Group>,
    panels: Vec<(String, String)>,
}

fn is_control(objective: &str) -> bool {
    objective.starts_with("ar_masked") || objective.starts_with("ar_dropout")
}

pub fn figure<'a>(context: &'a Context<'a>) -> Planned<Ablation<'a>> {
    let groups: Vec<&Group> = context
        .groups
        .iter()
        .filter(|g| g.objectives(context.runs).iter().any(|o| is_control(o)))
        .collect();
    if groups.is_empty() {
        return skipped(
            "ablation",
            "no AR-control runs (ar_masked, ar_dropout) in the sweep",
        );
    }
    let members: Vec<&Run> = groups
        .iter()
        .flat_map(|g| g.runs.iter().map(|&i| &context.runs[i]))
        .collect();
    let panels = headline_metrics(&metrics(&members));
    Ok(Ablation {
        context,
        groups,
        panels,
    })
}

/// One bar: label (one or two lines), colour, mean over seeds of the last value, and
/// its error.
struct Bar {
    label: Vec<String>,
    color: RGBColor,
    value: f64,
    error: f64,
}

/// Mean of each seed's last value, with the seed standard error (or the reported
/// stderr for one seed).
fn last_value(replicates: &[&Run], task: &str, metric: &str) -> Option<(f64, f64)> {
    let last: Vec<(f64, f64)> = replicates
        .iter()
        .filter_map(|run| {
            run.eval
                .iter()
                .filter(|e| e.task == task && e.metric == metric)
                .max_by_key(|e| e.step)
                .map(|e| (e.value, e.stderr))
        })
        .collect();
    let n = last.len() as f64;
    match last.as_slice() {
        [] => None,
        [(value, stderr)] => Some((*value, *stderr)),
        many => {
            let mean = many.iter().map(|v| v.0).sum::<f64>() / n;
            let variance = many.iter().map(|v| (v.0 - mean).powi(2)).sum::<f64>() / (n - 1.0);
            Some((mean, (variance / n).sqrt()))
        }
    }
}

impl Figure for Ablation<'_> {
    fn name(&self) -> String {
        "ablation".into()
    }

    fn caption(&self) -> String {
        "AR-control ablation: value at the last evaluation for AR, its noise controls and the DLM (error bars ±1 standard error; * = a run that has not finished, shown at its last evaluation so far).".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        titled_panels(
            root,
            "AR controls vs DLM: value at the end of training",
            &self.panels,
            |panel, task, metric, _| self.draw_panel(panel, task, metric),
        )
    }
}

impl Ablation<'_> {
    fn bars(&self, task: &str, metric: &str) -> Vec<Bar> {
        let several = self.groups.len() > 1;
        // The model size only labels the bars when it differs between groups.
        let presets = self
            .groups
            .iter()
            .map(|group| group.preset.as_str())
            .collect::<std::collections::BTreeSet<_>>();
        let mut bars = Vec::new();
        for group in &self.groups {
            for objective in group.objectives(self.context.runs) {
                let Some((value, error)) = last_value(
                    &group.replicates(self.context.runs, &objective),
                    task,
                    metric,
                ) else {
                    continue;
                };
                let replicates = group.replicates(self.context.runs, &objective);
                // A run that has not finished shows its last value so far: flag it.
                let partial = if replicates.iter().all(|r| r.state == "done") {
                    ""
                } else {
                    "*"
                };
                let budget = crate::format::count(group.unique_tokens as f64);
                // One short line each (objective, budget, the other varying settings,
                // size), so that neighbouring labels never run into each other.
                let mut label = vec![format!("{objective}{partial}")];
                if several {
                    label.push(budget);
                    label.extend(group.variant.split_whitespace().map(str::to_owned));
                    if presets.len() > 1 {
                        label.push(group.preset.clone());
                    }
                }
                bars.push(Bar {
                    label,
                    color: objective_color(&objective, 0.75),
                    value,
                    error: super::frame::finite(error),
                });
            }
        }
        bars
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        task: &str,
        metric: &str,
    ) -> Result<(), String> {
        let bars = self.bars(task, metric);
        let top = bars.iter().map(|b| b.value + b.error).fold(0.0, f64::max) * 1.15;
        if bars.is_empty() || top <= 0.0 {
            return Ok(());
        }
        let n = bars.len() as f64;
        let mut chart = ChartBuilder::on(area)
            .caption(panel_title(task, metric), font(28))
            .margin(16)
            .x_label_area_size(
                16 + 22 * bars.iter().map(|b| b.label.len()).max().unwrap_or(1) as u32,
            )
            .y_label_area_size(96)
            // Bar i spans [i, i + 1] on a continuous axis: a categorical axis of one bar
            // collapses to zero width.
            .build_cartesian_2d(0.0..n, 0.0..top)
            .map_err(text)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(metric)
            .axis_desc_style(font(24))
            .label_style(font(19))
            .draw()
            .map_err(text)?;
        let size = if bars.len() > 6 { 14 } else { 18 };
        let below = font(size).pos(Pos::new(HPos::Center, VPos::Top));
        for (i, bar) in bars.iter().enumerate() {
            for (line, words) in bar.label.iter().enumerate() {
                let offset = (0, 8 + line as i32 * (size as i32 + 4));
                let element = EmptyElement::at((i as f64 + 0.5, 0.0))
                    + Text::new(words.clone(), offset, below.clone());
                chart.draw_series([element]).map_err(text)?;
            }
        }
        let above = font(18).pos(Pos::new(HPos::Center, VPos::Bottom));
        for (i, bar) in bars.iter().enumerate() {
            let i = i as f64;
            let corners = [(i, 0.0), (i + 1.0, bar.value)];
            let mut rectangle = Rectangle::new(corners, bar.color.filled());
            // Pixels of air between neighbouring bars.
            rectangle.set_margin(0, 0, 14, 14);
            chart.draw_series([rectangle]).map_err(text)?;
            let center = i + 0.5;
            // Error bar drawn by hand (plotters' ErrorBar needs another feature): a
            // stem in data coordinates and caps 20 pixels wide.
            let (low, high) = (bar.value - bar.error, bar.value + bar.error);
            let stem = PathElement::new([(center, low), (center, high)], BLACK.stroke_width(2));
            chart.draw_series([stem]).map_err(text)?;
            let caps = [low, high].map(|y| {
                EmptyElement::at((center, y))
                    + PathElement::new([(-10, 0), (10, 0)], BLACK.stroke_width(2))
            });
            chart.draw_series(caps).map_err(text)?;
            let value = EmptyElement::at((center, bar.value + bar.error))
                + Text::new(crate::format::value(bar.value), (0, -6), above.clone());
            chart.draw_series([value]).map_err(text)?;
        }
        Ok(())
    }
}
