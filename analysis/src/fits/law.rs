//! The data-constrained scaling law at one model size, and its fit.
//!
//! Muennighoff et al. 2023 (arXiv 2305.16264, eq. 5; code huggingface/datablations)
//! model repeated data as worth less than fresh data:
//!
//!   D' = U + U * R_D* * (1 - exp(-R / R_D*)),   R = D / U - 1 (repeats beyond the first)
//!   L  = E + A / N'^alpha + B / D'^beta
//!
//! A sweep at one model size cannot separate E from A / N'^alpha, so the fit here is
//! L = E + B / D'^beta with four free parameters E, B, beta and R_D* per objective (and
//! per model size: `fits::points` groups runs by model). With fewer epochs than one
//! (D < U) the data seen are all fresh: U is replaced by D and R = 0, as in the paper.
//!
//! Fitting follows Hoffmann et al. 2022 (arXiv 2203.15556, appendix D.2) and
//! Muennighoff et al.: the Huber loss (delta = 1e-3) of log-loss residuals, minimised
//! by L-BFGS (argmin, More-Thuente line search, analytic gradient) from a grid of
//! starting points, keeping the best. The parameters are optimised as
//! theta = (ln E, ln B, beta, ln R_D*), so E, B and R_D* stay positive, and the predicted
//! log-loss is a log-sum-exp, ln L = LSE(ln E, ln B - beta ln D'), which stays finite
//! where B / D'^beta under- or overflows.
//!
//! The fit's interval is in `law_bootstrap`.

use argmin::core::{CostFunction, Error, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;

/// Hoffmann et al.'s Huber threshold on log-loss residuals.
pub const HUBER_DELTA: f64 = 1e-3;

/// At most this many bootstrap refits per law (each is an L-BFGS run); more add little
/// to a 90% interval and cost seconds per objective.
pub const MAX_FIT_DRAWS: usize = 200;

/// Distinct budgets and epoch counts a fit needs: four parameters, of which B and beta
/// are read across budgets and R_D* across epoch counts.
pub const MIN_BUDGETS: usize = 3;
pub const MIN_EPOCH_COUNTS: usize = 3;

/// The law's quantity as every output names it: at one model size the paper's
/// A / N'^alpha term is folded into E, and N' depends on U through N_opt(U) in
/// Muennighoff et al., so a per-size R_D* absorbs that dependence and is not the
/// papers' R_D* (15.4 for AR there): "at fixed N" says so wherever it is shown.
pub const RD_QUANTITY: &str = "R_D* at fixed N";

/// The crossed design R_D* needs (issue 29): at least this many budgets, each with at
/// least this many epoch counts.
pub const MIN_CROSSED_BUDGETS: usize = 2;
pub const MIN_EPOCHS_PER_BUDGET: usize = 2;

/// ln R_D* is held in this range when the law is evaluated: beyond it D' no longer
/// depends on R_D* at any realistic repeat count, and exp() would overflow.
const LN_RD_RANGE: (f64, f64) = (-10.0, 25.0);

/// One run's final evaluation: its unique-token budget U, the epochs it trained
/// (tokens seen / U), its final validation loss and that loss's standard error (NaN
/// when unknown).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossPoint {
    pub unique_tokens: f64,
    pub epochs: f64,
    pub loss: f64,
    pub stderr: f64,
}

/// L = E + B / D'^beta with D' from R_D*.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Law {
    pub e: f64,
    pub b: f64,
    pub beta: f64,
    pub rd: f64,
}

impl Law {
    /// Effective unique data D' after `epochs` passes over `unique_tokens`.
    pub fn effective_data(&self, unique_tokens: f64, epochs: f64) -> f64 {
        effective(unique_tokens, epochs, self.rd.ln()).0
    }

    pub fn loss(&self, unique_tokens: f64, epochs: f64) -> f64 {
        log_loss(&self.theta(), unique_tokens, epochs).0.exp()
    }

