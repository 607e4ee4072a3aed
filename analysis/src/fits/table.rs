//! The fits as rows, one per estimate (fits.csv and the report's "Fits" section).

use super::potential::{Ratio, times};
use super::results::{CriticalFit, Fits, LawFit, PotentialFit};
use crate::crossover::detection::{Kind, Outcome};
use crate::format;

/// How a row's numbers read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Plain,
    Flops,
    Ratio,
}

/// One line of fits.csv. `censored` is `above` when the true value is larger than
/// `estimate` (a bound), `below` when it is at most `estimate`, empty otherwise; a fit
/// the sweep lacks the points for has no estimate and says why in `note`.
#[derive(Clone, Debug, PartialEq)]
pub struct FitRow {
    pub model: String,
    pub objective: String,
    pub quantity: String,
    pub task: String,
    pub metric: String,
    pub unique_tokens: Option<u64>,
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    pub censored: &'static str,
    pub points: usize,
    pub method: String,
    pub note: String,
    pub unit: Unit,
}

impl FitRow {
    fn new(model: String, objective: &str, quantity: &str, unit: Unit) -> Self {
        Self {
            model,
            objective: objective.into(),
            quantity: quantity.into(),
            task: String::new(),
            metric: String::new(),
            unique_tokens: None,
            estimate: f64::NAN,
            low: f64::NAN,
            high: f64::NAN,
            censored: "",
            points: 0,
            method: String::new(),
            note: String::new(),
            unit,
        }
    }

    /// "15.4 [12.0, 19.1]", "more than 8.00x", "-".
    pub fn estimate_text(&self) -> String {
        let f = |x: f64| match self.unit {
            _ if x.is_infinite() => format::count(x),
            Unit::Plain => number_like(x, self.estimate),
            Unit::Flops => format!("{x:.3e}"),
            Unit::Ratio => format!("{}x", times(x)),
        };
        if self.estimate.is_nan() {
            return "-".into();
        }
        let point = match self.censored {
            "above" => format!("more than {}", f(self.estimate)),
            "below" => format!("at most {}", f(self.estimate)),
            _ => f(self.estimate),
        };
        // No interval, or one that is all beyond a censored estimate.
        if self.low.is_nan() || (self.low.is_infinite() && self.high.is_infinite()) {
            return point;
        }
        format!("{point} [{}, {}]", f(self.low), f(self.high))
    }
}

/// Four significant digits, in exponent form when very large or small.
pub fn number(x: f64) -> String {
    number_like(x, x)
}

/// `x` with as many decimals as four significant digits of `reference` need, so an
/// interval reads with its estimate's precision: "1.000 [0.950, 1.049]".
pub fn number_like(x: f64, reference: f64) -> String {
    let magnitude = reference.abs();
    if !x.is_finite() {
        return format::count(x);
    }
    if magnitude != 0.0 && !(1e-3..1e4).contains(&magnitude) {
        return format!("{x:.3e}");
    }
    let decimals = if magnitude == 0.0 {
        4
    } else {
        (3 - magnitude.log10().floor() as i32).clamp(0, 6) as usize
    };
    format!("{x:.decimals$}")
}

fn law_method(fits: &Fits, fit: &LawFit) -> String {
    let starts = fit.fitted.map_or(0, |f| f.starts);
    let interval = match &fit.interval {
        Some(i) if fits.draws > super::law::MAX_FIT_DRAWS => format!(
            "; interval: bootstrap of the observed losses, {} refits (capped from {}), each jittered by max(its stderr, the pure error between seeds; the residual RMS with one run per cell)",
            i.draws, fits.draws
        ),
        Some(i) => format!(
            "; interval: bootstrap of the observed losses, {} refits, each jittered by max(its stderr, the pure error between seeds; the residual RMS with one run per cell)",
            i.draws
        ),
        None => "; no interval".into(),
    };
    format!(
        "Huber (delta {}) on ln L, L-BFGS (argmin) from {starts} converged starts{interval}",
        super::law::HUBER_DELTA
    )
}

