//! The study's figure (arXiv 2511.03276, Fig. 1 style): each headline metric against
//! total tokens seen, one panel per task plus validation loss; AR in blues, DLM in
//! reds, one shade per unique-token budget; raw points, a smoothed line, a band of
//! ±1 standard error (of the mean over seeds when there are several), and the
//! DLM-vs-AR crossover marked. One figure per model size.

use super::frame::{
    Context, Figure, Planned, finite, font, objective_color, padded_range, panel_title,
    series_label, shade, skipped, text, titled_panels,
};
use crate::crossover::detection::{Kind, Outcome};
use crate::curve::combined;
use crate::curve::{Curve, interpolate_log};
use crate::pairs::curves::{Axis, curve, headline_metrics, metrics};
use crate::pairs::groups::Group;
use plotters::coord::Shift;
use plotters::prelude::*;

/// One line on a panel: an objective in a group, with its seed replicates.
pub struct Series {
    pub label: String,
    pub color: RGBColor,
    pub objective: String,
    pub group: usize,
    pub raw: Vec<Curve>,
    pub line: Curve,
}

pub struct Study<'a> {
    context: &'a Context<'a>,
    /// File stem: `study_<preset>`, plus the parameter count when two model sizes
    /// share a preset name (custom shapes), so neither overwrites the other.
    name: String,
    preset: String,
    groups: Vec<&'a Group>,
    panels: Vec<(String, String)>,
}

/// One figure per model size present.
pub fn figures<'a>(context: &'a Context<'a>) -> Vec<Planned<Study<'a>>> {
    let mut sizes: Vec<(Option<u64>, String)> = context
        .groups
        .iter()
        .map(|g| (g.params, g.preset.clone()))
        .collect();
    sizes.sort();
    sizes.dedup();
    if sizes.is_empty() {
        return vec![skipped("study", "no runs with evaluations")];
    }
    let shared = |preset: &str| sizes.iter().filter(|(_, p)| p == preset).count() > 1;
    sizes
        .iter()
        .map(|(params, preset)| {
            let name = match params {
                Some(params) if shared(preset) => format!("study_{preset}_{params}"),
                _ => format!("study_{preset}"),
            };
            let groups: Vec<&Group> = context
                .groups
                .iter()
                .filter(|g| &g.preset == preset && g.params == *params)
                .collect();
            let members: Vec<&crate::ingest::records::Run> = groups
                .iter()
                .flat_map(|g| g.runs.iter().map(|&i| &context.runs[i]))
                .collect();
            let panels = headline_metrics(&metrics(&members));
            if panels.is_empty() {
                return skipped(&name, "no evaluations yet");
            }
            Ok(Study {
                context,
                name,
                preset: preset.clone(),
                groups,
                panels,
            })
        })
        .collect()
}

/// The series of one (task, metric) over a set of groups on one axis.
pub fn series_of(
    context: &Context<'_>,
    groups: &[&Group],
    task: &str,
    metric: &str,
    axis: Axis,
) -> Vec<Series> {
    // One shade per (budget, other setting): a grid over epochs draws each epoch count
    // of a budget in its own shade, darker = more unique tokens, then more epochs.
    let mut keys: Vec<(u64, f64, String)> = groups
        .iter()
        .map(|g| {
            let epochs = context.runs[g.runs[0]].config.train.epochs;
            (g.unique_tokens, epochs, g.variant.clone())
        })
        .collect();
    keys.sort_by(|a, b| {
        (a.0, a.1)
            .partial_cmp(&(b.0, b.1))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.2.cmp(&b.2))
    });
    keys.dedup();
    let ranks: Vec<u64> = (0..keys.len() as u64).collect();
    let mut out = Vec::new();
    for group in groups {
        for objective in group.objectives(context.runs) {
            let raw: Vec<Curve> = group
                .replicates(context.runs, &objective)
                .iter()
                .map(|run| curve(run, task, metric, axis))
                .filter(|c| !c.is_empty())
                .collect();
            if raw.is_empty() {
                continue;
            }
            let epochs = context.runs[group.runs[0]].config.train.epochs;
            let rank = keys
                .iter()
                .position(|k| k.0 == group.unique_tokens && k.1 == epochs && k.2 == group.variant)
                .unwrap_or(0) as u64;
            let label = if group.variant.is_empty() {
                series_label(&objective, group.unique_tokens)
            } else {
                format!(
                    "{}, {}",
                    series_label(&objective, group.unique_tokens),
                    group.variant
                )
            };
            out.push(Series {
                label,
                color: objective_color(&objective, shade(rank, &ranks)),
                line: combined(&raw, context.smooth),
                objective,
                group: group.index,
                raw,
            });
        }
    }
    out
}

impl Figure for Study<'_> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn caption(&self) -> String {
        format!(
            "Model {}: metric vs total tokens seen; AR blue, DLM red (darker = more unique tokens, then more epochs when a grid varies them); points are raw evaluations, lines a {}-point centred moving average, bands ±1 standard error; dashed lines mark the early-stopped crossover (running bests: the headline), ringed dots the raw one (curves as trained).",
            self.preset, self.context.smooth
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let title = format!(
            "AR vs diffusion, model {}: metric vs total tokens",
            self.preset
        );
        titled_panels(root, &title, &self.panels, |panel, task, metric, index| {
            let series = series_of(self.context, &self.groups, task, metric, Axis::Tokens);
            self.draw_panel(panel, task, metric, &series, index == 0)
        })
    }
}

