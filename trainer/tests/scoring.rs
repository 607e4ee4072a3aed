//! Scoring against independent computations: brute-force AR log-probabilities, the
//! exact DLM ELBO by enumeration of masks, the chain rule by its definition, common
//! random numbers across choices, and accuracy on toy tasks.

use jobspec::{DlmConfig, ModelShape, Objective, padded_vocab};
use tch::{Kind, Tensor, nn};
use trainer::eval::scoring::decode::greedy_decode;
use trainer::eval::scoring::metrics::task_metrics;
use trainer::eval::scoring::questions::{Candidate, Question, Scorer};
use trainer::eval::scoring::rows::{pad_rows, plan_rows};
use trainer::eval::scoring::{ScoreSettings, score};
use trainer::model::layers::ForwardOptions;
use trainer::model::transformer::Transformer;
use trainer::objectives::prepared::training_loss;
use trainer::objectives::vocab::Vocab;
use trainer::train::optim::{AdamW, AdamWConfig};

static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SEEDED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn model(vocab: usize, seed: i64) -> (nn::VarStore, Transformer) {
    tch::set_num_threads(1);
    tch::manual_seed(seed);
    let variables = nn::VarStore::new(tch::Device::Cpu);
    let mut shape = ModelShape::preset("nano").expect("preset");
    shape.init_std = 0.5; // far from uniform, so wrong formulas show
    let model = Transformer::new(&variables.root(), &shape, padded_vocab(vocab));
    (variables, model)
}

/// log p(target at `position`) of one forward pass, straight from the model.
fn log_prob(
    model: &Transformer,
    tokens: &[i64],
    position: usize,
    target: i64,
    causal: bool,
    vocab: i64,
) -> f64 {
    let _guard = tch::no_grad_guard();
    let input = Tensor::from_slice(tokens).view([1, tokens.len() as i64]);
    let logits = model.forward(
        &input,
        ForwardOptions {
            causal,
            dropout: 0.0,
            train: false,
        },
    );
    let row = logits
        .get(0)
        .get(position as i64)
        .narrow(0, 0, vocab)
        .to_kind(Kind::Double);
    row.log_softmax(0, Kind::Double).double_value(&[target])
}

fn settings(vocab: i64, batch_tokens: usize, seed: u64) -> ScoreSettings {
    ScoreSettings {
        vocab: Vocab { size: vocab },
        max_len: 64,
        batch_tokens,
        seed,
        eps: 1e-3,
        pad_to_max_len: false,
    }
}

fn question(context: &[i64], continuations: &[&[i64]], gold: usize) -> Question {
    let candidates = continuations
        .iter()
        .map(|c| Candidate {
            context: context.to_vec(),
            continuation: c.to_vec(),
            bytes: c.len(),
        })
        .collect();
    Question { candidates, gold }
}

#[test]
fn ar_score_equals_token_by_token_log_probabilities() {
    let _serial = serial();
    let (_variables, model) = model(5, 1);
    let context = [1i64, 3, 2, 4];
    let continuations: [&[i64]; 2] = [&[0, 2, 1], &[4]];
    let scores = score(
        &model,
        &[question(&context, &continuations, 0)],
        Scorer::Ar,
        &settings(5, 256, 0),
    );
    for (candidate, continuation) in continuations.iter().enumerate() {
        let mut prefix = context.to_vec();
        let mut expected = 0.0;
        for &token in *continuation {
            // A fresh forward pass on the prefix alone: nothing later can leak in.
            expected += log_prob(&model, &prefix, prefix.len() - 1, token, true, 5);
            prefix.push(token);
        }
        let got = scores[0][candidate].score;
        assert!(
            (got - expected).abs() < 1e-4,
            "candidate {candidate}: {got} vs {expected}"
        );
        assert_eq!(scores[0][candidate].stderr, 0.0);
    }
}