fn law_rows(fits: &Fits, fit: &LawFit) -> Vec<FitRow> {
    let model = fit.family.label();
    let mut rd = FitRow::new(
        model.clone(),
        &fit.objective,
        super::law::RD_QUANTITY,
        Unit::Plain,
    );
    rd.points = fit.points.len();
    let (Some(fitted), None) = (fit.fitted, &fit.missing) else {
        rd.note = fit.missing.clone().unwrap_or_default();
        return vec![rd];
    };
    let method = law_method(fits, fit);
    let epochs: Vec<f64> = fit.points.iter().map(|p| p.epochs).collect();
    let range = |f: fn(f64, f64) -> f64, start: f64| epochs.iter().copied().fold(start, f);
    let mut note = format!(
        "L = E + B / D'^beta at one model size, from the final validation loss of {} done runs ({}-{} epochs); log-loss residual RMS {:.4}",
        fit.points.len(),
        format::epochs(range(f64::min, f64::INFINITY)),
        format::epochs(range(f64::max, 0.0)),
        fitted.residual_rms
    );
    let bound = fit.rd_lower_bound();
    if bound.is_some() {
        note += &format!(
            "; the fit puts R_D* at {}, beyond {}x the largest repeat count swept (R = {}): repeated data lost no visible value here, so R_D* is only bounded from below",
            number(fitted.law.rd),
            super::results::RESOLVED_REPEATS,
            format::epochs(fit.max_repeats())
        );
    }
    let interval = fit.interval;
    let values = [
        (
            super::law::RD_QUANTITY,
            fitted.law.rd,
            interval.map(|i| i.rd),
        ),
        ("beta", fitted.law.beta, interval.map(|i| i.beta)),
        ("E", fitted.law.e, interval.map(|i| i.e)),
        ("B", fitted.law.b, interval.map(|i| i.b)),
    ];
    let mut rows: Vec<FitRow> = values
        .into_iter()
        .enumerate()
        .map(|(k, (quantity, estimate, band))| {
            let mut row = FitRow::new(model.clone(), &fit.objective, quantity, Unit::Plain);
            row.estimate = estimate;
            (row.low, row.high) = band.unwrap_or((f64::NAN, f64::NAN));
            row.points = fit.points.len();
            row.method = method.clone();
            if k == 0 {
                row.note = note.clone();
            }
            row
        })
        .collect();
    if let (Some(bound), Some(rd)) = (bound, rows.first_mut()) {
        rd.estimate = bound;
        rd.censored = "above";
        (rd.low, rd.high) = (f64::NAN, f64::NAN);
    }
    rows
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Raw => "raw",
        Kind::EarlyStopped => "early-stopped",
    }
}

fn critical_rows(fits: &Fits, fit: &CriticalFit) -> Vec<FitRow> {
    let model = fit.family.label();
    let kind = kind_label(fit.kind);
    let mut rows = Vec::new();
    for budget in &fit.budgets {
        let mut row = FitRow::new(
            model.clone(),
            "dlm vs ar",
            &format!("critical compute ({kind})"),
            Unit::Flops,
        );
        row.task = "val_loss".into();
        row.metric = "loss".into();
        row.unique_tokens = Some(budget.unique_tokens);
        row.points = 1;
        row.method = format!(
            "crossover.csv: DLM vs AR on val_loss, flops axis, {}; the run with the most epochs at this budget ({})",
            fit.kind.name(),
            format::epochs(budget.epochs)
        );
        match (budget.crossing, budget.outcome) {
            (Some(c), _) => {
                row.estimate = c.flops;
                (row.low, row.high) = (c.low, c.high);
            }
            (None, Outcome::NotReached { .. }) => {
                row.estimate = budget.end_flops;
                row.censored = "above";
                row.note = "not reached within the sweep".into();
            }
            (None, outcome) => row.note = outcome.describe(|x| format!("{x:.2e}")),
        }
        rows.push(row);
    }
    let Some(law) = fit.law else {
        return rows;
    };
    let points = fit.crossings().len();
    let method = format!(
        "least squares of ln C_crit on ln U over {points} budgets; interval: {} draws of each budget's crossing from a log-normal matching its 90% interval",
        fits.draws
    );
    for (quantity, estimate, band) in [
        ("C_crit exponent b", law.b, fit.interval.map(|i| i.1)),
        ("C_crit coefficient a", law.a, fit.interval.map(|i| i.0)),
    ] {
        let mut row = FitRow::new(
            model.clone(),
            "dlm vs ar",
            &format!("{quantity} ({kind})"),
            Unit::Plain,
        );
        row.task = "val_loss".into();
        row.metric = "loss".into();
        row.estimate = estimate;
        (row.low, row.high) = band.unwrap_or((f64::NAN, f64::NAN));
        row.points = points;
        row.method = method.clone();
        if quantity.ends_with('b') {
            row.note = "C_crit(U) = a * U^b, U in unique tokens, C_crit in training FLOPs".into();
        }
        rows.push(row);
    }
    rows
}

