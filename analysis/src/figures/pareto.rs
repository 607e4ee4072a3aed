//! Pareto frontier (PB-style, reference/recipes.md): the best validation loss any run
//! of an objective reached with at most C training FLOPs, as a staircase over C, with
//! every evaluation as a faint point. One frontier per objective and unique-token
//! budget (Prabhudesai et al.'s frontier is per budget): pooling budgets would make the
//! frontier the largest-data run and hide AR's overfitting at small budgets.

use super::frame::{
    Context, Figure, Planned, font, objective_color, padded_range, series_label, shade, skipped,
    text,
};
use crate::pairs::groups::objective_rank;
use plotters::coord::Shift;
use plotters::prelude::*;

/// The evaluations of one objective at one unique-token budget.
pub struct Frontier {
    pub objective: String,
    pub budget: u64,
    /// Every (flops, validation loss) evaluation.
    pub points: Vec<(f64, f64)>,
}

pub struct Pareto {
    pub frontiers: Vec<Frontier>,
    budgets: Vec<u64>,
}

pub fn figure(context: &Context<'_>) -> Planned<Pareto> {
    let mut keys: Vec<(u64, String)> = context
        .runs
        .iter()
        .map(|r| (r.config.data.unique_tokens.get(), r.objective.clone()))
        .collect();
    keys.sort_by_key(|(budget, label)| (objective_rank(label), label.clone(), *budget));
    keys.dedup();
    let frontiers: Vec<Frontier> = keys
        .into_iter()
        .map(|(budget, objective)| {
            let points = context
                .runs
                .iter()
                .filter(|r| r.objective == objective && r.config.data.unique_tokens.get() == budget)
                .flat_map(|r| r.eval.iter())
                .filter(|e| {
                    e.task == "val_loss"
                        && e.metric == "loss"
                        && e.flops > 0.0
                        && e.value.is_finite()
                })
                .map(|e| (e.flops, e.value))
                .collect();
            Frontier {
                objective,
                budget,
                points,
            }
        })
        .filter(|f: &Frontier| !f.points.is_empty())
        .collect();
    if frontiers.is_empty() {
        return skipped("pareto", "no validation loss with FLOPs evaluated");
    }
    let mut budgets: Vec<u64> = frontiers.iter().map(|f| f.budget).collect();
    budgets.sort_unstable();
    budgets.dedup();
    Ok(Pareto { frontiers, budgets })
}

/// The frontier: running minimum of the loss over evaluations sorted by FLOPs, as the
/// corners of a staircase (it only steps down where a new best appears).
pub fn frontier(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut steps: Vec<(f64, f64)> = Vec::new();
    for (flops, loss) in sorted {
        match steps.last().copied() {
            None => steps.push((flops, loss)),
            Some((_, best)) if loss < best => {
                steps.push((flops, best));
                steps.push((flops, loss));
            }
            Some(_) => {}
        }
    }
    if let (Some(&(_, best)), Some(&(last, _))) = (
        steps.last(),
        points.iter().max_by(|a, b| a.0.total_cmp(&b.0)),
    ) {
        steps.push((last, best));
    }
    steps
}

impl Figure for Pareto {
    fn name(&self) -> String {
        "pareto".into()
    }

    fn caption(&self) -> String {
        "Pareto frontier: best validation loss reached with at most C training FLOPs, one staircase per objective and unique-token budget (AR blue, DLM red, darker = more unique tokens; points: all evaluations).".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let all = || self.frontiers.iter().flat_map(|f| f.points.iter());
        let (Some((x0, x1)), Some((y0, y1))) = (
            padded_range(all().map(|p| p.0), true),
            padded_range(all().map(|p| p.1), false),
        ) else {
            return Ok(());
        };
        let mut chart = ChartBuilder::on(root)
            .caption("Best validation loss at <= C FLOPs", font(34))
            .margin(24)
            .x_label_area_size(70)
            .y_label_area_size(100)
            .build_cartesian_2d(
                (x0..x1).log_scale().base(super::frame::log_base(x0, x1)),
                y0..y1,
            )
            .map_err(text)?;
        chart
            .configure_mesh()
            .x_desc("training FLOPs (C)")
            .y_desc("best validation loss")
            .axis_desc_style(font(26))
            .label_style(font(22))
            .x_labels(8)
            .x_label_formatter(&|x| format!("{x:.1e}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(text)?;
        for series in &self.frontiers {
            let points = &series.points;
            let color = objective_color(&series.objective, shade(series.budget, &self.budgets));
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&p| Circle::new(p, 4, color.mix(0.3).filled())),
                )
                .map_err(text)?;
            chart
                .draw_series(LineSeries::new(frontier(points), color.stroke_width(4)))
                .map_err(text)?
                .label(series_label(&series.objective, series.budget))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], color.stroke_width(4))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(font(22))
            .draw()
            .map_err(text)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn frontier_is_a_falling_staircase() {
        let points = [(4.0, 2.5), (1.0, 3.0), (2.0, 3.2), (3.0, 2.0), (5.0, 2.2)];
        let steps = super::frontier(&points);
        assert_eq!(steps, vec![(1.0, 3.0), (3.0, 3.0), (3.0, 2.0), (5.0, 2.0)]);
    }
}
