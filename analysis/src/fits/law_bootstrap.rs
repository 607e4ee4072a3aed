//! The interval of a fitted law (`law`).
//!
//! It is a bootstrap of the observations: each point's observed log-loss is
//! jittered by its noise (`noise_spread`: its relative stderr, or the pure error
//! between seeds of one cell when larger; with one run per cell, the fit's residual
//! RMS when larger, standing in for the seed noise a stderr leaves out), the law is
//! refitted, and the 5% / 95% quantiles of the refits are reported. Jittering the
//! observations rather than the fitted curve keeps a misfit (a loss that rises at high
//! epochs, which the law cannot follow) in every draw, as it is in every replicate of
//! the study. What it covers is the law the Huber fit converges to on this design as
//! the noise averages out (with a misfit, that is not the generating R_D*): on a
//! misspecified study with two seeds per cell (`law_tests.rs`) 90% nominal intervals
//! covered it in at least 80% of studies at about the estimate's own 5-95% spread; with
//! one seed per cell they cover it too, but 3-15 times wider, since the residual RMS
//! then counts the misfit as noise. The earlier parametric bootstrap (points redrawn
//! around the fitted curve) was that wide whatever the seeds.

use super::law::{Fitted, Law, LossPoint, MAX_FIT_DRAWS, epoch_key, fit_from, same_budget};
use crate::rng::Rng;

/// 5% and 95% quantiles of each parameter over the bootstrap refits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LawInterval {
    pub e: (f64, f64),
    pub b: (f64, f64),
    pub beta: (f64, f64),
    pub rd: (f64, f64),
    /// Refits that converged (the quantiles are over these).
    pub draws: usize,
}

/// Bootstrap of a fit (see the module comment): `draws` refits (capped at
/// `MAX_FIT_DRAWS`) of the observed log-losses, each jittered by its noise
/// (`noise_spread`), each refit started from the full fit and from it with R_D* 5x
/// larger and smaller. None without draws or when fewer than 10 refits converge.
pub fn bootstrap(
    points: &[LossPoint],
    fitted: &Fitted,
    draws: usize,
    seed: u64,
) -> Option<LawInterval> {
    let draws = draws.min(MAX_FIT_DRAWS);
    if draws == 0 {
        return None;
    }
    let theta = fitted.law.theta();
    let starts: Vec<Vec<f64>> = [0.0, 5f64.ln(), -(5f64.ln())]
        .iter()
        .map(|shift| {
            let mut start = theta.clone();
            start[3] += shift;
            start
        })
        .collect();
    let spread = noise_spread(points, fitted.residual_rms);
    let mut rng = Rng::new(seed);
    let mut refits: Vec<Law> = Vec::with_capacity(draws);
    for _ in 0..draws {
        let redrawn: Vec<(f64, f64, f64)> = points
            .iter()
            .zip(&spread)
            .map(|(p, sd)| (p.unique_tokens, p.epochs, p.loss.ln() + sd * rng.normal()))
            .collect();
        if let Some(refit) = fit_from(&redrawn, &starts) {
            refits.push(refit.law);
        }
    }
    if refits.len() < 10 {
        return None;
    }
    let band = |value: fn(&Law) -> f64| {
        let mut values: Vec<f64> = refits.iter().map(value).collect();
        values.sort_by(f64::total_cmp);
        (
            crate::quantile::quantile(&values, 0.05),
            crate::quantile::quantile(&values, 0.95),
        )
    };
    Some(LawInterval {
        e: band(|l| l.e),
        b: band(|l| l.b),
        beta: band(|l| l.beta),
        rd: band(|l| l.rd),
        draws: refits.len(),
    })
}

/// Each point's noise in log-loss. With seeds repeated in some cell, the larger of its
/// relative stderr and the pure error (`pure_error`, the spread between runs of one
/// cell): noise measured apart from the law's misfit. With one run per cell, the
/// larger of its relative stderr and the fit's residual RMS: an evaluation's stderr
/// leaves out seed-to-seed noise, which the residuals hold together with any misfit,
/// and one run per cell cannot tell the two apart, so the interval errs wide (on the
/// misspecified study of `law_tests.rs`, 3-15 times the estimate's spread) rather
/// than leave seed noise out.
pub fn noise_spread(points: &[LossPoint], residual_rms: f64) -> Vec<f64> {
    let pure = pure_error(points);
    points
        .iter()
        .map(|p| {
            let relative = p.stderr / p.loss;
            let relative = if relative.is_finite() { relative } else { 0.0 };
            match pure {
                Some(pure) => relative.max(pure),
                None => relative.max(residual_rms),
            }
        })
        .collect()
}

/// The pooled standard deviation of log-loss between runs at the same budget and
/// epoch count (seeds), with sum(n_cell - 1) degrees of freedom: the classical pure
/// error of a lack-of-fit test, noise the law's form cannot absorb. None without a cell
/// of two runs.
pub fn pure_error(points: &[LossPoint]) -> Option<f64> {
    let mut cells: Vec<(f64, f64, Vec<f64>)> = Vec::new();
    for p in points {
        let epochs = epoch_key(p.epochs);
        let same =
            |c: &&mut (f64, f64, Vec<f64>)| same_budget(c.0, p.unique_tokens) && c.1 == epochs;
        match cells.iter_mut().find(|c| same(c)) {
            Some(cell) => cell.2.push(p.loss.ln()),
            None => cells.push((p.unique_tokens, epochs, vec![p.loss.ln()])),
        }
    }
    let (mut squares, mut freedom) = (0.0, 0usize);
    for (_, _, values) in cells.iter().filter(|c| c.2.len() > 1) {
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        squares += values.iter().map(|v| (v - mean).powi(2)).sum::<f64>();
        freedom += values.len() - 1;
    }
    (freedom > 0).then(|| (squares / freedom as f64).sqrt())
}
