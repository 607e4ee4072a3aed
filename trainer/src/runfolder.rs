//! The run folder contract (design.md): job.yaml, status.json, train.csv, eval.csv,
//! checkpoints/. Files others read are replaced atomically (write, then rename); logs
//! are appended line by line and cut back to the last checkpoint on resume.

use crate::error::{Result, io_error};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

// status.json and the file names are shared with the harness (jobspec::status); the
// functions below wrap its IO in the trainer's error type so call sites stay as they were.
pub use jobspec::status::{
    CHECKPOINTS, EVAL_HEADER, EVAL_ITEMS_HEADER, EVAL_ITEMS_LOG, EVAL_LOG, EXPERT_LOAD_HEADER,
    EXPERT_LOAD_LOG, JOB_FILE, STATUS_FILE, State, Status, TRAIN_HEADER, TRAIN_LOG, now,
};

/// Replace `path` with `bytes` atomically: a temporary file in the same folder, then rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(jobspec::status::write_atomic(path, bytes)?)
}

pub fn read_status(job_dir: &Path) -> Result<Option<Status>> {
    Ok(jobspec::status::read_status(job_dir)?)
}

pub fn write_status(job_dir: &Path, status: &Status) -> Result<()> {
    Ok(jobspec::status::write_status(job_dir, status)?)
}

/// An append-only CSV log whose first column is the step.
#[derive(Debug)]
pub struct CsvLog {
    path: PathBuf,
    /// None: a log that writes nothing (data-parallel ranks other than 0).
    file: Option<File>,
}

impl CsvLog {
    /// Open for appending, writing the header if the file is new or empty.
    pub fn open(path: &Path, header: &[&str]) -> Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_error(path))?;
        let empty = file.metadata().map_err(io_error(path))?.len() == 0;
        if empty {
            writeln!(file, "{}", header.join(",")).map_err(io_error(path))?;
        }
        Ok(Self {
            path: path.to_owned(),
            file: Some(file),
        })
    }

    /// `open` on the writing rank, else a log that writes nothing (the file is not
    /// touched).
    pub fn open_if(write: bool, path: &Path, header: &[&str]) -> Result<Self> {
        if write {
            Self::open(path, header)
        } else {
            Ok(Self {
                path: path.to_owned(),
                file: None,
            })
        }
    }

    /// Append one row and flush it, so a crash loses at most the row being written.
    pub fn append(&mut self, fields: &[String]) -> Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        writeln!(file, "{}", fields.join(",")).map_err(io_error(&self.path))?;
        file.flush().map_err(io_error(&self.path))
    }
}

/// Keep the header and the rows whose step is at most `last_step` (dropping any torn
/// last line), so a resumed job neither duplicates nor loses rows. A log written by an
/// older trainer whose header is a prefix of `header` gets the new columns, empty in
/// its old rows.
pub fn truncate_log(path: &Path, last_step: u64, header: &[&str]) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let file = File::open(path).map_err(io_error(path))?;
    let mut kept = String::new();
    let mut columns = 0;
    let mut padding = String::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_error(path))?;
        if index == 0 {
            columns = line.split(',').count();
            let old: Vec<&str> = line.split(',').collect();
            if old.len() < header.len() && header.starts_with(&old) {
                padding = ",".repeat(header.len() - old.len());
                kept.push_str(&header.join(","));
                kept.push('\n');
                continue;
            }
        }
        let step = line
            .split(',')
            .next()
            .and_then(|field| field.parse::<u64>().ok());
        let complete = line.split(',').count() == columns;
        let keep = match step {
            Some(step) => complete && step <= last_step,
            None => index == 0,
        };
        if keep {
            kept.push_str(&line);
            if step.is_some() {
                kept.push_str(&padding);
            }
            kept.push('\n');
        }
    }
    write_atomic(path, kept.as_bytes())
}

/// Format a float for the logs: enough digits to compare runs bitwise.
pub fn number(value: f64) -> String {
    format!("{value}")
}

/// A job stopped with a checkpoint after `step`: cancelled, and how to go on.
pub fn mark_stopped(status: &mut Status, step: u64) {
    status.state = State::Cancelled;
    status.error = Some(format!("stopped after step {step}; run again to resume"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_finished_rows_and_upgrades_old_headers() {
        let folder = tempfile::tempdir().expect("temp dir");
        let path = folder.path().join("train.csv");
        let cases = [
            // (file, last step, header, expected)
            (
                "step,a\n1,x\n2,y\n3,z\n",
                2,
                &["step", "a"][..],
                "step,a\n1,x\n2,y\n",
            ),
            (
                "step,a\n1,x\n2,y\n3",
                9,
                &["step", "a"][..],
                "step,a\n1,x\n2,y\n",
            ),
            (
                "step,a\n1,x\n2,y\n",
                9,
                &["step", "a", "mfu"][..],
                "step,a,mfu\n1,x,\n2,y,\n",
            ),
            (
                "step,b\n1,x\n",
                9,
                &["step", "a", "mfu"][..],
                "step,b\n1,x\n",
            ),
        ];
        for (file, last, header, expected) in cases {
            std::fs::write(&path, file).expect("write");
            truncate_log(&path, last, header).expect("truncate");
            assert_eq!(
                std::fs::read_to_string(&path).expect("read"),
                expected,
                "{file:?}"
            );
        }
    }
}
