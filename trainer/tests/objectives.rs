//! Objectives and model: hand-worked losses, masking statistics, attention direction,
//! and overfitting one batch per objective.
//!
//! Length: about 530 lines, one table of cases per objective, checked against
//! independently computed values; one binary links LibTorch once.

use jobspec::{DlmConfig, DlmWeighting, ModelShape, Objective};
use tch::{Kind, Tensor, nn};
use trainer::model::layers::ForwardOptions;
use trainer::model::transformer::Transformer;
use trainer::objectives::ar::{ar_batch, mask_inputs};
use trainer::objectives::dlm::{dlm_draw, dlm_loss_from_logits, row_weights};
use trainer::objectives::prepared::training_loss;
use trainer::objectives::vocab::Vocab;
use trainer::train::optim::{AdamW, AdamWConfig};

/// Cross-entropy by hand in f64: log-sum-exp over the first `vocab` logits minus the target's.
fn cross_entropy(logits: &[f64], target: usize, vocab: usize) -> f64 {
    let max = logits[..vocab]
        .iter()
        .cloned()
        .fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = logits[..vocab].iter().map(|x| (x - max).exp()).sum();
    max + sum.ln() - logits[target]
}

const LOGITS: [[[f64; 4]; 2]; 2] = [
    // The last column is the mask id: huge, so a loss that let it into the softmax fails.
    [[1.0, 2.0, 3.0, 100.0], [0.0, 0.0, 0.0, 100.0]],
    [[2.0, 0.0, -1.0, 100.0], [0.5, -0.5, 1.5, 100.0]],
];

fn logits_tensor() -> Tensor {
    let flat: Vec<f32> = LOGITS
        .iter()
        .flatten()
        .flatten()
        .map(|&x| x as f32)
        .collect();
    Tensor::from_slice(&flat).view([2, 2, 4])
}

#[test]
fn dlm_loss_matches_hand_worked_case() {
    let clean = Tensor::from_slice(&[2i64, 0, 1, 2]).view([2, 2]);
    let mask = Tensor::from_slice(&[true, false, true, true]).view([2, 2]);
    let p_mask = Tensor::from_slice(&[0.5f32, 0.25]);
    let vocab = Vocab { size: 3 };
    let weights = row_weights(&mask, &p_mask, DlmWeighting::InverseT);
    let loss =
        dlm_loss_from_logits(&logits_tensor(), &clean, &mask, &weights, vocab).double_value(&[]);
    let ce00 = cross_entropy(&LOGITS[0][0], 2, 3);
    let ce10 = cross_entropy(&LOGITS[1][0], 1, 3);
    let ce11 = cross_entropy(&LOGITS[1][1], 2, 3);
    let expected = (ce00 / 0.5 + ce10 / 0.25 + ce11 / 0.25) / 4.0; // sum CE / p_mask over B * L
    assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
}

#[test]
fn megadlms_weighting_uses_realised_mask_fraction() {
    let clean = Tensor::from_slice(&[2i64, 0, 1, 2]).view([2, 2]);
    let mask = Tensor::from_slice(&[true, false, true, true]).view([2, 2]);
    let p_mask = Tensor::from_slice(&[0.5f32, 0.25]);
    let weights = row_weights(&mask, &p_mask, DlmWeighting::MaskFraction);
    let loss = dlm_loss_from_logits(&logits_tensor(), &clean, &mask, &weights, Vocab { size: 3 })
        .double_value(&[]);
    // Row 0 masks 1 of 2 tokens (weight 2), row 1 masks 2 of 2 (weight 1).
    let expected = (2.0 * cross_entropy(&LOGITS[0][0], 2, 3)
        + cross_entropy(&LOGITS[1][0], 1, 3)
        + cross_entropy(&LOGITS[1][1], 2, 3))
        / 4.0;
    assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
}

#[test]
fn ar_masking_keeps_targets_clean_at_rate_p() {
    let _serial = serial();
    tch::manual_seed(7);
    let windows = Tensor::randint(50, [64, 257], (Kind::Int64, tch::Device::Cpu));
    let (clean_inputs, clean_targets) = ar_batch(&windows, 0.0, 50);
    for p in [0.1, 0.5, 0.9] {
        let (inputs, targets) = ar_batch(&windows, p, 50);
        assert!(targets.equal(&clean_targets), "targets changed at p = {p}");
        assert_eq!(
            targets.eq(50).sum(Kind::Int64).int64_value(&[]),
            0,
            "mask id among targets"
        );
        let masked = inputs.eq(50);
        // Unmasked inputs are untouched.
        assert!(
            inputs
                .masked_select(&masked.logical_not())
                .equal(&clean_inputs.masked_select(&masked.logical_not()))
        );
        let n = inputs.numel() as f64;
        let rate = masked.sum(Kind::Float).double_value(&[]) / n;
        let sigma = (p * (1.0 - p) / n).sqrt();
        assert!(
            (rate - p).abs() < 4.0 * sigma,
            "rate {rate} vs p {p} (sigma {sigma})"
        );
    }
    let (_, mask) = mask_inputs(&windows, 0.0, 50);
    assert_eq!(mask.sum(Kind::Int64).int64_value(&[]), 0);
}

