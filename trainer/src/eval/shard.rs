//! A data-parallel rank's share of an evaluation.

use tch::Tensor;

/// A data-parallel rank's share of an evaluation: item i (a batch of validation
/// windows, a question) is computed by rank i mod world, and `sum` adds a tensor over
/// the ranks in place (the others contribute zeros), so every rank ends with what one
/// process computes alone.
#[derive(Debug)]
pub struct EvalShard<'a> {
    /// None: one process.
    ranks: Option<&'a crate::parallel::ranks::Ranks>,
}

impl<'a> EvalShard<'a> {
    /// One process: everything, nothing to add.
    pub fn single() -> Self {
        Self { ranks: None }
    }

    pub fn of(ranks: &'a crate::parallel::ranks::Ranks) -> Self {
        Self { ranks: Some(ranks) }
    }

    /// Processes sharing the evaluation.
    pub fn world(&self) -> usize {
        self.ranks.map_or(1, |ranks| ranks.world)
    }

    pub fn owns(&self, item: usize) -> bool {
        self.ranks
            .is_none_or(|ranks| item % ranks.world.max(1) == ranks.rank)
    }

    /// Sum `tensor` over the ranks in place.
    pub fn sum(&self, tensor: &Tensor) -> Result<(), String> {
        match self.ranks {
            Some(ranks) => ranks.sum(std::slice::from_ref(tensor)),
            None => Ok(()),
        }
    }
}
