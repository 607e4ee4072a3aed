//! Mixtures of experts: the mixture against the dense model it generalises, the
//! routers' losses against hand computations, gradients reaching every expert, and
//! capacity limits.

use jobspec::{Capacity, DlmConfig, ModelShape, MoeShape, Objective};
use tch::{Kind, Tensor, nn};
use trainer::model::layers::ForwardOptions;
use trainer::model::mixture::{kept_rows, kept_sizes, route};
use trainer::model::transformer::Transformer;
use trainer::objectives::prepared::{training_loss, training_loss_parts};
use trainer::objectives::vocab::Vocab;

/// LibTorch's generator is global: tests that draw run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn nano_with(moe: Option<MoeShape>) -> ModelShape {
    ModelShape {
        moe,
        ..ModelShape::preset("nano").expect("nano preset")
    }
}

fn values(tensor: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&tensor.to_kind(Kind::Double).reshape([-1])).expect("values")
}

/// Copy `from`'s weights into `to`, a one-expert mixture of the same shape: the dense
/// MLP becomes expert 0, every other variable keeps its name.
fn copy_dense_into_mixture(from: &nn::VarStore, to: &nn::VarStore) {
    let dense = from.variables();
    tch::no_grad(|| {
        for (name, mut variable) in to.variables() {
            let source = if let Some(block) = name.strip_suffix("mlp.experts_gate_up") {
                dense[&format!("{block}mlp.gate_up.weight")].unsqueeze(0)
            } else if let Some(block) = name.strip_suffix("mlp.experts_down") {
                dense[&format!("{block}mlp.down.weight")].unsqueeze(0)
            } else if name.ends_with("mlp.router") {
                continue; // one expert: its gate is 1 whatever the router says
            } else {
                dense[&name].shallow_clone()
            };
            variable.copy_(&source);
        }
    });
}

#[test]
fn one_expert_top_1_without_auxiliary_losses_is_the_dense_model() {
    let _serial = serial();
    tch::set_num_threads(1);
    let dense_shape = nano_with(None);
    let moe = MoeShape {
        aux_loss: 0.0,
        z_loss: 0.0,
        ..MoeShape::new(1, 1, dense_shape.d_ff)
    };
    let moe_shape = nano_with(Some(moe));
    let (dense_vars, dense) = Transformer::build(&dense_shape, 256, tch::Device::Cpu, Kind::Float);
    let (moe_vars, mixture) = Transformer::build(&moe_shape, 256, tch::Device::Cpu, Kind::Float);
    copy_dense_into_mixture(&dense_vars, &moe_vars);
    tch::manual_seed(4);
    let windows = Tensor::randint(250, [3, 17], (Kind::Int64, tch::Device::Cpu));
    let vocab = Vocab { size: 250 };
    for causal in [true, false] {
        let options = ForwardOptions {
            causal,
            dropout: 0.0,
            train: false,
        };
        let tokens = windows.narrow(1, 0, 16);
        let a = dense.logits(&tokens, options, 250);
        let b = mixture.logits(&tokens, options, 250);
        let difference = (&a - &b).abs().max().double_value(&[]);
        assert!(
            difference < 1e-5,
            "causal {causal}: logits differ by {difference}"
        );
    }
    for objective in [Objective::Ar, Objective::Dlm] {
        let mut losses = Vec::new();
        let mut gradients = Vec::new();
        for (vars, model) in [(&dense_vars, &dense), (&moe_vars, &mixture)] {
            for (_, variable) in vars.variables() {
                let mut grad = variable.grad();
                if grad.defined() {
                    let _ = grad.zero_();
                }
            }
            tch::manual_seed(9);
            let loss = training_loss(model, &objective, &windows, vocab, &DlmConfig::default());
            loss.backward();
            losses.push(loss.double_value(&[]));
            let named = vars.variables();
            // The attention of block 0 and the expert's down projection (the dense down).
            let down = named
                .get("blocks.1.mlp.down.weight")
                .or_else(|| named.get("blocks.1.mlp.experts_down"))
                .expect("down projection");
            gradients.push((
                named["blocks.0.attention.qkv.weight"].grad(),
                down.grad().reshape([-1]),
            ));
        }
        assert!(
            (losses[0] - losses[1]).abs() < 1e-5 * losses[0],
            "{objective:?}: {losses:?}"
        );
        for (dense_grad, moe_grad) in [
            (&gradients[0].0, &gradients[1].0),
            (&gradients[0].1, &gradients[1].1),
        ] {
            let scale = dense_grad.abs().max().double_value(&[]);
            let difference = (dense_grad - moe_grad).abs().max().double_value(&[]);
            assert!(
                scale > 0.0 && difference < 1e-4 * scale,
                "{objective:?}: {difference} vs {scale}"
            );
        }
    }
}