/// The exact ELBO: integrate over t (midpoint rule) the expectation over all 2^3
/// masks of sum_{masked} log p(x_j | x_t) / p_t.
fn exact_elbo(model: &Transformer, context: &[i64], continuation: &[i64], eps: f64) -> f64 {
    let length = continuation.len();
    let mask_id = 5;
    let mut by_subset = vec![0.0; 1 << length];
    for (subset, slot) in by_subset.iter_mut().enumerate().skip(1) {
        let mut tokens = context.to_vec();
        tokens.extend(
            continuation
                .iter()
                .enumerate()
                .map(|(j, &t)| if subset >> j & 1 == 1 { mask_id } else { t }),
        );
        *slot = (0..length)
            .filter(|j| subset >> j & 1 == 1)
            .map(|j| log_prob(model, &tokens, context.len() + j, continuation[j], false, 5))
            .sum();
    }
    let steps = 20_000;
    let mut total = 0.0;
    for step in 0..steps {
        let t = (step as f64 + 0.5) / steps as f64;
        let p = (1.0 - eps) * t + eps;
        for (subset, value) in by_subset.iter().enumerate().skip(1) {
            let masked = subset.count_ones() as i32;
            total += p.powi(masked) * (1.0 - p).powi(length as i32 - masked) * value / p;
        }
    }
    total / steps as f64
}

#[test]
fn dlm_monte_carlo_elbo_agrees_with_exact_enumeration() {
    let _serial = serial();
    let (_variables, model) = model(5, 2);
    let context = [1i64, 3, 2, 4, 0];
    let continuation = [2i64, 0, 3];
    let exact = exact_elbo(&model, &context, &continuation, 1e-3);
    let draws = 4000;
    let q = question(&context, &[&continuation], 0);
    let scores = score(
        &model,
        &[q],
        Scorer::DlmElbo { draws },
        &settings(5, 4096, 11),
    );
    let estimate = scores[0][0];
    eprintln!("exact {exact}, MC {} ± {}", estimate.score, estimate.stderr);
    assert!(
        estimate.stderr > 0.0 && estimate.stderr < 1.0,
        "stderr {}",
        estimate.stderr
    );
    assert!(
        (estimate.score - exact).abs() < 3.0 * estimate.stderr,
        "MC {} ± {} vs exact {exact}",
        estimate.score,
        estimate.stderr
    );
    // LLaDA's estimator targets the same bound.
    let q = question(&context, &[&continuation], 0);
    let llada = score(
        &model,
        &[q],
        Scorer::DlmLlada { draws },
        &settings(5, 4096, 11),
    )[0][0];
    assert!(
        (llada.score - exact).abs() < 3.0 * llada.stderr + 0.05,
        "LLaDA {} ± {} vs {exact}",
        llada.score,
        llada.stderr
    );
}

#[test]
fn chain_rule_score_equals_its_definition() {
    let _serial = serial();
    let (_variables, model) = model(5, 3);
    let context = [4i64, 4, 1];
    let continuation = [3i64, 0, 2];
    let scores = score(
        &model,
        &[question(&context, &[&continuation], 0)],
        Scorer::DlmChainRule,
        &settings(5, 256, 0),
    );
    let mut expected = 0.0;
    for i in 0..continuation.len() {
        let mut tokens = context.to_vec();
        tokens.extend(
            continuation
                .iter()
                .enumerate()
                .map(|(j, &t)| if j < i { t } else { 5 }),
        );
        expected += log_prob(
            &model,
            &tokens,
            context.len() + i,
            continuation[i],
            false,
            5,
        );
    }
    assert!(
        (scores[0][0].score - expected).abs() < 1e-4,
        "{} vs {expected}",
        scores[0][0].score
    );
}

#[test]
fn single_token_answers_are_scored_exactly_in_one_pass() {
    let _serial = serial();
    let (_variables, model) = model(5, 4);
    let context = [1i64, 2, 3];
    let q = question(&context, &[&[0], &[4]], 1);
    let scores = score(
        &model,
        &[q],
        Scorer::DlmElbo { draws: 8 },
        &settings(5, 256, 0),
    );
    for (c, token) in [0i64, 4].iter().enumerate() {
        let expected = log_prob(&model, &[1, 2, 3, 5], 3, *token, false, 5);
        assert!((scores[0][c].score - expected).abs() < 1e-4);
        assert_eq!(scores[0][c].stderr, 0.0);
    }
}

