//! Validation loss on held-out text (reference/recipes.md, "Validation loss").
//!
//! - AR (and the AR controls, evaluated without noise): mean next-token NLL per token.
//! - DLM: the masked-diffusion ELBO per token, averaged over K draws whose times are
//!   stratified per sequence, t_k = (u + k / K) mod 1, from a fixed seed, so every
//!   evaluation of a run uses identical draws and curves are comparable. Each draw
//!   masks with probability t itself, without training's eps floor, so the draws
//!   estimate the whole bound (`validation_mask_probability` says why). The standard
//!   error is the spread of the windows' values (each the mean of its K draws) over
//!   sqrt(N), as AR's: it holds the choice of windows and the Monte Carlo noise.

use crate::eval::result::EvalResult;
use crate::eval::shard::EvalShard;
use crate::model::layers::ForwardOptions;
use crate::model::transformer::Transformer;
use crate::objectives::ar::shift;
use crate::objectives::dlm::{dlm_row_losses, row_weights};
use crate::objectives::vocab::{Vocab, token_cross_entropy};
use jobspec::{DlmWeighting, Objective};
use tch::{Kind, Tensor};

/// Fixed seed of the validation draws: the same at every evaluation of a run.
const VALIDATION_SEED: i64 = 0x005e_ed0f_da7a;

/// Windows of seq_len + 1 tokens of the held-out stream starting at `starts`
/// (`corpus::validation_starts`), as a (N, seq_len + 1) int64 tensor.
pub fn validation_windows(stream: &[u32], seq_len: usize, starts: &[usize]) -> Option<Tensor> {
    let starts: Vec<usize> = starts
        .iter()
        .copied()
        .filter(|&start| start + seq_len < stream.len())
        .collect();
    if starts.is_empty() {
        return None;
    }
    let mut ids = Vec::with_capacity(starts.len() * (seq_len + 1));
    for &start in &starts {
        ids.extend(
            stream[start..=start + seq_len]
                .iter()
                .map(|&id| i64::from(id)),
        );
    }
    Some(Tensor::from_slice(&ids).view([starts.len() as i64, seq_len as i64 + 1]))
}

/// Validation loss of `windows` in batches of `batch_size` (the DLM's over `draws`
/// draws), the batches shared out over data-parallel ranks by `shard`: the result is
/// the same on every rank, and what one process computes alone.
pub fn validation_loss(
    model: &Transformer,
    objective: &Objective,
    windows: &Tensor,
    vocab: Vocab,
    (batch_size, draws): (usize, usize),
    shard: &EvalShard<'_>,
) -> Result<EvalResult, String> {
    let _guard = tch::no_grad_guard();
    let windows = &windows.to_device(model.device());
    let (value, stderr, items) = match objective {
        Objective::Dlm => dlm_elbo(model, windows, vocab, batch_size, draws, shard)?,
        _ => ar_nll(model, windows, vocab, batch_size, shard)?,
    };
    Ok(EvalResult {
        task: "val_loss".into(),
        metric: "loss".into(),
        value,
        stderr,
        n: items.len() as u64,
        items,
    })
}

/// Mean NLL per predicted token; stderr over windows; each window's mean NLL.
fn ar_nll(
    model: &Transformer,
    windows: &Tensor,
    vocab: Vocab,
    batch_size: usize,
    shard: &EvalShard<'_>,
) -> Result<(f64, f64, Vec<f64>), String> {
    let per_window: Vec<Tensor> = windows
        .split(batch_size as i64, 0)
        .iter()
        .enumerate()
        .map(|(index, batch)| {
            if !shard.owns(index) {
                return Tensor::zeros([batch.size()[0]], (Kind::Float, batch.device()));
            }
            let (inputs, targets) = shift(batch);
            let logits = model.logits(
                &inputs,
                ForwardOptions {
                    causal: true,
                    dropout: 0.0,
                    train: false,
                },
                vocab.size,
            );
            token_cross_entropy(&logits, &targets, vocab).mean_dim(1, false, Kind::Float) // (b,)
        })
        .collect();
    let per_window = Tensor::cat(&per_window, 0);
    shard.sum(&per_window)?;
    Ok(summarize(&per_window))
}

/// (mean, stderr, values) of per-window values (N,): the stderr is their spread over
/// sqrt(N), for AR and the DLM alike (NaN with one window).
fn summarize(per_window: &Tensor) -> (f64, f64, Vec<f64>) {
    let n = per_window.size()[0];
    let stderr = if n > 1 {
        per_window.std(true).double_value(&[]) / (n as f64).sqrt()
    } else {
        f64::NAN
    };
    (
        // In the values' own type (AR's are fp32), as before the two were shared.
        per_window.mean(per_window.kind()).double_value(&[]),
        stderr,
        to_f64s(per_window),
    )
}

fn to_f64s(values: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(values.to_kind(Kind::Double).to_device(tch::Device::Cpu))
        .unwrap_or_default()
}

