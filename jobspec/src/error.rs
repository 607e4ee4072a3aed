use std::path::PathBuf;

/// Everything that can be wrong with a job or sweep file or a run folder, with the
/// context a user needs to fix it: the file, the position or key, and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
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
    /// A sweep error pinned to its place in the file (lines and columns from 1).
    #[error("{}:{line}:{column}: `{key}`: {message}", path.display())]
    Located {
        path: PathBuf,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },
    #[error("{path}: {message}")]
    RunFolder { path: PathBuf, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

/// An error and its causes as one line for the user, "a: b: c", leaving out a cause
/// whose text the line already holds (these errors put their cause in their own
/// message, so the plain chain would print it twice).
pub fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        let part = current.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = current.source();
    }
    text
}

#[cfg(test)]
mod chain_tests {
    use super::*;

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let missing = || std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let read = Error::Read {
            path: PathBuf::from("s.yaml"),
            source: missing(),
        };
        assert_eq!(chain_text(&read), "cannot read s.yaml: No such file");
        #[derive(Debug, thiserror::Error)]
        #[error("loading the sweep")]
        struct Outer(#[source] std::io::Error);
        assert_eq!(
            chain_text(&Outer(missing())),
            "loading the sweep: No such file"
        );
    }
}
