//! Stage 1, reading the run folders: each job's logs into plain records, one kind of
//! stderr for both objectives.
//!
//! - `records`: the rows and the job they are read into.
//! - `read`: the folders and CSV logs read, bad rows reported by path and line.
//! - `stderr`: eval.csv's stderr replaced by the spread over items where logged.

pub mod read;
pub mod records;
mod stderr;
