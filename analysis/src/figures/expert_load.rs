//! Expert load over training for mixture-of-experts runs (expert_load.csv): per
//! mixture block, the busiest expert's share of the assignments (solid) and the idlest
//! one's (dashed), each relative to an even share, against tokens seen. A balanced
//! router stays near 1; collapse shows as the solid line climbing towards E / top_k
//! while the dashed one falls to 0.

use super::frame::{Context, Figure, Planned, font, padded_range, series_label, skipped, text};
use crate::ingest::records::Run;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;

/// Panels drawn at most (the rest are in expert_load.csv).
const MAX_PANELS: usize = 12;

pub struct ExpertLoad<'a> {
    runs: Vec<&'a Run>,
    total: usize,
}

pub fn figure<'a>(context: &'a Context<'a>) -> Planned<ExpertLoad<'a>> {
    let mut runs: Vec<&Run> = context
        .runs
        .iter()
        .filter(|run| !run.expert_load.is_empty())
        .collect();
    if runs.is_empty() {
        return skipped(
            "expert_load",
            "no mixture-of-experts run has logged expert load (expert_load.csv)",
        );
    }
    runs.sort_by_key(|run| {
        (
            run.config.data.unique_tokens.get(),
            crate::pairs::groups::objective_rank(&run.objective),
            run.config.seed,
        )
    });
    let total = runs.len();
    runs.truncate(MAX_PANELS);
    Ok(ExpertLoad { runs, total })
}

/// Per block: (tokens, busiest share x E, idlest share x E) at each milestone.
pub fn block_extremes(run: &Run) -> BTreeMap<u32, Vec<(f64, f64, f64)>> {
    let experts = run.moe.as_ref().map_or(1, |moe| moe.experts) as f64;
    let mut by_point: BTreeMap<(u32, u64), (f64, f64, f64)> = BTreeMap::new();
    for row in &run.expert_load {
        let entry = by_point.entry((row.block, row.step)).or_insert((
            row.tokens,
            f64::NEG_INFINITY,
            f64::INFINITY,
        ));
        entry.1 = entry.1.max(row.share * experts);
        entry.2 = entry.2.min(row.share * experts);
    }
    let mut out: BTreeMap<u32, Vec<(f64, f64, f64)>> = BTreeMap::new();
    for ((block, _), point) in by_point {
        out.entry(block).or_default().push(point);
    }
    out
}

fn block_color(index: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    PALETTE[index % PALETTE.len()]
}

impl Figure for ExpertLoad<'_> {
    fn name(&self) -> String {
        "expert_load".into()
    }

    fn caption(&self) -> String {
        let more = if self.total > self.runs.len() {
            format!(
                " The first {} of {} mixture runs are drawn; expert_load.csv has all.",
                self.runs.len(),
                self.total
            )
        } else {
            String::new()
        };
        format!(
            "Expert load of each mixture-of-experts run over training: per mixture block, the busiest expert's share of the (token, expert) assignments (solid) and the idlest expert's (dashed), relative to an even share and averaged over the steps before each milestone. 1 is perfect balance; E / top_k would be a block whose tokens all go to the same experts.{more}"
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        super::frame::titled_panels_of(
            root,
            "Expert load over training (share / even share)",
            &self.runs,
            |panel, run, _| draw_panel(panel, run),
        )
    }
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, run: &Run) -> Result<(), String> {
    let blocks = block_extremes(run);
    let points = || blocks.values().flatten();
    let (Some((x0, x1)), Some((_, y1))) = (
        padded_range(points().map(|p| p.0), true),
        padded_range(points().flat_map(|p| [p.1, p.2]), false),
    ) else {
        return Ok(());
    };
    let preset = run.config.model.preset.clone().unwrap_or_default();
    let title = format!(
        "{}, {}",
        series_label(&run.objective, run.config.data.unique_tokens.get()),
        preset
    );
    let mut chart = ChartBuilder::on(area)
        .caption(title, font(24))
        .margin(14)
        .x_label_area_size(56)
        .y_label_area_size(72)
        .build_cartesian_2d(
            (x0..x1)
                .log_scale()
                .with_key_points(super::frame::log_ticks(&[], x0, x1)),
            0.0..y1.max(1.2) * 1.3,
        )
        .map_err(text)?;
    chart
        .configure_mesh()
        .x_desc("tokens seen")
        .y_desc("share / even share")
        .axis_desc_style(font(20))
        .label_style(font(17))
        .x_label_formatter(&|x| crate::format::count(*x))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(text)?;
    chart
        .draw_series(LineSeries::new(
            [(x0, 1.0), (x1, 1.0)],
            BLACK.mix(0.5).stroke_width(1),
        ))
        .map_err(text)?;
    for (index, (block, series)) in blocks.iter().enumerate() {
        let color = block_color(index);
        chart
            .draw_series(LineSeries::new(
                series.iter().map(|p| (p.0, p.1)),
                color.stroke_width(3),
            ))
            .map_err(text)?
            .label(format!("block {block}"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
        chart
            .draw_series(DashedLineSeries::new(
                series.iter().map(|p| (p.0, p.2)),
                8,
                6,
                color.stroke_width(2),
            ))
            .map_err(text)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(font(16))
        .draw()
        .map_err(text)
}
