//! Coverage of the intervals on simulated studies with a known answer (issues 15 and
//! 29): items paired and shared by every checkpoint, the seed level, the fallbacks.

use super::*;

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
