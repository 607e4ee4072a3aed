//! The crossover table: every (group, baseline objective, metric, axis, kind) with its
//! outcome, bracketing evaluations, paired bootstrap interval, verdict and best-vs-best
//! comparison; written as crossover.csv and Markdown.

use crate::crossover::detection::{BestVsBest, Kind, Outcome};
use crate::crossover::selection::{HeldOutBest, held_out_best, side_scores};
use crate::crossover::uncertainty::{Estimate, Settings, Verdict, estimate_axes};
use crate::curve::combined;
use crate::curve::{Curve, Direction};
use crate::error::{AnalysisError, Result};
use crate::format;
use crate::ingest::records::Run;
use crate::pairs::curves::{Axis, metrics};
use crate::pairs::groups::Group;
use crate::pairs::replicates::Replicate;
use crate::pairs::replicates::{item_ids, replicate};
use rayon::prelude::*;
use std::path::Path;

/// One comparison of the DLM with one baseline objective.
#[derive(Clone, Debug)]
pub struct CrossoverRow {
    pub group: usize,
    pub group_label: String,
    pub variant: String,
    pub unique_tokens: u64,
    pub preset: String,
    pub params: Option<u64>,
    pub baseline: String,
    pub task: String,
    pub metric: String,
    pub axis: Axis,
    pub kind: Kind,
    pub direction: Direction,
    pub estimate: Estimate,
    pub best: BestVsBest,
    /// Each side's (DLM, baseline) best checkpoint value read on items it was not
    /// chosen on (`selection`); None without per-item scores at aligned checkpoints.
    pub held_out: [Option<HeldOutBest>; 2],
    pub dlm_seeds: usize,
    pub baseline_seeds: usize,
    /// Item indices both sides' draws resample (0 without eval_items.csv).
    pub items: usize,
    /// Every compared run is done (otherwise the curves are partial).
    pub complete: bool,
}

impl CrossoverRow {
    pub fn outcome(&self) -> Outcome {
        self.estimate.outcome
    }

    pub fn verdict(&self) -> Verdict {
        self.estimate.verdict
    }

    /// "crossed at 1.2M (between evaluations at 1M and 2M)", "not reached (...)", ...
    pub fn describe(&self) -> String {
        let axis = self.axis;
        self.outcome().describe(|x| axis.format(x))
    }

    /// The estimate with the bootstrap median and 90% interval, e.g.
    /// "1.1M (median 1.2M [0.9M, 1.4M])"; the estimate alone without draws.
    pub fn interval(&self) -> String {
        let e = &self.estimate;
        let f = |x: f64| {
            if x.is_infinite() {
                "not reached".to_string()
            } else {
                self.axis.format(x)
            }
        };
        let point = e.outcome.censored_x().map(f).unwrap_or_else(|| "-".into());
        if e.median.is_nan() {
            return point;
        }
        format!(
            "{point} (median {} [{}, {}])",
            f(e.median),
            f(e.low),
            f(e.high)
        )
    }

    /// dlm - baseline at the end with its 90% interval, e.g. "-0.025 [-0.08, +0.03]".
    pub fn gap(&self) -> String {
        let e = &self.estimate;
        if e.gap.is_nan() {
            return "-".into();
        }
        // Rounding to 4 decimals must not print a tie as "-0.0000".
        let signed = |v: f64| format!("{:+.4}", if v.abs() < 5e-5 { 0.0 } else { v });
        if e.gap_low.is_nan() {
            return signed(e.gap);
        }
        format!(
            "{} [{}, {}]",
            signed(e.gap),
            signed(e.gap_low),
            signed(e.gap_high)
        )
    }
}

/// One unit of work: a group, a baseline, a metric (every axis and both kinds share
/// the draws).
struct Job<'a> {
    group: &'a Group,
    baseline: String,
    task: String,
    metric: String,
}

/// All crossovers of the DLM against every other objective in each group: for each
/// comparison an early-stopped row, then a raw one.
pub fn compute(runs: &[Run], groups: &[Group], settings: Settings) -> Vec<CrossoverRow> {
    compute_with(runs, groups, settings, &|| ())
}

/// How many comparisons (group x baseline x metric) `compute` makes: its progress.
pub fn comparisons(runs: &[Run], groups: &[Group]) -> usize {
    work(runs, groups).len()
}

/// `compute`, calling `done` after each comparison (from worker threads).
pub fn compute_with(
    runs: &[Run],
    groups: &[Group],
    settings: Settings,
    done: &(dyn Fn() + Sync),
) -> Vec<CrossoverRow> {
    work(runs, groups)
        .par_iter()
        .flat_map_iter(|job| {
            let out = rows(runs, job, settings);
            done();
            out
        })
        .collect()
}

