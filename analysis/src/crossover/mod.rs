//! Stage 3, AR vs the DLM: where the DLM overtakes its baseline, and how sure that is.
//!
//! - `detection`: the crossing of two curves (the definition, on plain vectors).
//! - `uncertainty`: the paired, two-way bootstrap around it, and the verdict.
//! - `draws`: the bootstrap's inner loop, planned once per comparison.
//! - `draw_geometry`: where each planned point comes from and falls.
//! - `resample`: what one draw changes (items, seeds, stderr jitter).
//! - `selection`: the early-stopped best read on items it was not chosen on.
//! - `table`: every comparison of a sweep, written as crossover.csv and Markdown.
//!
//! Imports run one way: `table -> uncertainty -> draws -> draw_geometry -> resample ->
//! detection`, `uncertainty -> resample`, `table -> selection`; below them only
//! `pairs::replicates`, `curve`, `quantile` and `rng`.

pub mod detection;
mod draw_geometry;
mod draws;
pub mod resample;
pub mod selection;
pub mod table;
pub mod uncertainty;
