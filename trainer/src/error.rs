use std::path::PathBuf;

/// What can stop a job, with the file, field or step a user needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    #[error(transparent)]
    Config(#[from] jobspec::Error),
    #[error(transparent)]
    Corpus(#[from] corpus::CorpusError),
    #[error(transparent)]
    Benchmark(#[from] benchmarks::BenchmarkError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Torch {
        context: String,
        source: tch::TchError,
    },
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    RunFolder { path: PathBuf, message: String },
    #[error(
        "loss is {loss} at step {step}: training diverged (try a lower train.lr or more warmup)"
    )]
    NonFinite { step: u64, loss: f64 },
    #[error("{0}")]
    Device(String),
}

pub type Result<T, E = TrainerError> = std::result::Result<T, E>;

pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainerError {
    let path = path.into();
    move |source| TrainerError::Io { path, source }
}

pub(crate) fn torch_error(
    context: impl Into<String>,
) -> impl FnOnce(tch::TchError) -> TrainerError {
    let context = context.into();
    move |source| TrainerError::Torch { context, source }
}
