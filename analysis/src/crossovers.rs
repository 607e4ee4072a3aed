//! The crossover table: every (group, baseline objective, metric, axis) with its
//! outcome, bootstrap interval and best-vs-best comparison; written as crossover.csv
//! and Markdown.

use crate::crossover::{BestVsBest, Outcome};
use crate::curve::{Curve, Direction};
use crate::error::{AnalysisError, Result};
use crate::format;
use crate::ingest::Run;
use crate::pairs::{Axis, Group, curve, metrics};
use crate::uncertainty::{Estimate, Settings, combined, estimate};
use rayon::prelude::*;
use std::path::Path;

/// One comparison of the DLM with one baseline objective.
#[derive(Clone, Debug)]
pub struct CrossoverRow {
    pub group: usize,
    pub group_label: String,
    pub unique_tokens: u64,
    pub preset: String,
    pub params: Option<u64>,
    pub baseline: String,
    pub task: String,
    pub metric: String,
    pub axis: Axis,
    pub direction: Direction,
    pub estimate: Estimate,
    pub best: BestVsBest,
    pub dlm_seeds: usize,
    pub baseline_seeds: usize,
    /// Every compared run is done (otherwise the curves are partial).
    pub complete: bool,
}

impl CrossoverRow {
    pub fn outcome(&self) -> Outcome {
        self.estimate.outcome
    }

    /// "crossed at 1.2M", "not reached (gap at the end = -0.0300)", ...
    pub fn describe(&self) -> String {
        let axis = self.axis;
        self.outcome().describe(|x| axis.format(x))
    }

    /// Median and 90% interval, e.g. "1.1M [0.9M, 1.4M]"; "-" without draws.
    pub fn interval(&self) -> String {
        let e = &self.estimate;
        if e.median.is_nan() {
            return "-".into();
        }
        let f = |x: f64| {
            if x.is_infinite() {
                "not reached".to_string()
            } else {
                self.axis.format(x)
            }
        };
        format!("{} [{}, {}]", f(e.median), f(e.low), f(e.high))
    }
}

/// One unit of work: a group, a baseline, a metric, an axis.
struct Job<'a> {
    group: &'a Group,
    baseline: String,
    task: String,
    metric: String,
    axis: Axis,
}

/// All crossovers of the DLM against every other objective in each group.
pub fn compute(runs: &[Run], groups: &[Group], settings: Settings) -> Vec<CrossoverRow> {
    let mut jobs = Vec::new();
    for group in groups {
        let objectives = group.objectives(runs);
        if !objectives.iter().any(|o| o == "dlm") {
            continue;
        }
        let members: Vec<&Run> = group.runs.iter().map(|&i| &runs[i]).collect();
        for baseline in objectives.iter().filter(|o| *o != "dlm") {
            for (task, metric) in metrics(&members) {
                for axis in Axis::ALL {
                    jobs.push(Job {
                        group,
                        baseline: baseline.clone(),
                        task: task.clone(),
                        metric: metric.clone(),
                        axis,
                    });
                }
            }
        }
    }
    jobs.par_iter()
        .map(|job| row(runs, job, settings))
        .collect()
}

fn row(runs: &[Run], job: &Job<'_>, settings: Settings) -> CrossoverRow {
    let sides = |objective: &str| -> (Vec<Curve>, bool) {
        let replicates = job.group.replicates(runs, objective);
        let complete = replicates.iter().all(|r| r.state == "done");
        let curves = replicates
            .iter()
            .map(|r| curve(r, &job.task, &job.metric, job.axis))
            .filter(|c| !c.is_empty())
            .collect();
        (curves, complete)
    };
    let (dlm, dlm_done) = sides("dlm");
    let (baseline, baseline_done) = sides(&job.baseline);
    let direction = Direction::of_metric(&job.metric);
    // A distinct bootstrap stream per row keeps rows independent of evaluation order.
    let seed = settings.seed
        ^ ((job.group.index as u64) << 32)
        ^ fnv(&format!("{}/{}/{}", job.baseline, job.task, job.metric));
    let estimate = estimate(&dlm, &baseline, direction, Settings { seed, ..settings });
    let best = BestVsBest::of(
        &combined(&dlm, settings.smooth),
        &combined(&baseline, settings.smooth),
        direction,
    );
    CrossoverRow {
        group: job.group.index,
        group_label: job.group.label.clone(),
        unique_tokens: job.group.unique_tokens,
        preset: job.group.preset.clone(),
        params: job.group.params,
        baseline: job.baseline.clone(),
        task: job.task.clone(),
        metric: job.metric.clone(),
        axis: job.axis,
        direction,
        estimate,
        best,
        dlm_seeds: dlm.len(),
        baseline_seeds: baseline.len(),
        complete: dlm_done && baseline_done,
    }
}

/// FNV-1a: a stable hash for seeding (std's hasher may change between releases).
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    })
}

pub const CSV_HEADER: [&str; 25] = [
    "group",
    "group_label",
    "unique_tokens",
    "preset",
    "params",
    "baseline",
    "task",
    "metric",
    "axis",
    "direction",
    "outcome",
    "crossing",
    "gap_at_end",
    "median",
    "low_5",
    "high_95",
    "share_crossed",
    "method",
    "dlm_seeds",
    "baseline_seeds",
    "complete",
    "dlm_best",
    "dlm_best_at",
    "baseline_best",
    "baseline_best_at",
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
            format!("{x}")
        }
    };
    let optional = |x: Option<f64>| x.map(number).unwrap_or_default();
    let (crossing, gap) = match row.outcome() {
        Outcome::Crossed { x } | Outcome::AheadFromStart { x } => (number(x), String::new()),
        Outcome::NotReached { gap } => (String::new(), number(gap)),
        Outcome::NoOverlap => (String::new(), String::new()),
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
        match row.direction {
            Direction::HigherBetter => "higher_better",
            Direction::LowerBetter => "lower_better",
        }
        .into(),
        row.outcome().kind().into(),
        crossing,
        gap,
        number(e.median),
        number(e.low),
        number(e.high),
        number(e.share_crossed),
        e.method.label().into(),
        row.dlm_seeds.to_string(),
        row.baseline_seeds.to_string(),
        row.complete.to_string(),
        optional(row.best.dlm.map(|p| p.y)),
        optional(row.best.dlm.map(|p| p.x)),
        optional(row.best.baseline.map(|p| p.y)),
        optional(row.best.baseline.map(|p| p.x)),
    ]
}

/// The full table in Markdown (crossover.md).
pub fn markdown(rows: &[CrossoverRow]) -> String {
    let mut out = String::from(
        "| group | DLM vs | task | metric | axis | outcome | median [90% interval] | P(crossed) | method | best DLM (at) | best baseline (at) |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let best = |p: Option<crate::curve::Point>| {
            p.map(|p| format!("{} ({})", format::value(p.y), row.axis.format(p.x)))
                .unwrap_or_else(|| "-".into())
        };
        out += &format!(
            "| {} | {} | {} | {} | {} | {}{} | {} | {} | {} | {} | {} |\n",
            row.group_label,
            row.baseline,
            row.task,
            row.metric,
            row.axis.name(),
            row.describe(),
            if row.complete { "" } else { " (partial runs)" },
            row.interval(),
            format::value(row.estimate.share_crossed),
            row.estimate.method.label(),
            best(row.best.dlm),
            best(row.best.baseline),
        );
    }
    out
}
