//! The tidy tables (one row per run; per (run, train step); per (run, eval step, task,
//! metric)) as Polars frames, plus a per-(run, task, metric) table of final values,
//! written as Parquet and CSV under `<results>/analysis/`.

use crate::error::{AnalysisError, Result};
use crate::ingest::records::{EvalRow, Run};
use crate::pairs::groups::Group;
use crate::report::table_files;
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// The tables written, by name.
#[derive(Debug)]
pub struct Tables {
    pub runs: DataFrame,
    pub train: DataFrame,
    pub eval: DataFrame,
    pub last: DataFrame,
    /// Mixtures of experts' expert_load.csv rows (empty without mixtures; then not
    /// written).
    pub expert_load: DataFrame,
}

/// Build every table from the runs and their comparison groups.
pub fn build(runs: &[Run], groups: &[Group]) -> PolarsResult<Tables> {
    let mut group_of = vec![(0usize, String::new()); runs.len()];
    for group in groups {
        for &i in &group.runs {
            group_of[i] = (group.index, group.label.clone());
        }
    }
    let runs_table = runs_frame(runs, &group_of)?;
    let train = train_frame(runs)?;
    let eval = eval_frame(runs)?;
    let last = last_frame(runs)?;
    let expert_load = expert_load_frame(runs)?;
    Ok(Tables {
        runs: runs_table,
        train,
        eval,
        last,
        expert_load,
    })
}

fn text<'a>(name: &str, values: impl Iterator<Item = &'a str>) -> Column {
    Column::new(name.into(), values.collect::<Vec<&str>>())
}

/// The runs table: one row per run, its columns by group (in this order).
fn runs_frame(runs: &[Run], group_of: &[(usize, String)]) -> PolarsResult<DataFrame> {
    let mut columns = identity_columns(runs, group_of);
    columns.extend(data_columns(runs));
    columns.extend(model_columns(runs));
    columns.extend(training_columns(runs));
    columns.extend(progress_columns(runs));
    DataFrame::new(runs.len(), columns)
}

/// Who each run is: id, objective, state, seed and its comparison group.
fn identity_columns(runs: &[Run], group_of: &[(usize, String)]) -> Vec<Column> {
    vec![
        text("id", runs.iter().map(|r| r.id.as_str())),
        text("objective", runs.iter().map(|r| r.objective.as_str())),
        text("state", runs.iter().map(|r| r.state.as_str())),
        Column::new(
            "seed".into(),
            runs.iter().map(|r| r.config.seed).collect::<Vec<u64>>(),
        ),
        Column::new(
            "group".into(),
            group_of.iter().map(|g| g.0 as u64).collect::<Vec<u64>>(),
        ),
        text("group_label", group_of.iter().map(|g| g.1.as_str())),
    ]
}

/// What each run trained on: corpus, unique tokens and epochs.
fn data_columns(runs: &[Run]) -> Vec<Column> {
    vec![
        text("corpus", runs.iter().map(|r| r.config.data.corpus.as_str())),
        Column::new(
            "unique_tokens".into(),
            runs.iter()
                .map(|r| r.config.data.unique_tokens.get())
                .collect::<Vec<u64>>(),
        ),
        Column::new(
            "epochs".into(),
            runs.iter()
                .map(|r| r.config.train.epochs)
                .collect::<Vec<f64>>(),
        ),
    ]
}

/// Each run's model: preset, shape, parameters and its mixture of experts.
fn model_columns(runs: &[Run]) -> Vec<Column> {
    let c = |run: &Run| run.config.clone();
    vec![
        Column::new(
            "preset".into(),
            runs.iter()
                .map(|r| c(r).model.preset)
                .collect::<Vec<Option<String>>>(),
        ),
        Column::new(
            "d_model".into(),
            runs.iter()
                .map(|r| r.config.model.d_model.map(|v| v as u64))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "n_layer".into(),
            runs.iter()
                .map(|r| r.config.model.n_layer.map(|v| v as u64))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "params".into(),
            runs.iter().map(|r| r.params).collect::<Vec<Option<u64>>>(),
        ),
        Column::new(
            "active_params".into(),
            runs.iter()
                .map(|r| r.active_params)
                .collect::<Vec<Option<u64>>>(),
        ),
        Column::new(
            "experts".into(),
            runs.iter()
                .map(|r| r.moe.as_ref().map(|m| m.experts as u64))
                .collect::<Vec<Option<u64>>>(),
        ),
        Column::new(
            "top_k".into(),
            runs.iter()
                .map(|r| r.moe.as_ref().map(|m| m.top_k as u64))
                .collect::<Vec<Option<u64>>>(),
        ),
    ]
}