impl Study<'_> {
    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        task: &str,
        metric: &str,
        series: &[Series],
        legend: bool,
    ) -> Result<(), String> {
        let xs = series
            .iter()
            .flat_map(|s| s.raw.iter().flatten().map(|p| p.x));
        let ys = series.iter().flat_map(|s| {
            let raw = s.raw.iter().flatten().map(|p| p.y);
            let band = s
                .line
                .iter()
                .flat_map(|p| [p.y - finite(p.stderr), p.y + finite(p.stderr)]);
            raw.chain(band).collect::<Vec<_>>()
        });
        let (Some((x0, x1)), Some((y0, y1))) = (padded_range(xs, true), padded_range(ys, false))
        else {
            return Ok(());
        };
        let mut chart = ChartBuilder::on(area)
            .caption(panel_title(task, metric), font(28))
            .margin(16)
            .x_label_area_size(64)
            .y_label_area_size(96)
            .build_cartesian_2d(
                (x0..x1).log_scale().base(super::frame::log_base(x0, x1)),
                y0..y1,
            )
            .map_err(text)?;
        chart
            .configure_mesh()
            .x_desc("total tokens seen")
            .y_desc(metric)
            .axis_desc_style(font(24))
            .label_style(font(20))
            .x_labels(8)
            .x_label_formatter(&|x| crate::format::count(*x))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(text)?;
        for s in series {
            draw_series(&mut chart, s)?;
        }
        self.mark_crossovers(&mut chart, task, metric, series, (y0, y1))?;
        if legend && series.len() <= 16 {
            chart
                .configure_series_labels()
                .position(if metric == "loss" {
                    SeriesLabelPosition::UpperRight
                } else {
                    SeriesLabelPosition::LowerRight
                })
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font(font(18))
                .draw()
                .map_err(text)?;
        }
        Ok(())
    }

    /// Where each DLM overtakes AR for good: a dashed vertical line at the
    /// early-stopped crossover, a ringed dot on the DLM's line at the raw one.
    fn mark_crossovers<DB: DrawingBackend, CT>(
        &self,
        chart: &mut ChartContext<'_, DB, CT>,
        task: &str,
        metric: &str,
        series: &[Series],
        (y0, y1): (f64, f64),
    ) -> Result<(), String>
    where
        CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
    {
        let mut labelled = [false, false];
        for row in self.context.crossovers.iter().filter(|r| {
            r.baseline == "ar" && r.task == task && r.metric == metric && r.axis == Axis::Tokens
        }) {
            let (Outcome::Crossed { x, .. }, Some(dlm)) = (
                row.outcome(),
                series
                    .iter()
                    .find(|s| s.group == row.group && s.objective == "dlm"),
            ) else {
                continue;
            };
            let color = dlm.color;
            if row.kind == Kind::EarlyStopped {
                let line = chart
                    .draw_series(DashedLineSeries::new(
                        [(x, y0), (x, y1)],
                        10,
                        8,
                        color.mix(0.8).stroke_width(3),
                    ))
                    .map_err(text)?;
                if !labelled[0] {
                    line.label("early-stopped crossover").legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3))
                    });
                    labelled[0] = true;
                }
                continue;
            }
            let Some(y) = interpolate_log(&dlm.line, x).map(|p| p.y) else {
                continue;
            };
            let dot = chart
                .draw_series([
                    Circle::new((x, y), 10, BLACK.stroke_width(3)),
                    Circle::new((x, y), 6, color.filled()),
                ])
                .map_err(text)?;
            if !labelled[1] {
                dot.label("raw crossover (DLM passes AR as trained)")
                    .legend(|(x, y)| Circle::new((x + 10, y), 7, BLACK.stroke_width(3)));
                labelled[1] = true;
            }
        }
        Ok(())
    }
}

/// Band, raw points and the smoothed line of one series.
pub fn draw_series<DB: DrawingBackend, CT>(
    chart: &mut ChartContext<'_, DB, CT>,
    s: &Series,
) -> Result<(), String>
where
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    let upper = s.line.iter().map(|p| (p.x, p.y + finite(p.stderr)));
    let lower = s.line.iter().rev().map(|p| (p.x, p.y - finite(p.stderr)));
    let band: Vec<(f64, f64)> = upper.chain(lower).collect();
    if s.line.len() > 1 {
        chart
            .draw_series([Polygon::new(band, s.color.mix(0.18).filled())])
            .map_err(text)?;
    }
    let points = s
        .raw
        .iter()
        .flatten()
        .map(|p| Circle::new((p.x, p.y), 5, s.color.mix(0.55).filled()));
    chart.draw_series(points).map_err(text)?;
    let color = s.color;
    chart
        .draw_series(LineSeries::new(
            s.line.iter().map(|p| (p.x, p.y)),
            color.stroke_width(3),
        ))
        .map_err(text)?
        .label(&s.label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(4)));
    Ok(())
}