/// Softmax, top-k, gates (renormalised for k > 1), shares, mean probabilities, the balance and
/// z-losses, all in f64 from the logits.
/// Per token its (expert, gate) choices; the balance loss; the z-loss; the shares.
type HandRoute = (Vec<Vec<(usize, f64)>>, f64, f64, Vec<f64>);

fn route_by_hand(logits: &[Vec<f64>], k: usize) -> HandRoute {
    let experts = logits[0].len();
    let n = logits.len();
    let mut share = vec![0.0; experts];
    let mut mean_p = vec![0.0; experts];
    let mut z = 0.0;
    let mut choices = Vec::new();
    for row in logits {
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|x| (x - max).exp()).sum();
        let p: Vec<f64> = row.iter().map(|x| (x - max).exp() / sum).collect();
        z += (max + sum.ln()).powi(2) / n as f64;
        let mut order: Vec<usize> = (0..experts).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        let top = &order[..k];
        let kept: f64 = top.iter().map(|&e| p[e]).sum();
        // Mixtral renormalises over the k; Switch (k = 1) keeps the probability.
        let gate = |e: usize| if k == 1 { p[e] } else { p[e] / kept };
        choices.push(top.iter().map(|&e| (e, gate(e))).collect());
        for &e in top {
            share[e] += 1.0 / (n * k) as f64;
        }
        for e in 0..experts {
            mean_p[e] += p[e] / n as f64;
        }
    }
    let balance = experts as f64 * share.iter().zip(&mean_p).map(|(f, p)| f * p).sum::<f64>();
    (choices, balance, z, share)
}

#[test]
fn router_losses_equal_a_hand_computation() {
    let logits = vec![
        vec![1.0, -0.5, 2.0, 0.25],
        vec![0.0, 3.0, -1.0, 0.5],
        vec![-2.0, 0.75, 0.1, 1.5],
        vec![0.3, 0.2, 0.1, -0.4],
        vec![2.5, 2.4, -3.0, 0.0],
    ];
    let flat: Vec<f32> = logits.iter().flatten().map(|&x| x as f32).collect();
    let tensor = Tensor::from_slice(&flat).view([5, 4]);
    for k in [1, 2, 3] {
        let (choices, balance, z, share) = route_by_hand(&logits, k);
        let routed = route(&tensor, k as i64);
        assert!(
            (routed.balance.double_value(&[]) - balance).abs() < 1e-6,
            "k {k}"
        );
        assert!((routed.z.double_value(&[]) - z).abs() < 1e-5 * z, "k {k}");
        let got_share = values(&routed.share);
        for (got, want) in got_share.iter().zip(&share) {
            assert!(
                (got - want).abs() < 1e-7,
                "k {k}: {got_share:?} vs {share:?}"
            );
        }
        let chosen = Vec::<i64>::try_from(&routed.experts.reshape([-1])).expect("ids");
        let gates = values(&routed.gates);
        for (token, row) in choices.iter().enumerate() {
            for (slot, &(expert, gate)) in row.iter().enumerate() {
                assert_eq!(
                    chosen[token * k + slot],
                    expert as i64,
                    "k {k} token {token}"
                );
                assert!(
                    (gates[token * k + slot] - gate).abs() < 1e-6,
                    "k {k} token {token}"
                );
            }
        }
        let counts = Vec::<i64>::try_from(&routed.counts).expect("counts");
        assert_eq!(counts.iter().sum::<i64>(), 5 * k as i64);
    }
}