/// LibTorch's generator is process-global: tests that seed it run one at a time.
static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SEEDED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn nano(vocab_rows: usize) -> (nn::VarStore, Transformer) {
    tch::manual_seed(0);
    let variables = nn::VarStore::new(tch::Device::Cpu);
    let shape = ModelShape::preset("nano").expect("nano preset");
    let model = Transformer::new(&variables.root(), &shape, vocab_rows);
    (variables, model)
}

#[test]
fn attention_direction_follows_the_switch() {
    let _serial = serial();
    let (_variables, model) = nano(64);
    let tokens = Tensor::from_slice(&[1i64, 2, 3, 4, 5, 6, 7, 8]).view([1, 8]);
    let changed = Tensor::from_slice(&[1i64, 2, 3, 4, 5, 6, 7, 40]).view([1, 8]);
    let _guard = tch::no_grad_guard();
    for causal in [true, false] {
        let options = ForwardOptions {
            causal,
            dropout: 0.0,
            train: false,
        };
        let before = model.forward(&tokens, options).narrow(1, 0, 7);
        let after = model.forward(&changed, options).narrow(1, 0, 7);
        let difference = (before - after).abs().max().double_value(&[]);
        if causal {
            assert_eq!(difference, 0.0, "AR: a later token changed earlier outputs");
        } else {
            assert!(
                difference > 1e-4,
                "DLM: earlier outputs ignore a later token ({difference})"
            );
        }
    }
}

