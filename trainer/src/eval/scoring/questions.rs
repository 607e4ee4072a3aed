//! What is scored: questions, their tokenized candidates, the scorer, and each
//! candidate's score.

/// One choice of a question, tokenized.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub context: Vec<i64>,
    pub continuation: Vec<i64>,
    /// UTF-8 length of the continuation text, for `acc_norm`.
    pub bytes: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Question {
    pub candidates: Vec<Candidate>,
    pub gold: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scorer {
    Ar,
    DlmElbo { draws: usize },
    DlmLlada { draws: usize },
    DlmChainRule,
}

impl Scorer {
    pub(super) fn causal(self) -> bool {
        matches!(self, Self::Ar)
    }
}

/// A candidate's score: estimate, Monte Carlo standard error (0 when exact), and
/// whether every continuation token is the model's argmax (AR: given the true prefix;
/// DLM, computed for single-continuation questions only: with the whole continuation
/// masked at once).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CandidateScore {
    pub score: f64,
    pub stderr: f64,
    pub greedy: bool,
}