/// ELBO per token over K stratified draws; stderr from the spread of the windows' values; each
/// window's ELBO per token averaged over the draws.
fn dlm_elbo(
    model: &Transformer,
    windows: &Tensor,
    vocab: Vocab,
    batch_size: usize,
    draws: usize,
    shard: &EvalShard<'_>,
) -> Result<(f64, f64, Vec<f64>), String> {
    let clean = windows.narrow(1, 0, windows.size()[1] - 1); // (N, L)
    elbo_estimate(
        &clean,
        (batch_size, draws),
        vocab.mask_id(),
        shard,
        |noisy, clean, mask, weights| {
            let logits = model.logits(
                noisy,
                ForwardOptions {
                    causal: false,
                    dropout: 0.0,
                    train: false,
                },
                vocab.size,
            );
            dlm_row_losses(&logits, clean, mask, weights, vocab)
        },
    )
}

/// Smallest masking probability of a validation draw: a draw at t = 0 exactly would
/// weigh its (almost surely empty) mask by 1/0. Replacing the ELBO's integrand on
/// [0, 1e-6) by its value at 1e-6 moves the bound by about 1e-6 of a nat.
const VALIDATION_MIN_P: f64 = 1e-6;

/// Masking probability of a validation draw at time t: p = t, the linear schedule
/// itself, so that the draws estimate the whole ELBO, the integral over t in (0, 1)
/// of (1/t) E[sum of the masked tokens' CE] (MDLM, Sahoo et al. 2024, eq. 10).
///
/// Training floors p at eps (p = (1 - eps) t + eps) to keep 1/p bounded; the same floor
/// here would estimate the mean over p in [eps, 1] instead: it drops the integral's
/// [0, eps) part, where the integrand is smallest (nearly every other token is
/// visible), and scales the rest by 1/(1 - eps), which overstates the bound by
/// eps x (mean integrand over [eps, 1] - mean over [0, eps)), at most about eps x
/// the loss (0.1% at eps = 1e-3; the test `the_validation_elbo_integrates_over_all_of_t`
/// measures it with eps = 0.2).
pub fn validation_mask_probability(times: &Tensor) -> Tensor {
    times.clamp_min(VALIDATION_MIN_P)
}

/// The validation ELBO of clean (N, L) sequences over K = `draws` draws: draw k of
/// sequence i masks each token with probability p = t_k (`validation_mask_probability`),
/// t_k = (u_i + k / K) mod 1 stratified per sequence from a fixed seed, and weighs its
/// masked tokens by 1/p. `row_losses(noisy, clean, mask, weights)` on a batch of rows
/// (b, L) returns each row's sum over masked tokens of CE x weight, divided by L (b,):
/// the model's part, a closure so tests can put a scorer with a known ELBO there.
/// Returns (mean over draws and sequences, stderr from the spread of the windows' values
/// over sqrt(N), each sequence's mean over the draws).
pub fn elbo_estimate(
    clean: &Tensor,
    (batch_size, draws): (usize, usize),
    mask_id: i64,
    shard: &EvalShard<'_>,
    mut row_losses: impl FnMut(&Tensor, &Tensor, &Tensor, &Tensor) -> Tensor,
) -> Result<(f64, f64, Vec<f64>), String> {
    let (count, length) = clean.size2().unwrap_or_default();
    tch::manual_seed(VALIDATION_SEED);
    let offsets = Tensor::rand([count], (Kind::Float, clean.device())); // u per sequence
    // (draws, N): every draw's per-window bound, each rank filling its batches' rows.
    let mut by_draw = Vec::with_capacity(draws);
    for draw in 0..draws {
        tch::manual_seed(VALIDATION_SEED + 1 + draw as i64);
        let times = (&offsets + draw as f64 / draws as f64).remainder(1.0);
        let p_mask = validation_mask_probability(&times); // (N,)
        let mask = Tensor::rand([count, length], (Kind::Float, clean.device()))
            .lt_tensor(&p_mask.unsqueeze(1));
        let mut rows_of_draw = Vec::new();
        let mut start = 0;
        let mut index = 0;
        while start < count {
            let size = (batch_size as i64).min(count - start);
            if !shard.owns(index) {
                rows_of_draw.push(Tensor::zeros([size], (Kind::Float, clean.device())));
                start += size;
                index += 1;
                continue;
            }
            index += 1;
            let rows = |t: &Tensor| t.narrow(0, start, size);
            let noisy = rows(clean).masked_fill(&rows(&mask), mask_id);
            // The bound itself always uses 1/p_mask, whatever weighting training used.
            let weights = row_weights(&rows(&mask), &rows(&p_mask), DlmWeighting::InverseT);
            rows_of_draw.push(row_losses(&noisy, &rows(clean), &rows(&mask), &weights));
            start += size;
        }
        by_draw.push(Tensor::cat(&rows_of_draw, 0).to_kind(Kind::Double)); // (N,)
    }
    let by_draw = Tensor::stack(&by_draw, 0); // (draws, N)
    shard.sum(&by_draw)?;
    // The same kind of stderr as AR's (issue 29): the spread of the windows' values over
    // sqrt(N). Each window's value averages its K draws, so the Monte Carlo noise is in
    // that spread too; the spread of the K draw means alone left out which windows
    // were drawn.
    let per_window = by_draw.mean_dim(0, false, Kind::Double); // (N,)
    Ok(summarize(&per_window))
}
