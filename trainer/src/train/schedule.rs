//! Pure decisions of the training loop: learning rate per step, and at which steps
//! to evaluate and checkpoint. Tested as tables of cases.

use jobspec::{Schedule, TrainConfig};
use std::f64::consts::PI;

/// Learning rate for optimizer step `step` (0-based) of `total` steps.
pub fn learning_rate(train: &TrainConfig, step: u64, total: u64) -> f64 {
    let warmup = train.warmup.steps(total);
    let peak = train.lr;
    let floor = train.lr * train.min_lr_ratio;
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    match train.schedule {
        Schedule::Constant => peak,
        Schedule::Cosine => {
            let span = total.saturating_sub(warmup).max(1) as f64;
            let progress = ((step - warmup) as f64 / span).min(1.0);
            floor + 0.5 * (peak - floor) * (1.0 + (PI * progress).cos())
        }
        Schedule::Wsd => {
            let decay_steps = (train.decay_fraction * total as f64).round() as u64;
            let decay_start = total.saturating_sub(decay_steps).max(warmup);
            if step < decay_start {
                peak
            } else {
                let progress =
                    (step - decay_start + 1) as f64 / (total - decay_start).max(1) as f64;
                peak + (floor - peak) * progress.min(1.0)
            }
        }
    }
}

/// Milestone steps: jobspec's rule (the plan counts evaluations with it too).
pub use jobspec::milestone_steps;

#[cfg(test)]
mod tests {
    use super::*;
    use jobspec::{Milestones, TokenCount, Warmup};

    fn config(schedule: Schedule, warmup: Warmup) -> TrainConfig {
        let yaml = "epochs: 1\nbatch_size: 1\nlr: 1.0\nmin_lr_ratio: 0.1\n";
        let mut train: TrainConfig = serde_saphyr::from_str(yaml).expect("config");
        train.schedule = schedule;
        train.warmup = warmup;
        train.decay_fraction = 0.5;
        train
    }

    #[test]
    fn cosine_warms_up_then_decays_to_floor() {
        let train = config(Schedule::Cosine, Warmup::Steps(10));
        let cases = [(0, 0.1), (9, 1.0), (10, 1.0), (55, 0.55), (100, 0.1)];
        for (step, expected) in cases {
            let lr = learning_rate(&train, step, 100);
            assert!(
                (lr - expected).abs() < 1e-9,
                "step {step}: {lr} vs {expected}"
            );
        }
    }

    #[test]
    fn wsd_is_flat_then_linear() {
        let train = config(Schedule::Wsd, Warmup::Fraction(0.0));
        let cases = [(0, 1.0), (49, 1.0), (50, 1.0 - 0.9 / 50.0), (99, 0.1)];
        for (step, expected) in cases {
            let lr = learning_rate(&train, step, 100);
            assert!(
                (lr - expected).abs() < 1e-9,
                "step {step}: {lr} vs {expected}"
            );
        }
    }

    #[test]
    fn milestones_log2_epochs_and_end() {
        // 10 windows per epoch, batch 5 -> 2 steps per epoch; 8 epochs = 16 steps.
        assert_eq!(
            milestone_steps(&Milestones::Log2, 16, 10, 5, 4),
            vec![2, 4, 8, 16]
        );
        assert_eq!(
            milestone_steps(&Milestones::Epochs(vec![0.5, 3.0, 99.0]), 16, 10, 5, 4),
            vec![1, 6, 16]
        );
        assert_eq!(
            milestone_steps(&Milestones::EveryTokens(TokenCount(100)), 16, 10, 5, 4),
            vec![5, 10, 15, 16]
        );
        assert_eq!(milestone_steps(&Milestones::Log2, 1, 10, 5, 4), vec![1]);
        // Evenly spaced points: a 1-epoch job of 100 steps draws a curve of 4.
        assert_eq!(
            milestone_steps(&Milestones::Points(4), 100, 400, 4, 8),
            vec![25, 50, 75, 100]
        );
        assert_eq!(
            milestone_steps(&Milestones::Points(3), 10, 40, 4, 8),
            vec![3, 7, 10]
        );
        assert_eq!(
            milestone_steps(&Milestones::Points(50), 3, 12, 4, 8),
            vec![1, 2, 3]
        );
    }
}
