//! LibTorch's multi-tensor optimizer kernels, which tch 0.24 does not expose, through
//! the small C++ shim in csrc/fused_ops.cpp (compiled by build.rs):
//! - `fused_adamw`: torch.optim.AdamW(fused=True)'s `_fused_adamw_` (one pass over
//!   parameter, gradient and moments; CPU and CUDA kernels);
//! - `gradient_norm`: clip_grad_norm_'s `_foreach_norm` then the norm of the norms;
//! - `clear_gradients`: zero_grad(set_to_none=True), so backward writes gradients
//!   instead of adding them to zeros;
//! - `backward_from`, `rng_state`, `set_rng_state`: what activation checkpointing
//!   needs (a backward seeded with given gradients, the generator's state replayed).
//!
//! Each takes tch tensors (heap `at::Tensor` handles) and turns a C++ exception into a
//! `TchError`.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int, c_void};
use tch::{TchError, Tensor};

unsafe extern "C" {
    fn crossover_free_error(error: *mut c_char);
    fn crossover_set_cuda_tf32(on: c_int, now: *mut c_int) -> *mut c_char;
    fn crossover_set_deterministic(on: c_int, now: *mut c_int) -> *mut c_char;
    fn crossover_set_cuda_device(index: c_int) -> *mut c_char;
    fn crossover_cuda_peak_memory(
        index: c_int,
        reset: c_int,
        reserved: *mut i64,
        allocated: *mut i64,
    ) -> *mut c_char;
    fn crossover_pin_memory(tensors: *const *mut c_void, out: *mut *mut c_void) -> *mut c_char;
    fn crossover_backward_from(
        outputs: *const *mut c_void,
        grads: *const *mut c_void,
        count: usize,
    ) -> *mut c_char;
    fn crossover_rng_state(like: *const *mut c_void, out: *mut *mut c_void) -> *mut c_char;
    fn crossover_set_rng_state(like_and_state: *const *mut c_void) -> *mut c_char;
    fn crossover_clear_grads(params: *const *mut c_void, count: usize) -> *mut c_char;
    fn crossover_grad_norm(
        params: *const *mut c_void,
        count: usize,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    #[allow(clippy::too_many_arguments)]
    fn crossover_fused_adamw(
        params: *const *mut c_void,
        exp_avgs: *const *mut c_void,
        exp_avg_sqs: *const *mut c_void,
        steps: *const *mut c_void,
        count: usize,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        grad_scale: *mut c_void,
    ) -> *mut c_char;
}

/// The tensors' heap `at::Tensor*` handles, as the shims take them (fused_ops.cpp and
/// dist.cpp).
pub(crate) fn handles<T: std::borrow::Borrow<Tensor>>(tensors: &[T]) -> Vec<*mut c_void> {
    tensors
        .iter()
        .map(|tensor| tensor.borrow().as_ptr() as *mut c_void)
        .collect()
}

/// Ok for a null error, else the message (and the shim's copy freed): every shim
/// function's error convention.
pub(crate) fn checked(error: *mut c_char, what: &str) -> Result<(), TchError> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null result is a NUL-terminated string malloc'ed by the shim,
    // copied here and then freed exactly once.
    let message = unsafe { CStr::from_ptr(error) }
        .to_string_lossy()
        .into_owned();
    unsafe { crossover_free_error(error) };
    Err(TchError::Torch(format!("{what}: {message}")))
}

/// TF32 for fp32 matmuls on CUDA (`true`) or strict fp32, through LibTorch's API
/// rather than an environment variable read whenever its context happens to start;
/// returns the setting read back. CPU kernels are not affected.
pub fn set_cuda_tf32(on: bool) -> Result<bool, TchError> {
    switch(crossover_set_cuda_tf32, on, "setting TF32 for CUDA matmuls")
}

/// The cuBLAS workspace deterministic CUDA matmuls need (read when CUDA starts).
pub const CUBLAS_WORKSPACE: (&str, &str) = ("CUBLAS_WORKSPACE_CONFIG", ":4096:8");

