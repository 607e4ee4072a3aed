//! Greedy iterative decoding of a DLM (single-continuation tasks such as LAMBADA).

use crate::model::layers::ForwardOptions;
use crate::model::transformer::Transformer;
use crate::objectives::vocab::Vocab;
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

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
