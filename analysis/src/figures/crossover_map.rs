//! The crossover map: unique tokens (columns) x model size (rows), each cell coloured
//! by the epochs at which the DLM overtakes AR for good, with the 90% interval; grey
//! where it is not reached, green where the DLM leads from the first evaluation. One
//! panel per headline metric.

use super::{Context, Figure, Planned, font, panel_title, skipped, text, titled_panels};
use crate::crossover::Outcome;
use crate::crossovers::CrossoverRow;
use crate::pairs::Axis;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub struct CrossoverMap<'a> {
    rows: Vec<&'a CrossoverRow>,
    panels: Vec<(String, String)>,
    budgets: Vec<u64>,
    presets: Vec<String>,
}

pub fn figure<'a>(context: &'a Context<'a>) -> Planned<CrossoverMap<'a>> {
    let rows: Vec<&CrossoverRow> = context
        .crossovers
        .iter()
        .filter(|r| r.baseline == "ar" && r.axis == Axis::Epochs)
        .collect();
    if rows.is_empty() {
        return skipped("crossover_map", "no group has both a DLM and an AR run");
    }
    let found =
        crate::pairs::sorted_metrics(rows.iter().map(|r| (r.task.clone(), r.metric.clone())));
    let panels = crate::pairs::headline_metrics(&found);
    let mut budgets: Vec<u64> = rows.iter().map(|r| r.unique_tokens).collect();
    budgets.sort_unstable();
    budgets.dedup();
    // Model sizes smallest first, so the larger models sit at the top of the map.
    let mut sized: Vec<(Option<u64>, String)> =
        rows.iter().map(|r| (r.params, r.preset.clone())).collect();
    sized.sort();
    sized.dedup();
    let presets = sized.into_iter().map(|(_, p)| p).collect();
    Ok(CrossoverMap {
        rows,
        panels,
        budgets,
        presets,
    })
}

/// Cell colour and its two lines of text.
fn cell(row: Option<&CrossoverRow>, scale: (f64, f64)) -> (RGBColor, String, String) {
    let Some(row) = row else {
        return (RGBColor(255, 255, 255), "no pair".into(), String::new());
    };
    let partial = if row.complete { "" } else { " (partial)" };
    match row.outcome() {
        Outcome::Crossed { x } => {
            let (lo, hi) = scale;
            let t = if hi > lo {
                (x.ln() - lo) / (hi - lo)
            } else {
                0.5
            };
            let interval = if row.estimate.median.is_nan() {
                String::new()
            } else {
                let f = |v: f64| {
                    if v.is_infinite() {
                        "n.r.".into()
                    } else {
                        crate::format::epochs(v)
                    }
                };
                format!("90%: [{}, {}]", f(row.estimate.low), f(row.estimate.high))
            };
            (
                heat(t),
                format!("{} epochs{partial}", crate::format::epochs(x)),
                interval,
            )
        }
        Outcome::AheadFromStart { .. } => (
            RGBColor(116, 196, 118),
            format!("DLM ahead from start{partial}"),
            String::new(),
        ),
        Outcome::NotReached { gap } => (
            RGBColor(215, 215, 215),
            format!("not reached{partial}"),
            format!("gap {gap:+.3}"),
        ),
        Outcome::NoOverlap => (RGBColor(255, 255, 255), "no overlap".into(), String::new()),
    }
}

/// Light yellow (early crossover) to dark red (late), ColorBrewer YlOrRd.
fn heat(t: f64) -> RGBColor {
    let (a, b) = ((255.0, 237.0, 160.0), (189.0, 0.0, 38.0));
    let t = t.clamp(0.0, 1.0);
    RGBColor(
        (a.0 + t * (b.0 - a.0)) as u8,
        (a.1 + t * (b.1 - a.1)) as u8,
        (a.2 + t * (b.2 - a.2)) as u8,
    )
}

impl Figure for CrossoverMap<'_> {
    fn name(&self) -> String {
        "crossover_map".into()
    }

    fn caption(&self) -> String {
        "Crossover map: epochs at which the DLM overtakes AR for good, by unique tokens and model size (darker = later), with the 90% bootstrap interval.".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        titled_panels(
            root,
            "Crossover map: epochs until the DLM overtakes AR",
            &self.panels,
            |panel, task, metric, _| self.draw_panel(panel, task, metric),
        )
    }
}

impl CrossoverMap<'_> {
    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        task: &str,
        metric: &str,
    ) -> Result<(), String> {
        let of_metric: Vec<&CrossoverRow> = self
            .rows
            .iter()
            .copied()
            .filter(|r| r.task == task && r.metric == metric)
            .collect();
        let crossed = of_metric.iter().filter_map(|r| match r.outcome() {
            Outcome::Crossed { x } if x > 0.0 => Some(x.ln()),
            _ => None,
        });
        let scale = crossed.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let (columns, rows) = (self.budgets.len() as i32, self.presets.len() as i32);
        let mut chart = ChartBuilder::on(area)
            .caption(panel_title(task, metric), font(28))
            .margin(16)
            .x_label_area_size(64)
            .y_label_area_size(110)
            // An i32 range includes its end, so n segments come from 0..n-1.
            .build_cartesian_2d(
                (0..columns - 1).into_segmented(),
                (0..rows - 1).into_segmented(),
            )
            .map_err(text)?;
        let budgets = &self.budgets;
        let presets = &self.presets;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("unique tokens")
            .y_desc("model")
            .axis_desc_style(font(24))
            .label_style(font(20))
            .x_label_formatter(&|v| {
                label(v, |i| {
                    budgets.get(i).map(|&b| crate::format::count(b as f64))
                })
            })
            .y_label_formatter(&|v| label(v, |i| presets.get(i).cloned()))
            .draw()
            .map_err(text)?;
        let centered = font(19).pos(Pos::new(HPos::Center, VPos::Center));
        for (i, &budget) in self.budgets.iter().enumerate() {
            for (j, preset) in self.presets.iter().enumerate() {
                let row = of_metric
                    .iter()
                    .copied()
                    .find(|r| r.unique_tokens == budget && &r.preset == preset);
                let (color, line1, line2) = cell(row, scale);
                let (i, j) = (i as i32, j as i32);
                let corners = [
                    (SegmentValue::Exact(i), SegmentValue::Exact(j)),
                    (SegmentValue::Exact(i + 1), SegmentValue::Exact(j + 1)),
                ];
                chart
                    .draw_series([Rectangle::new(corners.clone(), color.filled())])
                    .map_err(text)?;
                chart
                    .draw_series([Rectangle::new(corners, BLACK.mix(0.3).stroke_width(1))])
                    .map_err(text)?;
                let at = (SegmentValue::CenterOf(i), SegmentValue::CenterOf(j));
                let label = EmptyElement::at(at)
                    + Text::new(line1, (0, -14), centered.clone())
                    + Text::new(line2, (0, 16), centered.clone());
                chart.draw_series([label]).map_err(text)?;
            }
        }
        Ok(())
    }
}

/// Tick label of a categorical axis: only the segment centres carry text.
fn label(value: &SegmentValue<i32>, name: impl Fn(usize) -> Option<String>) -> String {
    match value {
        SegmentValue::CenterOf(i) if *i >= 0 => name(*i as usize).unwrap_or_default(),
        _ => String::new(),
    }
}
