//! `trainer dist-check`: a process group of one must leave bucketed all-reduce,
//! broadcast and barrier exact (`just gpu-check`).

use crate::parallel::launch::free_port;
use crate::parallel::process_group::{GroupConfig, ProcessGroup};
use crate::parallel::ranks::choose_backend;
use std::time::Duration;
use tch::Tensor;

/// `trainer dist-check`: a process group of one on `device` (NCCL on a GPU when the
/// trainer has it, else Gloo) reduces tensors in several buckets, broadcasts and meets
/// at a barrier; the sums must come back exact. A line saying what ran, or the error.
pub fn self_check(device: tch::Device) -> Result<String, String> {
    use tch::Kind;
    let cuda = device.is_cuda();
    let (backend, warning) = choose_backend(cuda, crate::parallel::process_group::nccl_available());
    if let tch::Device::Cuda(index) = device {
        crate::fused::set_cuda_device(index).map_err(|error| error.to_string())?;
    }
    let started = std::time::Instant::now();
    let group = ProcessGroup::new(&GroupConfig {
        backend,
        master_addr: "127.0.0.1".into(),
        port: free_port()?,
        rank: 0,
        world: 1,
        rendezvous_timeout: Duration::from_secs(60),
        timeout: Duration::from_secs(60),
        device: match device {
            tch::Device::Cuda(index) => Some(index),
            _ => None,
        },
        // Small buckets, so the check crosses bucket boundaries.
        bucket_bytes: 4096,
    })
    .map_err(|error| error.to_string())?;
    let tensors: Vec<Tensor> = [3000i64, 1, 2048, 777]
        .iter()
        .map(|&n| Tensor::arange(n, (Kind::Float, device)))
        .collect();
    let expected: Vec<f64> = tensors
        .iter()
        .map(|tensor| tensor.sum(Kind::Double).double_value(&[]))
        .collect();
    group
        .all_reduce_mean(&tensors)
        .and_then(|()| group.all_reduce_sum(&tensors))
        .and_then(|()| group.broadcast(&tensors))
        .and_then(|()| group.barrier())
        .map_err(|error| error.to_string())?;
    let sums: Vec<f64> = tensors
        .iter()
        .map(|tensor| tensor.sum(Kind::Double).double_value(&[]))
        .collect();
    if sums != expected {
        return Err(format!(
            "a group of one changed its tensors: sums {sums:?}, expected {expected:?}"
        ));
    }
    Ok(format!(
        "{backend:?} group of one on {device:?}: all-reduce in buckets, broadcast and barrier exact in {:.0} ms{}",
        1e3 * started.elapsed().as_secs_f64(),
        warning.map_or_else(String::new, |warning| format!(" (warning: {warning})"))
    ))
}
