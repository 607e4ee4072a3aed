//! Scoring multiple-choice questions (reference/recipes.md, "Scoring multiple-choice
//! benchmarks").
//!
//! - AR: summed log-probability of the continuation given the context.
//! - DLM, Monte Carlo ELBO (default): K draws with stratified times
//!   t_k = (u + k / K) mod 1, p_k = (1 - eps) t_k + eps; each continuation token is
//!   masked when r_{k,j} < p_k (the context stays clean); the draw's score is the sum
//!   over masked tokens of log p(x_j | x_t) / p_k, and the score is the mean over draws.
//!   u and r come from the question's own seed, so every choice of a question sees the
//!   same times and masks (common random numbers), whatever the batching.
//! - DLM, LLaDA (Nie et al. 2025): l_k = ceil(u_k |c|) tokens masked (those with the
//!   smallest r), weight |c| / l_k.
//! - DLM, chain rule (SMDM's semi-AR): pass i masks continuation positions i.. and reads
//!   position i; deterministic, |c| passes.
//! - DLM, single-token continuations (MMLU letters): one pass with the token masked
//!   gives log p(x) exactly (the ELBO's expectation), so no draws are needed.
//! - DLM, single-continuation tasks (LAMBADA): greedy iterative decoding, one most
//!   confident masked token per pass (SMDM), correct when it decodes the continuation.
//! - `eval.dlm_pad: mask` pads DLM rows to seq_len with mask tokens (SMDM's option).
//!
//! All forward passes are gathered into rows, grouped by exact length (no padding, so
//! bidirectional attention sees nothing extra) and run in batches of up to
//! `batch_tokens` tokens.

pub mod decode;
pub mod metrics;
pub mod questions;
pub mod rows;
pub mod uniforms;

use crate::eval::scoring::decode::greedy_decode;
use crate::eval::scoring::metrics::mean_and_stderr;
use crate::eval::scoring::questions::{CandidateScore, Question, Scorer};
use crate::eval::scoring::rows::{Row, execute, fit, pad_rows, plan_rows};
use crate::model::transformer::Transformer;
use crate::objectives::vocab::Vocab;

/// What scoring needs besides the model and the questions.
#[derive(Clone, Copy, Debug)]
pub struct ScoreSettings {
    pub vocab: Vocab,
    /// Longest sequence the model takes (contexts are cut from the left to fit).
    pub max_len: usize,
    /// Tokens per forward pass.
    pub batch_tokens: usize,
    /// Seed of the DLM draws (with the question index).
    pub seed: u64,
    /// p_mask = (1 - eps) t + eps, as in training.
    pub eps: f64,
    /// DLM rows padded to `max_len` with mask tokens (`eval.dlm_pad: mask`).
    pub pad_to_max_len: bool,
}

/// Score every candidate of every question.
pub fn score(
    model: &Transformer,
    questions: &[Question],
    scorer: Scorer,
    settings: &ScoreSettings,
) -> Vec<Vec<CandidateScore>> {
    score_owned(model, questions, scorer, settings, &|_| true)
}

/// `score` for the questions `owned` accepts (a data-parallel rank's share); the
/// others get a zero score, zero stderr and no greedy match, so that summing every
/// rank's scores gives each question its owner's. A question's draws come from its
/// own index, so its score does not depend on which rank computes it.
pub fn score_owned(
    model: &Transformer,
    questions: &[Question],
    scorer: Scorer,
    settings: &ScoreSettings,
    owned: &dyn Fn(usize) -> bool,
) -> Vec<Vec<CandidateScore>> {
    let ScoreSettings {
        vocab,
        max_len,
        batch_tokens,
        seed,
        eps,
        pad_to_max_len,
    } = *settings;
    let mut rows = plan_rows(questions, scorer, vocab.mask_id(), max_len, seed, eps);
    rows.retain(|row| row.reads.iter().any(|read| owned(read.question)));
    if pad_to_max_len && !scorer.causal() {
        pad_rows(&mut rows, vocab.mask_id(), max_len);
    }
    let outputs = execute(model, &rows, scorer.causal(), vocab, batch_tokens);
    let mut reads = Reads::gather(questions, scorer, &rows, &outputs);
    if !scorer.causal() {
        // Single-continuation tasks (LAMBADA): the DLM decodes greedily, one most
        // confident token per pass, as SMDM does (what the AR check amounts to).
        let single: Vec<usize> = (0..questions.len())
            .filter(|&q| questions[q].candidates.len() == 1 && owned(q))
            .collect();
        let pieces: Vec<(Vec<i64>, Vec<i64>)> = single
            .iter()
            .map(|&q| fit(&questions[q].candidates[0], max_len))
            .collect();
        let pad = pad_to_max_len.then_some(max_len);
        let decoded = greedy_decode(model, &pieces, vocab, batch_tokens, pad);
        for ((&q, tokens), (_, continuation)) in single.iter().zip(decoded).zip(&pieces) {
            reads.greedy[q][0] = &tokens == continuation;
        }
    }
    reads.scores(questions, scorer, max_len, owned)
}

/// The forward passes' reads summed per (question, candidate): the log-probability
/// per draw, and whether every continuation token was the model's most likely one.
struct Reads {
    sums: Vec<Vec<Vec<f64>>>,
    greedy: Vec<Vec<bool>>,
}

impl Reads {
    fn gather(
        questions: &[Question],
        scorer: Scorer,
        rows: &[Row],
        outputs: &[Vec<(f64, bool)>],
    ) -> Self {
        let draws = match scorer {
            Scorer::DlmElbo { draws } | Scorer::DlmLlada { draws } => draws,
            _ => 1,
        };
        let mut sums: Vec<Vec<Vec<f64>>> = questions
            .iter()
            .map(|q| vec![vec![0.0; draws]; q.candidates.len()])
            .collect();
        let mut greedy: Vec<Vec<bool>> = questions
            .iter()
            .map(|q| vec![scorer.causal() || q.candidates.len() == 1; q.candidates.len()])
            .collect();
        for (row, output) in rows.iter().zip(outputs) {
            for (read, &(log_prob, is_best)) in row.reads.iter().zip(output) {
                let (q, c) = (read.question, read.candidate);
                if scorer.causal() {
                    greedy[q][c] &= is_best;
                }
                sums[q][c][read.draw] += read.weight * log_prob;
            }
        }
        Self { sums, greedy }
    }

    /// Each candidate's score: the mean over draws with its standard error (exact, with
    /// no error, for AR and for a one-token DLM continuation); zero for questions
    /// another rank owns.
    fn scores(
        &self,
        questions: &[Question],
        scorer: Scorer,
        max_len: usize,
        owned: &dyn Fn(usize) -> bool,
    ) -> Vec<Vec<CandidateScore>> {
        let dlm = matches!(scorer, Scorer::DlmElbo { .. } | Scorer::DlmLlada { .. });
        questions
            .iter()
            .enumerate()
            .map(|(q, question)| {
                question
                    .candidates
                    .iter()
                    .enumerate()
                    .map(|(c, candidate)| {
                        if !owned(q) {
                            return CandidateScore {
                                score: 0.0,
                                stderr: 0.0,
                                greedy: false,
                            };
                        }
                        let per_draw = &self.sums[q][c];
                        let exact = !dlm || fit(candidate, max_len).1.len() == 1;
                        let (score, stderr) = if exact {
                            (per_draw[0], 0.0)
                        } else {
                            mean_and_stderr(per_draw)
                        };
                        CandidateScore {
                            score,
                            stderr,
                            greedy: self.greedy[q][c],
                        }
                    })
                    .collect()
            })
            .collect()
    }
}