/// Deterministic kernels and math-only attention (`train.deterministic`), or LibTorch's
/// defaults; returns whether deterministic algorithms are on, read back.
pub fn set_deterministic(on: bool) -> Result<bool, TchError> {
    switch(
        crossover_set_deterministic,
        on,
        "setting deterministic algorithms",
    )
}

/// Call a shim that turns a LibTorch setting on or off and reads it back.
fn switch(
    shim: unsafe extern "C" fn(c_int, *mut c_int) -> *mut c_char,
    on: bool,
    what: &str,
) -> Result<bool, TchError> {
    let mut now: c_int = -1;
    // SAFETY: `now` outlives the call, which only writes it.
    checked(unsafe { shim(c_int::from(on), &mut now) }, what)?;
    Ok(now == 1)
}

/// Drop the gradients of `parameters` (the next backward allocates fresh ones).
pub fn clear_gradients(parameters: &[&Tensor]) -> Result<(), TchError> {
    let params = handles(parameters);
    // SAFETY: `params` holds live tensor handles for the duration of the call.
    checked(
        unsafe { crossover_clear_grads(params.as_ptr(), params.len()) },
        "clearing gradients",
    )
}

/// Global L2 norm of the defined gradients of `parameters`, a float scalar on their
/// device (0 when none has a gradient). Nothing waits for it.
pub fn gradient_norm(parameters: &[&Tensor]) -> Result<Tensor, TchError> {
    let params = handles(parameters);
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: `params` holds live tensor handles; on success `out` is a new heap
    // tensor whose ownership passes to the returned `Tensor`.
    checked(
        unsafe { crossover_grad_norm(params.as_ptr(), params.len(), &mut out) },
        "gradient norm",
    )?;
    if out.is_null() {
        return Err(TchError::Torch("gradient norm: no result".into()));
    }
    // SAFETY: `out` is an `at::Tensor*` allocated with `new`, as tch's own are.
    Ok(unsafe { Tensor::from_ptr(out.cast()) })
}

/// Make cuda:`index` the process' current CUDA device (`torch.cuda.set_device`), so
/// kernels, the caching allocator and NCCL's communicator start on the rank's own GPU
/// rather than on cuda:0.
pub fn set_cuda_device(index: usize) -> Result<(), TchError> {
    let ordinal = cuda_ordinal(index)?;
    // SAFETY: plain integer argument; errors come back as the shim's message.
    checked(
        unsafe { crossover_set_cuda_device(ordinal) },
        &format!("making cuda:{index} the current device"),
    )
}

/// A CUDA device index as the shims take it.
fn cuda_ordinal(index: usize) -> Result<c_int, TchError> {
    c_int::try_from(index).map_err(|_| TchError::Torch(format!("cuda:{index} is out of range")))
}

/// Peak bytes (reserved, allocated) of LibTorch's caching allocator on cuda:`index`
/// since the last reset, as `torch.cuda.max_memory_reserved` / `max_memory_allocated`
/// report them; `reset` starts a new peak.
pub fn cuda_peak_memory(index: usize, reset: bool) -> Result<(i64, i64), TchError> {
    let device = cuda_ordinal(index)?;
    let (mut reserved, mut allocated) = (0i64, 0i64);
    // SAFETY: both outputs outlive the call, which only writes them.
    checked(
        unsafe {
            crossover_cuda_peak_memory(device, c_int::from(reset), &mut reserved, &mut allocated)
        },
        &format!("reading cuda:{index}'s allocator peak"),
    )?;
    Ok((reserved, allocated))
}

/// `tensor` copied into page-locked host memory (for non-blocking copies to a GPU),
/// through LibTorch's `pin_memory()` without the deprecated device argument.
pub fn pin_memory(tensor: &Tensor) -> Result<Tensor, TchError> {
    let list = handles(&[tensor]);
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: `list` holds a live tensor handle; on success `out` is a new heap tensor
    // whose ownership passes to the returned `Tensor`.
    checked(
        unsafe { crossover_pin_memory(list.as_ptr(), &mut out) },
        "pinning host memory",
    )?;
    owned(out, "pinning host memory")
}