/// How each run trains: sequence, batch, learning rate and the planned tokens and FLOPs.
fn training_columns(runs: &[Run]) -> Vec<Column> {
    vec![
        Column::new(
            "seq_len".into(),
            runs.iter()
                .map(|r| r.config.data.seq_len as u64)
                .collect::<Vec<u64>>(),
        ),
        Column::new(
            "batch_size".into(),
            runs.iter()
                .map(|r| r.config.train.batch_size as u64)
                .collect::<Vec<u64>>(),
        ),
        Column::new(
            "lr".into(),
            runs.iter().map(|r| r.config.train.lr).collect::<Vec<f64>>(),
        ),
        Column::new(
            "planned_tokens".into(),
            runs.iter()
                .map(|r| r.config.planned_tokens())
                .collect::<Vec<u64>>(),
        ),
        Column::new(
            "planned_flops".into(),
            runs.iter()
                .map(|r| r.config.planned_flops())
                .collect::<Vec<Option<f64>>>(),
        ),
    ]
}

/// How far each run got: steps, attempts, its error and the rows it logged.
fn progress_columns(runs: &[Run]) -> Vec<Column> {
    vec![
        Column::new(
            "step".into(),
            runs.iter().map(|r| r.step).collect::<Vec<u64>>(),
        ),
        Column::new(
            "total_steps".into(),
            runs.iter().map(|r| r.total_steps).collect::<Vec<u64>>(),
        ),
        Column::new(
            "attempts".into(),
            runs.iter()
                .map(|r| u64::from(r.attempts))
                .collect::<Vec<u64>>(),
        ),
        Column::new(
            "error".into(),
            runs.iter()
                .map(|r| r.error.clone())
                .collect::<Vec<Option<String>>>(),
        ),
        Column::new(
            "train_rows".into(),
            runs.iter()
                .map(|r| r.train.len() as u64)
                .collect::<Vec<u64>>(),
        ),
        Column::new(
            "eval_rows".into(),
            runs.iter()
                .map(|r| r.eval.len() as u64)
                .collect::<Vec<u64>>(),
        ),
    ]
}

/// Run identity columns repeated once per log row, so each table stands alone.
fn identity(runs: &[Run], rows_of: impl Fn(&Run) -> usize) -> Vec<Column> {
    let repeat = |f: &dyn Fn(&Run) -> String| -> Vec<String> {
        runs.iter()
            .flat_map(|r| std::iter::repeat_n(f(r), rows_of(r)))
            .collect()
    };
    vec![
        Column::new("id".into(), repeat(&|r| r.id.clone())),
        Column::new("objective".into(), repeat(&|r| r.objective.clone())),
        Column::new("state".into(), repeat(&|r| r.state.clone())),
        Column::new(
            "seed".into(),
            runs.iter()
                .flat_map(|r| std::iter::repeat_n(r.config.seed, rows_of(r)))
                .collect::<Vec<u64>>(),
        ),
    ]
}

fn train_frame(runs: &[Run]) -> PolarsResult<DataFrame> {
    let height = runs.iter().map(|r| r.train.len()).sum();
    let rows = || runs.iter().flat_map(|r| r.train.iter());
    let float = |name: &str, f: &dyn Fn(&crate::ingest::records::TrainRow) -> f64| {
        Column::new(name.into(), rows().map(f).collect::<Vec<f64>>())
    };
    let mut columns = identity(runs, |r| r.train.len());
    columns.extend([
        Column::new("step".into(), rows().map(|t| t.step).collect::<Vec<u64>>()),
        float("epoch", &|t| t.epoch),
        float("tokens", &|t| t.tokens),
        float("flops", &|t| t.flops),
        float("loss", &|t| t.loss),
        float("lr", &|t| t.lr),
        float("grad_norm", &|t| t.grad_norm),
        float("tokens_per_s", &|t| t.tokens_per_s),
        float("elapsed_s", &|t| t.elapsed_s),
        float("mfu", &|t| t.mfu),
        float("aux_loss", &|t| t.aux_loss),
        float("z_loss", &|t| t.z_loss),
        float("expert_load_max", &|t| t.expert_load_max),
        float("tokens_per_s_device", &|t| t.tokens_per_s_device),
    ]);
    DataFrame::new(height, columns)
}

