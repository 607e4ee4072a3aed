//! Stage 2, who is compared with whom: groups of jobs identical in every config field
//! but the objective and the seed, the curves cut out of their eval rows, and each run
//! as one seed's replicate of a metric.
//!
//! - `groups`: the groups, and why a group cannot be compared.
//! - `curves`: the axes, one run's curve, the metrics.
//! - `replicates`: a run as a bootstrap replicate (curve, axes, item scores).

pub mod curves;
pub mod groups;
pub mod replicates;
