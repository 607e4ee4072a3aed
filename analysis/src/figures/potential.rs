//! The data potential (Ni et al. 2025): each objective's best (early-stopped) value vs
//! unique tokens, one panel per metric, with an arrow from the DLM's best at U to where
//! AR's best-vs-budget curve reaches the same value, labelled U_AR / U. A censored
//! ratio's arrow stops at the end of AR's range with "more than" / "at most".

use super::frame::{
    Context, Figure, error_bar, font, log_ticks, objective_color, padded_range, panel_title, text,
};
use crate::fits::points::Family;
use crate::fits::potential::{Best, Ratio};
use crate::fits::results::PotentialFit;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub struct DataPotential<'a> {
    name: String,
    family: Family,
    panels: Vec<&'a PotentialFit>,
}

/// One figure per model with at least one ratio.
pub fn figures<'a>(context: &'a Context<'a>) -> Vec<DataPotential<'a>> {
    let mut families: Vec<&Family> = context
        .fits
        .potential
        .iter()
        .filter(|p| !p.ratios.is_empty())
        .map(|p| &p.family)
        .collect();
    families.dedup();
    let several = families.len() > 1;
    families
        .into_iter()
        .map(|family| DataPotential {
            name: if several {
                format!("fits_data_potential_{}", family.slug())
            } else {
                "fits_data_potential".into()
            },
            family: family.clone(),
            panels: context
                .fits
                .potential
                .iter()
                .filter(|p| &p.family == family && !p.ratios.is_empty())
                .collect(),
        })
        .collect()
}

impl Figure for DataPotential<'_> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn caption(&self) -> String {
        format!(
            "{}: best (early-stopped) value of each objective vs unique tokens (done runs; the best over a budget's runs; bars ±1 stderr). Arrows: from the DLM's best at U to the unique tokens AR needs to reach it, read off AR's curve (a monotone cubic in ln U through its budgets, as drawn), labelled U_AR / U; \"more than\" where AR never reaches it within the sweep.",
            self.family.label()
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let title = format!(
            "Data potential: unique tokens AR needs to match the DLM, {}",
            self.family.label()
        );
        super::frame::titled_panels_of(root, &title, &self.panels, |panel, item, _| {
            draw_panel(panel, item)
        })
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fit: &PotentialFit,
) -> Result<(), String> {
    let all = || fit.ar.iter().chain(&fit.dlm);
    let budgets: Vec<f64> = all().map(|b| b.unique_tokens).collect();
    let xs = all().map(|b| b.unique_tokens);
    let ys = all().flat_map(|b| {
        let sd = if b.stderr.is_finite() { b.stderr } else { 0.0 };
        [b.value - sd, b.value + sd]
    });
    let (Some((x0, x1)), Some((y0, y1))) = (padded_range(xs, true), padded_range(ys, false)) else {
        return Ok(());
    };
    // Room above the points for the arrows' labels.
    let y1 = y1 + 0.08 * (y1 - y0);
    let mut chart = ChartBuilder::on(area)
        .caption(panel_title(&fit.task, &fit.metric), font(28))
        .margin(16)
        .x_label_area_size(64)
        .y_label_area_size(96)
        .build_cartesian_2d(
            (x0..x1)
                .log_scale()
                .with_key_points(log_ticks(&budgets, x0, x1)),
            y0..y1,
        )
        .map_err(text)?;
    let y_desc = if fit.task == "val_loss" {
        "best validation loss (nats/token)".to_string()
    } else {
        format!("best {}", fit.metric)
    };
    chart
        .configure_mesh()
        .x_desc("unique tokens U")
        .y_desc(y_desc)
        .axis_desc_style(font(24))
        .label_style(font(20))
        .x_label_formatter(&|x| crate::format::count(*x))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(text)?;
    for (objective, bests) in [("ar", &fit.ar), ("dlm", &fit.dlm)] {
        draw_bests(&mut chart, objective, bests)?;
    }
    for (i, r) in fit.ratios.iter().enumerate() {
        draw_arrow(&mut chart, r.dlm, r.ratio, (x0, x1), i == 0)?;
    }
    chart
        .configure_series_labels()
        .position(if fit.direction == crate::curve::Direction::LowerBetter {
            SeriesLabelPosition::UpperRight
        } else {
            SeriesLabelPosition::LowerRight
        })
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(font(20))
        .draw()
        .map_err(text)
}

fn draw_bests<DB: DrawingBackend, CT>(
    chart: &mut ChartContext<'_, DB, CT>,
    objective: &str,
    bests: &[Best],
) -> Result<(), String>
where
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    let color = objective_color(objective, 0.8);
    for b in bests
        .iter()
        .filter(|b| b.stderr.is_finite() && b.stderr > 0.0)
    {
        error_bar(
            chart,
            b.unique_tokens,
            b.value - b.stderr,
            b.value + b.stderr,
            color,
        )?;
    }
    // AR's curve as the ratio reads it (monotone cubic in ln U); the DLM's joins its
    // points the same way.
    chart
        .draw_series(LineSeries::new(
            crate::fits::potential::curve_points(bests, 24),
            color.stroke_width(3),
        ))
        .map_err(text)?
        .label(format!(
            "{}: best value per budget",
            super::frame::objective_name(objective)
        ))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
    chart
        .draw_series(
            bests
                .iter()
                .map(|b| Circle::new((b.unique_tokens, b.value), 7, color.filled())),
        )
        .map_err(text)?;
    Ok(())
}

/// A horizontal arrow at the DLM's best value from its budget to AR's, with the ratio.
fn draw_arrow<DB: DrawingBackend, CT>(
    chart: &mut ChartContext<'_, DB, CT>,
    dlm: Best,
    ratio: Ratio,
    (x0, x1): (f64, f64),
    legend: bool,
) -> Result<(), String>
where
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    let start = dlm.unique_tokens;
    let end = (ratio.bound() * start).clamp(x0, x1);
    if (end / start - 1.0).abs() < 1e-9 {
        // A ratio of 1 (or censored at the DLM's own budget): no arrow, a label above
        // the point, leaning inwards from the edge.
        let anchor = if start * start > x0 * x1 {
            HPos::Right
        } else {
            HPos::Left
        };
        let label = EmptyElement::at((start, dlm.value))
            + Text::new(
                ratio.describe(),
                (0, -16),
                font(20).pos(Pos::new(anchor, VPos::Bottom)),
            );
        return chart.draw_series([label]).map(|_| ()).map_err(text);
    }
    let color = RGBColor(40, 40, 40);
    let stroke = color.stroke_width(2);
    let line = chart
        .draw_series(DashedLineSeries::new(
            [(start, dlm.value), (end, dlm.value)],
            8,
            5,
            stroke,
        ))
        .map_err(text)?;
    if legend {
        line.label("U_AR / U: unique tokens AR needs for the DLM's best")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], stroke));
    }
    let pointing = if end > start { -1 } else { 1 };
    let head = EmptyElement::at((end, dlm.value))
        + Polygon::new(
            vec![(0, 0), (14 * pointing, -7), (14 * pointing, 7)],
            color.filled(),
        );
    chart.draw_series([head]).map_err(text)?;
    let middle = (start * end).sqrt();
    let label = EmptyElement::at((middle, dlm.value))
        + Text::new(
            ratio.describe(),
            (0, -10),
            font(20).pos(Pos::new(HPos::Center, VPos::Bottom)),
        );
    chart.draw_series([label]).map_err(text)?;
    Ok(())
}
