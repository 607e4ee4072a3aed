//! The frame every figure shares: what the figures draw from (`Context`), a figure
//! drawn the same way on any backend (`Figure`) and written as PNG and SVG, the font,
//! the study's colours, ranges, panel grids, labels and log-axis ticks.

use crate::crossover::table::CrossoverRow;
use crate::error::{AnalysisError, Result};
use crate::ingest::records::Run;
use crate::pairs::groups::Group;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Everything the figures draw from.
pub struct Context<'a> {
    pub runs: &'a [Run],
    pub groups: &'a [Group],
    pub crossovers: &'a [CrossoverRow],
    pub smooth: usize,
    /// The scaling-law fits; their figures are drawn only where a fit exists.
    pub fits: &'a crate::fits::results::Fits,
    /// Mixture-of-experts vs dense comparisons (empty without mixtures).
    pub moe: &'a [crate::moe::compare::MoeRow],
}

/// A figure drawn the same way on any backend.
pub trait Figure {
    /// File stem, e.g. `study_nano`.
    fn name(&self) -> String;
    /// One line for the report under the figure.
    fn caption(&self) -> String;
    fn size(&self) -> (u32, u32) {
        (1600, 1000)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// A figure written to disk.
#[derive(Clone, Debug, PartialEq)]
pub struct FigureFile {
    pub name: String,
    pub caption: String,
    pub png: PathBuf,
    pub svg: PathBuf,
}

/// What became of each figure the study expects.
#[derive(Clone, Debug, PartialEq)]
pub enum Rendered {
    Written(FigureFile),
    Skipped { name: String, reason: String },
}

/// The font family every figure uses; registered once per process.
pub const FONT: &str = "sans-serif";
static DEJAVU: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

pub(super) fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU)
                .map_err(|_| "the embedded DejaVu Sans font is invalid".to_string())
        })
        .clone()
}

/// A figure, or the reason its data are absent.
pub type Planned<F> = std::result::Result<F, Rendered>;

pub(super) fn render_or_skip(figure: Planned<impl Figure>, folder: &Path) -> Result<Rendered> {
    match figure {
        Ok(figure) => render(&figure, folder).map(Rendered::Written),
        Err(skipped) => Ok(skipped),
    }
}

pub fn skipped<F>(name: &str, reason: &str) -> Planned<F> {
    Err(Rendered::Skipped {
        name: name.into(),
        reason: reason.into(),
    })
}

/// Draw a figure as `<name>.png` and `<name>.svg`.
pub fn render(figure: &impl Figure, folder: &Path) -> Result<FigureFile> {
    let name = figure.name();
    let png = folder.join(format!("{name}.png"));
    let svg = folder.join(format!("{name}.svg"));
    {
        let root = BitMapBackend::new(&png, figure.size()).into_drawing_area();
        draw_on(figure, &root).map_err(|message| AnalysisError::Figure {
            path: png.clone(),
            message,
        })?;
    }
    {
        let root = SVGBackend::new(&svg, figure.size()).into_drawing_area();
        draw_on(figure, &root).map_err(|message| AnalysisError::Figure {
            path: svg.clone(),
            message,
        })?;
    }
    Ok(FigureFile {
        name,
        caption: figure.caption(),
        png,
        svg,
    })
}

/// White background, the figure, then flush to the file.
fn draw_on<DB: DrawingBackend>(
    figure: &impl Figure,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(text)?;
    figure.draw(root)?;
    root.present().map_err(text)
}

/// Plotters' errors as text (they carry the backend's error type).
pub fn text(error: impl std::fmt::Display) -> String {
    error.to_string()
}

/// Colour of an objective: AR in blues, DLM in reds, the AR controls in greens
/// (masked) and purples (dropout); `shade` in [0, 1] runs from light to dark, one
/// shade per unique-token budget (the study's figure).
pub fn objective_color(objective: &str, shade: f64) -> RGBColor {
    let (light, dark) = match objective {
        "dlm" => ((252, 146, 114), (103, 0, 13)),
        "ar" => ((158, 202, 225), (8, 48, 107)),
        o if o.starts_with("ar_masked") => ((161, 217, 155), (0, 68, 27)),
        o if o.starts_with("ar_dropout") => ((188, 189, 220), (63, 0, 125)),
        _ => ((189, 189, 189), (37, 37, 37)),
    };
    let t = shade.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| (f64::from(a) + t * (f64::from(b) - f64::from(a))).round() as u8;
    RGBColor(
        mix(light.0, dark.0),
        mix(light.1, dark.1),
        mix(light.2, dark.2),
    )
}

/// Shade for a budget among the budgets shown: the smallest lightest; a single budget
/// gets a strong mid-dark shade.
pub fn shade(budget: u64, budgets: &[u64]) -> f64 {
    match budgets.iter().position(|&b| b == budget) {
        Some(i) if budgets.len() > 1 => 0.35 + 0.65 * i as f64 / (budgets.len() - 1) as f64,
        _ => 0.75,
    }
}

/// Padded (min, max) of finite values; a flat or empty range still gets some height.
pub fn padded_range(values: impl Iterator<Item = f64>, log: bool) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return None;
    }
    if log {
        return Some((lo / 1.25, hi * 1.25));
    }
    let pad = if hi > lo {
        0.06 * (hi - lo)
    } else {
        0.05 * lo.abs().max(1e-3)
    };
    Some((lo - pad, hi + pad))
}