fn work<'a>(runs: &[Run], groups: &'a [Group]) -> Vec<Job<'a>> {
    let mut jobs = Vec::new();
    for group in groups {
        let objectives = group.objectives(runs);
        if !objectives.iter().any(|o| o == "dlm") {
            continue;
        }
        let members: Vec<&Run> = group.runs.iter().map(|&i| &runs[i]).collect();
        for baseline in objectives.iter().filter(|o| *o != "dlm") {
            for (task, metric) in metrics(&members) {
                jobs.push(Job {
                    group,
                    baseline: baseline.clone(),
                    task,
                    metric,
                });
            }
        }
    }
    jobs
}

fn rows(runs: &[Run], job: &Job<'_>, settings: Settings) -> Vec<CrossoverRow> {
    let dlm_runs = job.group.replicates(runs, "dlm");
    let baseline_runs = job.group.replicates(runs, &job.baseline);
    let both: Vec<&Run> = dlm_runs.iter().chain(&baseline_runs).copied().collect();
    let ids = item_ids(&both, &job.task, &job.metric);
    let side = |members: &[&Run]| {
        members
            .iter()
            .map(|r| replicate(r, &job.task, &job.metric, &ids))
            .filter(|r| !r.curve.is_empty())
            .collect::<Vec<_>>()
    };
    let (dlm, baseline) = (side(&dlm_runs), side(&baseline_runs));
    let complete = both.iter().all(|r| r.state == "done");
    let direction = Direction::of_metric(&job.metric);
    // A distinct bootstrap stream per comparison keeps rows independent of evaluation
    // order; the three axes share its draws.
    let seed = settings.seed
        ^ ((job.group.index as u64) << 32)
        ^ fnv(&format!("{}/{}/{}", job.baseline, job.task, job.metric));
    let estimates = estimate_axes(&dlm, &baseline, direction, Settings { seed, ..settings });
    let held_out = [&dlm, &baseline]
        .map(|side| side_scores(side).and_then(|scores| held_out_best(&scores, direction)));
    let paired = estimates.first().is_some_and(|e| e.raw.method.paired());
    let items = if paired { ids.len() } else { 0 };
    let mut out = Vec::new();
    for (axis, estimates) in Axis::ALL.into_iter().zip(&estimates) {
        let on_axis = |side: &[Replicate]| -> Curve {
            let index = Axis::ALL.iter().position(|a| *a == axis).unwrap_or(0);
            let each: Vec<Curve> = side.iter().map(|r| axis_curve(r, index)).collect();
            combined(&each, settings.smooth)
        };
        let best = BestVsBest::of(&on_axis(&dlm), &on_axis(&baseline), direction);
        for kind in Kind::ALL {
            out.push(CrossoverRow {
                group: job.group.index,
                group_label: job.group.label.clone(),
                variant: job.group.variant.clone(),
                unique_tokens: job.group.unique_tokens,
                preset: job.group.preset.clone(),
                params: job.group.params,
                baseline: job.baseline.clone(),
                task: job.task.clone(),
                metric: job.metric.clone(),
                axis,
                kind,
                direction,
                estimate: estimates.of(kind).clone(),
                best,
                held_out,
                dlm_seeds: dlm.len(),
                baseline_seeds: baseline.len(),
                items,
                complete,
            });
        }
    }
    out
}

/// A replicate's curve on axis `index` of `Axis::ALL` (0: its own, tokens).
fn axis_curve(replicate: &Replicate, index: usize) -> Curve {
    match index {
        0 => replicate.curve.clone(),
        i => replicate
            .curve
            .iter()
            .zip(&replicate.other_axes[i - 1])
            .map(|(p, &x)| crate::curve::Point::new(x, p.y, p.stderr))
            .collect(),
    }
}

/// FNV-1a: a stable hash for seeding (std's hasher may change between releases).
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    })
}

pub const CSV_HEADER: [&str; 39] = [
    "group",
    "group_label",
    "unique_tokens",
    "preset",
    "params",
    "baseline",
    "task",
    "metric",
    "axis",
    "kind",
    "direction",
    "outcome",
    "verdict",
    "crossing",
    "x_before",
    "x_after",
    "robust_crossing",
    "gap_at_end",
    "gap_low_5",
    "gap_high_95",
    "median",
    "low_5",
    "high_95",
    "share_crossed",
    "method",
    "items",
    "dlm_seeds",
    "baseline_seeds",
    "complete",
    "dlm_best",
    "dlm_best_at",
    "baseline_best",
    "baseline_best_at",
    "variant",
    "seed_level",
    "dlm_best_held_out",
    "dlm_best_optimism",
    "baseline_best_held_out",
    "baseline_best_optimism",
];

