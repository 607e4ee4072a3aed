//! The few lines `analyze` prints when it finishes.

use crate::crossover::detection::Outcome;
use crate::crossover::table::CrossoverRow;
use crate::figures::frame::{FigureFile, Rendered};
use crate::ingest::records::{Run, Warning};
use crate::pairs::curves::{Axis, headline_metrics};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// What an analysis read and found, and where it wrote the report.
#[derive(Clone, Debug)]
pub struct Summary {
    pub results: PathBuf,
    pub runs: usize,
    pub runs_by_state: BTreeMap<String, usize>,
    pub groups: usize,
    /// Outcomes over every crossover row (all baselines, metrics, axes), by kind.
    pub outcomes: BTreeMap<&'static str, usize>,
    /// Headline lines: DLM vs AR on each headline metric, in tokens.
    pub headlines: Vec<String>,
    pub figures: Vec<FigureFile>,
    pub skipped: Vec<(String, String)>,
    pub warnings: Vec<Warning>,
    /// The fits' headline values, then one line per fit the sweep lacks points for.
    pub fits: Vec<String>,
    pub report_html: PathBuf,
    pub report_md: PathBuf,
}

impl Summary {
    pub fn new(
        results: &Path,
        runs: &[Run],
        groups: usize,
        rows: &[CrossoverRow],
        rendered: Vec<Rendered>,
        warnings: Vec<Warning>,
        fits: Vec<String>,
    ) -> Self {
        let mut outcomes = BTreeMap::new();
        for row in rows {
            *outcomes.entry(row.outcome().kind()).or_insert(0) += 1;
        }
        let (mut figures, mut skipped) = (Vec::new(), Vec::new());
        for item in rendered {
            match item {
                Rendered::Written(file) => figures.push(file),
                Rendered::Skipped { name, reason } => skipped.push((name, reason)),
            }
        }
        let analysis = results.join("analysis");
        Self {
            results: results.to_owned(),
            runs: runs.len(),
            runs_by_state: crate::report::contents::states(runs),
            groups,
            outcomes,
            headlines: headlines(rows),
            figures,
            skipped,
            warnings,
            fits,
            report_html: analysis.join("report.html"),
            report_md: analysis.join("report.md"),
        }
    }

    /// Crossover rows (both kinds) where the DLM ends at least as good as its baseline.
    pub fn crossovers_found(&self) -> usize {
        self.outcomes.get("crossed").copied().unwrap_or(0)
            + self.outcomes.get("ahead_from_start").copied().unwrap_or(0)
    }
}

fn headlines(rows: &[CrossoverRow]) -> Vec<String> {
    let found = crate::pairs::curves::sorted_metrics(
        rows.iter().map(|r| (r.task.clone(), r.metric.clone())),
    );
    let headline = headline_metrics(&found);
    rows.iter()
        .filter(|r| {
            r.baseline == "ar"
                && r.axis == Axis::Tokens
                && headline.contains(&(r.task.clone(), r.metric.clone()))
        })
        .map(|r| {
            let interval = if matches!(r.outcome(), Outcome::Crossed { .. }) {
                format!("; estimate (median [90%]): {}", r.interval())
            } else {
                String::new()
            };
            format!(
                "{}: {} {} ({}): {}; {}{interval}",
                r.group_label,
                r.task,
                r.metric,
                r.kind.name().replace('_', "-"),
                crate::crossover::table::verdict_text(r),
                r.describe()
            )
        })
        .collect()
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let states: Vec<String> = self
            .runs_by_state
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        writeln!(
            f,
            "read {} runs from {} ({})",
            self.runs,
            self.results.display(),
            states.join(", ")
        )?;
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .map(|(k, n)| format!("{n} {}", k.replace('_', " ")))
            .collect();
        writeln!(
            f,
            "{} comparison group(s); {} of {} crossover rows end with the DLM at least as good ({})",
            self.groups,
            self.crossovers_found(),
            self.outcomes.values().sum::<usize>(),
            outcomes.join(", ")
        )?;
        for line in &self.headlines {
            writeln!(f, "  DLM vs AR, {line}")?;
        }
        for line in &self.fits {
            writeln!(f, "  fit: {line}")?;
        }
        writeln!(f, "figures: {} written", self.figures.len())?;
        for (name, reason) in &self.skipped {
            writeln!(f, "  skipped {name}: {reason}")?;
        }
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        write!(f, "report: {}", self.report_html.display())
    }
}
