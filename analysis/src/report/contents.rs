//! What the report says: the summary, the crossover table per (group, baseline,
//! metric) with tokens, epochs and FLOPs side by side, the figures and the run table.

use crate::crossover::detection::{Kind, Outcome};
use crate::crossover::table::CrossoverRow;
use crate::figures::frame::Rendered;
use crate::format;
use crate::ingest::records::{Run, Warning};
use crate::pairs::curves::{Axis, headline_metrics};
use crate::pairs::groups::Group;
use crate::report::render::Block;
use std::collections::BTreeMap;
use std::path::Path;

/// Runs counted by state, in a stable order.
pub fn states(runs: &[Run]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for run in runs {
        *counts.entry(run.state.clone()).or_insert(0) += 1;
    }
    counts
}

/// The x axes that are exact rescalings of tokens seen in every group (epochs =
/// tokens / unique tokens; FLOPs = tokens x FLOPs per token when both objectives cost
/// the same per token): their crossings repeat the tokens column, so the headline
/// table leaves them out.
pub fn rescaled_axes(runs: &[Run], groups: &[Group]) -> Vec<Axis> {
    [Axis::Epochs, Axis::Flops]
        .into_iter()
        .filter(|&axis| {
            groups.iter().all(|group| {
                let ratios: Vec<f64> = group
                    .runs
                    .iter()
                    .flat_map(|&i| runs[i].eval.iter())
                    .filter(|e| e.tokens > 0.0)
                    .map(|e| axis.of(e) / e.tokens)
                    .collect();
                ratios.first().is_some_and(|&r| {
                    r.is_finite() && ratios.iter().all(|q| (q - r).abs() <= 1e-6 * r.abs())
                })
            })
        })
        .collect()
}

/// The crossover rows a reader looks at first, for one kind: headline metrics only,
/// one row per (group, baseline, metric) with the axes that are not rescalings of
/// tokens as columns.
pub fn crossover_table(rows: &[CrossoverRow], kind: Kind, dropped: &[Axis]) -> Block {
    let found = crate::pairs::curves::sorted_metrics(
        rows.iter().map(|r| (r.task.clone(), r.metric.clone())),
    );
    let headline = headline_metrics(&found);
    let axes: Vec<Axis> = Axis::ALL
        .into_iter()
        .filter(|a| !dropped.contains(a))
        .collect();
    let table_rows = rows
        .iter()
        .filter(|r| {
            r.kind == kind
                && r.axis == Axis::Tokens
                && headline.contains(&(r.task.clone(), r.metric.clone()))
        })
        .map(|row| table_row(rows, row, &axes))
        .collect();
    Block::Table {
        header: table_header(&axes),
        rows: table_rows,
    }
}

/// The crossover table's columns, one per axis shown.
fn table_header(axes: &[Axis]) -> Vec<String> {
    let mut header: Vec<String> = ["group", "DLM vs", "task (metric)", "verdict"]
        .map(String::from)
        .to_vec();
    for axis in axes {
        header.push(format!(
            "{}: estimate (median [5%, 95%]); bracketing evaluations",
            axis_title(*axis)
        ));
    }
    header.extend(
        [
            "gap at end [90%]",
            "P(crossed)",
            "method; seeds in the interval",
            "best DLM vs best baseline",
        ]
        .map(String::from),
    );
    header
}

