//! 1. The job's tokens: `trainer prepare` tokenizes a job's corpus into the token store.

pub mod prepare;
