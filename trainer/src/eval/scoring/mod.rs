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

use crate::model::{ForwardOptions, Transformer};
use crate::objectives::Vocab;
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

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
    fn causal(self) -> bool {
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

/// One read of a forward pass: the log-probability of `target` at `position`,
/// multiplied by `weight`, added to draw `draw` of candidate (question, candidate).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Read {
    pub position: usize,
    pub target: i64,
    pub weight: f64,
    pub question: usize,
    pub candidate: usize,
    pub draw: usize,
}

/// A forward pass to make: the input tokens and what to read from its output.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub tokens: Vec<i64>,
    pub reads: Vec<Read>,
}

/// Deterministic uniforms in [0, 1) from (seed, stream) (splitmix64), so masks do not
/// depend on LibTorch's generator, batch order or thread count.
#[derive(Debug, Clone)]
pub struct Uniforms(u64);

impl Uniforms {
    pub fn new(seed: u64, stream: u64) -> Self {
        Self(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    pub fn next_uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The random numbers of one question: per draw a time offset u_k and per
/// continuation position j a uniform r_{k,j}; shared by all of its candidates.
pub fn question_draws(
    seed: u64,
    question: usize,
    draws: usize,
    positions: usize,
) -> Vec<(f64, Vec<f64>)> {
    let mut uniforms = Uniforms::new(seed, question as u64);
    let offset = uniforms.next_uniform();
    (0..draws)
        .map(|k| {
            let time = (offset + k as f64 / draws as f64) % 1.0;
            (
                time,
                (0..positions).map(|_| uniforms.next_uniform()).collect(),
            )
        })
        .collect()
}

/// Keep at most `max_len` tokens of context + continuation, cutting the context's start.
fn fit(candidate: &Candidate, max_len: usize) -> (Vec<i64>, Vec<i64>) {
    let continuation: Vec<i64> = candidate
        .continuation
        .iter()
        .rev()
        .take(max_len.saturating_sub(1))
        .rev()
        .copied()
        .collect();
    let room = max_len - continuation.len();
    let context: Vec<i64> = candidate
        .context
        .iter()
        .rev()
        .take(room)
        .rev()
        .copied()
        .collect();
    (context, continuation)
}

/// The forward passes a scorer needs for `questions`.
pub fn plan_rows(
    questions: &[Question],
    scorer: Scorer,
    mask_id: i64,
    max_len: usize,
    seed: u64,
    eps: f64,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for (q, question) in questions.iter().enumerate() {
        let positions = question
            .candidates
            .iter()
            .map(|c| c.continuation.len())
            .max()
            .unwrap_or(0);
        let draws = match scorer {
            Scorer::DlmElbo { draws } | Scorer::DlmLlada { draws } => {
                question_draws(seed, q, draws, positions)
            }
            _ => Vec::new(),
        };
        for (c, candidate) in question.candidates.iter().enumerate() {
            let (context, continuation) = fit(candidate, max_len);
            let read = |position: usize, target: i64, weight: f64, draw: usize| Read {
                position,
                target,
                weight,
                question: q,
                candidate: c,
                draw,
            };
            match scorer {
                Scorer::Ar => rows.push(ar_row(&context, &continuation, |p, t| read(p, t, 1.0, 0))),
                _ if continuation.len() == 1 => {
                    // Exact: E_t[1{masked} / p_t] = 1, so one fully masked pass is the ELBO.
                    rows.push(masked_row(
                        &context,
                        &continuation,
                        mask_id,
                        |_| true,
                        |p, t| read(p, t, 1.0, 0),
                    ));
                }
                Scorer::DlmChainRule => {
                    for i in 0..continuation.len() {
                        let mut tokens = context.clone();
                        tokens.extend(
                            continuation
                                .iter()
                                .enumerate()
                                .map(|(j, &t)| if j < i { t } else { mask_id }),
                        );
                        rows.push(Row {
                            tokens,
                            reads: vec![read(context.len() + i, continuation[i], 1.0, 0)],
                        });
                    }
                }
                Scorer::DlmElbo { .. } | Scorer::DlmLlada { .. } => {
                    for (k, (time, uniforms)) in draws.iter().enumerate() {
                        let (chosen, weight) =
                            draw_mask(scorer, *time, uniforms, continuation.len(), eps);
                        if chosen.iter().any(|&m| m) {
                            rows.push(masked_row(
                                &context,
                                &continuation,
                                mask_id,
                                |j| chosen[j],
                                |p, t| read(p, t, weight, k),
                            ));
                        }
                    }
                }
            }
        }
    }
    rows
}

/// Which continuation positions a draw masks, and the weight of each masked token.
pub fn draw_mask(
    scorer: Scorer,
    time: f64,
    uniforms: &[f64],
    length: usize,
    eps: f64,
) -> (Vec<bool>, f64) {
    match scorer {
        Scorer::DlmLlada { .. } => {
            let count = ((time * length as f64).ceil() as usize).clamp(1, length);
            let mut order: Vec<usize> = (0..length).collect();
            order.sort_by(|a, b| uniforms[*a].total_cmp(&uniforms[*b]));
            let mut chosen = vec![false; length];
            for &j in &order[..count] {
                chosen[j] = true;
            }
            (chosen, length as f64 / count as f64)
        }
        _ => {
            let p_mask = (1.0 - eps) * time + eps;
            (
                (0..length).map(|j| uniforms[j] < p_mask).collect(),
                1.0 / p_mask,
            )
        }
    }
}

fn ar_row(context: &[i64], continuation: &[i64], read: impl Fn(usize, i64) -> Read) -> Row {
    let mut sequence = context.to_vec();
    sequence.extend_from_slice(continuation);
    sequence.pop(); // the last token is only a target
    let reads = continuation
        .iter()
        .enumerate()
        .map(|(j, &target)| read(context.len() + j - 1, target))
        .collect();
    Row {
        tokens: sequence,
        reads,
    }
}

fn masked_row(
    context: &[i64],
    continuation: &[i64],
    mask_id: i64,
    masked: impl Fn(usize) -> bool,
    read: impl Fn(usize, i64) -> Read,
) -> Row {
    let mut tokens = context.to_vec();
    let mut reads = Vec::new();
    for (j, &token) in continuation.iter().enumerate() {
        if masked(j) {
            tokens.push(mask_id);
            reads.push(read(context.len() + j, token));
        } else {
            tokens.push(token);
        }
    }
    Row { tokens, reads }
}

/// Pad every row to `max_len` tokens with `mask_id` at the end (SMDM's option for the
/// DLM, which trains on full-length rows): the reads keep their positions.
pub fn pad_rows(rows: &mut [Row], mask_id: i64, max_len: usize) {
    for row in rows {
        if row.tokens.len() < max_len {
            row.tokens.resize(max_len, mask_id);
        }
    }
}

/// Run `rows` through the model and return, per read, (log-probability, is argmax).
pub fn execute(
    model: &Transformer,
    rows: &[Row],
    causal: bool,
    vocab: Vocab,
    batch_tokens: usize,
) -> Vec<Vec<(f64, bool)>> {
    let _guard = tch::no_grad_guard();
    let mut by_length: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (index, row) in rows.iter().enumerate() {
        by_length.entry(row.tokens.len()).or_default().push(index);
    }
    let mut results = vec![Vec::new(); rows.len()];
    for (length, indices) in by_length {
        let per_batch = (batch_tokens / length.max(1)).max(1);
        for chunk in indices.chunks(per_batch) {
            let flat: Vec<i64> = chunk
                .iter()
                .flat_map(|&i| rows[i].tokens.iter().copied())
                .collect();
            let device = model.device();
            let input = Tensor::from_slice(&flat)
                .view([chunk.len() as i64, length as i64])
                .to_device(device);
            let logits = model.logits(
                &input,
                ForwardOptions {
                    causal,
                    dropout: 0.0,
                    train: false,
                },
                vocab.size,
            );
            // Only the cells read leave the device: the target's log-probability and
            // whether it is the argmax.
            let (cells, targets): (Vec<i64>, Vec<i64>) = chunk
                .iter()
                .enumerate()
                .flat_map(|(b, &row_index)| {
                    rows[row_index]
                        .reads
                        .iter()
                        .map(move |read| ((b * length + read.position) as i64, read.target))
                })
                .unzip();
            let cells = Tensor::from_slice(&cells).to_device(device);
            let targets = Tensor::from_slice(&targets).to_device(device);
            let log_probs = logits
                .view([-1, vocab.size])
                .index_select(0, &cells)
                .to_kind(Kind::Float)
                .log_softmax(-1, Kind::Float); // (reads, V)
            let picked = log_probs
                .gather(1, &targets.unsqueeze(1), false)
                .squeeze_dim(1);
            let best = log_probs.argmax(-1, false).eq_tensor(&targets);
            let picked =
                Vec::<f32>::try_from(picked.to_device(tch::Device::Cpu)).unwrap_or_default();
            let best = Vec::<i64>::try_from(best.to_kind(Kind::Int64).to_device(tch::Device::Cpu))
                .unwrap_or_default();
            let mut next = picked.iter().zip(&best);
            for &row_index in chunk {
                results[row_index] = rows[row_index]
                    .reads
                    .iter()
                    .map(|_| {
                        next.next()
                            .map_or((f64::NAN, false), |(&log_prob, &is_best)| {
                                (f64::from(log_prob), is_best == 1)
                            })
                    })
                    .collect();
            }
        }
    }
    results
}

/// Greedy iterative decoding with a bidirectional model: each (context,
/// continuation) starts with the continuation fully masked; every pass unmasks the one
/// masked position the model is most confident about, with its argmax token, until
/// none is left (ties go to the earliest position). Returns, per pair, the decoded
/// continuation (as long as the given one, whose tokens are not looked at). `pad` pads
/// rows with mask tokens to that length (`eval.dlm_pad: mask`).
pub fn greedy_decode(
    model: &Transformer,
    pairs: &[(Vec<i64>, Vec<i64>)],
    vocab: Vocab,
    batch_tokens: usize,
    pad: Option<usize>,
) -> Vec<Vec<i64>> {
    let _guard = tch::no_grad_guard();
    let mask_id = vocab.mask_id();
    // Group by (context length, continuation length): one tensor program per group.
    let mut groups: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    for (index, (context, continuation)) in pairs.iter().enumerate() {
        groups
            .entry((context.len(), continuation.len()))
            .or_default()
            .push(index);
    }
    let mut decoded = vec![Vec::new(); pairs.len()];
    let device = model.device();
    for ((context_len, length), indices) in groups {
        if length == 0 {
            continue;
        }
        let width = pad.map_or(context_len + length, |pad| pad.max(context_len + length));
        let per_batch = (batch_tokens / width.max(1)).max(1);
        for chunk in indices.chunks(per_batch) {
            let mut flat = Vec::with_capacity(chunk.len() * width);
            for &index in chunk {
                flat.extend_from_slice(&pairs[index].0);
                flat.extend(std::iter::repeat_n(mask_id, width - context_len));
            }
            let rows = chunk.len() as i64;
            let mut tokens = Tensor::from_slice(&flat)
                .view([rows, width as i64])
                .to_device(device);
            let mut open = Tensor::ones([rows, length as i64], (Kind::Bool, device));
            for _ in 0..length {
                let logits = model.logits(
                    &tokens,
                    ForwardOptions {
                        causal: false,
                        dropout: 0.0,
                        train: false,
                    },
                    vocab.size,
                );
                let span = logits
                    .narrow(1, context_len as i64, length as i64)
                    .narrow(-1, 0, vocab.size)
                    .to_kind(Kind::Float)
                    .log_softmax(-1, Kind::Float); // (B, c, V)
                let (confidence, best) = span.max_dim(-1, false); // (B, c)
                let confidence = confidence.masked_fill(&open.logical_not(), f64::NEG_INFINITY);
                let position = confidence.argmax(1, true); // (B, 1)
                let token = best.gather(1, &position, false); // (B, 1)
                let _ = tokens.scatter_(1, &(&position + context_len as i64), &token);
                open = open.scatter_value(1, &position, 0);
            }
            let result = tokens
                .narrow(1, context_len as i64, length as i64)
                .to_device(tch::Device::Cpu)
                .contiguous()
                .view([-1]);
            let result = Vec::<i64>::try_from(result).unwrap_or_default();
            for (&index, row) in chunk.iter().zip(result.chunks(length)) {
                decoded[index] = row.to_vec();
            }
        }
    }
    decoded
}

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
    let draws = match scorer {
        Scorer::DlmElbo { draws } | Scorer::DlmLlada { draws } => draws,
        _ => 1,
    };
    // (question, candidate) -> per-draw sums, and greedy flags.
    let mut sums: Vec<Vec<Vec<f64>>> = questions
        .iter()
        .map(|q| vec![vec![0.0; draws]; q.candidates.len()])
        .collect();
    let mut greedy: Vec<Vec<bool>> = questions
        .iter()
        .map(|q| vec![scorer.causal() || q.candidates.len() == 1; q.candidates.len()])
        .collect();
    let mut exact: Vec<Vec<bool>> = questions
        .iter()
        .map(|q| vec![false; q.candidates.len()])
        .collect();
    for (row, output) in rows.iter().zip(&outputs) {
        for (read, &(log_prob, is_best)) in row.reads.iter().zip(output) {
            let (q, c) = (read.question, read.candidate);
            if scorer.causal() {
                greedy[q][c] &= is_best;
            }
            sums[q][c][read.draw] += read.weight * log_prob;
        }
    }
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
            greedy[q][0] = &tokens == continuation;
        }
    }
    for (q, question) in questions.iter().enumerate() {
        for (c, candidate) in question.candidates.iter().enumerate() {
            exact[q][c] = !matches!(scorer, Scorer::DlmElbo { .. } | Scorer::DlmLlada { .. })
                || fit(candidate, max_len).1.len() == 1;
        }
    }
    sums.iter()
        .enumerate()
        .map(|(q, candidates)| {
            candidates
                .iter()
                .enumerate()
                .map(|(c, per_draw)| {
                    if !owned(q) {
                        return CandidateScore {
                            score: 0.0,
                            stderr: 0.0,
                            greedy: false,
                        };
                    }
                    let (mean, stderr) = if exact[q][c] {
                        (per_draw[0], 0.0)
                    } else {
                        mean_and_stderr(per_draw)
                    };
                    CandidateScore {
                        score: mean,
                        stderr,
                        greedy: greedy[q][c],
                    }
                })
                .collect()
        })
        .collect()
}

