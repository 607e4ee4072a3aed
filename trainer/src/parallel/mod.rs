//! 6. Data parallelism: the ranks of a job and their c10d process group.

pub mod process_group;
pub mod ranks;