    pub(super) fn theta(&self) -> Vec<f64> {
        vec![self.e.ln(), self.b.ln(), self.beta, self.rd.ln()]
    }

    fn from_theta(theta: &[f64]) -> Self {
        Self {
            e: theta[0].exp(),
            b: theta[1].exp(),
            beta: theta[2],
            rd: theta[3].clamp(LN_RD_RANGE.0, LN_RD_RANGE.1).exp(),
        }
    }
}

/// (D', d ln D' / d ln R_D*) for U unique tokens seen `epochs` times.
fn effective(unique: f64, epochs: f64, ln_rd: f64) -> (f64, f64) {
    let fresh = unique * epochs.min(1.0);
    let repeats = (epochs - 1.0).max(0.0);
    let rd = ln_rd.clamp(LN_RD_RANGE.0, LN_RD_RANGE.1).exp();
    // g = 1 - exp(-R / R_D*), without cancellation for large R_D*.
    let g = -(-repeats / rd).exp_m1();
    let gain = rd * g;
    let slope = if (LN_RD_RANGE.0..=LN_RD_RANGE.1).contains(&ln_rd) {
        (gain - repeats * (-repeats / rd).exp()) / (1.0 + gain)
    } else {
        0.0
    };
    (fresh * (1.0 + gain), slope)
}

/// ln L and its gradient in theta = (ln E, ln B, beta, ln R_D*).
fn log_loss(theta: &[f64], unique: f64, epochs: f64) -> (f64, [f64; 4]) {
    let (data, slope) = effective(unique, epochs, theta[3]);
    let ln_data = data.ln();
    let (a, b) = (theta[0], theta[1] - theta[2] * ln_data);
    let top = a.max(b);
    let (wa, wb) = ((a - top).exp(), (b - top).exp());
    let value = top + (wa + wb).ln();
    // Softmax weights of the two terms.
    let (sa, sb) = (wa / (wa + wb), wb / (wa + wb));
    (value, [sa, sb, -sb * ln_data, -sb * theta[2] * slope])
}

/// Huber loss of a residual and its derivative. Unscaled, as Hoffmann et al. minimise
/// it: the costs are small (about delta^2 per point), so the gradients are too, and
/// L-BFGS's first step (along minus the gradient, before it has curvature to scale
/// by) stays of order one instead of throwing the parameters to infinity.
fn huber(residual: f64) -> (f64, f64) {
    let d = HUBER_DELTA;
    if residual.abs() <= d {
        (0.5 * residual * residual, residual)
    } else {
        (d * (residual.abs() - 0.5 * d), d * residual.signum())
    }
}

/// The fit's objective over (U, epochs, observed ln L) triples.
struct HuberCost<'a> {
    points: &'a [(f64, f64, f64)],
}

impl HuberCost<'_> {
    fn evaluate(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        let mut cost = 0.0;
        let mut gradient = vec![0.0; 4];
        for &(unique, epochs, observed) in self.points {
            let (predicted, d) = log_loss(theta, unique, epochs);
            let (h, dh) = huber(predicted - observed);
            cost += h;
            for (g, di) in gradient.iter_mut().zip(d) {
                *g += dh * di;
            }
        }
        (cost, gradient)
    }
}

impl CostFunction for HuberCost<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, theta: &Self::Param) -> Result<f64, Error> {
        let cost = self.evaluate(theta).0;
        finite(cost.is_finite(), cost)
    }
}

impl Gradient for HuberCost<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, theta: &Self::Param) -> Result<Vec<f64>, Error> {
        let gradient = self.evaluate(theta).1;
        finite(gradient.iter().all(|g| g.is_finite()), gradient)
    }
}

/// A step to where the law overflows ends that start with an error: More-Thuente's
/// comparisons never terminate on NaN.
fn finite<T>(ok: bool, value: T) -> Result<T, Error> {
    if ok {
        Ok(value)
    } else {
        Err(Error::msg("the law is not finite here"))
    }
}