fn potential_rows(fits: &Fits, fit: &PotentialFit) -> Vec<FitRow> {
    let method = format!(
        "best (early-stopped) value of done runs per budget at equal compute (each side's checkpoints up to the most training tokens both reached at that budget); AR's best-vs-budget curve interpolated by a monotone cubic (PCHIP) in ln U, no extrapolation; interval: {} draws{} jittering every best value by its stderr",
        fits.draws.min(super::law::MAX_FIT_DRAWS),
        if fits.draws > super::law::MAX_FIT_DRAWS {
            format!(" (capped from {})", fits.draws)
        } else {
            String::new()
        }
    );
    fit.ratios
        .iter()
        .map(|r| {
            let mut row = FitRow::new(
                fit.family.label(),
                "dlm vs ar",
                "data potential U_AR/U",
                Unit::Ratio,
            );
            row.task = fit.task.clone();
            row.metric = fit.metric.clone();
            row.unique_tokens = Some(r.dlm.unique_tokens as u64);
            row.estimate = r.ratio.bound();
            row.censored = match r.ratio {
                Ratio::Within(_) => "",
                Ratio::Above(_) => "above",
                Ratio::AtMost(_) => "below",
            };
            (row.low, row.high) = (r.low, r.high);
            row.points = fit.ar.len();
            row.method = method.clone();
            let u = format::count(r.dlm.unique_tokens);
            row.note = match r.ratio {
                Ratio::Within(x) => format!(
                    "DLM's best {} at {u} unique tokens within {} training tokens; AR reaches it at {}",
                    format::value(r.dlm.value),
                    format::count(r.dlm.training_tokens),
                    format::count(x * r.dlm.unique_tokens)
                ),
                Ratio::Above(_) => format!(
                    "DLM's best {} at {u} within {} training tokens is better than AR's best at every budget up to {}",
                    format::value(r.dlm.value),
                    format::count(r.dlm.training_tokens),
                    format::count(fit.ar.last().map_or(0.0, |b| b.unique_tokens))
                ),
                Ratio::AtMost(_) => format!(
                    "AR's best at its smallest budget ({}) is already as good as the DLM's {} at {u}",
                    format::count(fit.ar.first().map_or(0.0, |b| b.unique_tokens)),
                    format::value(r.dlm.value)
                ),
            };
            row
        })
        .collect()
}

impl Fits {
    /// Every row of fits.csv: laws, critical compute, data potential, then one row per
    /// missing C_crit or data-potential fit.
    pub fn rows(&self) -> Vec<FitRow> {
        let mut rows: Vec<FitRow> = self.laws.iter().flat_map(|l| law_rows(self, l)).collect();
        rows.extend(self.critical.iter().flat_map(|c| critical_rows(self, c)));
        rows.extend(self.potential.iter().flat_map(|p| potential_rows(self, p)));
        // The laws' missing fits are rows of their own above.
        for missing in self
            .missing
            .iter()
            .filter(|m| m.quantity != super::law::RD_QUANTITY)
        {
            let mut row = FitRow::new(
                missing.model.clone(),
                "dlm vs ar",
                missing.quantity,
                Unit::Plain,
            );
            row.note = missing.line.clone();
            rows.push(row);
        }
        rows
    }

    /// The lines the terminal summary prints: each R_D*, each C_crit exponent and the
    /// data potential on validation loss, then what could not be fitted.
    pub fn headlines(&self) -> Vec<String> {
        let rows = self.rows();
        let mut lines: Vec<String> = rows
            .iter()
            .filter(|r| !r.estimate.is_nan())
            .filter(|r| {
                r.quantity == super::law::RD_QUANTITY
                    || r.quantity.starts_with("C_crit exponent")
                    || (r.quantity.starts_with("data potential") && r.task == "val_loss")
            })
            .map(|r| {
                let at = r
                    .unique_tokens
                    .map(|u| format!(" at U = {}", format::count(u as f64)))
                    .unwrap_or_default();
                let on = if r.task.is_empty() {
                    String::new()
                } else {
                    format!(", {}", r.task)
                };
                format!(
                    "{} for {} ({}{on}){at}: {}",
                    r.quantity,
                    r.objective,
                    r.model,
                    r.estimate_text()
                )
            })
            .collect();
        lines.extend(
            self.missing
                .iter()
                .map(|m| format!("not fitted: {}", m.line)),
        );
        lines
    }
}