/// Train one fixed batch; return the first loss and the mean of the last 50.
fn overfit(objective: Objective, steps: usize) -> (f64, f64) {
    // One thread: tiny ops are fastest serial, and parallel tests oversubscribe 2 cores.
    tch::set_num_threads(1);
    let vocab = Vocab { size: 32 };
    let (variables, model) = nano(64);
    let mut parameters: Vec<(String, Tensor)> = variables.variables().into_iter().collect();
    parameters.sort_by(|a, b| a.0.cmp(&b.0));
    let parameters = parameters
        .into_iter()
        .map(|(name, tensor)| (name, tensor, true))
        .collect();
    let config = AdamWConfig {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    let mut optimizer = AdamW::new(parameters, config);
    tch::manual_seed(1);
    // One sequence, repeated: even fully masked, the DLM can then recall every token.
    let windows = Tensor::randint(32, [1, 17], (Kind::Int64, tch::Device::Cpu)).repeat([4, 1]);
    // Full-length rows: this test is about fitting the batch, not about truncation.
    let dlm = DlmConfig {
        truncate_prob: 0.0,
        ..DlmConfig::default()
    };
    let mut losses = Vec::new();
    for step in 0..steps {
        tch::manual_seed(100 + step as i64);
        let loss = training_loss(&model, &objective, &windows, vocab, &dlm);
        optimizer.zero_grad().expect("zero_grad");
        loss.backward();
        let _ = optimizer.clip_gradients(1.0).expect("clip");
        optimizer.step(3e-3).expect("AdamW step");
        losses.push(loss.double_value(&[]));
    }
    let tail = &losses[steps - 50..];
    (losses[0], tail.iter().sum::<f64>() / tail.len() as f64)
}

#[test]
fn each_objective_overfits_one_batch() {
    let _serial = serial();
    // Random tokens over 32 ids start near ln 32 = 3.47 nats.
    let cases = [
        (Objective::Ar, 0.3),
        (Objective::ArDropout(0.1), 0.6),
        (Objective::ArMasked(0.3), 0.8),
        (Objective::Dlm, 0.7),
    ];
    for (objective, bound) in cases {
        let (first, last) = overfit(objective, 600);
        eprintln!("{}: {first:.3} -> {last:.3}", objective.label());
        assert!(first > 3.0, "{}: first loss {first}", objective.label());
        assert!(
            last < bound,
            "{}: loss {last} not below {bound}",
            objective.label()
        );
    }
}

/// bf16 mixed precision (the CUDA default) runs the same code on the CPU: its losses
/// stay within bf16 rounding of fp32 on the same weights and batch, its gradients
/// reach the fp32 weights, and the weights stay fp32.
#[test]
fn bf16_mixed_precision_tracks_fp32() {
    let _serial = serial();
    tch::set_num_threads(1);
    let vocab = Vocab { size: 200 };
    let shape = ModelShape::preset("nano").expect("nano preset");
    let dlm = DlmConfig::default();
    let windows = Tensor::randint(200, [4, 33], (Kind::Int64, tch::Device::Cpu));
    for objective in [Objective::Ar, Objective::Dlm] {
        let mut losses = Vec::new();
        for compute in [Kind::Float, Kind::BFloat16] {
            tch::manual_seed(0);
            let (variables, model) = Transformer::build(&shape, 256, tch::Device::Cpu, compute);
            tch::manual_seed(7);
            let loss = training_loss(&model, &objective, &windows, vocab, &dlm);
            assert_eq!(loss.kind(), Kind::Float, "losses are computed in fp32");
            loss.backward();
            for (name, variable) in variables.variables() {
                assert_eq!(variable.kind(), Kind::Float, "{name} must stay fp32");
                let gradient = variable.grad();
                assert!(gradient.defined(), "{name} got no gradient");
                let norm = gradient.norm().double_value(&[]);
                assert!(
                    norm.is_finite() && norm > 0.0,
                    "{name}: gradient norm {norm}"
                );
            }
            losses.push(loss.double_value(&[]));
        }
        let (fp32, bf16) = (losses[0], losses[1]);
        let relative = (fp32 - bf16).abs() / fp32;
        eprintln!("{}: fp32 {fp32:.6} bf16 {bf16:.6}", objective.label());
        assert!(
            relative < 0.01,
            "{}: bf16 {bf16} vs fp32 {fp32}",
            objective.label()
        );
        assert!(
            relative > 0.0,
            "{}: bf16 did not change the arithmetic",
            objective.label()
        );
    }
}

/// Gradient accumulation (`train.micro_batch_size`) gives the whole batch's loss and
/// gradient, including a last piece smaller than the others.
#[test]
fn micro_batches_add_up_to_the_whole_batch() {
    let _serial = serial();
    tch::set_num_threads(1);
    let yaml = "objective: ar\nmodel: { preset: nano }\n\
                data: { corpus: c, tokenizer: bytes, seq_len: 16, unique_tokens: 1k, val_tokens: 1k }\n\
                train: { epochs: 1, batch_size: 6, lr: 1e-3 }\n";
    let mut config: jobspec::JobConfig = serde_saphyr::from_str(yaml).expect("config");
    let shape = ModelShape::preset("nano").expect("nano preset");
    tch::manual_seed(5);
    let windows = Tensor::randint(200, [6, 17], (Kind::Int64, tch::Device::Cpu));
    let vocab = Vocab { size: 200 };
    let mut run = |micro: Option<usize>| {
        config.train.micro_batch_size = micro;
        tch::manual_seed(0);
        let (variables, model) = Transformer::build(&shape, 256, tch::Device::Cpu, Kind::Float);
        let loss = trainer::train::gradient::forward_backward(&model, &config, &windows, vocab)
            .expect("forward and backward");
        let mut named: Vec<(String, Tensor)> = variables.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let flat: Vec<Tensor> = named.iter().map(|(_, v)| v.grad().flatten(0, -1)).collect();
        (loss.total.double_value(&[]), Tensor::cat(&flat, 0))
    };
    let (whole_loss, whole) = run(None);
    let scale = whole.abs().max().double_value(&[]);
    for micro in [1, 4] {
        let (loss, gradient) = run(Some(micro));
        assert!(
            (loss - whole_loss).abs() < 1e-5,
            "micro {micro}: loss {loss} vs {whole_loss}"
        );
        let difference = (&gradient - &whole).abs().max().double_value(&[]);
        assert!(
            difference < 1e-5 * scale,
            "micro {micro}: gradients differ by {difference}"
        );
    }
}

/// `logits(.., vocab)` multiplies by the first `vocab` rows of the output table only:
/// the same values and the same gradients as the full head's logits cut to `vocab`,
/// tied or untied.
#[test]
fn vocabulary_logits_equal_the_full_head_cut_to_the_vocabulary() {
    let _serial = serial();
    tch::set_num_threads(1);
    let options = ForwardOptions {
        causal: true,
        dropout: 0.0,
        train: true,
    };
    for tied in [true, false] {
        let mut shape = ModelShape::preset("nano").expect("nano preset");
        shape.tied_embeddings = tied;
        tch::manual_seed(3);
        let (variables, model) = Transformer::build(&shape, 64, tch::Device::Cpu, Kind::Float);
        let tokens = Tensor::randint(41, [2, 9], (Kind::Int64, tch::Device::Cpu));
        let weights = Tensor::randn([2, 9, 40], (Kind::Float, tch::Device::Cpu));
        let mut gradients = Vec::new();
        let mut outputs = Vec::new();
        for cut in [false, true] {
            let logits = if cut {
                model.logits(&tokens, options, 40)
            } else {
                model.forward(&tokens, options).narrow(-1, 0, 40)
            };
            assert_eq!(logits.size(), vec![2, 9, 40]);
            for (_, mut variable) in variables.variables() {
                variable.zero_grad();
            }
            (&logits * &weights).sum(Kind::Float).backward();
            let mut named: Vec<(String, Tensor)> = variables
                .variables()
                .into_iter()
                .map(|(name, variable)| (name, variable.grad().copy()))
                .collect();
            named.sort_by(|a, b| a.0.cmp(&b.0));
            gradients.push(named);
            outputs.push(logits.detach());
        }
        let difference = (&outputs[0] - &outputs[1]).abs().max().double_value(&[]);
        assert!(
            difference < 1e-6,
            "tied {tied}: logits differ by {difference}"
        );
        for ((name, full), (_, cut)) in gradients[0].iter().zip(&gradients[1]) {
            let difference = (full - cut).abs().max().double_value(&[]);
            assert!(
                difference < 1e-6,
                "tied {tied}: gradient of {name} differs by {difference}"
            );
        }
    }
}

#[test]
fn truncation_shortens_dlm_rows_at_its_rate() {
    let _serial = serial();
    assert_eq!(
        DlmConfig::default().truncate_prob,
        0.01,
        "the references' 1%"
    );
    let windows = Tensor::arange(4 * 33, (Kind::Int64, tch::Device::Cpu)).view([4, 33]);
    let lengths = |truncate_prob: f64| -> Vec<i64> {
        let config = DlmConfig {
            truncate_prob,
            ..DlmConfig::default()
        };
        (0..200)
            .map(|step| {
                tch::manual_seed(step);
                let draw = dlm_draw(&windows, &config);
                let length = draw.clean.size()[1];
                assert_eq!(draw.mask.size(), [4, length]);
                // A cut keeps the start of every row.
                assert_eq!(
                    draw.clean,
                    windows.narrow(1, 0, length),
                    "rows are prefixes of the windows"
                );
                length
            })
            .collect()
    };
    let always = lengths(1.0);
    assert!(
        always.iter().all(|&length| (2..32).contains(&length)),
        "{always:?}"
    );
    assert!(
        always
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 10
    );
    assert!(lengths(0.0).iter().all(|&length| length == 32));
    let sometimes = lengths(0.05).iter().filter(|&&length| length < 32).count();
    assert!(
        (1..=30).contains(&sometimes),
        "{sometimes} of 200 cut at 5%"
    );
}

/// The validation ELBO must estimate the whole bound, the integral over t in (0, 1).
/// A scorer with a known integrand stands in for the model: a masked token costs
/// a + b m / L nats when m of the row's L tokens are masked. With m ~ Binomial(L, p),
/// E[m] = L p and E[m^2] = L p (1 - p) + L^2 p^2, so the integrand
/// (1 / (p L)) E[m (a + b m / L)] = a + b (p + (1 - p) / L), whose integral over
/// p in (0, 1) is a + b (1/2 + 1 / (2 L)) (by hand). Draws floored at eps, as training's
/// p = (1 - eps) t + eps, average it over [eps, 1] instead: a + b ((1 + eps)/2 +
/// (1 - eps)/(2 L)), 0.1875 nats too high at eps = 0.2 with these numbers (0.00094 at
/// eps = 1e-3, too small for a test to see through the Monte Carlo error).
#[test]
fn the_validation_elbo_integrates_over_all_of_t() {
    let _serial = serial();
    let (a, b, length) = (1.0, 2.0, 16_i64);
    let clean = Tensor::zeros([2000, length], (Kind::Int64, tch::Device::Cpu));
    let scorer = |_noisy: &Tensor, _clean: &Tensor, mask: &Tensor, weights: &Tensor| {
        let masked = mask
            .to_kind(Kind::Float)
            .sum_dim_intlist(1, false, Kind::Float); // (b,)
        let per_token = (&masked * (b / length as f64)) + a;
        masked * per_token * weights / length as f64
    };
    let (value, stderr, per_window) = trainer::eval::validation_loss::elbo_estimate(
        &clean,
        (500, 16),
        7,
        &trainer::eval::shard::EvalShard::single(),
        scorer,
    )
    .expect("estimate");
    let exact = a + b * (0.5 + 0.5 / length as f64);
    assert_eq!(per_window.len(), 2000);
    assert!(stderr < 0.03, "too noisy to tell: stderr {stderr}");
    assert!(
        (value - exact).abs() < 4.0 * stderr,
        "ELBO estimate {value} (stderr {stderr}) against the exact {exact}"
    );
}

/// Activation checkpointing (`train.activation_checkpointing`) changes memory, not the
/// step: for every objective, dense and mixture, whole batch and micro-batches, the
/// loss, the router statistics and every parameter's gradient equal those of the
/// full graph, and the generator ends where it would have (a draw after the step is
/// the same). Dropout must draw the same masks when a block runs again: without the
/// generator's replay the ar_dropout gradients differ by about their own size.
#[test]
fn activation_checkpointing_gives_the_gradients_of_the_full_graph() {
    let _serial = serial();
    tch::set_num_threads(1);
    let objectives = ["ar", "dlm", "{ ar_dropout: 0.2 }", "{ ar_masked: 0.3 }"];
    for objective in objectives {
        for mixture in [false, true] {
            for micro in [None, Some(2)] {
                let yaml = format!(
                    "objective: {objective}\nmodel: {{ preset: nano }}\n\
                     data: {{ corpus: c, tokenizer: bytes, seq_len: 16, unique_tokens: 1k, val_tokens: 1k }}\n\
                     train: {{ epochs: 1, batch_size: 6, lr: 1e-3 }}\n"
                );
                let mut config: jobspec::JobConfig = serde_saphyr::from_str(&yaml).expect("config");
                config.train.micro_batch_size = micro;
                let mut shape = ModelShape::preset("nano").expect("nano preset");
                if mixture {
                    shape.moe = ModelShape::preset("moe-tiny").expect("moe-tiny").moe;
                }
                let case = format!("{objective}, mixture {mixture}, micro-batch {micro:?}");
                let run = |checkpointing: bool| {
                    tch::manual_seed(0);
                    let (variables, mut model) =
                        Transformer::build(&shape, 256, tch::Device::Cpu, Kind::Float);
                    model.activation_checkpointing = checkpointing;
                    tch::manual_seed(5);
                    let windows = Tensor::randint(200, [6, 17], (Kind::Int64, tch::Device::Cpu));
                    let loss = trainer::train::gradient::forward_backward(
                        &model,
                        &config,
                        &windows,
                        Vocab { size: 200 },
                    )
                    .expect("forward and backward");
                    let next_draw = Tensor::rand([4], (Kind::Float, tch::Device::Cpu));
                    let mut named: Vec<(String, Tensor)> =
                        variables.variables().into_iter().collect();
                    named.sort_by(|a, b| a.0.cmp(&b.0));
                    let gradients: Vec<(String, Tensor)> = named
                        .into_iter()
                        .map(|(name, variable)| {
                            let gradient = variable.grad();
                            assert!(gradient.defined(), "{case}: {name} got no gradient");
                            (name, gradient)
                        })
                        .collect();
                    let router = loss.router.as_ref().map(|router| {
                        (router.balance.double_value(&[]), router.z.double_value(&[]))
                    });
                    (loss.total.double_value(&[]), router, gradients, next_draw)
                };
                let (full_loss, full_router, full, full_draw) = run(false);
                let (loss, router, checkpointed, draw) = run(true);
                assert_eq!(loss, full_loss, "{case}: loss");
                assert_eq!(router, full_router, "{case}: router statistics");
                assert_eq!(router.is_some(), mixture, "{case}");
                assert!(
                    draw.equal(&full_draw),
                    "{case}: the generator moved on differently"
                );
                for ((name, expected), (_, got)) in full.iter().zip(&checkpointed) {
                    let scale = expected.abs().max().double_value(&[]).max(1e-12);
                    let difference = (got - expected).abs().max().double_value(&[]);
                    // Dense blocks recompute the same operations in the same order,
                    // so their gradients are equal bit for bit. Two sums are grouped
                    // otherwise, a few units in the last place: a mixture's auxiliary
                    // losses reaching its router, and, with micro-batches, the tied
                    // embedding, whose head and input gradients are added to the
                    // earlier pieces' in two backward passes instead of one.
                    let regrouped = mixture || (micro.is_some() && name == "embedding.weight");
                    let tolerance = if regrouped { 1e-6 } else { 0.0 };
                    assert!(
                        difference <= tolerance * scale,
                        "{case}: {name}'s gradient differs by {difference:e} (scale {scale:e})"
                    );
                }
            }
        }
    }
}