/// crossover.csv: one line per row; non-numbers are empty, infinities read "inf".
pub fn write_csv(rows: &[CrossoverRow], path: &Path) -> Result<()> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let csv_error = |error: csv::Error| AnalysisError::Write {
        path: path.to_owned(),
        message: error.to_string(),
    };
    writer.write_record(CSV_HEADER).map_err(csv_error)?;
    for row in rows {
        writer.write_record(csv_fields(row)).map_err(csv_error)?;
    }
    let bytes = writer.into_inner().map_err(|error| AnalysisError::Write {
        path: path.to_owned(),
        message: error.to_string(),
    })?;
    crate::error::write_file(path, &bytes)
}

fn csv_fields(row: &CrossoverRow) -> Vec<String> {
    let number = |x: f64| {
        if x.is_nan() {
            String::new()
        } else {
            // `+ 0.0` turns a negative zero (a tie) into "0" rather than "-0".
            format!("{}", x + 0.0)
        }
    };
    let optional = |x: Option<f64>| x.map(number).unwrap_or_default();
    let crossing = match row.outcome() {
        Outcome::Crossed { x, .. } | Outcome::AheadFromStart { x } => number(x),
        Outcome::NotReached { .. } | Outcome::NoOverlap => String::new(),
    };
    let bracket = row.outcome().bracket();
    let robust = match row.verdict() {
        Verdict::Crossed { x } => number(x),
        _ => String::new(),
    };
    let e = &row.estimate;
    vec![
        row.group.to_string(),
        row.group_label.clone(),
        row.unique_tokens.to_string(),
        row.preset.clone(),
        row.params.map(|p| p.to_string()).unwrap_or_default(),
        row.baseline.clone(),
        row.task.clone(),
        row.metric.clone(),
        row.axis.name().into(),
        row.kind.name().into(),
        match row.direction {
            Direction::HigherBetter => "higher_better",
            Direction::LowerBetter => "lower_better",
        }
        .into(),
        row.outcome().kind().into(),
        row.verdict().label().into(),
        crossing,
        optional(bracket.map(|b| b.0)),
        optional(bracket.map(|b| b.1)),
        robust,
        number(e.gap),
        number(e.gap_low),
        number(e.gap_high),
        number(e.median),
        number(e.low),
        number(e.high),
        number(e.share_crossed),
        e.method.label().into(),
        row.items.to_string(),
        row.dlm_seeds.to_string(),
        row.baseline_seeds.to_string(),
        row.complete.to_string(),
        optional(row.best.dlm.map(|p| p.y)),
        optional(row.best.dlm.map(|p| p.x)),
        optional(row.best.baseline.map(|p| p.y)),
        optional(row.best.baseline.map(|p| p.x)),
        row.variant.clone(),
        e.seed_note(),
        optional(row.held_out[0].map(|b| b.held_out)),
        optional(row.held_out[0].map(|b| b.optimism(row.direction))),
        optional(row.held_out[1].map(|b| b.held_out)),
        optional(row.held_out[1].map(|b| b.optimism(row.direction))),
    ]
}

/// How a verdict reads in tables.
pub fn verdict_text(row: &CrossoverRow) -> String {
    match row.verdict() {
        Verdict::Crossed { x } => format!("crossed (robustly from {})", row.axis.format(x)),
        Verdict::AheadFromStart => "DLM ahead from the start".into(),
        Verdict::NotReached => "not reached".into(),
        Verdict::NoEvidence => "no evidence either way".into(),
        Verdict::NoOverlap => "no overlap".into(),
    }
}

/// The full table in Markdown (crossover.md).
pub fn markdown(rows: &[CrossoverRow]) -> String {
    let mut out = String::from(
        "| group | DLM vs | task | metric | axis | kind | verdict | point estimate | estimate (median [90% interval]) | gap at end [90%] | P(crossed) | method | seeds in the interval | best DLM (at; held out) | best baseline (at; held out) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let best = |p: Option<crate::curve::Point>, held_out: Option<HeldOutBest>| {
            let held_out = held_out
                .map(|b| format!("; held out {}", format::value(b.held_out)))
                .unwrap_or_default();
            p.map(|p| {
                format!(
                    "{} ({}){held_out}",
                    format::value(p.y),
                    row.axis.format(p.x)
                )
            })
            .unwrap_or_else(|| "-".into())
        };
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {}{} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.group_label,
            row.baseline,
            row.task,
            row.metric,
            row.axis.name(),
            row.kind.name(),
            verdict_text(row),
            row.describe(),
            if row.complete { "" } else { " (partial runs)" },
            row.interval(),
            row.gap(),
            format::value(row.estimate.share_crossed),
            row.estimate.method.label(),
            row.estimate.seed_note(),
            best(row.best.dlm, row.held_out[0]),
            best(row.best.baseline, row.held_out[1]),
        );
    }
    out
}
