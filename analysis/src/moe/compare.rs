//! Each mixture run matched with the dense runs that differ from it only in the model,
//! and compared at equal active size or equal FLOPs (the module comment of `moe`).

use crate::curve::{Curve, Direction, interpolate_log, running_best};
use crate::ingest::records::Run;
use crate::pairs::curves::{Axis, curve};
use std::collections::BTreeMap;

/// Active parameters within this relative distance count as the same active size.
const SAME_SIZE: f64 = 0.02;
/// z of a two-sided 90% normal interval.
const Z90: f64 = 1.644_853_626_951_472_2;

/// How a mixture and a dense run are matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matched {
    /// Active parameters (and so FLOPs per token) agree within 2%.
    EqualActive,
    /// Different active sizes: compared at the same training FLOPs.
    EqualFlops,
}

impl Matched {
    pub fn label(self) -> &'static str {
        match self {
            Self::EqualActive => "equal active params",
            Self::EqualFlops => "equal FLOPs",
        }
    }
}

/// One (mixture run, dense run, task, metric) comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct MoeRow {
    pub objective: String,
    pub seed: u64,
    pub unique_tokens: u64,
    pub epochs: f64,
    pub moe_id: String,
    pub moe_preset: String,
    pub moe_params: Option<u64>,
    pub moe_active_params: Option<u64>,
    pub dense_id: String,
    pub dense_preset: String,
    pub dense_params: Option<u64>,
    pub matched: Matched,
    pub task: String,
    pub metric: String,
    /// The axis the two are compared on (tokens at equal active size, else FLOPs) and
    /// where on it.
    pub axis: Axis,
    pub at: f64,
    pub moe_value: f64,
    pub dense_value: f64,
    /// Running bests up to `flops` (each run stopped at its best checkpoint so far).
    pub moe_best: f64,
    pub dense_best: f64,
    /// The mixture's lead at `flops`, signed so that positive means better (dense loss
    /// minus MoE loss; MoE accuracy minus dense accuracy), with a 90% interval.
    pub advantage: f64,
    pub low: f64,
    pub high: f64,
    /// Paired items behind the interval (0: standard errors combined instead).
    pub items: usize,
}

/// The crossovers' comparison key (the config without objective, seed and the fields
/// that do not change training) without the model: mixtures and dense runs with the
/// same key are comparable.
fn key_without_model(run: &Run) -> BTreeMap<String, String> {
    let mut key = crate::pairs::groups::comparison_key(run);
    key.retain(|field, _| !field.starts_with("model."));
    key
}

/// Every mixture-vs-dense comparison in `runs` (none without mixtures).
pub fn compare(runs: &[Run]) -> Vec<MoeRow> {
    let keys: Vec<BTreeMap<String, String>> = runs.iter().map(key_without_model).collect();
    let mut rows = Vec::new();
    for (m, moe) in runs.iter().enumerate().filter(|(_, r)| r.moe.is_some()) {
        let partners = runs.iter().enumerate().filter(|(d, dense)| {
            dense.moe.is_none()
                && dense.objective == moe.objective
                && dense.config.seed == moe.config.seed
                && keys[*d] == keys[m]
        });
        for (_, dense) in partners {
            rows.extend(compare_pair(moe, dense));
        }
    }
    rows
}

/// Whether two active sizes are the same within `SAME_SIZE`.
pub fn matched(moe_active: Option<u64>, dense_params: Option<u64>) -> Matched {
    match (moe_active, dense_params) {
        (Some(a), Some(d)) if d > 0 && (a as f64 - d as f64).abs() / d as f64 <= SAME_SIZE => {
            Matched::EqualActive
        }
        _ => Matched::EqualFlops,
    }
}

/// The curves to compare (the diagnostic `score_mc_stderr` left out), as for the
/// crossovers.
fn metrics_of(run: &Run) -> Vec<(String, String)> {
    crate::pairs::curves::metrics(&[run])
}

