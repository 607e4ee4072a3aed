//! Stage 4, scaling-law fits (issue 16), one level up from the crossovers:
//!
//! 1. **R_D* at fixed N per objective** (`law`): how fast repeated data loses its value, from the
//!    data-constrained law of Muennighoff et al. fitted to each done run's final
//!    validation loss, per objective and model size (`points`).
//! 2. **Critical compute** (`critical`): per unique-token budget, the FLOPs at which the
//!    DLM's validation loss overtakes AR's (from the crossover rows), and a power law
//!    C_crit(U) = a * U^b across budgets.
//! 3. **Data potential** (`potential`): the unique tokens AR needs to reach the DLM's
//!    best value at U, as U_AR / U, per metric.
//!
//! Each fit that the sweep lacks the points for becomes one line saying what is
//! missing; nothing here panics on a sweep with one budget, one epoch count, no done
//! runs or losses that are not numbers.
//!
//! `law_bootstrap` gives the law its interval; `versus` picks the points of the two
//! DLM-vs-AR fits; `results` holds what they found (`Fits`), `table` turns it into rows
//! and `output` writes fits.csv and the report's section.

pub mod critical;
pub mod law;
pub mod law_bootstrap;
pub mod output;
pub mod points;
pub mod potential;
pub mod results;
pub mod table;
mod versus;

use crate::crossover::table::CrossoverRow;
use crate::ingest::records::Run;
use crate::pairs::groups::{Group, objective_rank};
use crate::rng::stream;
use law::LossPoint;
use points::Family;
use rayon::prelude::*;
use results::{FitSettings, Fits, LawFit, Missing};
use std::path::Path;

/// Run every fit.
pub fn compute(
    runs: &[Run],
    groups: &[Group],
    crossovers: &[CrossoverRow],
    settings: FitSettings,
    results: &Path,
) -> Fits {
    let families = points::run_families(runs, groups);
    let (finals, warnings) = points::final_losses(runs, &families, results);
    let laws = laws(runs, &families, &finals, settings);
    let critical = versus::critical_fits(runs, groups, crossovers, settings);
    let potential = versus::potential_fits(runs, groups, settings);
    let mut missing: Vec<Missing> = laws
        .iter()
        .filter_map(|l| {
            Some(Missing {
                model: l.family.label(),
                quantity: law::RD_QUANTITY,
                line: l.missing.clone()?,
            })
        })
        .collect();
    missing.extend(versus::critical_missing(groups, &critical));
    missing.extend(versus::potential_missing(runs, &potential));
    Fits {
        laws,
        critical,
        potential,
        missing,
        warnings,
        draws: settings.draws,
    }
}

fn laws(
    runs: &[Run],
    families: &[Option<Family>],
    finals: &[points::FinalLoss],
    settings: FitSettings,
) -> Vec<LawFit> {
    let mut keys: Vec<(Family, String)> = runs
        .iter()
        .zip(families)
        .filter_map(|(run, family)| Some((family.clone()?, run.objective.clone())))
        .collect();
    keys.sort_by(|a, b| {
        (&a.0, objective_rank(&a.1), &a.1).cmp(&(&b.0, objective_rank(&b.1), &b.1))
    });
    keys.dedup();
    keys.par_iter()
        .map(|(family, objective)| {
            let all: Vec<LossPoint> = finals
                .iter()
                .filter(|f| &f.family == family && &f.objective == objective)
                .map(|f| f.point)
                .collect();
            law_fit(family, objective, law::usable(&all), settings)
        })
        .collect()
}

fn law_fit(
    family: &Family,
    objective: &str,
    points: Vec<LossPoint>,
    settings: FitSettings,
) -> LawFit {
    let name = format!("{} for {objective} ({})", law::RD_QUANTITY, family.label());
    let mut out = LawFit {
        family: family.clone(),
        objective: objective.into(),
        points,
        fitted: None,
        interval: None,
        missing: None,
    };
    if let Some(have) = law::missing(&out.points) {
        out.missing = Some(format!(
            "{name} needs at least {} budgets x {} epoch counts of done runs evaluated at the end of their schedule; this sweep has {have}",
            law::MIN_BUDGETS,
            law::MIN_EPOCH_COUNTS
        ));
        return out;
    }
    if let Some(why) = law::unidentified(&out.points) {
        out.missing = Some(format!(
            "{name}: cannot identify R_D* from this design: {why}"
        ));
        return out;
    }
    out.fitted = law::fit(&out.points);
    match &out.fitted {
        Some(fitted) => {
            let seed = stream(settings.seed, &name);
            out.interval = law_bootstrap::bootstrap(&out.points, fitted, settings.draws, seed);
        }
        None => out.missing = Some(format!("{name}: no L-BFGS start converged")),
    }
    out
}
