//! AdamW and gradient clipping (LibTorch's fused kernel through csrc/fused_ops.cpp)
//! against the update written out in f64, step by step.

use tch::{Kind, Tensor};
use trainer::train::optim::{AdamW, AdamWConfig};

const CONFIG: AdamWConfig = AdamWConfig {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weight_decay: 0.1,
};

/// One parameter of the f64 model: values, moments, and whether it decays.
struct Plain {
    value: Vec<f64>,
    m: Vec<f64>,
    v: Vec<f64>,
    decay: bool,
}

impl Plain {
    fn new(value: Vec<f64>, decay: bool) -> Self {
        let n = value.len();
        Self {
            value,
            m: vec![0.0; n],
            v: vec![0.0; n],
            decay,
        }
    }
}

/// torch.optim.AdamW after clip_grad_norm_, written out: returns the pre-clip norm.
fn plain_step(params: &mut [Plain], grads: &[Vec<f64>], lr: f64, max_norm: f64, t: i32) -> f64 {
    let norm = grads.iter().flatten().map(|g| g * g).sum::<f64>().sqrt();
    let factor = if max_norm > 0.0 {
        (max_norm / (norm + 1e-6)).min(1.0)
    } else {
        1.0
    };
    let (b1, b2) = (CONFIG.beta1, CONFIG.beta2);
    let (bias1, bias2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
    for (param, grad) in params.iter_mut().zip(grads) {
        let decay = if param.decay {
            CONFIG.weight_decay
        } else {
            0.0
        };
        let moments = param.m.iter_mut().zip(param.v.iter_mut());
        for ((value, (m, v)), g) in param.value.iter_mut().zip(moments).zip(grad) {
            let g = g * factor;
            *value *= 1.0 - lr * decay;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            let denominator = v.sqrt() / bias2.sqrt() + CONFIG.eps;
            *value -= lr / bias1 * *m / denominator;
        }
    }
    norm
}

fn values(tensor: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(tensor.to_kind(Kind::Double).flatten(0, -1)).expect("values")
}

fn assert_close(ours: &[f64], expected: &[f64], what: &str) {
    assert_eq!(ours.len(), expected.len(), "{what}: lengths");
    for (i, (a, b)) in ours.iter().zip(expected).enumerate() {
        let tolerance = 2e-6 * b.abs().max(1e-3);
        assert!(
            (a - b).abs() <= tolerance,
            "{what}[{i}]: {a} vs {b} (difference {})",
            (a - b).abs()
        );
    }
}

/// Loss 0.5 sum(c1 w1^2) + sum(c2 w2): gradients c1 w1 and c2, known in closed form.
#[test]
fn fused_adamw_with_clipping_matches_the_update_written_out() {
    tch::set_num_threads(1);
    let c1: Vec<f64> = vec![0.5, -1.5, 2.0, 0.25, -0.75, 3.0];
    let c2: Vec<f64> = vec![0.1, -0.2, 0.3, 4.0];
    let w1_start: Vec<f64> = vec![0.3, -0.2, 0.5, 1.0, -0.4, 0.05];
    let w2_start: Vec<f64> = vec![1.0, 2.0, -1.0, 0.5];
    let w1 = Tensor::from_slice(&w1_start)
        .to_kind(Kind::Float)
        .view([2, 3])
        .set_requires_grad(true);
    let w2 = Tensor::from_slice(&w2_start)
        .to_kind(Kind::Float)
        .set_requires_grad(true);
    let mut optimizer = AdamW::new(
        vec![
            ("w1".into(), w1.shallow_clone(), true),
            ("w2".into(), w2.shallow_clone(), false),
        ],
        CONFIG,
    );
    let mut plain = [Plain::new(w1_start, true), Plain::new(w2_start, false)];
    let coefficients1 = Tensor::from_slice(&c1).to_kind(Kind::Float).view([2, 3]);
    let coefficients2 = Tensor::from_slice(&c2).to_kind(Kind::Float);
    // (learning rate, max norm): clipping active, disabled, loose, and a zero rate.
    let schedule = [
        (1e-2, 1.0),
        (5e-3, 0.0),
        (2e-2, 100.0),
        (0.0, 1.0),
        (1e-2, 0.5),
    ];
    for (t, &(lr, max_norm)) in schedule.iter().enumerate() {
        optimizer.zero_grad().expect("zero_grad");
        let loss = (&coefficients1 * &w1 * &w1).sum(Kind::Float) * 0.5
            + (&coefficients2 * &w2).sum(Kind::Float);
        loss.backward();
        let grads = [
            plain[0]
                .value
                .iter()
                .zip(&c1)
                .map(|(w, c)| w * c)
                .collect::<Vec<_>>(),
            c2.clone(),
        ];
        let norm = optimizer.clip_gradients(max_norm).expect("clip");
        optimizer.step(lr).expect("step");
        let expected_norm = plain_step(&mut plain, &grads, lr, max_norm, t as i32 + 1);
        assert_close(
            &[norm.double_value(&[])],
            &[expected_norm],
            &format!("step {} norm", t + 1),
        );
        assert_close(&values(&w1), &plain[0].value, &format!("step {} w1", t + 1));
        assert_close(&values(&w2), &plain[1].value, &format!("step {} w2", t + 1));
    }
    assert_eq!(optimizer.steps_taken, schedule.len() as i64);
}

/// zero_grad forgets gradients (set to none, as torch's default); a step without
/// gradients leaves the weights alone.
#[test]
fn zero_grad_forgets_gradients_and_a_step_without_them_changes_nothing() {
    tch::set_num_threads(1);
    let w = Tensor::from_slice(&[1.0f32, -2.0, 3.0]).set_requires_grad(true);
    let mut optimizer = AdamW::new(vec![("w".into(), w.shallow_clone(), true)], CONFIG);
    (&w * &w).sum(Kind::Float).backward();
    assert!(w.grad().defined());
    optimizer.zero_grad().expect("zero_grad");
    assert!(!w.grad().defined(), "zero_grad must drop the gradient");
    let norm = optimizer.clip_gradients(1.0).expect("clip");
    assert_eq!(norm.double_value(&[]), 0.0);
    optimizer.step(1e-1).expect("step");
    assert_eq!(values(&w), vec![1.0, -2.0, 3.0]);
}

/// TF32 is set through LibTorch's API for CUDA matmuls only: the setting reads back,
/// and a CPU matmul gives the same bits either way (issue 28).
#[test]
fn tf32_switch_reads_back_and_leaves_cpu_matmuls_alone() {
    tch::manual_seed(7);
    let a = tch::Tensor::randn([64, 96], (tch::Kind::Float, tch::Device::Cpu));
    let b = tch::Tensor::randn([96, 48], (tch::Kind::Float, tch::Device::Cpu));
    assert!(!trainer::fused::set_cuda_tf32(false).expect("strict"));
    let strict = a.matmul(&b);
    assert!(trainer::fused::set_cuda_tf32(true).expect("tf32"));
    let tf32 = a.matmul(&b);
    assert!(!trainer::fused::set_cuda_tf32(false).expect("strict again"));
    assert!(
        strict.equal(&tf32),
        "CPU matmul changed with the CUDA TF32 switch"
    );
}

/// Pinning goes through the shim (tch's `pin_memory(device)` warns at every step).
/// Without a GPU LibTorch refuses to pin, which must come back as an error, not a
/// crash; with one, the pinned copy holds the same values.
#[test]
fn pinning_through_the_shim_fails_cleanly_or_copies() {
    let host = tch::Tensor::from_slice(&[1i64, 2, 3, 4]).view([2, 2]);
    match trainer::fused::pin_memory(&host) {
        Ok(pinned) => assert!(pinned.equal(&host)),
        Err(error) => assert!(
            error.to_string().contains("pinning host memory: "),
            "{error}"
        ),
    }
}

/// Setting the current CUDA device goes through LibTorch's device-guard registry; on a
/// machine without CUDA loaded that is a clear error, not a crash.
#[test]
fn setting_the_cuda_device_without_cuda_is_a_clear_error() {
    if tch::Cuda::is_available() {
        trainer::fused::set_cuda_device(0).expect("cuda:0");
        return;
    }
    let error = trainer::fused::set_cuda_device(0).expect_err("no CUDA here");
    assert!(
        error
            .to_string()
            .contains("making cuda:0 the current device: "),
        "{error}"
    );
}

/// The allocator's peak comes from LibTorch's device-allocator registry; without CUDA
/// loaded that is a clear error (and `trainer bench` prints NaN), not a crash.
#[test]
fn the_cuda_allocator_peak_without_cuda_is_a_clear_error() {
    if tch::Cuda::is_available() {
        let (reserved, allocated) = trainer::fused::cuda_peak_memory(0, true).expect("peak");
        assert!(reserved >= allocated, "{reserved} < {allocated}");
        return;
    }
    let error = trainer::fused::cuda_peak_memory(0, false).expect_err("no CUDA here");
    assert!(
        error
            .to_string()
            .contains("reading cuda:0's allocator peak: "),
        "{error}"
    );
    assert!(trainer::bench::throughput::peak_memory_mib(tch::Device::Cuda(0)).is_nan());
}