/// Title the figure, split it into an even grid with one panel per (task, metric), and
/// draw each with `draw(panel, task, metric, index)`.
pub fn titled_panels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    panels: &[(String, String)],
    mut draw: impl FnMut(&DrawingArea<DB, Shift>, &str, &str, usize) -> Result<(), String>,
) -> Result<(), String> {
    titled_panels_of(root, title, panels, |panel, (task, metric), index| {
        draw(panel, task, metric, index)
    })
}

/// Title the figure, split it into an even grid with one panel per item, and draw
/// each with `draw(panel, item, index)`.
pub fn titled_panels_of<DB: DrawingBackend, T>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    items: &[T],
    mut draw: impl FnMut(&DrawingArea<DB, Shift>, &T, usize) -> Result<(), String>,
) -> Result<(), String> {
    let area = root.titled(title, font(34)).map_err(text)?;
    let areas = area.split_evenly(grid(items.len()));
    for (index, (item, panel)) in items.iter().zip(&areas).enumerate() {
        draw(panel, item, index)?;
    }
    Ok(())
}

/// Rows x columns for n panels: at most 3 per row.
pub fn grid(n: usize) -> (usize, usize) {
    let columns = n.clamp(1, 3);
    (n.div_ceil(columns).max(1), columns)
}

/// Human title of a (task, metric) panel.
pub fn panel_title(task: &str, metric: &str) -> String {
    match (task, metric) {
        ("val_loss", _) => "validation loss".into(),
        (task, metric) => format!("{task} ({metric})"),
    }
}

/// Legend label of a series: objective and its unique-token budget.
pub fn series_label(objective: &str, unique_tokens: u64) -> String {
    format!(
        "{}, {} unique",
        objective_name(objective),
        crate::format::count(unique_tokens as f64)
    )
}

/// "DLM", "AR", "AR-masked(0.3)".
pub fn objective_name(objective: &str) -> String {
    match objective {
        "dlm" => "DLM".into(),
        "ar" => "AR".into(),
        other => other.replace("ar_", "AR-"),
    }
}

pub fn font(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

/// Base of a log-scaled x axis whose ticks fall inside the data: 10 across three or more
/// decades, otherwise 2 (a sweep's log2 milestones often span less than a decade, where
/// base-10 ticks would leave most of the axis unlabelled).
pub fn log_base(lo: f64, hi: f64) -> f64 {
    if hi / lo >= 1000.0 { 10.0 } else { 2.0 }
}

/// Tick marks of a log axis over [lo, hi]: `preferred` (the swept budgets or epoch
/// counts) when there are 2-10 inside the range, else 1-2-5 x 10^k (with every
/// integer multiple when that leaves fewer than three). Base-2 ticks would read 32.8k,
/// 65.5k, ... where the sweep has 25k, 50k, ...
pub fn log_ticks(preferred: &[f64], lo: f64, hi: f64) -> Vec<f64> {
    // Final epochs land near whole numbers (1.03, 4.02: whole batches per epoch), and
    // two of them would print on top of each other: one tick at the whole number.
    let whole = |v: f64| {
        if v >= 1.0 && (v.round() - v).abs() <= 0.05 * v {
            v.round()
        } else {
            v
        }
    };
    let mut inside: Vec<f64> = preferred
        .iter()
        .map(|&v| whole(v))
        .filter(|v| *v >= lo && *v <= hi)
        .collect();
    inside.sort_by(f64::total_cmp);
    inside.dedup();
    if (2..=10).contains(&inside.len()) {
        return inside;
    }
    let decades = |multiples: &[f64]| -> Vec<f64> {
        let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        (first..=last)
            .flat_map(|k| multiples.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|v| *v >= lo && *v <= hi)
            .collect()
    };
    let ticks = decades(&[1.0, 2.0, 5.0]);
    if ticks.len() >= 3 {
        return ticks;
    }
    decades(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
}

/// A vertical error bar in data coordinates with caps 16 pixels wide.
pub fn error_bar<DB: DrawingBackend, CT>(
    chart: &mut ChartContext<'_, DB, CT>,
    x: f64,
    low: f64,
    high: f64,
    color: RGBColor,
) -> Result<(), String>
where
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
{
    let stroke = color.mix(0.8).stroke_width(2);
    chart
        .draw_series([PathElement::new([(x, low), (x, high)], stroke)])
        .map_err(text)?;
    chart
        .draw_series(
            [low, high]
                .map(|y| EmptyElement::at((x, y)) + PathElement::new([(-8, 0), (8, 0)], stroke)),
        )
        .map_err(text)?;
    Ok(())
}

/// Unknown standard errors draw no band.
pub fn finite(value: f64) -> f64 {
    if value.is_finite() { value } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::log_ticks;

    #[test]
    fn log_ticks_cases() {
        let cases: [(&[f64], f64, f64, Vec<f64>); 4] = [
            // Final epochs a batch past a whole number share its tick.
            (
                &[1.0, 1.03, 4.01, 4.02, 16.0, 64.0],
                0.9,
                70.0,
                vec![1.0, 4.0, 16.0, 64.0],
            ),
            // The swept budgets, not base-2 or decade ticks.
            (&[25e3, 50e3, 100e3], 2e4, 1.2e5, vec![25e3, 50e3, 100e3]),
            // One preferred value: 1-2-5 decades instead.
            (
                &[3.0],
                1.0,
                100.0,
                vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0],
            ),
            // Fractions of an epoch are kept as they are.
            (&[0.25, 0.5, 1.0], 0.2, 1.1, vec![0.25, 0.5, 1.0]),
        ];
        for (preferred, lo, hi, expected) in cases {
            assert_eq!(log_ticks(preferred, lo, hi), expected, "{preferred:?}");
        }
    }
}