/// Hard routing (each token's probability spread evenly over its k experts) makes the
/// balance loss E x sum_e f_e^2, whose minimum, 1, is the uniform load; every uneven
/// load scores more. (With soft probabilities the loss can dip below 1, e.g. 0.67 for
/// E = 4, k = 3 and two tokens: it pushes towards even load through its gradient, not
/// by being minimal there.)
#[test]
fn uniform_routing_gives_the_balance_loss_its_minimum() {
    let hard = |assignments: &[&[usize]], experts: usize| {
        let rows: Vec<f32> = assignments
            .iter()
            .flat_map(|chosen| {
                (0..experts).map(move |e| if chosen.contains(&e) { 30.0 } else { -30.0 })
            })
            .collect();
        let k = assignments[0].len() as i64;
        let logits = Tensor::from_slice(&rows).view([assignments.len() as i64, experts as i64]);
        route(&logits, k).balance.double_value(&[])
    };
    // (assignments per token, experts, expected E sum f^2)
    let cases: [(&[&[usize]], usize, f64); 5] = [
        (&[&[0], &[1], &[2], &[3]], 4, 1.0),
        (&[&[0, 1], &[2, 3]], 4, 1.0),
        (&[&[0], &[0], &[1], &[1]], 4, 2.0),
        (&[&[0], &[0], &[0], &[0]], 4, 4.0),
        (&[&[0, 1], &[0, 2]], 3, 1.125), // f = P = (1/2, 1/4, 1/4)
    ];
    for (assignments, experts, expected) in cases {
        let got = hard(assignments, experts);
        assert!(
            (got - expected).abs() < 1e-6,
            "{assignments:?}: {got} vs {expected}"
        );
        assert!(got >= 1.0 - 1e-6);
    }
}

#[test]
fn every_expert_gets_gradient_and_the_router_learns() {
    let _serial = serial();
    tch::set_num_threads(1);
    let shape = nano_with(Some(MoeShape::new(4, 2, 44)));
    tch::manual_seed(1);
    let (variables, model) = Transformer::build(&shape, 256, tch::Device::Cpu, Kind::Float);
    let windows = Tensor::randint(250, [4, 33], (Kind::Int64, tch::Device::Cpu));
    let vocab = Vocab { size: 250 };
    let loss = training_loss_parts(
        &model,
        &Objective::Ar,
        &windows,
        vocab,
        &DlmConfig::default(),
    );
    let router = loss.router.as_ref().expect("a mixture reports its routers");
    let load = values(&router.load);
    assert_eq!(router.load.size(), [2, 4]);
    assert!(
        load.iter().all(|&share| share > 0.0),
        "this batch reaches every expert: {load:?}"
    );
    // The total is the objective plus 0.01 balance + 0.001 z.
    let expected = loss.objective.double_value(&[])
        + 0.01 * router.balance.double_value(&[])
        + 0.001 * router.z.double_value(&[]);
    assert!((loss.total.double_value(&[]) - expected).abs() < 1e-6);
    loss.total.backward();
    let named = variables.variables();
    for block in 0..2 {
        for part in ["experts_gate_up", "experts_down", "router"] {
            let grad = named[&format!("blocks.{block}.mlp.{part}")].grad();
            let per_expert =
                grad.abs()
                    .sum_dim_intlist(&[1i64, 2][..grad.dim() - 1], false, Kind::Float);
            let per_expert = values(&per_expert);
            assert!(
                per_expert.iter().all(|&g| g > 0.0),
                "block {block} {part}: {per_expert:?}"
            );
        }
    }
}

/// At k = 1 the language-model loss alone (balance and z weights zero) must train the
/// router: a renormalised single gate is exactly 1 and would pass it no gradient.
/// The measure is the router's gradient against the experts' in the same block.
#[test]
fn the_router_learns_from_the_language_model_loss_at_top_1() {
    let _serial = serial();
    tch::set_num_threads(1);
    for k in [1, 2] {
        let moe = MoeShape {
            aux_loss: 0.0,
            z_loss: 0.0,
            ..MoeShape::new(4, k, 44)
        };
        tch::manual_seed(1);
        let (variables, model) =
            Transformer::build(&nano_with(Some(moe)), 256, tch::Device::Cpu, Kind::Float);
        let windows = Tensor::randint(250, [4, 33], (Kind::Int64, tch::Device::Cpu));
        let loss = training_loss(
            &model,
            &Objective::Ar,
            &windows,
            Vocab { size: 250 },
            &DlmConfig::default(),
        );
        loss.backward();
        let named = variables.variables();
        for block in 0..2 {
            let largest = |part: &str| {
                let grad = named[&format!("blocks.{block}.mlp.{part}")].grad();
                grad.abs().max().double_value(&[])
            };
            let (router, experts) = (largest("router"), largest("experts_down"));
            assert!(
                router > 1e-3 * experts,
                "k {k} block {block}: router gradient {router:e} against the experts' {experts:e}"
            );
        }
    }
}

