//! Tests of the crossover intervals (crossover/uncertainty.rs): the simulated studies
//! with a known answer and log2-spaced milestones like real sweeps (issue 15) that they
//! share, here; coverage, the estimate's cases and the planned draws in the modules.

use super::*;
use crate::crossover::detection::{Kind, curve_from, find_crossing};
use crate::crossover::resample::*;

mod cases;
mod coverage;
mod planned;

/// Validation losses smooth in u = log2(x): AR falls fast and then overfits (its best
/// is near x = 18), the DLM falls slower but further. The raw curves cross at
/// u = 4.549 (x = 23.4): AR - DLM = -0.6 + 0.05 u + 0.018 u^2.
fn ar_truth(x: f64) -> f64 {
    let u = x.log2();
    3.0 - 0.25 * u + 0.03 * u * u
}

fn dlm_truth(x: f64) -> f64 {
    let u = x.log2();
    3.6 - 0.3 * u + 0.012 * u * u
}

/// Log2 milestones 1, 2, 4, ..., 512.
fn milestones() -> Vec<f64> {
    (0..10).map(|k| f64::from(1 << k)).collect()
}

/// The crossing of the generating curves, from a grid fine enough to be exact.
fn true_crossing() -> f64 {
    let fine: Vec<f64> = (0..=20_000)
        .map(|i| 2f64.powf(9.0 * f64::from(i) / 20_000.0))
        .collect();
    let on = |truth: fn(f64) -> f64| -> Curve {
        fine.iter().map(|&x| Point::new(x, truth(x), 0.0)).collect()
    };
    match find_crossing(&on(dlm_truth), &on(ar_truth), Direction::LowerBetter) {
        Outcome::Crossed { x, .. } => x,
        other => panic!("generating curves must cross, got {other:?}"),
    }
}

const LOSS: Direction = Direction::LowerBetter;

/// Per-item noise of one simulated study: `shared[i]` is window i's difficulty (the
/// same for both objectives: they are scored on the same windows), `own[o][i]` the
/// objective's persistent offset on it; each (seed, checkpoint) adds fresh noise.
struct Items {
    shared: Vec<f64>,
    own: [Vec<f64>; 2],
    /// The sd of the fresh noise of each (seed, checkpoint, item).
    fresh: f64,
}

impl Items {
    fn draw(n: usize, rng: &mut Rng) -> Self {
        Self::with_noise(n, 0.15, 0.2, rng)
    }

    /// Items whose persistent per-objective offsets have sd `own` and whose fresh
    /// noise has sd `fresh`.
    fn with_noise(n: usize, own: f64, fresh: f64, rng: &mut Rng) -> Self {
        let mut normals = |sd: f64| (0..n).map(|_| sd * rng.normal()).collect::<Vec<_>>();
        let shared = normals(0.5);
        let own = [normals(own), normals(own)];
        Self { shared, own, fresh }
    }

    /// One seed's replicate of objective `o` (0 = DLM, 1 = AR), with a seed offset.
    fn replicate(&self, o: usize, seed: u64, offset: f64, rng: &mut Rng) -> Replicate {
        let truth = if o == 0 { dlm_truth } else { ar_truth };
        let scores: Vec<Vec<f64>> = milestones()
            .iter()
            .map(|&x| {
                (0..self.shared.len())
                    .map(|i| {
                        truth(x)
                            + offset
                            + self.shared[i]
                            + self.own[o][i]
                            + self.fresh * rng.normal()
                    })
                    .collect()
            })
            .collect();
        item_replicate(seed, scores)
    }
}

/// The crossing of the generating curves shifted by per-objective offsets (a seed's
/// models on the whole item population).
fn crossing_with_offsets(dlm_offset: f64, ar_offset: f64) -> f64 {
    let fine: Vec<f64> = (0..=20_000)
        .map(|i| 2f64.powf(9.0 * f64::from(i) / 20_000.0))
        .collect();
    let on = |truth: fn(f64) -> f64, offset: f64| -> Curve {
        fine.iter()
            .map(|&x| Point::new(x, truth(x) + offset, 0.0))
            .collect()
    };
    match find_crossing(
        &on(dlm_truth, dlm_offset),
        &on(ar_truth, ar_offset),
        Direction::LowerBetter,
    ) {
        Outcome::Crossed { x, .. } => x,
        other => panic!("shifted curves must cross, got {other:?}"),
    }
}

/// How one simulated study's comparison is built.
#[derive(Clone, Copy, Debug)]
struct Design {
    seeds: u64,
    /// Training noise of a seed: each objective's whole curve moves by sd * (z_shared
    /// + z_own), z_shared common to both objectives of a seed (same data order).
    seed_sd: f64,
    studies: u64,
    /// Permute the AR side's items, so that item i of AR is not item i of the DLM: the
    /// paired resample then acts as an unpaired one (each side's items drawn
    /// independently).
    unpaired: bool,
    /// Item noise: the sd of each objective's persistent offset on an item, and of the
    /// fresh noise at each (seed, checkpoint, item).
    own_sd: f64,
    fresh_sd: f64,
}

impl Design {
    /// One seed, no seed noise, the default item noise.
    fn one_seed(studies: u64) -> Self {
        Self {
            seeds: 1,
            seed_sd: 0.0,
            studies,
            unpaired: false,
            own_sd: 0.15,
            fresh_sd: 0.2,
        }
    }
}

