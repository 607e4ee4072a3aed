//! The planned draws against the general path (issue 20).

use super::*;

/// Issue 20: the planned draws (crossover/draws.rs) are the general path's draws, bit for
/// bit: same random stream, same arithmetic, for every method, with unequal and with
/// shared evaluation points, smoothing, both directions and three axes. About 200
/// lines: one sweep over every case, sharing the replicates it builds once.
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
