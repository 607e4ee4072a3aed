//! Stage 3b, mixtures of experts against dense models (the study's sparsity axis): each
//! mixture run beside every dense run that differs from it only in the model, same
//! objective and seed. Two runs whose active parameters agree within 2% are compared at
//! equal active size (they cost the same FLOPs per token and share their evaluation
//! steps); others at equal FLOPs, the largest both reached, read off each curve in log
//! FLOPs.
//!
//! At equal active size the MoE's advantage at the last shared evaluation gets a 90%
//! interval from its items (validation windows, questions): both runs score the same
//! items, so the per-item differences are paired and their mean's standard error is
//! sd / sqrt(n). Otherwise the two points' standard errors are combined as if
//! independent (wider, and approximate for the same reason).
//!
//! - `compare`: the matching and the comparisons.
//! - `table`: moe_vs_dense.csv and the report's section.

pub mod compare;
pub mod table;
