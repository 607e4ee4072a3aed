//! `trainer bench-eval`: scoring throughput for AR and DLM on random questions.

use crate::model::transformer::Transformer;
use crate::objectives::vocab::Vocab;
use jobspec::{ModelShape, padded_vocab};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Scoring throughput of one scorer on random questions.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScoringResult {
    pub scorer: String,
    pub draws: usize,
    pub items: usize,
    pub seconds: f64,
    pub items_per_s: f64,
}

/// `trainer bench-eval`: items/s for AR and DLM scoring with the `preset` model on
/// random 4-choice questions (48-token contexts, 12-token continuations).
pub fn measure_scoring(
    preset: &str,
    items: usize,
    draws: usize,
    threads: usize,
) -> Result<Vec<ScoringResult>, String> {
    use crate::eval::scoring::questions::{Candidate, Question, Scorer};
    use crate::eval::scoring::{ScoreSettings, score};
    tch::set_num_threads(threads as i32);
    let shape = ModelShape::preset(preset).ok_or_else(|| format!("unknown preset `{preset}`"))?;
    let vocab = 2048;
    tch::manual_seed(0);
    let (_variables, model) =
        Transformer::build(&shape, padded_vocab(vocab), Device::Cpu, Kind::Float);
    let draw = |n: i64| {
        Vec::<i64>::try_from(Tensor::randint(
            vocab as i64,
            [n],
            (Kind::Int64, tch::Device::Cpu),
        ))
        .unwrap_or_default()
    };
    let questions: Vec<Question> = (0..items)
        .map(|i| {
            let context = draw(48);
            let candidates = (0..4)
                .map(|_| Candidate {
                    context: context.clone(),
                    continuation: draw(12),
                    bytes: 48,
                })
                .collect();
            Question {
                candidates,
                gold: i % 4,
            }
        })
        .collect();
    let mut results = Vec::new();
    for (name, scorer) in [
        ("ar", Scorer::Ar),
        ("dlm_elbo", Scorer::DlmElbo { draws }),
        ("dlm_chain_rule", Scorer::DlmChainRule),
    ] {
        let clock = Instant::now();
        let settings = ScoreSettings {
            vocab: Vocab { size: vocab as i64 },
            max_len: 128,
            batch_tokens: 16_384,
            seed: 0,
            eps: 1e-3,
            pad_to_max_len: false,
        };
        let _ = score(&model, &questions, scorer, &settings);
        let seconds = clock.elapsed().as_secs_f64();
        let draws = if matches!(scorer, Scorer::DlmElbo { .. }) {
            draws
        } else {
            1
        };
        results.push(ScoringResult {
            scorer: name.into(),
            draws,
            items,
            seconds,
            items_per_s: items as f64 / seconds,
        });
    }
    Ok(results)
}

pub fn scoring_table(results: &[ScoringResult], threads: usize) -> String {
    let ar = results
        .iter()
        .find(|r| r.scorer == "ar")
        .map_or(f64::NAN, |r| r.seconds);
    let mut out = String::from(
        "| scorer | draws | items | seconds | items/s | time / (draws x AR time) |\n|---|---|---|---|---|---|\n",
    );
    for result in results {
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.1} | {:.2} |\n",
            result.scorer,
            result.draws,
            result.items,
            result.seconds,
            result.items_per_s,
            result.seconds / (result.draws as f64 * ar)
        ));
    }
    out.push_str(&format!(
        "\n{threads} threads, 4 choices per item, 48-token contexts, 12-token continuations\n"
    ));
    out
}
