use std::path::PathBuf;

/// Everything that can be wrong with a job or sweep file, with the context a user
/// needs to fix it: the file, the position or key, and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: field `{field}`: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
