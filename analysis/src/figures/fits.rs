//! The fits' figures (issue 16): final validation loss vs epochs with the fitted
//! data-constrained law, one panel per objective; and the critical compute C_crit vs
//! unique tokens on log-log axes with its power law. (The data potential is in
//! `potential.rs`.) Drawn only where the fit exists: a sweep not laid out for fits
//! gets its "not fitted" lines in the report instead of empty panels.

use super::frame::{
    Context, Figure, error_bar, font, log_ticks, objective_color, padded_range, shade, text,
};
use crate::crossover::detection::Kind;
use crate::fits::critical::PowerLaw;
use crate::fits::points::Family;
use crate::fits::results::{CriticalFit, LawFit};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Validation loss at the end of training vs epochs, points per budget and the fitted
/// law's curve through each budget, one panel per objective of one model.
pub struct LossVsEpochs<'a> {
    name: String,
    family: Family,
    laws: Vec<&'a LawFit>,
}

/// One figure per model (family) with at least one fitted law.
pub fn loss_vs_epochs<'a>(context: &'a Context<'a>) -> Vec<LossVsEpochs<'a>> {
    let mut families: Vec<&Family> = context
        .fits
        .laws
        .iter()
        .filter(|l| l.fitted.is_some())
        .map(|l| &l.family)
        .collect();
    families.dedup();
    let several = families.len() > 1;
    families
        .into_iter()
        .map(|family| LossVsEpochs {
            name: if several {
                format!("fits_loss_vs_epochs_{}", family.slug())
            } else {
                "fits_loss_vs_epochs".into()
            },
            family: family.clone(),
            laws: context
                .fits
                .laws
                .iter()
                .filter(|l| &l.family == family && !l.points.is_empty())
                .collect(),
        })
        .collect()
}

impl Figure for LossVsEpochs<'_> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn caption(&self) -> String {
        format!(
            "{}: final validation loss of each done run vs the epochs it trained (points, darker = more unique tokens), and the fitted data-constrained law L = E + B / D'^beta, D' = U + U R_D* (1 - exp(-(epochs - 1) / R_D*)) through each budget (lines); the dashed line marks epochs = R_D* + 1, where repeats have lost 63% of their value. Intervals are 90% (bootstrap of the observed losses).",
            self.family.label()
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let title = format!(
            "Validation loss at the end of training vs epochs, {}",
            self.family.label()
        );
        super::frame::titled_panels_of(root, &title, &self.laws, |panel, item, _| {
            draw_law_panel(panel, item)
        })
    }
}

fn law_caption(law: &LawFit) -> String {
    let name = super::frame::objective_name(&law.objective);
    let Some(fitted) = law.fitted else {
        return format!("{name}: not fitted");
    };
    // Three significant digits of the estimate; the interval at the same precision.
    let short = |x: f64, reference: f64| {
        let decimals = (2 - reference.abs().log10().floor() as i32).clamp(0, 6) as usize;
        format!("{x:.decimals$}")
    };
    let band = |b: Option<(f64, f64)>, estimate: f64| {
        b.map(|(lo, hi)| format!(" [{}, {}]", short(lo, estimate), short(hi, estimate)))
            .unwrap_or_default()
    };
    let (rd, beta) = (fitted.law.rd, fitted.law.beta);
    let rd_text = match law.rd_lower_bound() {
        Some(bound) => format!("> {} (unresolved)", short(bound, bound)),
        None => format!(
            "= {}{}",
            short(rd, rd),
            band(law.interval.map(|i| i.rd), rd)
        ),
    };
    format!(
        "{name}: R_D* at fixed N {rd_text}, beta = {}{}",
        short(beta, beta),
        band(law.interval.map(|i| i.beta), beta),
    )
}

