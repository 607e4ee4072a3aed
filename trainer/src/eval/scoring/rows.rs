//! The forward passes a scorer needs, as rows of tokens with the reads to make from
//! each, and their execution grouped by length in batches of `batch_tokens`.

use crate::eval::scoring::questions::{Candidate, Question, Scorer};
use crate::eval::scoring::uniforms::question_draws;
use crate::model::layers::ForwardOptions;
use crate::model::transformer::Transformer;
use crate::objectives::vocab::Vocab;
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

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

/// Keep at most `max_len` tokens of context + continuation, cutting the context's start.
pub(super) fn fit(candidate: &Candidate, max_len: usize) -> (Vec<i64>, Vec<i64>) {
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
