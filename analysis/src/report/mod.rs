//! Stage 6, what `analyze` writes besides the figures.
//!
//! - `tables`: the tidy tables (Parquet and CSV, written by `table_files`).
//! - `contents`: what the report says, as blocks.
//! - `render`: the blocks as report.md and a self-contained report.html.
//! - `summary`: the few lines printed at the end.

pub(crate) mod contents;
pub mod render;
pub(crate) mod summary;
mod table_files;
pub mod tables;