/// One law's panel: each run's final loss against its epochs, the fitted law through
/// each budget, and the epochs = R_D* + 1 line.
fn draw_law_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    law: &LawFit,
) -> Result<(), String> {
    let mut budgets: Vec<u64> = law.points.iter().map(|p| p.unique_tokens as u64).collect();
    budgets.sort_unstable();
    budgets.dedup();
    let curves = law_curves(law, &budgets);
    let epoch_counts: Vec<f64> = law.points.iter().map(|p| p.epochs).collect();
    let xs = law.points.iter().map(|p| p.epochs);
    let ys = law
        .points
        .iter()
        .map(|p| p.loss)
        .chain(curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1)));
    let (Some((x0, x1)), Some((y0, y1))) = (padded_range(xs, true), padded_range(ys, false)) else {
        return Ok(());
    };
    let mut chart = ChartBuilder::on(area)
        .caption(law_caption(law), font(24))
        .margin(16)
        .x_label_area_size(64)
        .y_label_area_size(96)
        .build_cartesian_2d(
            (x0..x1)
                .log_scale()
                .with_key_points(log_ticks(&epoch_counts, x0, x1)),
            y0..y1,
        )
        .map_err(text)?;
    chart
        .configure_mesh()
        .x_desc("epochs (passes over the unique tokens)")
        .y_desc("final validation loss (nats/token)")
        .axis_desc_style(font(24))
        .label_style(font(20))
        .x_label_formatter(&|x| crate::format::epochs(*x))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(text)?;
    for (u, line) in &curves {
        let color = objective_color(&law.objective, shade(*u, &budgets));
        chart
            .draw_series(LineSeries::new(line.iter().copied(), color.stroke_width(3)))
            .map_err(text)?;
    }
    draw_law_points(&mut chart, law, &budgets)?;
    draw_rd_line(&mut chart, law, (x0, x1), (y0, y1))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(font(20))
        .draw()
        .map_err(text)
}

/// The fitted law through each budget over the points' epochs (log-spaced, 121
/// points); none without a fit.
fn law_curves(law: &LawFit, budgets: &[u64]) -> Vec<(u64, Vec<(f64, f64)>)> {
    match law.fitted {
        Some(fitted) => {
            let (lo, hi) = law
                .points
                .iter()
                .fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
                    (lo.min(p.epochs), hi.max(p.epochs))
                });
            budgets
                .iter()
                .map(|&u| {
                    let line = (0..=120)
                        .map(|k| {
                            let epochs = lo * (hi / lo).powf(f64::from(k) / 120.0);
                            (epochs, fitted.law.loss(u as f64, epochs))
                        })
                        .collect();
                    (u, line)
                })
                .collect()
        }
        None => Vec::new(),
    }
}

/// Each budget's runs as points, one legend entry per budget.
fn draw_law_points<DB: DrawingBackend, CT>(
    chart: &mut ChartContext<'_, DB, CT>,
    law: &LawFit,
    budgets: &[u64],
) -> Result<(), String>
where
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    for &u in budgets {
        let color = objective_color(&law.objective, shade(u, budgets));
        let points = law
            .points
            .iter()
            .filter(|p| p.unique_tokens as u64 == u)
            .map(|p| Circle::new((p.epochs, p.loss), 7, color.filled()));
        chart
            .draw_series(points)
            .map_err(text)?
            .label(format!(
                "U = {} unique tokens",
                crate::format::count(u as f64)
            ))
            .legend(move |(x, y)| Circle::new((x + 12, y), 7, color.filled()));
    }
    Ok(())
}

/// The dashed line at epochs = R_D* + 1 where the fit resolves R_D* inside the axis.
fn draw_rd_line<DB: DrawingBackend, CT>(
    chart: &mut ChartContext<'_, DB, CT>,
    law: &LawFit,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Result<(), String>
where
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    if let (Some(fitted), None) = (law.fitted, law.rd_lower_bound()) {
        let at = fitted.law.rd + 1.0;
        if at > x0 && at < x1 {
            chart
                .draw_series(DashedLineSeries::new(
                    [(at, y0), (at, y1)],
                    10,
                    8,
                    BLACK.mix(0.5).stroke_width(2),
                ))
                .map_err(text)?
                .label("epochs = R_D* + 1")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], BLACK.mix(0.5)));
        }
    }
    Ok(())
}