/// One comparison's line of the crossover table: `row` (on tokens) with the same
/// comparison's estimate on each of `axes` from `rows`.
fn table_row(rows: &[CrossoverRow], row: &CrossoverRow, axes: &[Axis]) -> Vec<String> {
    let on = |axis: Axis| {
        rows.iter()
            .find(|o| {
                o.axis == axis
                    && o.kind == row.kind
                    && o.group == row.group
                    && o.baseline == row.baseline
                    && o.task == row.task
                    && o.metric == row.metric
            })
            .map(cell)
            .unwrap_or_default()
    };
    let held_out = match row.held_out {
        [Some(d), Some(b)] => format!(
            " (held out: {} vs {})",
            format::value(d.held_out),
            format::value(b.held_out)
        ),
        _ => String::new(),
    };
    let best = match (row.best.dlm, row.best.baseline) {
        (Some(d), Some(b)) => {
            format!("{} vs {}{held_out}", format::value(d.y), format::value(b.y))
        }
        _ => "-".into(),
    };
    let mut line = vec![
        format!(
            "{}{}",
            row.group_label,
            if row.complete { "" } else { " (partial)" }
        ),
        row.baseline.clone(),
        format!("{} ({})", row.task, row.metric),
        crate::crossover::table::verdict_text(row),
    ];
    line.extend(axes.iter().map(|&axis| on(axis)));
    line.extend([
        row.gap(),
        format::value(row.estimate.share_crossed),
        format!(
            "{}; {}",
            row.estimate.method.label(),
            row.estimate.seed_note()
        ),
        best,
    ]);
    line
}

fn axis_title(axis: Axis) -> &'static str {
    match axis {
        Axis::Tokens => "tokens",
        Axis::Epochs => "epochs",
        Axis::Flops => "FLOPs",
    }
}

/// "1.2M (median 1.2M [0.9M, 1.5M]); 1M-2M", "not reached", "ahead from start".
fn cell(row: &CrossoverRow) -> String {
    match row.outcome() {
        Outcome::Crossed { before, after, .. } => format!(
            "{}; {}-{}",
            row.interval(),
            row.axis.format(before),
            row.axis.format(after)
        ),
        Outcome::NotReached { .. } => row.interval(),
        Outcome::AheadFromStart { .. } => "ahead from start".into(),
        Outcome::NoOverlap => "no overlap".into(),
    }
}

/// One row per run; partial runs show their state and progress.
pub fn run_table(runs: &[Run]) -> Block {
    let header = [
        "id",
        "objective",
        "state",
        "seed",
        "unique tokens",
        "epochs",
        "model",
        "params",
        "step",
        "last val loss",
        "evaluations",
    ];
    let rows = runs
        .iter()
        .map(|run| {
            let last_loss = run
                .eval
                .iter()
                .filter(|e| e.task == "val_loss" && e.metric == "loss")
                .max_by_key(|e| e.step)
                .map(|e| format::value(e.value))
                .unwrap_or_else(|| "-".into());
            vec![
                run.id.clone(),
                run.objective.clone(),
                run.state.clone(),
                run.config.seed.to_string(),
                format::count(run.config.data.unique_tokens.get() as f64),
                format::epochs(run.config.train.epochs),
                run.config
                    .model
                    .preset
                    .clone()
                    .unwrap_or_else(|| "custom".into()),
                match (run.params, run.active_params, &run.moe) {
                    (Some(total), Some(active), Some(_)) => format!(
                        "{} ({} active)",
                        format::count(total as f64),
                        format::count(active as f64)
                    ),
                    (Some(total), _, _) => format::count(total as f64),
                    _ => "-".into(),
                },
                format!("{}/{}", run.step, run.total_steps),
                last_loss,
                run.eval.len().to_string(),
            ]
        })
        .collect();
    Block::Table {
        header: header.iter().map(|h| h.to_string()).collect(),
        rows,
    }
}

/// What the report needs besides the rows.
pub struct ReportInputs<'a> {
    pub runs: &'a [Run],
    pub groups: &'a [Group],
    pub rows: &'a [CrossoverRow],
    pub figures: &'a [Rendered],
    pub fits: &'a crate::fits::results::Fits,
    /// Mixture-of-experts vs dense comparisons (empty without mixtures).
    pub moe: &'a [crate::moe::compare::MoeRow],
    pub warnings: &'a [Warning],
    pub out: &'a Path,
    pub draws: usize,
    pub smooth: usize,
    pub seed: u64,
}