/// A fitted law: its parameters, the Huber cost at the optimum, the RMS of the
/// log-loss residuals (with n - 4 degrees of freedom), and how many starts converged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fitted {
    pub law: Law,
    pub cost: f64,
    pub residual_rms: f64,
    pub starts: usize,
}

/// Two budgets are one when they agree to a millionth (they come from parsed token
/// counts); epoch counts are compared at a thousandth of an epoch. Together they name a
/// cell of the design.
pub(super) fn same_budget(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs()
}

pub(super) fn epoch_key(epochs: f64) -> f64 {
    (epochs * 1e3).round() / 1e3
}

/// The distinct values, sorted, with `same` deciding equality.
fn distinct(mut values: Vec<f64>, same: fn(f64, f64) -> bool) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values.dedup_by(|a, b| same(*a, *b));
    values
}

/// Why a set of points cannot be fitted, as the end of a sentence ("this sweep has
/// ..."), or None when it can.
pub fn missing(points: &[LossPoint]) -> Option<String> {
    let budgets = distinct(
        points.iter().map(|p| p.unique_tokens).collect(),
        same_budget,
    )
    .len();
    let epochs = distinct(
        points.iter().map(|p| epoch_key(p.epochs)).collect(),
        |a, b| a == b,
    )
    .len();
    if budgets >= MIN_BUDGETS && epochs >= MIN_EPOCH_COUNTS && points.len() > 4 {
        return None;
    }
    Some(format!(
        "{budgets} budget(s) x {epochs} epoch count(s) ({} run(s))",
        points.len()
    ))
}

/// Why R_D* cannot be identified from the points' design, as the end of a sentence
/// ("cannot identify R_D* from this design: ..."), or None when it can.
///
/// R_D* is read from how the loss changes with repetition at a fixed budget, and the
/// law claims it is the same at every budget; B and beta are read from how it changes
/// with the budget. A design where each budget has one epoch count (a zip such as
/// unique x epochs = constant) moves repetition and budget together, so R_D* trades
/// off against B and beta: refitting `sweeps/study-1b.yaml`'s zip with true R_D* = 15
/// gave 5-95% ranges of [6, 18] to [0.00005, 24], against [14.5, 15.5] on a 3 x 4
/// crossed grid (issue 29). So at least `MIN_CROSSED_BUDGETS` budgets must each have
/// at least `MIN_EPOCHS_PER_BUDGET` epoch counts: repetition varied at fixed budget,
/// at two budgets or more.
pub fn unidentified(points: &[LossPoint]) -> Option<String> {
    let budgets = distinct(
        points.iter().map(|p| p.unique_tokens).collect(),
        same_budget,
    );
    let epochs_at = |budget: f64| {
        let epochs = points
            .iter()
            .filter(|p| same_budget(p.unique_tokens, budget))
            .map(|p| epoch_key(p.epochs))
            .collect();
        distinct(epochs, |a, b| a == b).len()
    };
    let (crossed, single): (Vec<f64>, Vec<f64>) = budgets
        .iter()
        .partition(|&&u| epochs_at(u) >= MIN_EPOCHS_PER_BUDGET);
    if crossed.len() >= MIN_CROSSED_BUDGETS {
        return None;
    }
    let short = MIN_CROSSED_BUDGETS - crossed.len();
    let names: Vec<String> = single
        .iter()
        .take(MIN_CROSSED_BUDGETS)
        .map(|&u| crate::format::count(u))
        .collect();
    Some(format!(
        "{} of {} budget(s) have runs at {MIN_EPOCHS_PER_BUDGET} or more epoch counts (need {MIN_CROSSED_BUDGETS}), so repetition and budget move together and R_D* trades off against B and beta; add runs at a second epoch count (same budget, more or fewer epochs) at {short} more budget(s), e.g. at {}",
        crossed.len(),
        budgets.len(),
        if names.is_empty() {
            "a new budget".to_string()
        } else {
            names.join(" and ")
        }
    ))
}