#[test]
fn every_choice_of_a_question_gets_the_same_masks() {
    let q = question(&[1, 2], &[&[3, 3, 3, 3], &[4, 4, 4, 4], &[0, 1, 2, 3]], 0);
    let rows = plan_rows(&[q], Scorer::DlmElbo { draws: 16 }, 5, 64, 7, 1e-3);
    let masks = |candidate: usize| -> Vec<Vec<bool>> {
        rows.iter()
            .filter(|row| row.reads.first().is_some_and(|r| r.candidate == candidate))
            .map(|row| row.tokens.iter().map(|&t| t == 5).collect())
            .collect()
    };
    assert!(masks(0).len() > 8, "most draws mask something");
    assert_eq!(masks(0), masks(1));
    assert_eq!(masks(0), masks(2));
    // A different question (index) draws different masks.
    let two = [
        question(&[1, 2], &[&[3, 3, 3, 3]], 0),
        question(&[1, 2], &[&[3, 3, 3, 3]], 0),
    ];
    let rows = plan_rows(&two, Scorer::DlmElbo { draws: 16 }, 5, 64, 7, 1e-3);
    let of = |q: usize| -> Vec<Vec<i64>> {
        rows.iter()
            .filter(|r| r.reads.first().is_some_and(|x| x.question == q))
            .map(|r| r.tokens.clone())
            .collect()
    };
    assert_ne!(of(0), of(1));
}

/// Train on constant sequences (one token repeated): the continuation that repeats the
/// context's token is then certain, for AR and DLM alike.
fn train_repeat_model(objective: Objective) -> (nn::VarStore, Transformer) {
    let (variables, model) = model(16, 5);
    let mut named: Vec<(String, Tensor)> = variables.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let parameters = named.into_iter().map(|(n, t)| (n, t, false)).collect();
    let mut optimizer = AdamW::new(
        parameters,
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.0,
        },
    );
    for step in 0..150 {
        tch::manual_seed(1000 + step);
        let tokens = Tensor::randint(16, [16, 1], (Kind::Int64, tch::Device::Cpu)).repeat([1, 13]);
        let loss = training_loss(
            &model,
            &objective,
            &tokens,
            Vocab { size: 16 },
            &DlmConfig::default(),
        );
        optimizer.zero_grad().expect("zero_grad");
        loss.backward();
        let _ = optimizer.clip_gradients(1.0).expect("clip");
        optimizer.step(3e-3).expect("AdamW step");
    }
    (variables, model)
}

fn repeat_questions(count: usize) -> Vec<Question> {
    (0..count)
        .map(|i| {
            let token = (i % 16) as i64;
            let others: Vec<i64> = (1..4).map(|d| ((i + 5 * d) % 16) as i64).collect();
            let gold = i % 4;
            let mut continuations: Vec<Vec<i64>> = others.iter().map(|&o| vec![o; 4]).collect();
            continuations.insert(gold, vec![token; 4]);
            let refs: Vec<&[i64]> = continuations.iter().map(Vec::as_slice).collect();
            question(&[token; 8], &refs, gold)
        })
        .collect()
}

#[test]
fn trained_models_ace_a_toy_task_and_untrained_ones_score_chance() {
    let _serial = serial();
    let questions = repeat_questions(48);
    for (objective, scorer) in [
        (Objective::Ar, Scorer::Ar),
        (Objective::Dlm, Scorer::DlmElbo { draws: 32 }),
    ] {
        let (_variables, model) = train_repeat_model(objective);
        let scores = score(&model, &questions, scorer, &settings(16, 4096, 0));
        let metrics = task_metrics(&questions, &scores);
        assert_eq!(metrics.acc, 1.0, "{}: {metrics:?}", objective.label());
    }
    // An untrained model on random questions: chance (0.25) within 3 binomial errors.
    let (_variables, model) = model(16, 9);
    tch::manual_seed(3);
    let random: Vec<Question> = (0..400)
        .map(|i| {
            let draw = |n: i64| {
                Vec::<i64>::try_from(Tensor::randint(16, [n], (Kind::Int64, tch::Device::Cpu)))
                    .unwrap_or_default()
            };
            let context = draw(6);
            let continuations: Vec<Vec<i64>> = (0..4).map(|_| draw(3)).collect();
            let refs: Vec<&[i64]> = continuations.iter().map(Vec::as_slice).collect();
            question(&context, &refs, i % 4)
        })
        .collect();
    let metrics = task_metrics(
        &random,
        &score(&model, &random, Scorer::Ar, &settings(16, 4096, 0)),
    );
    let sigma = (0.25f64 * 0.75 / 400.0).sqrt();
    assert!(
        (metrics.acc - 0.25).abs() < 3.0 * sigma,
        "untrained accuracy {}",
        metrics.acc
    );
}

