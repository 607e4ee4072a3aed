//! Reading the run folder (design.md, "Run folder contract") into plain records.
//!
//! The CSVs are parsed with the `csv` crate rather than Polars' reader so that one bad
//! file or one half-written last line (a running job appends line by line) is reported
//! by path and line and skipped, while every other row is kept. The records become
//! Polars tables in `report/tables.rs`.

use crate::error::{AnalysisError, Result, io_error};
use crate::ingest::records::{EvalRow, ITEMS_LOG, ItemSeries, LoadRow, Run, TrainRow, Warning};
use jobspec::status::{EVAL_LOG, EXPERT_LOAD_LOG, JOB_FILE, TRAIN_LOG, read_status};
use jobspec::{JobConfig, padded_vocab};
use rayon::prelude::*;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Every job under `<results>/jobs`, sorted by id, plus what could not be read.
pub fn read_results(results: &Path) -> Result<(Vec<Run>, Vec<Warning>)> {
    read_results_with(results, |_| None)
}

/// `read_results`, with `progress(jobs)` making the stage's progress bar once the
/// number of job folders is known (the bar ticks once per job read).
pub fn read_results_with(
    results: &Path,
    progress: impl FnOnce(usize) -> Option<crate::progress::Stage>,
) -> Result<(Vec<Run>, Vec<Warning>)> {
    let jobs = results.join("jobs");
    if !jobs.is_dir() {
        return Err(AnalysisError::NotAResultsFolder {
            path: results.to_owned(),
            message: "no jobs/ folder (run `harness run` first)".into(),
        });
    }
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&jobs)
        .map_err(io_error(&jobs))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    let stage = progress(folders.len());
    let read: Vec<(Option<Run>, Vec<Warning>)> = folders
        .par_iter()
        .map(|f| {
            let job = read_job(f);
            if let Some(stage) = &stage {
                stage.tick();
            }
            job
        })
        .collect();
    if let Some(stage) = stage {
        stage.finish();
    }
    let mut runs = Vec::with_capacity(read.len());
    let mut warnings = Vec::new();
    for (run, job_warnings) in read {
        runs.extend(run);
        warnings.extend(job_warnings);
    }
    Ok((runs, warnings))
}

/// One job folder; None (with a warning) when its job.yaml is missing or invalid,
/// since without it the job cannot be placed in any comparison.
pub fn read_job(folder: &Path) -> (Option<Run>, Vec<Warning>) {
    let mut warnings = Vec::new();
    let config = match JobConfig::from_file(&folder.join(JOB_FILE)) {
        Ok(config) => config,
        Err(error) => {
            warnings.push(Warning {
                path: folder.join(JOB_FILE),
                message: format!("job skipped: {error}"),
            });
            return (None, warnings);
        }
    };
    let (state, attempts, error, step, total_steps) = match read_status(folder) {
        Ok(Some(s)) => (
            s.state.label().to_string(),
            s.attempts,
            s.error,
            s.step,
            s.total_steps,
        ),
        Ok(None) => ("pending".into(), 0, None, 0, 0),
        Err(error) => {
            warnings.push(Warning {
                path: folder.join(jobspec::status::STATUS_FILE),
                message: error.to_string(),
            });
            ("unknown".into(), 0, None, 0, 0)
        }
    };
    let train = read_csv::<TrainRow>(&folder.join(TRAIN_LOG), &state, &mut warnings);
    let mut eval = read_csv::<EvalRow>(&folder.join(EVAL_LOG), &state, &mut warnings);
    // Optional: only a file that exists but cannot be read is worth a warning.
    let items = read_items(&folder.join(ITEMS_LOG), &mut warnings);
    // One kind of stderr for both objectives: the spread over items where logged.
    crate::ingest::stderr::over_items(&mut eval, &items);
    let shape = config.model.resolve().ok();
    let moe = shape.as_ref().and_then(|shape| shape.moe.clone());
    // Optional like the item log: only mixtures write it.
    let load_path = folder.join(EXPERT_LOAD_LOG);
    let expert_load = if moe.is_some() && load_path.exists() {
        read_csv::<LoadRow>(&load_path, &state, &mut warnings)
    } else {
        Vec::new()
    };
    let run = Run {
        id: folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        objective: config.objective.label(),
        params: params_of(&config),
        active_params: active_params_of(&config),
        moe,
        config,
        state,
        attempts,
        error,
        step,
        total_steps,
        train,
        eval,
        items,
        expert_load,
    };
    (Some(run), warnings)
}