fn compare_pair(moe: &Run, dense: &Run) -> Vec<MoeRow> {
    let matched = matched(moe.active_params, dense.params);
    let dense_metrics = metrics_of(dense);
    let mut rows = Vec::new();
    for (task, metric) in metrics_of(moe)
        .into_iter()
        .filter(|m| dense_metrics.contains(m))
    {
        let direction = Direction::of_metric(&metric);
        // Equal active size: the same schedule, so the same evaluation steps at the same
        // tokens (their FLOPs differ by the router's share); otherwise FLOPs.
        let axis = match matched {
            Matched::EqualActive => Axis::Tokens,
            Matched::EqualFlops => Axis::Flops,
        };
        let a = curve(moe, &task, &metric, axis);
        let b = curve(dense, &task, &metric, axis);
        let Some(at) = common_end(&a, &b) else {
            continue;
        };
        let (Some(pa), Some(pb)) = (interpolate_log(&a, at), interpolate_log(&b, at)) else {
            continue;
        };
        let best_at = |c: &Curve| interpolate_log(&running_best(c, direction), at).map(|p| p.y);
        let advantage = direction.sign() * (pa.y - pb.y);
        let paired = (matched == Matched::EqualActive)
            .then(|| paired_difference(moe, dense, &task, &metric, at))
            .flatten();
        // The items' mean difference is the metric's difference at that evaluation, so
        // the interval is centred on `advantage`.
        let (half, items) = match paired {
            Some((_, sd_mean, n)) => (Z90 * sd_mean, n),
            None => (Z90 * (pa.stderr.powi(2) + pb.stderr.powi(2)).sqrt(), 0),
        };
        rows.push(MoeRow {
            objective: moe.objective.clone(),
            seed: moe.config.seed,
            unique_tokens: moe.config.data.unique_tokens.get(),
            epochs: moe.config.train.epochs,
            moe_id: moe.id.clone(),
            moe_preset: preset(moe),
            moe_params: moe.params,
            moe_active_params: moe.active_params,
            dense_id: dense.id.clone(),
            dense_preset: preset(dense),
            dense_params: dense.params,
            matched,
            task,
            metric,
            axis,
            at,
            moe_value: pa.y,
            dense_value: pb.y,
            moe_best: best_at(&a).unwrap_or(f64::NAN),
            dense_best: best_at(&b).unwrap_or(f64::NAN),
            advantage,
            low: advantage - half,
            high: advantage + half,
            items,
        });
    }
    rows
}

fn preset(run: &Run) -> String {
    run.config
        .model
        .preset
        .clone()
        .unwrap_or_else(|| "custom".into())
}

/// The largest x both curves reach (None when their ranges do not overlap).
fn common_end(a: &[crate::curve::Point], b: &[crate::curve::Point]) -> Option<f64> {
    let end = a.last()?.x.min(b.last()?.x);
    let start = a.first()?.x.max(b.first()?.x);
    (end >= start).then_some(end)
}

/// Per-item MoE - dense differences at the evaluation both logged at `tokens`:
/// (mean, standard error of the mean, items). None without item logs at that
/// evaluation or with fewer than two shared items.
fn paired_difference(
    moe: &Run,
    dense: &Run,
    task: &str,
    metric: &str,
    tokens: f64,
) -> Option<(f64, f64, usize)> {
    let step_at = |run: &Run| {
        run.eval
            .iter()
            .find(|e| e.task == task && e.metric == metric && e.tokens == tokens)
            .map(|e| e.step)
    };
    let (step_a, step_b) = (step_at(moe)?, step_at(dense)?);
    let items_at = |run: &Run, step: u64| -> Option<BTreeMap<u32, f64>> {
        let series = run.item_series(task, metric)?;
        Some(
            series
                .steps
                .iter()
                .zip(&series.items)
                .zip(&series.values)
                .filter(|((s, _), _)| u64::from(**s) == step)
                .map(|((_, item), value)| (*item, *value))
                .collect(),
        )
    };
    let (a, b) = (items_at(moe, step_a)?, items_at(dense, step_b)?);
    let differences: Vec<f64> = a
        .iter()
        .filter_map(|(item, x)| b.get(item).map(|y| x - y))
        .collect();
    mean_and_error(&differences).map(|(mean, error)| (mean, error, differences.len()))
}

/// Mean and standard error of the mean (sample standard deviation / sqrt(n)); None
/// for fewer than two values.
pub fn mean_and_error(values: &[f64]) -> Option<(f64, f64)> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Some((mean, (variance / n as f64).sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_by_active_size() {
        let cases = [
            (Some(824_448), Some(820_352), Matched::EqualActive),
            (Some(1_000), Some(1_021), Matched::EqualFlops),
            (Some(1_000), Some(1_019), Matched::EqualActive),
            (None, Some(1_000), Matched::EqualFlops),
            (Some(1_000), Some(0), Matched::EqualFlops),
        ];
        for (active, dense, expected) in cases {
            assert_eq!(matched(active, dense), expected, "{active:?} {dense:?}");
        }
    }

    #[test]
    fn mean_and_standard_error() {
        assert_eq!(mean_and_error(&[1.0]), None);
        let (mean, error) = mean_and_error(&[1.0, 2.0, 3.0, 4.0]).expect("enough");
        assert_eq!(mean, 2.5);
        // sample variance 5/3, error sqrt(5/3 / 4)
        assert!((error - (5.0f64 / 12.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn common_end_is_the_shorter_curve_s_end() {
        let p = |x: f64| crate::curve::Point::new(x, 1.0, f64::NAN);
        assert_eq!(common_end(&[p(1.0), p(4.0)], &[p(2.0), p(8.0)]), Some(4.0));
        assert_eq!(common_end(&[p(1.0), p(2.0)], &[p(3.0), p(8.0)]), None);
        assert_eq!(common_end(&[], &[p(3.0)]), None);
    }
}
