//! Coverage of the crossover intervals on simulated studies with a known answer, with
//! log2-spaced milestones like real sweeps (issue 15), and the verdict's cases.

use super::*;
use crate::crossover::detection::{Kind, curve_from, find_crossing};

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

/// With one seed and no seed noise the interval is about evaluation noise (which items
/// were drawn). Coverage is bounded from both sides and the width from above: an
/// unpaired resample (each side's items drawn independently) covers every time with
/// intervals too wide, and one that draws items afresh at every checkpoint loses the
/// correlation between checkpoints (issue 29).
#[test]
fn paired_item_bootstrap_covers_the_true_crossing_with_one_seed() {
    let c = item_coverage(Design::one_seed(400));
    eprintln!(
        "one seed, paired items: coverage {}, mean width {} (log2)",
        c.population, c.width
    );
    assert!(
        (0.85..=0.97).contains(&c.population),
        "coverage {}, mean width {} (log2)",
        c.population,
        c.width
    );
    assert!(c.width <= 0.5, "interval too wide: {}", c.width);
}

/// Persistent item effects only (each objective's offset on an item, sd 0.3, no fresh
/// noise): the difference's item-mean error is one shift of the whole advantage curve,
/// so the resample must be the same at every checkpoint. Items drawn afresh at each
/// checkpoint shift the checkpoints independently, and the interpolated crossing moves
/// less than the truth does (issue 29: with fresh noise too it still covered 85%).
#[test]
fn item_resample_is_shared_by_every_checkpoint() {
    let c = item_coverage(Design {
        own_sd: 0.3,
        fresh_sd: 0.0,
        ..Design::one_seed(300)
    });
    eprintln!(
        "persistent item effects: coverage {}, mean width {} (log2)",
        c.population, c.width
    );
    assert!(
        (0.85..=0.97).contains(&c.population),
        "coverage {}, mean width {} (log2)",
        c.population,
        c.width
    );
}

/// Pairing is what makes the interval narrow: both objectives are scored on the same
/// windows, whose difficulty (sd 0.5 here) is shared. The same studies with AR's items
/// permuted (item i no longer the DLM's item i) resample the sides independently; the
/// paired interval must be much narrower.
#[test]
fn pairing_narrows_the_interval_against_an_unpaired_resample() {
    let design = Design::one_seed(40);
    let paired = item_coverage(design);
    let unpaired = item_coverage(Design {
        unpaired: true,
        ..design
    });
    eprintln!(
        "paired width {} (coverage {}), unpaired width {} (coverage {})",
        paired.width, paired.population, unpaired.width, unpaired.population
    );
    assert!(
        paired.width < 0.5 * unpaired.width,
        "paired {} vs unpaired {}",
        paired.width,
        unpaired.width
    );
}

/// Issue 29: with 2-4 seeds and per-seed offsets of 0.02-0.04 nats per objective
/// (partly shared), the interval must cover the population crossing: seed noise is
/// in every draw. Averaging the seeds and resampling items only covered 54-76%.
#[test]
fn seed_level_covers_the_true_crossing_with_two_to_four_seeds() {
    for (seeds, seed_sd) in [(2, 0.04), (3, 0.02), (3, 0.04), (4, 0.04)] {
        let c = item_coverage(Design {
            seeds,
            seed_sd,
            studies: 300,
            ..Design::one_seed(0)
        });
        eprintln!(
            "{seeds} seeds, offsets {seed_sd}: coverage {}, mean finite width {} (log2), {} infinite",
            c.population, c.width, c.infinite
        );
        assert!(
            c.population >= 0.85,
            "{seeds} seeds, offsets {seed_sd}: coverage {}",
            c.population
        );
    }
}

/// One seed cannot show seed noise: no interval from one trained model can cover
/// where another seed's models would cross, so the test does not ask it to. It asks
/// what the report promises instead: the comparison is marked as carrying no seed
/// noise, and the interval covers the crossing of the trained models themselves (their
/// seed offsets included) on the item population.
#[test]
fn one_seed_covers_its_own_models_and_says_it_cannot_show_seed_noise() {
    let c = item_coverage(Design {
        seed_sd: 0.04,
        ..Design::one_seed(200)
    });
    eprintln!(
        "one seed, offsets 0.04: coverage of its own models' crossing {}, of the population's {}",
        c.conditional, c.population
    );
    assert!(
        (0.85..=0.97).contains(&c.conditional),
        "coverage {}",
        c.conditional
    );
    let mut rng = Rng::new(1);
    let items = Items::draw(20, &mut rng);
    let estimate = estimate(
        &[items.replicate(0, 0, 0.0, &mut rng)],
        &[items.replicate(1, 0, 0.0, &mut rng)],
        LOSS,
        Settings::default(),
    )
    .raw;
    assert_eq!(estimate.seed_note(), "1 seed: cannot show seed noise");
}