/// Total parameters, with the vocabulary padded as the trainer pads it (GPT-2's size is
/// assumed for a tokenizer file, as in `JobConfig::planned_flops`).
fn params_of(config: &JobConfig) -> Option<u64> {
    let shape = config.model.resolve().ok()?;
    let vocab = config.data.tokenizer.known_vocab().unwrap_or(50_257);
    Some(shape.total_params(padded_vocab(vocab)))
}

/// Parameters one token uses, with the vocabulary assumed as in `params_of`.
fn active_params_of(config: &JobConfig) -> Option<u64> {
    config.planned_params().map(|(_, active)| active)
}

/// Rows of a CSV log. A missing file is normal before a job has logged anything
/// (pending jobs) and only a warning for jobs that should have written it; a bad
/// header skips the file; a bad row is skipped and reported by line.
fn read_csv<T: for<'de> Deserialize<'de>>(
    path: &Path,
    state: &str,
    warnings: &mut Vec<Warning>,
) -> Vec<T> {
    let warn = |message: String| Warning {
        path: path.to_owned(),
        message,
    };
    let mut reader = match csv::Reader::from_path(path) {
        Ok(reader) => reader,
        Err(error) => {
            if path.exists() || matches!(state, "done" | "failed") {
                warnings.push(warn(format!("skipped: {error}")));
            }
            return Vec::new();
        }
    };
    if let Err(error) = reader.headers() {
        warnings.push(warn(format!("skipped: unreadable header: {error}")));
        return Vec::new();
    }
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for (index, record) in reader.deserialize::<T>().enumerate() {
        match record {
            Ok(row) => rows.push(row),
            // Line numbers count the header as line 1.
            Err(error) => bad.push((index + 2, error.to_string())),
        }
    }
    warnings.extend(bad_rows_message(&bad, rows.is_empty()).map(warn));
    rows
}

/// The one warning for a file's bad rows (line, what is wrong): the first and how many
/// more, or that no row could be read at all.
fn bad_rows_message(bad: &[(usize, String)], none_read: bool) -> Option<String> {
    let (line, message) = bad.first()?;
    if none_read {
        return Some(format!(
            "skipped: no readable rows (line {line}: {message})"
        ));
    }
    let more = if bad.len() > 1 {
        format!(" and {} more", bad.len() - 1)
    } else {
        String::new()
    };
    Some(format!("skipped bad row at line {line}{more}: {message}"))
}

/// eval_items.csv, parsed by hand: it is by far the largest log (a row per item per
/// evaluation), and a serde row with two owned strings cost more than the rest of the
/// ingest together. Same rules as `read_csv`: a missing file is normal, a bad header
/// skips the file, a bad row is skipped and reported by line; a last line without its
/// newline (a running job mid-write) is left for the next analysis.
fn read_items(path: &Path, warnings: &mut Vec<Warning>) -> Vec<ItemSeries> {
    let warn = |message: String| Warning {
        path: path.to_owned(),
        message,
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => {
            warnings.push(warn(format!("skipped: {error}")));
            return Vec::new();
        }
    };
    match parse_items(&bytes) {
        Ok((series, bad)) => {
            warnings.extend(bad_rows_message(&bad, series.is_empty()).map(warn));
            series
        }
        Err(message) => {
            warnings.push(warn(format!("skipped: {message}")));
            Vec::new()
        }
    }
}

