//! The crossover map: unique tokens (columns) x model size (rows; one sub-row per
//! other varying setting, e.g. each epoch count of a grid over epochs), each cell
//! coloured by the epochs at which the DLM overtakes AR for good, with the 90%
//! interval; grey where it is not reached, green where the DLM leads from the first
//! evaluation. One panel per headline metric and kind (early-stopped, the headline,
//! then raw).
//!
//! Cells are laid out in pixels rather than on a plotters chart: a categorical chart
//! with one row or one column collapses to zero height (issue 15), and a table of
//! coloured cells needs no axis.

use super::frame::{Context, Figure, Planned, font, panel_title, skipped, text};
use crate::crossover::detection::{Kind, Outcome};
use crate::crossover::table::CrossoverRow;
use crate::crossover::uncertainty::Verdict;
use crate::pairs::curves::Axis;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A row of the map: a model size and the other settings of its groups.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MapRow {
    pub params: Option<u64>,
    pub preset: String,
    pub variant: String,
}

impl MapRow {
    /// The map row of a crossover; `by_variant` false leaves the other settings out
    /// (they follow from the budget, as epochs do in a zip of budgets and epochs).
    fn of(row: &CrossoverRow, by_variant: bool) -> Self {
        Self {
            params: row.params,
            preset: row.preset.clone(),
            variant: if by_variant {
                row.variant.clone()
            } else {
                String::new()
            },
        }
    }

    fn label(&self) -> String {
        if self.variant.is_empty() {
            self.preset.clone()
        } else {
            format!("{}, {}", self.preset, self.variant)
        }
    }
}

pub struct CrossoverMap<'a> {
    rows: Vec<&'a CrossoverRow>,
    /// (task, metric, kind) per panel.
    panels: Vec<(String, String, Kind)>,
    pub budgets: Vec<u64>,
    /// Largest model first, so the larger models sit at the top of the map.
    pub map_rows: Vec<MapRow>,
    /// Whether rows split by the other settings: only when some (model, budget) cell
    /// holds more than one group, so a sweep whose epochs follow its budgets (the demo)
    /// gets one row per model instead of rows that are mostly empty.
    by_variant: bool,
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
    let found = crate::pairs::curves::sorted_metrics(
        rows.iter().map(|r| (r.task.clone(), r.metric.clone())),
    );
    let panels = crate::pairs::curves::headline_metrics(&found)
        .into_iter()
        .flat_map(|(task, metric)| Kind::ALL.map(|kind| (task.clone(), metric.clone(), kind)))
        .collect();
    let mut budgets: Vec<u64> = rows.iter().map(|r| r.unique_tokens).collect();
    budgets.sort_unstable();
    budgets.dedup();
    let cells: std::collections::BTreeSet<(Option<u64>, &str, u64, &str)> = rows
        .iter()
        .map(|r| {
            (
                r.params,
                r.preset.as_str(),
                r.unique_tokens,
                r.variant.as_str(),
            )
        })
        .collect();
    let per_cell: std::collections::BTreeSet<(Option<u64>, &str, u64)> = cells
        .iter()
        .map(|&(params, preset, budget, _)| (params, preset, budget))
        .collect();
    let by_variant = cells.len() > per_cell.len();
    let mut map_rows: Vec<MapRow> = rows.iter().map(|r| MapRow::of(r, by_variant)).collect();
    map_rows.sort();
    map_rows.dedup();
    // Largest model on top; within a model, its settings in natural order (epochs=2
    // before epochs=10).
    map_rows.sort_by(|a, b| {
        b.params
            .cmp(&a.params)
            .then_with(|| a.preset.cmp(&b.preset))
            .then_with(|| natural_order(&a.variant, &b.variant))
    });
    Ok(CrossoverMap {
        rows,
        panels,
        budgets,
        map_rows,
        by_variant,
    })
}

/// Compare labels like `epochs=2` and `epochs=10` by their numbers.
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<String> { s.split(['=', ' ', ',']).map(str::to_string).collect() };
    for (x, y) in parts(a).iter().zip(parts(b).iter()) {
        let order = match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            _ => x.cmp(y),
        };
        if order.is_ne() {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// Cell colour and its two lines of text.
fn cell(row: Option<&CrossoverRow>, scale: (f64, f64)) -> (RGBColor, String, String) {
    let Some(row) = row else {
        return (RGBColor(255, 255, 255), "no pair".into(), String::new());
    };
    let partial = if row.complete { "" } else { "*" };
    let epochs = crate::format::epochs;
    let (color, line1, mut line2) = match row.outcome() {
        Outcome::Crossed { x, .. } => {
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
                        epochs(v)
                    }
                };
                format!("[{}, {}]", f(row.estimate.low), f(row.estimate.high))
            };
            (heat(t), format!("{} ep{partial}", epochs(x)), interval)
        }
        Outcome::AheadFromStart { .. } => (
            RGBColor(116, 196, 118),
            format!("ahead{partial}"),
            String::new(),
        ),
        Outcome::NotReached { gap } => (
            RGBColor(215, 215, 215),
            format!("not reached{partial}"),
            format!("gap {gap:+.3}"),
        ),
        Outcome::NoOverlap => (RGBColor(255, 255, 255), "no overlap".into(), String::new()),
    };
    if matches!(row.verdict(), Verdict::NoEvidence) {
        line2 = "no evidence".into();
    }
    (color, line1, line2)
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
        "Crossover map: epochs at which the DLM overtakes AR for good, by unique tokens and model size (one row per other setting, e.g. epochs), early-stopped (running bests, the headline) and raw (curves as trained); darker = later, with the 90% bootstrap interval; \"no evidence\" where the gap at the end is inside the noise; * = partial runs.".into()
    }

    fn size(&self) -> (u32, u32) {
        // Enough height for every row of every panel row at about 44 pixels a row.
        let panel_rows = self.panels.len().div_ceil(2) as u32;
        let height = 140 + panel_rows * (130 + 44 * self.map_rows.len() as u32);
        (1600, height.max(1000))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let area = root
            .titled("Crossover map: epochs until the DLM overtakes AR", font(34))
            .map_err(text)?;
        let columns = self.panels.len().clamp(1, 2);
        let areas = area.split_evenly((self.panels.len().div_ceil(columns), columns));
        for ((task, metric, kind), panel) in self.panels.iter().zip(&areas) {
            self.draw_panel(panel, task, metric, *kind)?;
        }
        Ok(())
    }
}