/// Coverage of one design: the share of studies whose 90% interval (raw kind) covers
/// the population crossing (every seed's offsets averaged away: the generating
/// curves), the share covering the crossing of the trained seeds' own models (their
/// offsets included, items averaged away), and the mean width in log2(x) (finite
/// intervals only; the share of infinite ones is the fourth value).
struct Coverage {
    population: f64,
    conditional: f64,
    width: f64,
    infinite: f64,
}

fn item_coverage(design: Design) -> Coverage {
    let truth = true_crossing();
    let (mut population, mut conditional, mut infinite) = (0, 0, 0);
    let mut width = 0.0;
    for study in 0..design.studies {
        let mut rng = Rng::new(5000 + study);
        let items = Items::with_noise(200, design.own_sd, design.fresh_sd, &mut rng);
        let (mut dlm, mut ar) = (Vec::new(), Vec::new());
        let (mut dlm_offsets, mut ar_offsets) = (0.0, 0.0);
        for seed in 0..design.seeds {
            let common = design.seed_sd * rng.normal();
            let (d, a) = (
                common + design.seed_sd * rng.normal(),
                common + design.seed_sd * rng.normal(),
            );
            dlm_offsets += d / design.seeds as f64;
            ar_offsets += a / design.seeds as f64;
            dlm.push(items.replicate(0, seed, d, &mut rng));
            ar.push(items.replicate(1, seed, a, &mut rng));
        }
        if design.unpaired {
            let mut order: Vec<usize> = (0..200).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            for replicate in &mut ar {
                for scores in replicate.items.iter_mut().flatten() {
                    *scores = order.iter().map(|&i| scores[i]).collect();
                }
            }
        }
        let settings = Settings {
            smooth: 1,
            draws: 200,
            seed: study,
        };
        let estimate = estimate(&dlm, &ar, LOSS, settings).raw;
        let expected = if design.seeds >= 2 {
            Method::PairedItemsSeeds
        } else {
            Method::PairedItems
        };
        assert_eq!(estimate.method, expected);
        let covers = |x: f64| usize::from(estimate.low <= x && x <= estimate.high);
        population += covers(truth);
        conditional += covers(crossing_with_offsets(dlm_offsets, ar_offsets));
        if estimate.high.is_finite() {
            width += (estimate.high / estimate.low).log2();
        } else {
            infinite += 1;
        }
    }
    let share = |count: usize| count as f64 / design.studies as f64;
    Coverage {
        population: share(population),
        conditional: share(conditional),
        width: width / (design.studies as f64 - infinite as f64).max(1.0),
        infinite: share(infinite),
    }
}

/// Independent noise per point (no per-item scores): the unpaired fallback.
fn noisy(truth: fn(f64) -> f64, sd: f64, seed: u64, rng: &mut Rng) -> Replicate {
    let curve = milestones()
        .iter()
        .map(|&x| Point::new(x, truth(x) + sd * rng.normal(), sd))
        .collect();
    Replicate::plain(seed, curve)
}

fn plain_coverage(seeds: u64, sd: f64, studies: u64) -> f64 {
    let truth = true_crossing();
    let mut covered = 0;
    for study in 0..studies {
        let mut rng = Rng::new(1000 + study);
        let dlm: Vec<Replicate> = (0..seeds)
            .map(|s| noisy(dlm_truth, sd, s, &mut rng))
            .collect();
        let ar: Vec<Replicate> = (0..seeds)
            .map(|s| noisy(ar_truth, sd, s, &mut rng))
            .collect();
        let settings = Settings {
            smooth: 1,
            draws: 200,
            seed: study,
        };
        let estimate = estimate(&dlm, &ar, LOSS, settings).raw;
        covered += usize::from(estimate.low <= truth && truth <= estimate.high);
    }
    covered as f64 / studies as f64
}

/// Per-item 0/1 answers: item i is answered right from the checkpoint where the
/// accuracy first exceeds its latent difficulty (drawn per objective, so the two
/// objectives' answers are as independent as two models' can be).
fn answers(accuracy: &[f64], items: usize, rng: &mut Rng) -> Replicate {
    // Difficulties evenly spread over [0, 1) in a random order: the accuracies are
    // exact, the items each objective gets right random.
    let mut latent: Vec<f64> = (0..items)
        .map(|i| (i as f64 + 0.5) / items as f64)
        .collect();
    for i in (1..items).rev() {
        latent.swap(i, rng.below(i + 1));
    }
    let scores: Vec<Vec<f64>> = accuracy
        .iter()
        .map(|&a| latent.iter().map(|&u| f64::from(u8::from(u < a))).collect())
        .collect();
    item_replicate(0, scores)
}

/// A replicate whose curve is the mean of its per-item scores at each milestone.
fn item_replicate(seed: u64, scores: Vec<Vec<f64>>) -> Replicate {
    let curve = milestones()
        .iter()
        .zip(&scores)
        .map(|(&x, s)| Point::new(x, s.iter().sum::<f64>() / s.len() as f64, f64::NAN))
        .collect();
    Replicate {
        items: Some(scores),
        ..Replicate::plain(seed, curve)
    }
}
