//! One kind of standard error for every objective (issue 29).
//!
//! eval.csv's stderr is not the same quantity for both objectives
//! (trainer/src/eval/validation_loss.rs): AR's validation loss has the spread of its per-window losses
//! over sqrt(windows) (`ar_nll`), the DLM's the spread of its K Monte Carlo draw means
//! over sqrt(K) (`dlm_elbo`), which leaves out which windows were drawn, usually the
//! larger part. The stderr fallback of the crossover bootstrap and the R_D* law's
//! bootstrap both read it, so the DLM's points were held to be more precise than they
//! are. Where eval_items.csv has a step's item scores, the analysis replaces the stderr
//! by their spread over sqrt(items), for every objective and metric: the value is the
//! items' mean, and a DLM window's score is its ELBO averaged over the K draws, whose
//! masks are drawn independently per window, so the spread over windows holds both the
//! windows' spread and each window's Monte Carlo noise. AR's stderr is the same number
//! as before. Steps without item scores (jobs from trainers that predate
//! eval_items.csv) keep eval.csv's stderr, for the DLM its Monte Carlo part only.

use crate::ingest::records::{EvalRow, ItemSeries};
use std::collections::BTreeMap;

/// Count, mean and sum of squared deviations (Welford 1962).
#[derive(Clone, Copy, Debug, Default)]
struct Moments {
    count: usize,
    mean: f64,
    squares: f64,
}

impl Moments {
    fn add(&mut self, value: f64) {
        self.count += 1;
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.squares += delta * (value - self.mean);
    }

    /// Standard error of the mean (sample standard deviation over sqrt(count)); None
    /// below two values.
    fn stderr(&self) -> Option<f64> {
        (self.count > 1)
            .then(|| (self.squares / (self.count - 1) as f64 / self.count as f64).sqrt())
    }
}

/// Each step's moments of one series' finite scores. A step logged twice (a resumed
/// job) counts once: its last block of consecutive rows.
fn moments_by_step(series: &ItemSeries) -> BTreeMap<u32, Moments> {
    let mut out: BTreeMap<u32, Moments> = BTreeMap::new();
    let mut current: Option<u32> = None;
    for (&step, &value) in series.steps.iter().zip(&series.values) {
        if current != Some(step) {
            out.insert(step, Moments::default());
            current = Some(step);
        }
        if value.is_finite()
            && let Some(moments) = out.get_mut(&step)
        {
            moments.add(value);
        }
    }
    out
}

/// Replace each row's stderr by the spread of its step's item scores over sqrt(items),
/// where the items have two or more finite scores at that step.
pub fn over_items(eval: &mut [EvalRow], items: &[ItemSeries]) {
    for series in items {
        let moments = moments_by_step(series);
        let rows = eval
            .iter_mut()
            .filter(|r| r.task == series.task && r.metric == series.metric);
        for row in rows {
            let step = u32::try_from(row.step).ok();
            if let Some(stderr) = step.and_then(|s| moments.get(&s)?.stderr()) {
                row.stderr = stderr;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(step: u64, task: &str, stderr: f64) -> EvalRow {
        EvalRow {
            step,
            epoch: 1.0,
            tokens: 100.0,
            flops: 1e3,
            task: task.into(),
            metric: "loss".into(),
            value: 3.0,
            stderr,
            n: None,
        }
    }

    fn series(task: &str, rows: &[(u32, f64)]) -> ItemSeries {
        ItemSeries {
            task: task.into(),
            metric: "loss".into(),
            steps: rows.iter().map(|r| r.0).collect(),
            items: (0..rows.len() as u32).collect(),
            values: rows.iter().map(|r| r.1).collect(),
        }
    }

    /// Windows at 2, 3 and 4 (sd 1, stderr 1 / sqrt 3) at step 10; the DLM's Monte
    /// Carlo stderr of 0.01 becomes the spread over windows.
    #[test]
    fn stderr_is_the_spread_over_items() {
        let third = 1.0 / 3f64.sqrt();
        let windows = series("val_loss", &[(10, 2.0), (10, 3.0), (10, 4.0), (20, 5.0)]);
        let resumed = series(
            "val_loss",
            &[(10, 9.0), (10, 0.0), (10, 2.0), (10, 3.0), (10, 4.0)],
        );
        let with_nan = series("val_loss", &[(10, 2.0), (10, f64::NAN), (10, 4.0)]);
        let cases: [(&str, ItemSeries, EvalRow, f64); 6] = [
            (
                "monte carlo only",
                windows.clone(),
                row(10, "val_loss", 0.01),
                third,
            ),
            // One window at step 20: no spread, eval.csv's stderr stays.
            ("one item", windows.clone(), row(20, "val_loss", 0.01), 0.01),
            (
                "no items at the step",
                windows.clone(),
                row(30, "val_loss", 0.01),
                0.01,
            ),
            ("another task", windows, row(10, "cloze", 0.01), 0.01),
            // Five windows in one block all count.
            ("one block of five", resumed, row(10, "val_loss", 0.01), {
                let values = [9.0, 0.0, 2.0, 3.0, 4.0];
                let mean = values.iter().sum::<f64>() / 5.0;
                let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 4.0;
                (variance / 5.0).sqrt()
            }),
            // 2 and 4: sd sqrt(2) over sqrt(2).
            ("an unscored item", with_nan, row(10, "val_loss", 0.01), 1.0),
        ];
        for (name, items, eval_row, expected) in cases {
            let mut eval = vec![eval_row];
            over_items(&mut eval, &[items]);
            assert!(
                (eval[0].stderr - expected).abs() < 1e-12,
                "{name}: {} vs {expected}",
                eval[0].stderr
            );
        }
    }

    /// A resumed job logs step 10 again: the later block replaces the earlier one.
    #[test]
    fn a_step_logged_twice_counts_once() {
        let items = series(
            "val_loss",
            &[(10, 100.0), (10, -100.0), (20, 1.0), (10, 2.0), (10, 4.0)],
        );
        let mut eval = vec![row(10, "val_loss", 0.01)];
        over_items(&mut eval, &[items]);
        assert!((eval[0].stderr - 1.0).abs() < 1e-12, "{}", eval[0].stderr);
    }
}
