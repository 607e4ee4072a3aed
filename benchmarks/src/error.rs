//! The crate's one error type: every variant names the file, and where a record is at
//! fault, its place in the file (line for jsonl, row for Arrow) and the field.

use std::fmt;
use std::path::PathBuf;

use crate::TASKS;

/// Where a record sits in its file: a 1-based line of a jsonl file, or a 0-based row
/// of an Arrow file (counted across record batches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    Line(usize),
    Row(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(line) => write!(formatter, "line {line}"),
            Location::Row(row) => write!(formatter, "row {row}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchmarkError {
    #[error("unknown task '{task}' (tasks: {})", TASKS.join(", "))]
    UnknownTask { task: String },

    #[error("{}: not found; run `just benchmarks` to fetch the benchmark files", path.display())]
    NotFetched { path: PathBuf },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: unsupported file name (expected .jsonl, .jsonl.gz or .arrow)", path.display())]
    UnsupportedFormat { path: PathBuf },

    #[error("{}: {location}: not a JSON object: {message}", path.display())]
    CorruptLine {
        path: PathBuf,
        location: Location,
        message: String,
    },

    #[error("{}: {location}: field '{field}': {problem}", path.display())]
    Schema {
        path: PathBuf,
        location: Location,
        field: String,
        problem: String,
    },

    #[error("{}: not a readable Arrow IPC stream: {message}", path.display())]
    Arrow { path: PathBuf, message: String },

    #[error("{}: holds no records", path.display())]
    Empty { path: PathBuf },
}

/// A field that is missing or ill-typed in one record; the reader adds file and place.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }

    pub fn at(self, path: &std::path::Path, location: Location) -> BenchmarkError {
        BenchmarkError::Schema {
            path: path.to_owned(),
            location,
            field: self.field,
            problem: self.problem,
        }
    }
}