#[test]
fn paired_item_and_seed_bootstrap_covers_the_true_crossing_with_five_seeds() {
    let c = item_coverage(Design {
        seeds: 5,
        seed_sd: 0.04,
        ..Design::one_seed(200)
    });
    eprintln!(
        "five seeds, paired items and seeds: coverage {}, mean width {} (log2)",
        c.population, c.width
    );
    assert!(
        (0.85..=0.99).contains(&c.population),
        "coverage {}",
        c.population
    );
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

#[test]
fn unpaired_fallbacks_cover_the_true_crossing() {
    let one = plain_coverage(1, 0.02, 150);
    assert!(one >= 0.8, "stderr bootstrap, one seed: coverage {one}");
    let eight = plain_coverage(8, 0.04, 100);
    // Without items the seed level alone carries the noise, from 2 seeds on.
    let three = plain_coverage(3, 0.04, 150);
    eprintln!("unpaired fallbacks: one seed {one}, three seeds {three}, eight seeds {eight}");
    assert!(three >= 0.85, "seed level alone, 3 seeds: coverage {three}");
    assert!(eight >= 0.8, "seed bootstrap, 8 seeds: coverage {eight}");
}

#[test]
fn method_follows_seeds_and_items() {
    let curve = curve_from(&[(1.0, 0.1), (2.0, 0.9)]);
    let plain =
        |n: u64| -> Vec<Replicate> { (0..n).map(|s| Replicate::plain(s, curve.clone())).collect() };
    let with_items = |n: u64| -> Vec<Replicate> {
        (0..n)
            .map(|s| Replicate {
                items: Some(vec![vec![0.1, 0.1], vec![0.9, 0.9]]),
                ..Replicate::plain(s, curve.clone())
            })
            .collect()
    };
    assert_eq!(method_for(&plain(1), &plain(1), 10), Method::Stderr);
    // Two seeds per side carry seed noise (a t with 1 degree of freedom).
    assert_eq!(method_for(&plain(2), &plain(4), 10), Method::Seeds);
    assert_eq!(method_for(&plain(1), &plain(4), 10), Method::Stderr);
    assert_eq!(method_for(&plain(5), &plain(5), 10), Method::Seeds);
    assert_eq!(
        method_for(&with_items(1), &with_items(1), 10),
        Method::PairedItems
    );
    assert_eq!(
        method_for(&with_items(3), &with_items(3), 10),
        Method::PairedItemsSeeds
    );
    assert_eq!(
        method_for(&with_items(1), &with_items(3), 10),
        Method::PairedItems
    );
    assert_eq!(
        method_for(&with_items(5), &with_items(6), 10),
        Method::PairedItemsSeeds
    );
    // Items on one side only: no pairing.
    assert_eq!(method_for(&with_items(1), &plain(1), 10), Method::Stderr);
    assert_eq!(method_for(&with_items(1), &with_items(1), 0), Method::None);
    let none = estimate(
        &plain(1),
        &plain(1),
        Direction::HigherBetter,
        Settings {
            draws: 0,
            ..Settings::default()
        },
    );
    assert_eq!(none.raw.method, Method::None);
    assert!(none.raw.median.is_nan());
}

#[test]
fn never_crossing_draws_give_an_infinite_median() {
    let dlm: Vec<Replicate> = (0..3)
        .map(|s| Replicate::plain(s, curve_from(&[(1.0, 0.1), (2.0, 0.2)])))
        .collect();
    let ar: Vec<Replicate> = (0..3)
        .map(|s| Replicate::plain(s, curve_from(&[(1.0, 0.5), (2.0, 0.6)])))
        .collect();
    let estimate = estimate(&dlm, &ar, Direction::HigherBetter, Settings::default()).raw;
    assert!(matches!(estimate.outcome, Outcome::NotReached { .. }));
    assert!(estimate.median.is_infinite() && estimate.low.is_infinite());
    assert_eq!(estimate.share_crossed, 0.0);
    assert_eq!(estimate.verdict, Verdict::NotReached);
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

/// Issue 15: a gap at the end well inside the noise says nothing either way, whatever
/// the last point's sign; a clear gap says "not reached" or "crossed".
#[test]
fn a_final_gap_inside_the_noise_gives_no_evidence_either_way() {
    let settings = Settings {
        smooth: 1,
        draws: 400,
        seed: 3,
    };
    let up = Direction::HigherBetter;
    // 200 questions; the DLM trails by about 2.5 points at the end (standard error of
    // the paired difference about 5 points).
    let mut rng = Rng::new(11);
    let ar = answers(
        &[0.30, 0.35, 0.40, 0.42, 0.44, 0.45, 0.46, 0.47, 0.475, 0.475],
        200,
        &mut rng,
    );
    let close = answers(
        &[0.20, 0.25, 0.30, 0.35, 0.38, 0.40, 0.42, 0.44, 0.45, 0.45],
        200,
        &mut rng,
    );
    let estimates = estimate(&[close], std::slice::from_ref(&ar), up, settings);
    assert_eq!(
        estimates.raw.verdict,
        Verdict::NoEvidence,
        "{:?}",
        estimates.raw
    );
    assert!(estimates.raw.gap_low < 0.0 && estimates.raw.gap_high > 0.0);
    // Far behind: not reached.
    let far = answers(
        &[0.10, 0.12, 0.14, 0.16, 0.18, 0.2, 0.22, 0.24, 0.26, 0.28],
        200,
        &mut rng,
    );
    let estimates = estimate(&[far], std::slice::from_ref(&ar), up, settings);
    assert_eq!(estimates.raw.verdict, Verdict::NotReached);
    // Far ahead at the end: crossed, robustly no earlier than the point estimate.
    let ahead = answers(
        &[0.10, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85],
        200,
        &mut rng,
    );
    let estimates = estimate(&[ahead], &[ar], up, settings);
    let (Outcome::Crossed { x, .. }, Verdict::Crossed { x: robust }) =
        (estimates.raw.outcome, estimates.raw.verdict)
    else {
        panic!("{:?}", estimates.raw);
    };
    assert!(robust >= x, "robust {robust} before the estimate {x}");
}

#[test]
fn early_stopped_and_raw_come_from_the_same_draws() {
    // AR overfits after its best (2.3 at x = 4); the DLM's best (2.53) is worse.
    let ar = Replicate::plain(
        0,
        curve_from(&[(1.0, 3.0), (2.0, 2.5), (4.0, 2.3), (8.0, 2.6), (16.0, 3.0)]),
    );
    let dlm = Replicate::plain(
        0,
        curve_from(&[
            (1.0, 3.5),
            (2.0, 3.0),
            (4.0, 2.7),
            (8.0, 2.55),
            (16.0, 2.53),
        ]),
    );
    let estimates = estimate(
        &[dlm],
        &[ar],
        LOSS,
        Settings {
            draws: 50,
            ..Settings::default()
        },
    );
    assert!(matches!(
        estimates.of(Kind::Raw).outcome,
        Outcome::Crossed { .. }
    ));
    assert!(matches!(
        estimates.of(Kind::EarlyStopped).outcome,
        Outcome::NotReached { .. }
    ));
}

#[test]
fn draws_are_reproducible_from_the_seed() {
    let mut rng = Rng::new(7);
    let items = Items::draw(50, &mut rng);
    let dlm: Vec<Replicate> = (0..3)
        .map(|s| items.replicate(0, s, 0.0, &mut rng))
        .collect();
    let ar: Vec<Replicate> = (0..3)
        .map(|s| items.replicate(1, s, 0.0, &mut rng))
        .collect();
    let settings = Settings {
        smooth: 3,
        draws: 100,
        seed: 42,
    };
    let a = estimate(&dlm, &ar, LOSS, settings);
    let b = estimate(&dlm, &ar, LOSS, settings);
    assert_eq!(a, b);
}

#[test]
fn quantile_cases() {
    let values = [1.0, 2.0, 3.0, 4.0, f64::INFINITY];
    assert_eq!(quantile(&values, 0.5), 3.0);
    assert_eq!(quantile(&values, 0.25), 2.0);
    assert_eq!(quantile(&values, 0.1), 1.4);
    assert!(quantile(&values, 0.95).is_infinite());
    assert!(quantile(&[], 0.5).is_nan());
}

#[test]
fn rng_normal_has_unit_variance() {
    let mut rng = Rng::new(3);
    let n = 20_000;
    let samples: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let mean = samples.iter().sum::<f64>() / n as f64;
    let variance = samples.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    assert!(
        mean.abs() < 0.03 && (variance - 1.0).abs() < 0.05,
        "{mean} {variance}"
    );
}

/// Issue 20: the planned draws (crate::draws) are the general path's draws, bit for
/// bit: same random stream, same arithmetic, for every method, with unequal and with
/// shared evaluation points, smoothing, both directions and three axes.
#[test]
fn planned_draws_equal_the_general_path() {
    // A replicate on `xs` (tokens) with epochs = x / 1000 and FLOPs = 6e6 x as further
    // axes; per-item scores when `items` > 0 (some non-finite when `holes`).
    let replicate = |seed: u64, xs: &[f64], items: usize, holes: bool, rng: &mut Rng| {
        let level = rng.uniform();
        let scores: Vec<Vec<f64>> = xs
            .iter()
            .map(|&x| {
                (0..items)
                    .map(|i| {
                        if holes && i % 7 == 3 && x > 4.0 {
                            f64::NAN
                        } else {
                            level + 0.3 * x.log2() / 10.0 + 0.2 * rng.normal()
                        }
                    })
                    .collect()
            })
            .collect();
        let curve: Curve = xs
            .iter()
            .zip(&scores)
            .map(|(&x, s)| {
                let y = if items == 0 {
                    level + 0.03 * x.log2() + 0.05 * rng.normal()
                } else {
                    let finite: Vec<f64> = s.iter().copied().filter(|v| v.is_finite()).collect();
                    finite.iter().sum::<f64>() / finite.len() as f64
                };
                Point::new(x, y, 0.02 + 0.01 * rng.uniform())
            })
            .collect();
        Replicate {
            seed,
            items: (items > 0).then_some(scores),
            other_axes: vec![
                xs.iter().map(|x| x / 1000.0).collect(),
                xs.iter().map(|x| 6e6 * x).collect(),
            ],
            curve,
        }
    };
    let regular: Vec<f64> = (0..9).map(|k| f64::from(1 << k)).collect();
    let shifted: Vec<f64> = vec![1.5, 3.0, 6.0, 12.0, 24.0, 48.0, 96.0, 200.0];
    let short: Vec<f64> = vec![1.0, 2.0, 4.0, 8.0, 16.0];
    struct Case {
        name: &'static str,
        seeds: u64,
        /// The baseline's seeds: 1 keeps unequal DLM points on the plan (no seed level).
        baseline_seeds: u64,
        items: usize,
        holes: bool,
        dlm_xs: Vec<Vec<f64>>,
        smooth: usize,
        direction: Direction,
        method: Method,
    }
    let cases = [
        Case {
            name: "paired items, one seed",
            seeds: 1,
            baseline_seeds: 1,
            items: 12,
            holes: false,
            dlm_xs: vec![regular.clone()],
            smooth: 1,
            direction: LOSS,
            method: Method::PairedItems,
        },
        Case {
            name: "paired items, unequal points, smoothed, holes",
            seeds: 2,
            baseline_seeds: 1,
            items: 9,
            holes: true,
            dlm_xs: vec![shifted.clone(), short.clone()],
            smooth: 3,
            direction: Direction::HigherBetter,
            method: Method::PairedItems,
        },
        Case {
            name: "paired items and seeds",
            seeds: 5,
            baseline_seeds: 5,
            items: 6,
            holes: false,
            dlm_xs: vec![regular.clone(); 5],
            smooth: 1,
            direction: LOSS,
            method: Method::PairedItemsSeeds,
        },
        Case {
            name: "paired items and two seeds, smoothed",
            seeds: 2,
            baseline_seeds: 2,
            items: 8,
            holes: true,
            dlm_xs: vec![regular.clone(); 2],
            smooth: 3,
            direction: Direction::HigherBetter,
            method: Method::PairedItemsSeeds,
        },
        Case {
            name: "seed bootstrap, smoothed",
            seeds: 6,
            baseline_seeds: 6,
            items: 0,
            holes: false,
            dlm_xs: vec![shifted.clone(); 6],
            smooth: 3,
            direction: Direction::HigherBetter,
            method: Method::Seeds,
        },
        Case {
            name: "stderr, one seed",
            seeds: 1,
            baseline_seeds: 1,
            items: 0,
            holes: false,
            dlm_xs: vec![shifted.clone()],
            smooth: 1,
            direction: LOSS,
            method: Method::Stderr,
        },
        Case {
            name: "stderr, unequal points, smoothed",
            seeds: 3,
            baseline_seeds: 1,
            items: 0,
            holes: false,
            dlm_xs: vec![regular.clone(), short.clone(), shifted.clone()],
            smooth: 3,
            direction: LOSS,
            method: Method::Stderr,
        },
    ];
    for case in cases {
        let mut rng = Rng::new(99);
        let dlm: Vec<Replicate> = (0..case.seeds)
            .map(|s| {
                let xs = &case.dlm_xs[s as usize % case.dlm_xs.len()];
                replicate(s, xs, case.items, case.holes, &mut rng)
            })
            .collect();
        let ar: Vec<Replicate> = (0..case.baseline_seeds)
            .map(|s| replicate(s, &regular, case.items, case.holes, &mut rng))
            .collect();
        assert_eq!(method_for(&dlm, &ar, 10), case.method, "{}", case.name);
        let settings = Settings {
            smooth: case.smooth,
            draws: 64,
            seed: 7,
        };
        let planned = estimate_axes(&dlm, &ar, case.direction, settings);
        // The same estimates from the general path alone.
        let grids: Vec<Vec<f64>> = planned_grids(&dlm, &ar, case.direction, case.smooth);
        let plan = crate::crossover::draws::Plan::new(
            &dlm,
            &ar,
            case.method,
            case.direction,
            case.smooth,
            &grids,
        )
        .unwrap_or_else(|| panic!("{}: no plan", case.name));
        let fast = plan.run(64, &mut Rng::new(7));
        let slow = general_draws(
            &dlm,
            &ar,
            case.direction,
            settings,
            case.method,
            64,
            &grids,
            &mut Rng::new(7),
        );
        for (axis, (f, s)) in fast.iter().zip(&slow).enumerate() {
            for kind in 0..2 {
                assert_eq!(
                    f[kind].outcomes, s[kind].outcomes,
                    "{} axis {axis} kind {kind}",
                    case.name
                );
                let same = f[kind]
                    .values
                    .iter()
                    .zip(&s[kind].values)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{} axis {axis} kind {kind}: advantage draws differ",
                    case.name
                );
            }
        }
        // And the estimates the analysis reports are the planned ones.
        assert_eq!(planned.len(), 3, "{}", case.name);
        assert!(
            planned[0].raw.median.is_finite() || planned[0].raw.median.is_infinite(),
            "{}",
            case.name
        );
    }
}

/// The point estimates' advantage grids per axis (what a plan must reproduce).
fn planned_grids(
    dlm: &[Replicate],
    ar: &[Replicate],
    direction: Direction,
    smooth: usize,
) -> Vec<Vec<f64>> {
    (0..3)
        .map(|axis| {
            let d = side_curve(&as_is(dlm), axis, smooth);
            let b = side_curve(&as_is(ar), axis, smooth);
            advantage(&d, &b, direction)
                .iter()
                .map(|&(x, _)| x)
                .collect()
        })
        .collect()
}

#[test]
fn quantile_by_selection_equals_quantile_of_sorted() {
    let mut rng = Rng::new(3);
    for n in [1, 2, 3, 10, 101, 1000] {
        let mut values: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        if n > 3 {
            values[1] = f64::INFINITY;
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.0, 0.05, 0.5, 0.95, 1.0] {
            let mut scratch = values.clone();
            assert_eq!(
                quantile_unsorted(&mut scratch, q).to_bits(),
                quantile(&sorted, q).to_bits(),
                "n {n} q {q}"
            );
        }
    }
}

/// The seed level moves a side's seed mean by s/sqrt(n) times a Student t with n - 1
/// degrees of freedom: the 95% points of t(1) and t(2) are 6.314 and 2.920 (tables),
/// not the normal's 1.645, and one replicate does not move.
#[test]
fn seed_level_draws_the_seed_mean_as_a_student_t() {
    let plain = |n: u64| -> Vec<Replicate> {
        (0..n)
            .map(|s| Replicate::plain(s, curve_from(&[(1.0, s as f64)])))
            .collect()
    };
    for (n, t_95) in [(2u64, 6.314), (3, 2.920)] {
        let side = plain(n);
        let values: Vec<f64> = (0..n).map(|s| s as f64).collect();
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        let standard_error = sd / (n as f64).sqrt();
        let mut rng = Rng::new(17);
        let mut pivots: Vec<f64> = (0..20_000)
            .map(|_| {
                let draw = SeedDraw::new(&side, &side, &mut rng);
                (seed_mixed(&values, &draw.multipliers[0], draw.scale) - mean) / standard_error
            })
            .collect();
        pivots.sort_by(f64::total_cmp);
        let q = quantile(&pivots, 0.95);
        assert!(
            (q - t_95).abs() < 0.1 * t_95,
            "{n} seeds: 95% point {q}, t table {t_95}"
        );
    }
    assert_eq!(seed_mixed(&[0.3], &[5.0], 10.0), 0.3);
    assert_eq!(seed_mixed(&[0.0, 1.0], &[0.0, 0.0], 3.0), 0.5);
}