/// Greedy decoding written out one row and one pass at a time, straight from the model.
fn decode_by_hand(
    model: &Transformer,
    context: &[i64],
    length: usize,
    vocab: i64,
    pad: usize,
) -> Vec<i64> {
    let _guard = tch::no_grad_guard();
    let mask_id = vocab; // Vocab::mask_id: the first id after the vocabulary
    let mut tokens = context.to_vec();
    tokens.resize(pad.max(context.len() + length), mask_id);
    let mut open = vec![true; length];
    for _ in 0..length {
        let input = Tensor::from_slice(&tokens).view([1, tokens.len() as i64]);
        let logits = model.forward(
            &input,
            ForwardOptions {
                causal: false,
                dropout: 0.0,
                train: false,
            },
        );
        let mut best = (f64::NEG_INFINITY, 0, 0);
        for (j, _) in open.iter().enumerate().filter(|(_, open)| **open) {
            let row = logits
                .get(0)
                .get((context.len() + j) as i64)
                .narrow(0, 0, vocab)
                .to_kind(Kind::Double)
                .log_softmax(0, Kind::Double);
            let values = Vec::<f64>::try_from(row).expect("row");
            let (token, value) =
                values
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f64::NEG_INFINITY),
                        |b, (t, &v)| if v > b.1 { (t, v) } else { b },
                    );
            if value > best.0 {
                best = (value, j, token);
            }
        }
        tokens[context.len() + best.1] = best.2 as i64;
        open[best.1] = false;
    }
    tokens[context.len()..context.len() + length].to_vec()
}

#[test]
fn greedy_decoding_unmasks_the_most_confident_token_each_pass() {
    let _serial = serial();
    let (_variables, model) = model(16, 11);
    let pairs: Vec<(Vec<i64>, Vec<i64>)> = vec![
        (vec![3, 1, 4, 1, 5], vec![0; 4]),
        (vec![9, 2, 6, 5, 3], vec![0; 4]),
        (vec![5, 8], vec![0; 3]),
        (vec![7; 6], vec![0; 1]),
    ];
    for pad in [None, Some(12)] {
        let decoded = greedy_decode(&model, &pairs, Vocab { size: 16 }, 64, pad);
        for ((context, continuation), tokens) in pairs.iter().zip(&decoded) {
            let expected =
                decode_by_hand(&model, context, continuation.len(), 16, pad.unwrap_or(0));
            assert_eq!(tokens, &expected, "context {context:?}, pad {pad:?}");
        }
    }
}

#[test]
fn a_trained_dlm_decodes_single_continuations_and_rejects_wrong_ones() {
    let _serial = serial();
    let (_variables, model) = train_repeat_model(Objective::Dlm);
    let single = |wrong: bool| -> Vec<Question> {
        (0..16)
            .map(|i| {
                let token = i as i64;
                let answer = if wrong { (token + 3) % 16 } else { token };
                question(&[token; 8], &[&[answer; 4]], 0)
            })
            .collect()
    };
    for (wrong, lowest, highest) in [(false, 0.9, 1.0), (true, 0.0, 0.1)] {
        let questions = single(wrong);
        let scores = score(
            &model,
            &questions,
            Scorer::DlmElbo { draws: 4 },
            &settings(16, 256, 0),
        );
        let accuracy = task_metrics(&questions, &scores).acc;
        assert!(
            (lowest..=highest).contains(&accuracy),
            "wrong continuations: {wrong}, accuracy {accuracy}"
        );
    }
}

#[test]
fn mask_padding_gives_full_length_rows_and_keeps_the_reads() {
    let questions = vec![
        question(&[1, 2, 3], &[&[4, 5], &[6, 7]], 0),
        question(&[8; 10], &[&[9], &[10]], 1),
    ];
    for scorer in [
        Scorer::DlmElbo { draws: 3 },
        Scorer::DlmLlada { draws: 2 },
        Scorer::DlmChainRule,
    ] {
        let plain = plan_rows(&questions, scorer, 16, 20, 0, 1e-3);
        let mut padded = plain.clone();
        pad_rows(&mut padded, 16, 20);
        assert_eq!(plain.len(), padded.len());
        for (before, after) in plain.iter().zip(&padded) {
            assert_eq!(after.tokens.len(), 20, "{scorer:?}");
            assert_eq!(&after.tokens[..before.tokens.len()], &before.tokens[..]);
            assert!(after.tokens[before.tokens.len()..].iter().all(|&t| t == 16));
            assert_eq!(after.reads, before.reads, "scored positions moved");
        }
    }
}