/// Where a panel's grid of cells sits, in pixels: between `left` and `right`, `top` and
/// `bottom`.
#[derive(Clone, Copy, Debug)]
struct Layout {
    left: i32,
    top: i32,
    right: i32,
    bottom: i32,
    cell_width: i32,
    cell_height: i32,
}

/// Text of `size` centred on its position.
fn centered(size: u32) -> TextStyle<'static> {
    font(size).pos(Pos::new(HPos::Center, VPos::Center))
}

impl CrossoverMap<'_> {
    /// One (task, metric) panel of one kind: its title, a cell per (map row, budget),
    /// and the budgets below.
    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        task: &str,
        metric: &str,
        kind: Kind,
    ) -> Result<(), String> {
        let of_panel: Vec<&CrossoverRow> = self
            .rows
            .iter()
            .copied()
            .filter(|r| r.task == task && r.metric == metric && r.kind == kind)
            .collect();
        let crossed = of_panel.iter().filter_map(|r| match r.outcome() {
            Outcome::Crossed { x, .. } if x > 0.0 => Some(x.ln()),
            _ => None,
        });
        let scale = crossed.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let (width, height) = area.dim_in_pixel();
        let (width, height) = (width as i32, height as i32);
        let labels: Vec<String> = self.map_rows.iter().map(MapRow::label).collect();
        let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(4) as i32;
        // Pixel layout: title on top, row labels on the left, budgets below.
        let (left, top, right, bottom) = (
            (longest * 11 + 24).min(width / 3),
            48,
            width - 16,
            height - 64,
        );
        let title = format!(
            "{} ({})",
            panel_title(task, metric),
            kind.name().replace('_', "-")
        );
        area.draw(&Text::new(title, (width / 2, 22), centered(26)))
            .map_err(text)?;
        let (columns, rows) = (self.budgets.len() as i32, self.map_rows.len() as i32);
        let layout = Layout {
            left,
            top,
            right,
            bottom,
            cell_width: (right - left) / columns.max(1),
            cell_height: (bottom - top) / rows.max(1),
        };
        self.draw_cells(area, &layout, &of_panel, &labels, scale)?;
        self.draw_budget_axis(area, &layout)
    }

    /// One row of cells per map row, its label on the left: each cell coloured by when
    /// the DLM crossed, with its two lines of text.
    fn draw_cells<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        layout: &Layout,
        of_panel: &[&CrossoverRow],
        labels: &[String],
        scale: (f64, f64),
    ) -> Result<(), String> {
        let Layout {
            left,
            top,
            cell_width,
            cell_height,
            ..
        } = *layout;
        let size = (cell_height / 3).clamp(11, 19) as u32;
        for (j, map_row) in self.map_rows.iter().enumerate() {
            let y0 = top + j as i32 * cell_height;
            let label = font(18).pos(Pos::new(HPos::Right, VPos::Center));
            area.draw(&Text::new(
                labels[j].clone(),
                (left - 8, y0 + cell_height / 2),
                label,
            ))
            .map_err(text)?;
            for (i, &budget) in self.budgets.iter().enumerate() {
                let x0 = left + i as i32 * cell_width;
                let row = of_panel.iter().copied().find(|r| {
                    r.unique_tokens == budget && MapRow::of(r, self.by_variant) == *map_row
                });
                let (color, line1, line2) = cell(row, scale);
                let corners = [(x0, y0), (x0 + cell_width, y0 + cell_height)];
                area.draw(&Rectangle::new(corners, color.filled()))
                    .map_err(text)?;
                area.draw(&Rectangle::new(corners, BLACK.mix(0.3).stroke_width(1)))
                    .map_err(text)?;
                let (cx, cy) = (x0 + cell_width / 2, y0 + cell_height / 2);
                let offset = size as i32 * 6 / 10;
                area.draw(&Text::new(line1, (cx, cy - offset), centered(size)))
                    .map_err(text)?;
                area.draw(&Text::new(line2, (cx, cy + offset), centered(size)))
                    .map_err(text)?;
            }
        }
        Ok(())
    }

    /// The budgets under their columns, and the axis' name.
    fn draw_budget_axis<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        layout: &Layout,
    ) -> Result<(), String> {
        let Layout {
            left,
            right,
            bottom,
            cell_width,
            ..
        } = *layout;
        for (i, &budget) in self.budgets.iter().enumerate() {
            let cx = left + i as i32 * cell_width + cell_width / 2;
            let label = crate::format::count(budget as f64);
            area.draw(&Text::new(label, (cx, bottom + 16), centered(18)))
                .map_err(text)?;
        }
        area.draw(&Text::new(
            "unique tokens".to_string(),
            ((left + right) / 2, bottom + 44),
            centered(20),
        ))
        .map_err(text)?;
        Ok(())
    }
}