#[test]
fn capacity_keeps_the_first_tokens_of_each_expert() {
    // (sizes, capacity, assignments, kept sizes, kept rows)
    type Case<'a> = (&'a [i64], Capacity, i64, &'a [i64], &'a [i64]);
    let cases: [Case; 4] = [
        (
            &[2, 0, 3],
            Capacity::Dropless,
            5,
            &[2, 0, 3],
            &[0, 1, 2, 3, 4],
        ),
        (
            &[3, 1, 2],
            Capacity::Factor(1.0),
            6,
            &[2, 1, 2],
            &[0, 1, 3, 4, 5],
        ),
        (&[6, 0, 0], Capacity::Factor(1.5), 6, &[3, 0, 0], &[0, 1, 2]),
        (
            &[1, 1, 4],
            Capacity::Factor(10.0),
            6,
            &[1, 1, 4],
            &[0, 1, 2, 3, 4, 5],
        ),
    ];
    for (sizes, capacity, assignments, kept, rows) in cases {
        let got = kept_sizes(sizes, capacity, assignments);
        assert_eq!(got, kept, "{sizes:?} {capacity:?}");
        assert_eq!(kept_rows(sizes, &got), rows, "{sizes:?} {capacity:?}");
    }
}

#[test]
fn a_generous_capacity_is_dropless_and_a_tight_one_drops() {
    let _serial = serial();
    tch::set_num_threads(1);
    tch::manual_seed(2);
    let tokens = Tensor::randint(250, [2, 16], (Kind::Int64, tch::Device::Cpu));
    let options = ForwardOptions {
        causal: true,
        dropout: 0.0,
        train: false,
    };
    let logits_with = |capacity| {
        let shape = nano_with(Some(MoeShape {
            capacity_factor: capacity,
            ..MoeShape::new(4, 2, 44)
        }));
        tch::manual_seed(3);
        let (_variables, model) = Transformer::build(&shape, 256, tch::Device::Cpu, Kind::Float);
        model.logits(&tokens, options, 250)
    };
    let dropless = logits_with(Capacity::Dropless);
    let generous = logits_with(Capacity::Factor(4.0));
    let tight = logits_with(Capacity::Factor(0.25));
    assert_eq!((&dropless - &generous).abs().max().double_value(&[]), 0.0);
    assert!((&dropless - &tight).abs().max().double_value(&[]) > 1e-4);
}

/// The grouped-matmul experts (CUDA's path: two launches, group ends counted on the
/// device) equal the per-expert loop (the CPU path) in values and gradients, with an
/// expert that receives no rows.
#[test]
fn grouped_experts_equal_the_per_expert_loop() {
    // It draws from the global generator too: unserialised, it moved the weights of
    // `a_generous_capacity_is_dropless_and_a_tight_one_drops` when the two overlapped.
    let _serial = serial();
    tch::manual_seed(11);
    let options = (tch::Kind::Float, tch::Device::Cpu);
    let sizes = [5i64, 0, 9, 2];
    let rows: i64 = sizes.iter().sum();
    let (c, f) = (16, 24);
    let inputs = tch::Tensor::randn([rows, c], options);
    let gate_up = tch::Tensor::randn([4, 2 * f, c], options) * 0.2;
    let down = tch::Tensor::randn([4, c, f], options) * 0.2;
    let upstream = tch::Tensor::randn([rows, c], options);
    let run = |grouped: bool| {
        let leaves: Vec<tch::Tensor> = [&inputs, &gate_up, &down]
            .iter()
            .map(|tensor| tensor.copy().set_requires_grad(true))
            .collect();
        let out = if grouped {
            let counts = tch::Tensor::from_slice(&sizes);
            trainer::model::mixture::experts_grouped(&leaves[0], &counts, &leaves[1], &leaves[2])
        } else {
            trainer::model::mixture::experts_looped(&leaves[0], &sizes, &leaves[1], &leaves[2])
                .expect("rows")
        };
        (&out * &upstream).sum(tch::Kind::Float).backward();
        let grads: Vec<tch::Tensor> = leaves.iter().map(tch::Tensor::grad).collect();
        (out.detach(), grads)
    };
    let (looped, looped_grads) = run(false);
    let (grouped, grouped_grads) = run(true);
    let close = |a: &tch::Tensor, b: &tch::Tensor| {
        (a - b).abs().max().double_value(&[]) <= 1e-5 * (1.0 + b.abs().max().double_value(&[]))
    };
    assert!(close(&grouped, &looped), "outputs differ");
    for (name, (a, b)) in ["inputs", "gate_up", "down"]
        .iter()
        .zip(grouped_grads.iter().zip(&looped_grads))
    {
        assert!(close(a, b), "gradient of {name} differs");
    }
}