/// C_crit vs U, log-log, with the fitted power law (raw and early-stopped).
pub struct CriticalCompute<'a> {
    fits: Vec<&'a CriticalFit>,
}

/// Drawn when some model has a fitted C_crit law.
pub fn critical_compute<'a>(context: &'a Context<'a>) -> Option<CriticalCompute<'a>> {
    let fitted: Vec<&Family> = context
        .fits
        .critical
        .iter()
        .filter(|f| f.law.is_some())
        .map(|f| &f.family)
        .collect();
    let fits: Vec<&CriticalFit> = context
        .fits
        .critical
        .iter()
        .filter(|f| fitted.contains(&&f.family) && !f.budgets.is_empty())
        .filter(|f| f.law.is_some() || !f.crossings().is_empty())
        .collect();
    (!fits.is_empty()).then_some(CriticalCompute { fits })
}

impl Figure for CriticalCompute<'_> {
    fn name(&self) -> String {
        "fits_critical_compute".into()
    }

    fn caption(&self) -> String {
        "Critical compute: per unique-token budget, the training FLOPs at which the DLM's validation loss overtakes AR's (crossover.csv, FLOPs axis, the longest run at each budget), with its 90% bootstrap interval; lines: the least-squares power law C_crit = a U^b. Raw (filled): the losses as trained; early-stopped (hollow): the DLM passes AR's best checkpoint. Triangles: not reached by the end of the sweep (the crossing is above).".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let budgets = self
            .fits
            .iter()
            .flat_map(|f| f.budgets.iter().map(|b| b.unique_tokens as f64));
        let values = self.fits.iter().flat_map(|f| {
            f.budgets.iter().flat_map(|b| {
                let c = b.crossing;
                [
                    c.map_or(b.end_flops, |c| c.flops),
                    c.map_or(f64::NAN, |c| c.low),
                    c.map_or(f64::NAN, |c| c.high),
                ]
            })
        });
        let swept: Vec<f64> = budgets.clone().collect();
        let (Some((x0, x1)), Some((y0, y1))) =
            (padded_range(budgets, true), padded_range(values, true))
        else {
            return Ok(());
        };
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Critical compute: where the DLM overtakes AR on validation loss",
                font(34),
            )
            .margin(24)
            .x_label_area_size(70)
            .y_label_area_size(120)
            .build_cartesian_2d(
                (x0..x1)
                    .log_scale()
                    .with_key_points(log_ticks(&swept, x0, x1)),
                (y0..y1).log_scale().with_key_points(log_ticks(&[], y0, y1)),
            )
            .map_err(text)?;
        chart
            .configure_mesh()
            .x_desc("unique tokens U")
            .y_desc("critical compute C_crit (training FLOPs)")
            .axis_desc_style(font(26))
            .label_style(font(22))
            .x_label_formatter(&|x| crate::format::count(*x))
            .y_label_formatter(&|y| format!("{y:.1e}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(text)?;
        let mut families: Vec<&Family> = self.fits.iter().map(|f| &f.family).collect();
        families.dedup();
        let ranks: Vec<u64> = (0..families.len() as u64).collect();
        // Early-stopped first, so the raw fit (the headline) is drawn on top.
        let mut ordered = self.fits.clone();
        ordered.sort_by_key(|f| f.kind != Kind::EarlyStopped);
        for fit in ordered {
            let rank = families.iter().position(|f| *f == &fit.family).unwrap_or(0) as u64;
            let tone = shade(rank, &ranks);
            let color = match fit.kind {
                Kind::Raw => objective_color("dlm", tone),
                Kind::EarlyStopped => objective_color("ar_masked", tone),
            };
            draw_critical(&mut chart, fit, color, (x0, x1), families.len() > 1)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(font(22))
            .draw()
            .map_err(text)
    }
}

/// One model and kind: error bars, points, censored triangles and the law.
fn draw_critical<DB: DrawingBackend, CT>(
    chart: &mut ChartContext<'_, DB, CT>,
    fit: &CriticalFit,
    color: RGBColor,
    (x0, x1): (f64, f64),
    name_model: bool,
) -> Result<(), String>
where
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    let kind = match fit.kind {
        Kind::Raw => "raw",
        Kind::EarlyStopped => "early-stopped",
    };
    let model = if name_model {
        format!("{}, ", fit.family.label())
    } else {
        String::new()
    };
    let series = format!("{model}{kind}");
    for c in fit.crossings() {
        if c.low > 0.0 && c.high.is_finite() && c.high > 0.0 {
            error_bar(chart, c.unique_tokens, c.low, c.high, color)?;
        }
    }
    // Raw: a dot; early-stopped: a wider ring, visible around the dot where they agree.
    let (style, radius) = match fit.kind {
        Kind::Raw => (color.filled(), 9),
        Kind::EarlyStopped => (color.stroke_width(3), 15),
    };
    chart
        .draw_series(
            fit.crossings()
                .iter()
                .map(|c| Circle::new((c.unique_tokens, c.flops), radius, style)),
        )
        .map_err(text)?
        .label(format!("{series} crossing"))
        .legend(move |(x, y)| Circle::new((x + 12, y), 9, style));
    draw_censored(chart, fit, color, &series)?;
    if let Some(law) = fit.law {
        draw_power_law(chart, fit, law, color, (x0, x1), &series)?;
    }
    Ok(())
}