/// Bad rows as (line, what is wrong), the header being line 1.
type BadRows = Vec<(usize, String)>;

/// The series of an eval_items.csv text, and its bad rows; Err for an unusable header.
pub fn parse_items(bytes: &[u8]) -> std::result::Result<(Vec<ItemSeries>, BadRows), String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
    let mut lines = text.split_inclusive('\n');
    let columns = item_columns(lines.next().unwrap_or("").trim_end())?;
    let mut series: Vec<ItemSeries> = Vec::new();
    let mut current = usize::MAX;
    let mut bad = Vec::new();
    let mut fields: Vec<&str> = Vec::with_capacity(columns.width);
    for (index, line) in lines.enumerate() {
        let Some(line) = line.strip_suffix('\n') else {
            break; // unfinished: a running job is writing it
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        fields.clear();
        fields.extend(line.split(','));
        match parse_item_row(&fields, &columns) {
            Ok((s, i, v)) => {
                let (t, m) = (fields[columns.task], fields[columns.metric]);
                current = series_of(&mut series, current, t, m);
                let target = &mut series[current];
                target.steps.push(s);
                target.items.push(i);
                target.values.push(v);
            }
            Err(message) => bad.push((index + 2, message)),
        }
    }
    for s in &mut series {
        s.steps.shrink_to_fit();
        s.items.shrink_to_fit();
        s.values.shrink_to_fit();
    }
    Ok((series, bad))
}

/// Where eval_items.csv's columns are, found by name in its header.
struct ItemColumns {
    step: usize,
    task: usize,
    metric: usize,
    item: usize,
    value: usize,
    /// Fields in the header, so in every good row.
    width: usize,
}

/// The columns of an eval_items.csv header; Err naming the first one missing.
fn item_columns(header: &str) -> std::result::Result<ItemColumns, String> {
    let names: Vec<&str> = header.split(',').collect();
    let column = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| format!("unreadable header: no `{name}` column in `{header}`"))
    };
    let (step, task, metric, item, value) = (
        column("step")?,
        column("task")?,
        column("metric")?,
        column("item")?,
        column("value")?,
    );
    Ok(ItemColumns {
        step,
        task,
        metric,
        item,
        value,
        width: names.len(),
    })
}

/// One row's (step, item, value), or what is wrong with it.
fn parse_item_row(
    fields: &[&str],
    columns: &ItemColumns,
) -> std::result::Result<(u32, u32, f64), String> {
    let width = columns.width;
    if fields.len() != width {
        return Err(format!("{} fields, the header has {width}", fields.len()));
    }
    let int = |k: usize, what: &str| {
        fields[k]
            .parse::<u32>()
            .map_err(|_| format!("{what} `{}` is not a whole number below 2^32", fields[k]))
    };
    let value = fields[columns.value]
        .parse::<f64>()
        .map_err(|_| format!("value `{}` is not a number", fields[columns.value]))?;
    Ok((
        int(columns.step, "step")?,
        int(columns.item, "item")?,
        value,
    ))
}