pub fn mean_and_stderr(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, f64::NAN);
    }
    let variance = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (variance / n).sqrt())
}

/// Accuracy metrics of a task from its scores.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskMetrics {
    pub n: usize,
    pub acc: f64,
    pub acc_norm: f64,
    /// Per question: whether `acc` and `acc_norm` count it correct.
    pub correct: Vec<bool>,
    pub correct_norm: Vec<bool>,
    /// Mean Monte Carlo standard error of the candidates' scores (0 when exact).
    pub mc_stderr: f64,
}

pub fn task_metrics(questions: &[Question], scores: &[Vec<CandidateScore>]) -> TaskMetrics {
    let argmax = |values: &mut dyn Iterator<Item = f64>| {
        values
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (i, v)| {
                if v > best.1 { (i, v) } else { best }
            })
            .0
    };
    let (mut correct, mut correct_norm) = (Vec::new(), Vec::new());
    let (mut stderr_sum, mut stderr_count) = (0.0, 0usize);
    for (question, candidates) in questions.iter().zip(scores) {
        if candidates.len() == 1 {
            // Single continuation (LAMBADA): correct when it is the greedy prediction.
            correct.push(candidates[0].greedy);
            correct_norm.push(candidates[0].greedy);
        } else {
            correct.push(argmax(&mut candidates.iter().map(|s| s.score)) == question.gold);
            let normalised = candidates
                .iter()
                .zip(&question.candidates)
                .map(|(s, c)| s.score / c.bytes.max(1) as f64);
            correct_norm.push(argmax(&mut normalised.into_iter()) == question.gold);
        }
        for score in candidates.iter().filter(|s| s.stderr.is_finite()) {
            stderr_sum += score.stderr;
            stderr_count += 1;
        }
    }
    let n = questions.len().max(1) as f64;
    TaskMetrics {
        n: questions.len(),
        acc: correct.iter().filter(|&&c| c).count() as f64 / n,
        acc_norm: correct_norm.iter().filter(|&&c| c).count() as f64 / n,
        correct,
        correct_norm,
        mc_stderr: if stderr_count > 0 {
            stderr_sum / stderr_count as f64
        } else {
            0.0
        },
    }
}

/// Binomial standard error of an accuracy over n items.
pub fn binomial_stderr(accuracy: f64, n: usize) -> f64 {
    if n == 0 {
        f64::NAN
    } else {
        (accuracy * (1.0 - accuracy) / n as f64).sqrt()
    }
}