fn expert_load_frame(runs: &[Run]) -> PolarsResult<DataFrame> {
    let height = runs.iter().map(|r| r.expert_load.len()).sum();
    let rows = || runs.iter().flat_map(|r| r.expert_load.iter());
    let mut columns = identity(runs, |r| r.expert_load.len());
    columns.extend([
        Column::new("step".into(), rows().map(|l| l.step).collect::<Vec<u64>>()),
        Column::new(
            "tokens".into(),
            rows().map(|l| l.tokens).collect::<Vec<f64>>(),
        ),
        Column::new(
            "block".into(),
            rows().map(|l| l.block).collect::<Vec<u32>>(),
        ),
        Column::new(
            "expert".into(),
            rows().map(|l| l.expert).collect::<Vec<u32>>(),
        ),
        Column::new(
            "share".into(),
            rows().map(|l| l.share).collect::<Vec<f64>>(),
        ),
    ]);
    DataFrame::new(height, columns)
}

fn eval_frame(runs: &[Run]) -> PolarsResult<DataFrame> {
    let height = runs.iter().map(|r| r.eval.len()).sum();
    let rows = || runs.iter().flat_map(|r| r.eval.iter());
    let float = |name: &str, f: &dyn Fn(&crate::ingest::records::EvalRow) -> f64| {
        Column::new(name.into(), rows().map(f).collect::<Vec<f64>>())
    };
    let mut columns = identity(runs, |r| r.eval.len());
    columns.extend([
        Column::new("step".into(), rows().map(|e| e.step).collect::<Vec<u64>>()),
        float("epoch", &|e| e.epoch),
        float("tokens", &|e| e.tokens),
        float("flops", &|e| e.flops),
        text("task", rows().map(|e| e.task.as_str())),
        text("metric", rows().map(|e| e.metric.as_str())),
        float("value", &|e| e.value),
        float("stderr", &|e| e.stderr),
        Column::new(
            "n".into(),
            rows().map(|e| e.n).collect::<Vec<Option<u64>>>(),
        ),
    ]);
    DataFrame::new(height, columns)
}

/// Per (run, task, metric): the value at the last evaluation, where it was taken, and
/// how many evaluations there were; rows in the order of (id, task, metric).
fn last_frame(runs: &[Run]) -> PolarsResult<DataFrame> {
    // (id, task, metric) -> the run, its evaluation at the largest step, and the count.
    let mut last: BTreeMap<(&str, &str, &str), (&Run, &EvalRow, u32)> = BTreeMap::new();
    for run in runs {
        for row in &run.eval {
            let key = (run.id.as_str(), row.task.as_str(), row.metric.as_str());
            let entry = last.entry(key).or_insert((run, row, 0));
            if row.step >= entry.1.step {
                entry.1 = row;
            }
            entry.2 += 1;
        }
    }
    let rows = || last.values();
    let float = |name: &str, f: &dyn Fn(&EvalRow) -> f64| {
        Column::new(name.into(), rows().map(|r| f(r.1)).collect::<Vec<f64>>())
    };
    let columns = vec![
        text("id", rows().map(|r| r.0.id.as_str())),
        text("objective", rows().map(|r| r.0.objective.as_str())),
        text("state", rows().map(|r| r.0.state.as_str())),
        text("task", rows().map(|r| r.1.task.as_str())),
        text("metric", rows().map(|r| r.1.metric.as_str())),
        float("last_value", &|e| e.value),
        float("last_stderr", &|e| e.stderr),
        Column::new(
            "last_step".into(),
            rows().map(|r| r.1.step).collect::<Vec<u64>>(),
        ),
        float("last_tokens", &|e| e.tokens),
        float("last_epoch", &|e| e.epoch),
        Column::new(
            "evaluations".into(),
            rows().map(|r| r.2).collect::<Vec<u32>>(),
        ),
    ];
    DataFrame::new(last.len(), columns)
}

/// Write each table as `<name>.parquet` and `<name>.csv` into `folder`.
pub fn write(tables: &Tables, folder: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::new();
    for (name, frame) in [
        ("runs", &tables.runs),
        ("train", &tables.train),
        ("eval", &tables.eval),
        ("last", &tables.last),
        ("expert_load", &tables.expert_load),
    ] {
        if name == "expert_load" && frame.height() == 0 {
            continue;
        }
        let csv = folder.join(format!("{name}.csv"));
        let parquet = folder.join(format!("{name}.parquet"));
        table_files::write(frame, &csv, &parquet)
            .map_err(|(path, message)| AnalysisError::Write { path, message })?;
        written.extend([parquet, csv]);
    }
    Ok(written)
}