/// Every block of the report, in reading order: the early-stopped comparison first.
pub fn blocks(inputs: &ReportInputs<'_>) -> Vec<Block> {
    let ReportInputs { runs, rows, .. } = *inputs;
    let counts: Vec<String> = states(runs)
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    let dropped = rescaled_axes(runs, inputs.groups);
    let mut blocks = vec![
        Block::Paragraph(format!("{} runs read ({}).", runs.len(), counts.join(", "))),
        Block::Heading("Crossovers".into()),
        Block::Paragraph(definition(inputs)),
        Block::Paragraph(counting(rows, &dropped)),
    ];
    blocks.extend(notes(inputs));
    blocks.push(Block::Heading(
        "Early-stopped (headline): each run stopped at its best checkpoint so far".into(),
    ));
    blocks.push(crossover_table(rows, Kind::EarlyStopped, &dropped));
    blocks.push(Block::Heading("Raw: the curves as trained".into()));
    blocks.push(crossover_table(rows, Kind::Raw, &dropped));
    // The fits' figures go with the Fits section after the others.
    let is_fit = |figure: &&Rendered| matches!(figure, Rendered::Written(file) if file.name.starts_with("fits_"));
    blocks.push(Block::Heading("Figures".into()));
    for figure in inputs.figures.iter().filter(|f| !is_fit(f)) {
        blocks.push(figure_block(figure, inputs.out));
    }
    blocks.extend(crate::fits::output::blocks(inputs.fits));
    for figure in inputs.figures.iter().filter(is_fit) {
        blocks.push(figure_block(figure, inputs.out));
    }
    blocks.extend(crate::moe::table::blocks(inputs.moe));
    blocks.push(Block::Heading("Runs".into()));
    blocks.push(run_table(runs));
    if !inputs.warnings.is_empty() {
        blocks.push(Block::Heading("Warnings".into()));
        blocks.push(Block::List(
            inputs.warnings.iter().map(ToString::to_string).collect(),
        ));
    }
    blocks
}

/// A written figure (PNG linked relative to the report) or the note that it was skipped.
fn figure_block(figure: &Rendered, out: &Path) -> Block {
    match figure {
        Rendered::Written(file) => Block::Figure {
            title: file.name.replace('_', " "),
            caption: file.caption.clone(),
            png: file.png.clone(),
            relative: file
                .png
                .strip_prefix(out)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| file.png.to_string_lossy().into_owned()),
        },
        Rendered::Skipped { name, reason } => {
            Block::Paragraph(format!("Figure {name} skipped: {reason}."))
        }
    }
}

fn definition(inputs: &ReportInputs<'_>) -> String {
    format!(
        "Early-stopped compares the running bests (cumulative min of a loss, max of an accuracy): where a DLM stopped at its best checkpoint overtakes an AR stopped at its best. Raw compares the curves as trained, so a DLM can pass an AR that overfits after its best point. Either way the crossing is the first x after which the DLM stays at least as good until the last shared evaluation, interpolated linearly in log x between the two bracketing evaluations (shown beside it: the curves are only known there). Estimate (median [5%, 95%]) over {} bootstrap draws (seed {}); smoothing window {} evaluation(s), centred. Verdict: \"no evidence either way\" when the 90% interval of the gap at the last shared evaluation contains 0; \"crossed\" from where the lower 5% band of the DLM's advantage rises to 0 and stays there. Full table, every axis: crossover.csv, crossover.md.",
        inputs.draws, inputs.seed, inputs.smooth
    )
}

