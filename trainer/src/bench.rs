//! `trainer bench`: training throughput and peak memory for AR and DLM at two model
//! sizes on this machine. Each configuration runs in its own process so its peak
//! resident memory (VmHWM) is its own.

use crate::model::{Transformer, takes_weight_decay};
use crate::objectives::{Vocab, training_loss};
use crate::optim::{AdamW, AdamWConfig};
use jobspec::{DlmConfig, ModelShape, Objective, padded_vocab};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tch::{Kind, Tensor, nn};

/// One benchmark configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchCase {
    pub preset: String,
    pub objective: String,
    pub batch_size: usize,
    pub seq_len: usize,
    pub vocab: usize,
    pub steps: usize,
    pub warmup_steps: usize,
    pub threads: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchResult {
    pub case: BenchCase,
    pub params: u64,
    pub tokens_per_s: f64,
    pub step_ms: f64,
    pub peak_rss_mib: f64,
}

/// Train `case` on random tokens and measure it (run in a child process).
pub fn measure(case: &BenchCase) -> Result<BenchResult, String> {
    tch::set_num_threads(case.threads as i32);
    let objective = match case.objective.as_str() {
        "ar" => Objective::Ar,
        "dlm" => Objective::Dlm,
        other => return Err(format!("unknown objective `{other}` (ar or dlm)")),
    };
    let shape = ModelShape::preset(&case.preset)
        .ok_or_else(|| format!("unknown preset `{}`", case.preset))?;
    let rows = padded_vocab(case.vocab);
    tch::manual_seed(0);
    let variables = nn::VarStore::new(tch::Device::Cpu);
    let model = Transformer::new(&variables.root(), &shape, rows);
    let mut named: Vec<(String, Tensor)> = variables.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let parameters = named
        .into_iter()
        .map(|(name, tensor)| (takes_weight_decay(&name, false), name, tensor));
    let parameters = parameters
        .map(|(decay, name, tensor)| (name, tensor, decay))
        .collect();
    let mut optimizer = AdamW::new(
        parameters,
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
        },
    );
    let vocab = Vocab {
        size: case.vocab as i64,
    };
    let dlm = DlmConfig::default();
    let windows = Tensor::randint(
        case.vocab as i64,
        [case.batch_size as i64, case.seq_len as i64 + 1],
        (Kind::Int64, tch::Device::Cpu),
    );
    let mut step = || {
        let loss = training_loss(&model, &objective, &windows, vocab, &dlm);
        optimizer.zero_grad();
        loss.backward();
        optimizer.clip_gradients(1.0);
        optimizer.step(1e-3);
    };
    for _ in 0..case.warmup_steps {
        step();
    }
    let clock = Instant::now();
    for _ in 0..case.steps {
        step();
    }
    let seconds = clock.elapsed().as_secs_f64();
    let tokens = (case.steps * case.batch_size * case.seq_len) as f64;
    Ok(BenchResult {
        params: shape.total_params(rows),
        tokens_per_s: tokens / seconds,
        step_ms: 1e3 * seconds / case.steps as f64,
        peak_rss_mib: peak_rss_mib(),
        case: case.clone(),
    })
}

/// Peak resident set size of this process (VmHWM), in MiB; NaN where /proc is absent.
pub fn peak_rss_mib() -> f64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return f64::NAN;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// The table `trainer bench` prints.
pub fn table(results: &[BenchResult]) -> String {
    let mut out = String::from(
        "| preset | params | objective | batch x seq | threads | tokens/s | ms/step | peak RSS MiB | DLM/AR |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for result in results {
        let case = &result.case;
        let ar = results
            .iter()
            .find(|other| other.case.preset == case.preset && other.case.objective == "ar");
        let ratio = match ar {
            Some(ar) if case.objective == "dlm" => {
                format!("{:.2}", result.tokens_per_s / ar.tokens_per_s)
            }
            _ => "-".into(),
        };
        out.push_str(&format!(
            "| {} | {:.2}M | {} | {} x {} | {} | {:.0} | {:.1} | {:.0} | {} |\n",
            case.preset,
            result.params as f64 / 1e6,
            case.objective,
            case.batch_size,
            case.seq_len,
            case.threads,
            result.tokens_per_s,
            result.step_ms,
            result.peak_rss_mib,
            ratio
        ));
    }
    out
}

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
    use crate::scoring::{Candidate, Question, ScoreSettings, Scorer, score};
    tch::set_num_threads(threads as i32);
    let shape = ModelShape::preset(preset).ok_or_else(|| format!("unknown preset `{preset}`"))?;
    let vocab = 2048;
    tch::manual_seed(0);
    let variables = nn::VarStore::new(tch::Device::Cpu);
    let model = Transformer::new(&variables.root(), &shape, padded_vocab(vocab));
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