/// Budgets where the DLM did not cross inside the run: a triangle at the run's last
/// FLOPs (the crossing is above).
fn draw_censored<DB: DrawingBackend, CT>(
    chart: &mut ChartContext<'_, DB, CT>,
    fit: &CriticalFit,
    color: RGBColor,
    series: &str,
) -> Result<(), String>
where
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    let censored: Vec<(f64, f64)> = fit
        .budgets
        .iter()
        .filter(|b| b.crossing.is_none() && b.end_flops > 0.0)
        .map(|b| (b.unique_tokens as f64, b.end_flops))
        .collect();
    if !censored.is_empty() {
        chart
            .draw_series(
                censored
                    .iter()
                    .map(|&p| TriangleMarker::new(p, 11, color.stroke_width(3))),
            )
            .map_err(text)?
            .label(format!("{series}: not reached (above)"))
            .legend(move |(x, y)| TriangleMarker::new((x + 12, y), 9, color.stroke_width(3)));
    }
    Ok(())
}

/// The fitted C_crit = a U^b over [x0, x1] (raw solid, early-stopped dashed), its
/// exponent's interval in the legend.
fn draw_power_law<DB: DrawingBackend, CT>(
    chart: &mut ChartContext<'_, DB, CT>,
    fit: &CriticalFit,
    law: PowerLaw,
    color: RGBColor,
    (x0, x1): (f64, f64),
    series: &str,
) -> Result<(), String>
where
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    let b_band = fit
        .interval
        .map(|(_, (lo, hi))| format!(" [{lo:.2}, {hi:.2}]"))
        .unwrap_or_default();
    let line: Vec<(f64, f64)> = (0..=60)
        .map(|k| {
            let u = x0 * (x1 / x0).powf(f64::from(k) / 60.0);
            (u, law.at(u))
        })
        .collect();
    let label = format!("{series}: C_crit = {:.2e} U^{:.2}{b_band}", law.a, law.b);
    let stroke = color.stroke_width(3);
    let drawn = match fit.kind {
        Kind::Raw => chart.draw_series(LineSeries::new(line, stroke)),
        Kind::EarlyStopped => chart.draw_series(DashedLineSeries::new(line, 14, 10, stroke)),
    };
    drawn
        .map_err(text)?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], stroke));
    Ok(())
}
