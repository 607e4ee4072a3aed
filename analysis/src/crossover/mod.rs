//! AR vs the DLM: where the DLM overtakes its baseline, and how sure that is.
//!
//! - `detection`: the crossing of two curves (the definition; plain vectors).
//! - `uncertainty`: the paired, two-way bootstrap around it, and the verdict.
//! - `draws`: the bootstrap's inner loop, planned once per comparison.
//! - `selection`: the early-stopped best read on items it was not chosen on.
//! - `table`: every comparison of a sweep, written as crossover.csv and Markdown.

pub mod detection;
mod draws;
pub mod selection;
pub mod table;
pub mod uncertainty;