/// Usable points: positive budget, epochs and loss, all finite.
pub fn usable(points: &[LossPoint]) -> Vec<LossPoint> {
    points
        .iter()
        .copied()
        .filter(|p| {
            [p.unique_tokens, p.epochs, p.loss]
                .iter()
                .all(|v| v.is_finite() && *v > 0.0)
        })
        .collect()
}

/// Starting points: E at a share of the lowest loss, beta and R_D* on grids, and B set
/// so the law passes through the median point (a fixed grid over ln B, as Hoffmann et
/// al. use, wastes most starts far from the data's scale).
pub fn starting_grid(points: &[LossPoint]) -> Vec<Vec<f64>> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.loss.total_cmp(&b.loss));
    let (Some(lowest), Some(median)) = (sorted.first(), sorted.get(sorted.len() / 2)) else {
        return Vec::new();
    };
    let (lowest, median_loss) = (lowest.loss, median.loss);
    let mut starts = Vec::new();
    for share in [0.1, 0.4, 0.7, 0.9] {
        let e = share * lowest;
        for beta in [0.1, 0.3, 0.6] {
            for rd in [1.0, 5.0, 25.0, 125.0, 625.0, 3125.0] {
                let law = Law {
                    e,
                    b: 1.0,
                    beta,
                    rd,
                };
                let data = law.effective_data(median.unique_tokens, median.epochs);
                let reducible = median_loss - e;
                if reducible > 0.0 {
                    starts.push(vec![
                        e.ln(),
                        reducible.ln() + beta * data.ln(),
                        beta,
                        rd.ln(),
                    ]);
                }
            }
        }
    }
    starts
}

/// Fit the law to the points from every start; None when no start converges.
pub fn fit(points: &[LossPoint]) -> Option<Fitted> {
    let observed = observed(points);
    fit_from(&observed, &starting_grid(points))
}

fn observed(points: &[LossPoint]) -> Vec<(f64, f64, f64)> {
    points
        .iter()
        .map(|p| (p.unique_tokens, p.epochs, p.loss.ln()))
        .collect()
}

pub(super) fn fit_from(observed: &[(f64, f64, f64)], starts: &[Vec<f64>]) -> Option<Fitted> {
    let problem = HuberCost { points: observed };
    let mut best: Option<(Vec<f64>, f64)> = None;
    let mut converged = 0;
    for start in starts {
        let Some((theta, cost)) = minimise(&problem, start.clone()) else {
            continue;
        };
        converged += 1;
        if best.as_ref().is_none_or(|(_, c)| cost < *c) {
            best = Some((theta, cost));
        }
    }
    let (theta, cost) = best?;
    let residuals: f64 = observed
        .iter()
        .map(|&(u, e, y)| (log_loss(&theta, u, e).0 - y).powi(2))
        .sum();
    let freedom = observed.len().saturating_sub(4).max(1) as f64;
    Some(Fitted {
        law: Law::from_theta(&theta),
        cost,
        residual_rms: (residuals / freedom).sqrt(),
        starts: converged,
    })
}

/// One L-BFGS run; None when it fails (a line search that finds no descent) or ends
/// somewhere non-finite (other than E = 0).
fn minimise(problem: &HuberCost<'_>, start: Vec<f64>) -> Option<(Vec<f64>, f64)> {
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 7)
        .with_tolerance_grad(1e-12)
        .ok()?;
    let result = Executor::new(
        HuberCost {
            points: problem.points,
        },
        solver,
    )
    .configure(|state| state.param(start).max_iters(400))
    .run()
    .ok()?;
    let state = result.state();
    let theta = state.get_best_param()?.clone();
    let cost = state.get_best_cost();
    // ln E may run to minus infinity (E = 0: the data show no floor), a limit the
    // law evaluates fine; anything else must be finite.
    let usable = theta[0] < f64::INFINITY && theta[1..].iter().all(|t| t.is_finite());
    (cost.is_finite() && usable).then_some((theta, cost))
}

#[cfg(test)]
#[path = "law_tests.rs"]
mod tests;
