use std::path::PathBuf;

/// What can stop an analysis, with the path a user needs to look at. Problems with one
/// job (a missing or malformed CSV) are not errors: they become `Warning`s and the job
/// is analysed with what could be read.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a results folder: {message}")]
    NotAResultsFolder { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Table {
        path: PathBuf,
        source: polars::error::PolarsError,
    },
    #[error("figure {path}: {message}")]
    Figure { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Write { path: PathBuf, message: String },
}

pub type Result<T, E = AnalysisError> = std::result::Result<T, E>;

pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> AnalysisError {
    let path = path.into();
    move |source| AnalysisError::Io { path, source }
}

pub(crate) fn table_error(
    path: impl Into<PathBuf>,
) -> impl FnOnce(polars::error::PolarsError) -> AnalysisError {
    let path = path.into();
    move |source| AnalysisError::Table { path, source }
}

/// Write a file atomically (temporary file in the same folder, then rename), so a
/// report being rewritten is never seen half-written (design.md, run folder contract).
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    jobspec::status::write_atomic(path, bytes).map_err(|error| AnalysisError::Write {
        path: path.to_owned(),
        message: error.to_string(),
    })
}