/// The index of the (task, metric) series in `series`, added when new; `current` (the
/// previous row's) is checked first, since a log's rows come in runs of one series.
fn series_of(series: &mut Vec<ItemSeries>, current: usize, task: &str, metric: &str) -> usize {
    let fits = series
        .get(current)
        .is_some_and(|c| c.task == task && c.metric == metric);
    if fits {
        return current;
    }
    match series
        .iter()
        .position(|c| c.task == task && c.metric == metric)
    {
        Some(found) => found,
        None => {
            series.push(ItemSeries {
                task: task.to_string(),
                metric: metric.to_string(),
                ..ItemSeries::default()
            });
            series.len() - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_logs_parse_by_column_name_into_series() {
        let text = "step,epoch,tokens,flops,task,metric,item,value\n\
                    10,1,100,6e3,val_loss,loss,0,2.5\n\
                    10,1,100,6e3,val_loss,loss,1,2.25\n\
                    10,1,100,6e3,cloze,acc,0,1\n\
                    20,2,200,1.2e4,val_loss,loss,0,2\n";
        let (series, bad) = parse_items(text.as_bytes()).expect("header");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(series.len(), 2);
        assert_eq!(
            (series[0].task.as_str(), series[0].metric.as_str()),
            ("val_loss", "loss")
        );
        assert_eq!(series[0].steps, vec![10, 10, 20]);
        assert_eq!(series[0].items, vec![0, 1, 0]);
        assert_eq!(series[0].values, vec![2.5, 2.25, 2.0]);
        assert_eq!(series[1].values, vec![1.0]);
        // Columns are found by name, in any order.
        let reordered = "value,item,metric,task,step\n0.5,3,acc,cloze,7\n";
        let (series, _) = parse_items(reordered.as_bytes()).expect("header");
        assert_eq!(
            (series[0].steps[0], series[0].items[0], series[0].values[0]),
            (7, 3, 0.5)
        );
    }

    #[test]
    fn bad_item_rows_are_reported_by_line_and_an_unfinished_line_is_left() {
        // (name, text, rows kept, bad rows as (line, part of the message))
        type Case<'a> = (&'a str, &'a str, usize, Vec<(usize, &'a str)>);
        let cases: [Case; 4] = [
            (
                "wrong width",
                "step,task,metric,item,value\n1,a,acc,0,1\n1,a,acc,1\n",
                1,
                vec![(3, "4 fields")],
            ),
            (
                "not a number",
                "step,task,metric,item,value\n1,a,acc,0,x\n1,a,acc,1,1\n",
                1,
                vec![(2, "value `x`")],
            ),
            (
                "negative item",
                "step,task,metric,item,value\n1,a,acc,-1,1\n",
                0,
                vec![(2, "item `-1`")],
            ),
            (
                "unfinished last line",
                "step,task,metric,item,value\n1,a,acc,0,1\n1,a,acc,1,0.",
                1,
                vec![],
            ),
        ];
        for (name, text, rows, expected) in cases {
            let (series, bad) = parse_items(text.as_bytes()).expect(name);
            assert_eq!(
                series.iter().map(ItemSeries::len).sum::<usize>(),
                rows,
                "{name}"
            );
            assert_eq!(bad.len(), expected.len(), "{name}: {bad:?}");
            for ((line, message), (want_line, want)) in bad.iter().zip(expected) {
                assert_eq!(*line, want_line, "{name}");
                assert!(message.contains(want), "{name}: {message}");
            }
        }
        let missing =
            parse_items(b"step,task,metric,value\n1,a,acc,1\n").expect_err("no item column");
        assert!(missing.contains("no `item` column"), "{missing}");
    }

    /// Through the ingest: a DLM job whose eval.csv carries a Monte Carlo stderr of
    /// 0.001 is read with the spread over its windows.
    #[test]
    fn jobs_are_read_with_the_spread_over_items() {
        use crate::synthetic::{SyntheticJob, write_job};
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut job = SyntheticJob::new(jobspec::Objective::Dlm, 0, "nano", 20_000).item_metric(
            "val_loss",
            "loss",
            &[1.0, 2.0],
            &[vec![2.0, 3.0, 4.0], vec![1.0, 2.0, 3.0]],
        );
        for point in &mut job.evals {
            point.stderr = 0.001;
        }
        let folder = write_job(root.path(), &job).unwrap_or_else(|e| panic!("{e}"));
        let (run, warnings) = read_job(&folder);
        assert!(warnings.is_empty(), "{warnings:?}");
        let run = run.unwrap_or_else(|| panic!("no run"));
        let stderrs: Vec<f64> = run.eval.iter().map(|r| r.stderr).collect();
        assert_eq!(stderrs.len(), 2);
        for stderr in stderrs {
            assert!((stderr - 1.0 / 3f64.sqrt()).abs() < 1e-9, "{stderr}");
        }
    }
}