/// A new tensor from a shim's `out` handle, or an error when it wrote none.
fn owned(out: *mut c_void, what: &str) -> Result<Tensor, TchError> {
    if out.is_null() {
        return Err(TchError::Torch(format!("{what}: no result")));
    }
    // SAFETY: `out` is an `at::Tensor*` allocated with `new`, as tch's own are, and
    // nothing else owns it.
    Ok(unsafe { Tensor::from_ptr(out.cast()) })
}

/// Backpropagate from `outputs` at once, each seeded with its gradient in `grads`
/// (torch.autograd.backward(outputs, grads)); gradients accumulate into the leaves.
pub fn backward_from(outputs: &[Tensor], grads: &[Tensor]) -> Result<(), TchError> {
    if outputs.len() != grads.len() {
        return Err(TchError::Torch(format!(
            "backward from {} outputs with {} gradients",
            outputs.len(),
            grads.len()
        )));
    }
    let (outputs, grads) = (handles(outputs), handles(grads));
    // SAFETY: both lists hold live tensor handles, of the same length, for the call.
    checked(
        unsafe { crossover_backward_from(outputs.as_ptr(), grads.as_ptr(), outputs.len()) },
        "backward",
    )
}

/// The state of the default generator of `like`'s device (torch.get_rng_state, or
/// the CUDA device's): `set_rng_state` with it repeats the draws made after it.
pub fn rng_state(like: &Tensor) -> Result<Tensor, TchError> {
    let list = handles(&[like]);
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: `list` holds a live tensor handle; `out` receives a new heap tensor.
    checked(
        unsafe { crossover_rng_state(list.as_ptr(), &mut out) },
        "reading the generator's state",
    )?;
    owned(out, "reading the generator's state")
}

/// Put the default generator of `like`'s device back into `state` (from `rng_state`).
pub fn set_rng_state(like: &Tensor, state: &Tensor) -> Result<(), TchError> {
    let list = handles(&[like, state]);
    // SAFETY: `list` holds two live tensor handles for the duration of the call.
    checked(
        unsafe { crossover_set_rng_state(list.as_ptr()) },
        "restoring the generator's state",
    )
}

/// AdamW hyper-parameters of one fused call.
#[derive(Clone, Copy, Debug)]
pub struct AdamWStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    pub eps: f64,
}

/// One AdamW step (decoupled weight decay) over `parameters` and their moments and
/// float32 step counters (all four slices in the same order). Counters are advanced
/// first; gradients are divided by `grad_scale` when given; parameters without a
/// gradient are skipped.
pub fn fused_adamw(
    parameters: &[&Tensor],
    exp_avgs: &[&Tensor],
    exp_avg_sqs: &[&Tensor],
    steps: &[&Tensor],
    hyper: AdamWStep,
    grad_scale: Option<&Tensor>,
) -> Result<(), TchError> {
    let count = parameters.len();
    if exp_avgs.len() != count || exp_avg_sqs.len() != count || steps.len() != count {
        return Err(TchError::Torch(format!(
            "fused AdamW: {count} parameters but {} first moments, {} second moments, {} step counters",
            exp_avgs.len(),
            exp_avg_sqs.len(),
            steps.len()
        )));
    }
    let (params, m, v, t) = (
        handles(parameters),
        handles(exp_avgs),
        handles(exp_avg_sqs),
        handles(steps),
    );
    let scale = grad_scale.map_or(std::ptr::null_mut(), |scale| scale.as_ptr() as *mut c_void);
    // SAFETY: four arrays of `count` live tensor handles and an optional live handle;
    // the shim only reads the arrays during the call.
    checked(
        unsafe {
            crossover_fused_adamw(
                params.as_ptr(),
                m.as_ptr(),
                v.as_ptr(),
                t.as_ptr(),
                count,
                hyper.lr,
                hyper.beta1,
                hyper.beta2,
                hyper.weight_decay,
                hyper.eps,
                scale,
            )
        },
        "fused AdamW step",
    )
}