/// Multiple comparisons: how many intervals the report shows, so a reader can expect
/// about one in ten 90% intervals to miss by chance.
fn counting(rows: &[CrossoverRow], dropped: &[Axis]) -> String {
    let distinct = |f: &dyn Fn(&CrossoverRow) -> String| {
        let mut v: Vec<String> = rows.iter().map(f).collect();
        v.sort();
        v.dedup();
        v.len()
    };
    let groups = distinct(&|r| r.group.to_string());
    let baselines = distinct(&|r| r.baseline.clone());
    let metrics = distinct(&|r| format!("{}/{}", r.task, r.metric));
    let comparisons = rows.iter().filter(|r| r.kind == Kind::Raw).count();
    let mut text = format!(
        "Comparisons: {comparisons} (groups x baselines x metrics x axes: {groups} x {baselines} x {metrics} x 3, fewer where a group lacks a metric), each early-stopped and raw. At a 90% level about 1 interval in 10 misses its target by chance, so expect a few of the {} intervals in crossover.csv to be wrong; the crossings listed are not corrected for multiplicity.",
        2 * comparisons
    );
    if !dropped.is_empty() {
        let names: Vec<&str> = dropped.iter().map(|a| axis_title(*a)).collect();
        text += &format!(
            " The headline tables leave out {}: within every group they are exact rescalings of tokens seen, so their crossings repeat the tokens column (they are in crossover.csv).",
            names.join(" and ")
        );
    }
    text
}

/// Notes on the noise model and the loss axis.
fn notes(inputs: &ReportInputs<'_>) -> Vec<Block> {
    let mut notes = Vec::new();
    // Each comparison counted once (its raw row), and only when it has intervals.
    let count = |keep: &dyn Fn(&CrossoverRow) -> bool| {
        inputs
            .rows
            .iter()
            .filter(|r| r.kind == Kind::Raw && keep(r))
            .count()
    };
    let with_intervals =
        |r: &CrossoverRow| r.estimate.method != crate::crossover::resample::Method::None;
    let unpaired = count(&|r| !r.estimate.method.paired() && with_intervals(r));
    if unpaired > 0 {
        notes.push(format!(
            "{unpaired} comparison(s) have no per-item scores (eval_items.csv absent for some of their jobs), so their intervals fall back to the unpaired bootstrap: with at least 2 seeds per side the seed level alone (seed_bootstrap: each draw moves the seed mean along the seeds' own paired deviations by a Student t with n - 1 degrees of freedom), with one seed each point redrawn from its standard error (stderr_bootstrap). Both ignore that the two objectives are scored on the same items, so these intervals are approximate."
        ));
    }
    let paired = count(&|r| r.estimate.method.paired());
    if paired > 0 {
        notes.push(format!(
            "{paired} comparison(s) use the paired bootstrap: each draw resamples the evaluation items (validation windows, benchmark questions) once and applies the same resample to both objectives, every seed and every checkpoint; with at least 2 seeds per side each draw also moves the seed mean along the seeds' own deviations (seed s of AR paired with seed s of the DLM) by a Student t with n - 1 degrees of freedom, the small-sample correction for seed noise estimated from n seeds (so 2 seeds give wide intervals: a t with 1 degree of freedom). The crossover table says per comparison how many seeds carry the interval."
        ));
    }
    let one_seed = count(&|r| r.dlm_seeds.min(r.baseline_seeds) == 1 && with_intervals(r));
    if one_seed > 0 {
        notes.push(format!(
            "{one_seed} comparison(s) have one seed on a side: one seed cannot show seed noise at all, so their intervals reflect evaluation noise (which windows and questions were drawn) only and cover the crossing of these trained models, not of another seed's; a second seed per side adds seed noise to the interval."
        ));
    }
    let dlm_loss = inputs.rows.iter().any(|r| r.task == "val_loss");
    if dlm_loss {
        notes.push("The DLM's validation loss is its ELBO (the masked-diffusion bound), an upper bound on its negative log-likelihood, drawn on the same axis as AR's exact NLL: where the DLM's loss reaches AR's, its likelihood is at least as good.".into());
    }
    if inputs.smooth > 1 {
        notes.push(format!(
            "Curves are smoothed with a centred {}-point moving average that shrinks symmetrically at the ends.",
            inputs.smooth
        ));
    }
    notes.into_iter().map(Block::Paragraph).collect()
}
