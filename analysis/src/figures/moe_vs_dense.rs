//! Mixture of experts against dense at equal active size: one column per (objective,
//! budget) pair of matched runs, one row per headline metric (validation loss, then
//! each task's acc_norm or acc), the mixture's curve solid and the dense one dashed,
//! against tokens seen (the same FLOPs per token within the router's share).

use super::frame::{
    Context, Figure, Planned, font, objective_color, padded_range, panel_title, skipped, text,
};
use crate::curve::Curve;
use crate::ingest::records::Run;
use crate::moe::compare::Matched;
use crate::pairs::curves::{Axis, curve, headline_metrics};
use plotters::coord::Shift;
use plotters::prelude::*;

pub struct MoeVsDense<'a> {
    /// (mixture, dense) runs, equal active size, sorted by objective then budget.
    pairs: Vec<(&'a Run, &'a Run)>,
    metrics: Vec<(String, String)>,
}

pub fn figure<'a>(context: &'a Context<'a>) -> Planned<MoeVsDense<'a>> {
    let by_id = |id: &str| context.runs.iter().find(|run| run.id == id);
    let mut pairs: Vec<(&Run, &Run)> = Vec::new();
    for row in context.moe {
        if row.matched != Matched::EqualActive {
            continue;
        }
        if let (Some(moe), Some(dense)) = (by_id(&row.moe_id), by_id(&row.dense_id))
            && !pairs
                .iter()
                .any(|(m, d)| m.id == moe.id && d.id == dense.id)
        {
            pairs.push((moe, dense));
        }
    }
    if pairs.is_empty() {
        return skipped(
            "moe_vs_dense",
            "no mixture-of-experts run has a dense partner of the same active size",
        );
    }
    pairs.sort_by_key(|(moe, _)| {
        (
            crate::pairs::groups::objective_rank(&moe.objective),
            moe.config.data.unique_tokens.get(),
            moe.config.seed,
        )
    });
    let runs: Vec<&Run> = pairs.iter().flat_map(|(m, d)| [*m, *d]).collect();
    let metrics = headline_metrics(&crate::pairs::curves::metrics(&runs));
    Ok(MoeVsDense { pairs, metrics })
}

impl Figure for MoeVsDense<'_> {
    fn name(&self) -> String {
        "moe_vs_dense".into()
    }

    fn caption(&self) -> String {
        "Mixture of experts (solid) against the dense model of the same active size (dashed), per objective and unique-token budget, on the same data and schedule (shaded: ±1 stderr). moe_vs_dense.csv has the difference at the last evaluation with a paired 90% interval.".into()
    }

    fn size(&self) -> (u32, u32) {
        let columns = self.pairs.len().clamp(1, 4) as u32;
        (
            500 * columns + 100,
            460 * self.metrics.len().max(1) as u32 + 80,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let area = root
            .titled(
                "Mixture of experts vs dense, equal active parameters",
                font(34),
            )
            .map_err(text)?;
        let columns = self.pairs.len().clamp(1, 4);
        let panels = area.split_evenly((self.metrics.len().max(1), columns));
        for (row, (task, metric)) in self.metrics.iter().enumerate() {
            for (column, (moe, dense)) in self.pairs.iter().take(columns).enumerate() {
                draw_panel(&panels[row * columns + column], moe, dense, task, metric)?;
            }
        }
        Ok(())
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    moe: &Run,
    dense: &Run,
    task: &str,
    metric: &str,
) -> Result<(), String> {
    let a = curve(moe, task, metric, Axis::Tokens);
    let b = curve(dense, task, metric, Axis::Tokens);
    let points = || a.iter().chain(&b);
    let (Some((x0, x1)), Some((y0, y1))) = (
        padded_range(points().map(|p| p.x), true),
        padded_range(
            points().flat_map(|p| {
                let sd = if p.stderr.is_finite() { p.stderr } else { 0.0 };
                [p.y - sd, p.y + sd]
            }),
            false,
        ),
    ) else {
        return Ok(());
    };
    let title = format!(
        "{}: {}",
        super::frame::series_label(&moe.objective, moe.config.data.unique_tokens.get()),
        panel_title(task, metric)
    );
    let mut chart = ChartBuilder::on(area)
        .caption(title, font(22))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (x0..x1)
                .log_scale()
                .with_key_points(super::frame::log_ticks(&[], x0, x1)),
            y0..y1,
        )
        .map_err(text)?;
    chart
        .configure_mesh()
        .x_desc("tokens seen")
        .y_desc(metric)
        .axis_desc_style(font(18))
        .label_style(font(15))
        .x_label_formatter(&|x| crate::format::count(*x))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(text)?;
    let label = |run: &Run, dashed: bool| {
        let preset = run.config.model.preset.clone().unwrap_or_default();
        if dashed {
            format!("{preset} (dense, dashed)")
        } else {
            format!("{preset} (mixture)")
        }
    };
    for (run, points, dashed) in [(moe, &a, false), (dense, &b, true)] {
        let color = objective_color(&run.objective, if dashed { 0.55 } else { 0.9 });
        draw_band(&mut chart, points, color)?;
        let style = color.stroke_width(3);
        let series = points.iter().map(|p| (p.x, p.y));
        let drawn = if dashed {
            chart
                .draw_series(DashedLineSeries::new(series, 10, 6, style))
                .map_err(text)?
        } else {
            chart
                .draw_series(LineSeries::new(series, style))
                .map_err(text)?
        };
        drawn
            .label(label(run, dashed))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(
            if crate::curve::Direction::of_metric(metric) == crate::curve::Direction::LowerBetter {
                SeriesLabelPosition::UpperRight
            } else {
                SeriesLabelPosition::LowerRight
            },
        )
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(font(16))
        .draw()
        .map_err(text)
}

/// ±1 stderr as a translucent band (skipped where the stderr is unknown).
fn draw_band<DB: DrawingBackend, CT>(
    chart: &mut ChartContext<'_, DB, CT>,
    points: &Curve,
    color: RGBColor,
) -> Result<(), String>
where
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    let known: Vec<_> = points.iter().filter(|p| p.stderr.is_finite()).collect();
    if known.len() < 2 {
        return Ok(());
    }
    let upper = known.iter().map(|p| (p.x, p.y + p.stderr));
    let lower = known.iter().rev().map(|p| (p.x, p.y - p.stderr));
    chart
        .draw_series(std::iter::once(Polygon::new(
            upper.chain(lower).collect::<Vec<_>>(),
            color.mix(0.18).filled(),
        )))
        .map_err(text)?;
    Ok(())
}
