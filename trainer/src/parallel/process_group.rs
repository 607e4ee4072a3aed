//! Collective communication for data-parallel training: LibTorch's own c10d process
//! groups, which tch 0.24 does not expose, through the C++ shim in csrc/dist.cpp
//! (compiled by build.rs).
//!
//! Every rank creates a [`ProcessGroup`] with the same master address, port and world
//! size: rank 0 serves a c10d `TCPStore` there for the rendezvous, then the backend
//! connects the ranks to each other.
//! - Gloo (`ProcessGroupGloo`, TCP between hosts) always works; CUDA tensors are
//!   staged through host memory.
//! - NCCL (`ProcessGroupNCCL`) only in a trainer built with nccl.h and the CUDA
//!   headers (see build.rs); LibTorch's CUDA library is loaded first (device.rs).
//!   One GPU per rank. Its collectives return once queued on the current CUDA stream
//!   (later work on that stream sees the result); a lost peer is caught by NCCL's
//!   watchdog after the timeout, which by default ends the process
//!   (TORCH_NCCL_ASYNC_ERROR_HANDLING) unless TORCH_NCCL_BLOCKING_WAIT=1 makes the
//!   call wait and return the error.
//!
//! Each collective takes a list of tensors and sends one flat buffer per element type,
//! so a model's gradients cost one all-reduce, not one per parameter. Every rank must
//! issue the same collectives in the same order with lists of the same shapes.
//!
//! Nothing hangs forever: the rendezvous fails once a rank has not come within the
//! rendezvous timeout, and every collective once a peer is gone or silent for the
//! group's timeout (Gloo; NCCL's own watchdog decides there). After such an error the
//! group is unusable: drop it.
#![allow(unsafe_code)]

use crate::fused::{checked, handles};
use std::ffi::{CString, c_char, c_int, c_void};
use std::ptr::NonNull;
use std::time::Duration;
use tch::{Device, Kind, TchError, Tensor};

unsafe extern "C" {
    fn crossover_dist_has_nccl() -> c_int;
    fn crossover_dist_create(
        kind: c_int,
        host: *const c_char,
        port: u16,
        rank: c_int,
        world: c_int,
        rendezvous_ms: i64,
        timeout_ms: i64,
        device_index: c_int,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    fn crossover_dist_destroy(group: *mut c_void);
    fn crossover_dist_all_reduce(
        group: *mut c_void,
        tensors: *const *mut c_void,
        count: usize,
        average: c_int,
    ) -> *mut c_char;
    fn crossover_dist_broadcast(
        group: *mut c_void,
        tensors: *const *mut c_void,
        count: usize,
        root: c_int,
    ) -> *mut c_char;
    fn crossover_dist_barrier(group: *mut c_void) -> *mut c_char;
}

/// Which c10d backend carries the collectives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// ProcessGroupGloo: CPU tensors (CUDA tensors through host memory).
    Gloo,
    /// ProcessGroupNCCL: CUDA tensors, one GPU per rank.
    Nccl,
}

impl Backend {
    fn code(self) -> c_int {
        match self {
            Backend::Gloo => 0,
            Backend::Nccl => 1,
        }
    }
}

/// Whether a backend can carry tensors of these (device, kind)s, checked before every
/// collective so a wrong input fails with its name instead of deep inside c10d (issue
/// 28): NCCL moves CUDA tensors only, all on one GPU, of the kinds ncclDataType_t has
/// (no bool, no complex); Gloo takes any device (CUDA through host memory).
pub fn check_inputs(backend: Backend, inputs: &[(Device, Kind)], what: &str) -> Result<(), String> {
    if backend == Backend::Gloo {
        return Ok(());
    }
    let mut gpu = None;
    for (index, &(device, kind)) in inputs.iter().enumerate() {
        let Device::Cuda(ordinal) = device else {
            return Err(format!(
                "{what}: input {index} of {} is a {device:?} tensor, and NCCL only moves CUDA tensors; move it to the model's device first",
                inputs.len()
            ));
        };
        if *gpu.get_or_insert(ordinal) != ordinal {
            return Err(format!(
                "{what}: inputs on cuda:{} and cuda:{ordinal}; one rank's collective uses one GPU",
                gpu.unwrap_or(ordinal)
            ));
        }
        if !nccl_supports(kind) {
            return Err(format!(
                "{what}: input {index} is {kind:?}, which NCCL cannot reduce; convert it (flags as float, counts as int64)"
            ));
        }
    }
    Ok(())
}

/// The element types ncclDataType_t covers.
fn nccl_supports(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Int8
            | Kind::Uint8
            | Kind::Int
            | Kind::Int64
            | Kind::Half
            | Kind::BFloat16
            | Kind::Float
            | Kind::Double
    )
}

/// Whether this trainer was built with the NCCL process group (build.rs found nccl.h
/// and the CUDA headers).
pub fn nccl_available() -> bool {
    // SAFETY: reads a constant.
    unsafe { crossover_dist_has_nccl() != 0 }
}

/// Where and how one rank joins its group.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    pub backend: Backend,
    /// Host of rank 0, where the rendezvous store listens (an address or a name).
    pub master_addr: String,
    /// Port of the rendezvous store on `master_addr`.
    pub port: u16,
    pub rank: usize,
    pub world: usize,
    /// How long joining may wait for the other ranks (they may start late: a job
    /// scheduler, a slow data load).
    pub rendezvous_timeout: Duration,
    /// How long each collective may wait for the peers before failing.
    pub timeout: Duration,
    /// The rank's GPU, bound to the NCCL group explicitly (None on the CPU).
    pub device: Option<usize>,
    /// All-reduces go in buckets of at most this many bytes (a larger tensor alone),
    /// so the flat buffer a bucket is reduced in never holds more than this on top of
    /// the gradients: one bucket, not a second copy of every gradient (4 GB at 1B
    /// parameters in fp32).
    pub bucket_bytes: usize,
}

/// Default bucket size of all-reduces (DDP's default is 25 MiB; larger buckets mean
/// fewer collectives, each still far below a gradient copy).
pub const BUCKET_BYTES: usize = 64 << 20;

/// The buckets of an all-reduce: consecutive runs of tensors (`bytes[i]` each) of at
/// most `limit` bytes together; a tensor larger than `limit` is a bucket alone. Every
/// rank computes the same buckets from the same shapes, so the collectives pair up.
pub fn buckets(bytes: &[usize], limit: usize) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut held = 0usize;
    for (index, &size) in bytes.iter().enumerate() {
        if index > start && held + size > limit {
            ranges.push(start..index);
            start = index;
            held = 0;
        }
        held += size;
    }
    if start < bytes.len() {
        ranges.push(start..bytes.len());
    }
    ranges
}

/// This rank's membership in a process group. Dropping it leaves the group: peers'
/// pending and later collectives then fail; on rank 0 the rendezvous store closes too.
pub struct ProcessGroup {
    handle: NonNull<c_void>,
    rank: usize,
    world: usize,
    backend: Backend,
    bucket_bytes: usize,
}

// SAFETY: a c10d process group is not tied to the thread that made it; the handle is
// only used through `&self` methods of this non-Sync type, so one thread at a time.
unsafe impl Send for ProcessGroup {}

fn as_c_int(value: usize, what: &str) -> Result<c_int, String> {
    c_int::try_from(value).map_err(|_| format!("{what} {value} is too large"))
}

impl ProcessGroup {
    /// Join the group described by `config`; returns once every rank has joined, or
    /// fails after `config.rendezvous_timeout`.
    pub fn new(config: &GroupConfig) -> Result<Self, TchError> {
        let context = format!(
            "joining the {:?} process group as rank {} of {} at {}:{}",
            config.backend, config.rank, config.world, config.master_addr, config.port
        );
        let fail = |message: String| TchError::Torch(format!("{context}: {message}"));
        if config.backend == Backend::Nccl && nccl_available() {
            // The shim finds ProcessGroupNCCL by dlsym in the loaded CUDA library.
            crate::device::load_cuda().map_err(fail)?;
        }
        let host = CString::new(config.master_addr.as_str())
            .map_err(|_| fail("the master address holds a NUL byte".into()))?;
        let rank = as_c_int(config.rank, "rank").map_err(fail)?;
        let device_index = match config.device {
            Some(index) => as_c_int(index, "device index").map_err(fail)?,
            None => -1,
        };
        let world = as_c_int(config.world, "world size").map_err(fail)?;
        let millis = |duration: Duration| {
            i64::try_from(duration.as_millis())
                .unwrap_or(i64::MAX)
                .max(1)
        };
        let mut out: *mut c_void = std::ptr::null_mut();
        // SAFETY: `host` is NUL-terminated and outlives the call; on success `out` is a
        // new group handle owned by the returned value and destroyed once by Drop.
        checked(
            unsafe {
                crossover_dist_create(
                    config.backend.code(),
                    host.as_ptr(),
                    config.port,
                    rank,
                    world,
                    millis(config.rendezvous_timeout),
                    millis(config.timeout),
                    device_index,
                    &mut out,
                )
            },
            &context,
        )?;
        let handle = NonNull::new(out).ok_or_else(|| fail("no group handle".into()))?;
        Ok(Self {
            handle,
            rank: config.rank,
            world: config.world,
            backend: config.backend,
            bucket_bytes: config.bucket_bytes.max(1),
        })
    }

    /// This process's rank, 0..world.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of ranks in the group.
    pub fn world(&self) -> usize {
        self.world
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn all_reduce(&self, tensors: &[Tensor], average: bool, what: &str) -> Result<(), TchError> {
        if tensors.is_empty() {
            return Ok(());
        }
        self.check(tensors, what)?;
        let bytes: Vec<usize> = tensors
            .iter()
            .map(|tensor| tensor.numel() * tensor.kind().elt_size_in_bytes())
            .collect();
        for bucket in buckets(&bytes, self.bucket_bytes) {
            let list = handles(&tensors[bucket]);
            // SAFETY: `list` holds live tensor handles for the duration of the call;
            // the shim writes the results into those tensors' storage.
            checked(
                unsafe {
                    crossover_dist_all_reduce(
                        self.handle.as_ptr(),
                        list.as_ptr(),
                        list.len(),
                        c_int::from(average),
                    )
                },
                what,
            )?;
        }
        Ok(())
    }

    fn check(&self, tensors: &[Tensor], what: &str) -> Result<(), TchError> {
        let inputs: Vec<(Device, Kind)> = tensors
            .iter()
            .map(|tensor| (tensor.device(), tensor.kind()))
            .collect();
        check_inputs(self.backend, &inputs, what).map_err(TchError::Torch)
    }

    /// Replace every tensor, in place, by its elementwise sum over the ranks.
    pub fn all_reduce_sum(&self, tensors: &[Tensor]) -> Result<(), TchError> {
        self.all_reduce(tensors, false, "all-reduce (sum)")
    }

    /// Replace every tensor, in place, by its elementwise mean over the ranks (the sum,
    /// then divided by the world size; floating-point tensors only). Gradients averaged
    /// this way match one large batch made of every rank's batch.
    pub fn all_reduce_mean(&self, tensors: &[Tensor]) -> Result<(), TchError> {
        self.all_reduce(tensors, true, "all-reduce (mean)")
    }

    /// Overwrite every tensor, in place, with rank 0's values (for example the initial
    /// parameters, so all replicas start equal).
    pub fn broadcast(&self, tensors: &[Tensor]) -> Result<(), TchError> {
        self.broadcast_from(0, tensors)
    }

    /// Overwrite every tensor, in place, with rank `root`'s values (every rank passes
    /// tensors of the same shapes and kinds, in the same order).
    pub fn broadcast_from(&self, root: usize, tensors: &[Tensor]) -> Result<(), TchError> {
        if tensors.is_empty() {
            return Ok(());
        }
        let root_rank = c_int::try_from(root)
            .map_err(|_| TchError::Torch(format!("broadcast root {root} is out of range")))?;
        self.check(tensors, "broadcast")?;
        let list = handles(tensors);
        // SAFETY: as in `all_reduce`.
        checked(
            unsafe {
                crossover_dist_broadcast(self.handle.as_ptr(), list.as_ptr(), list.len(), root_rank)
            },
            &format!("broadcast from rank {root}"),
        )
    }

    /// Return once every rank has reached this barrier.
    pub fn barrier(&self) -> Result<(), TchError> {
        // SAFETY: the handle is live until Drop.
        checked(
            unsafe { crossover_dist_barrier(self.handle.as_ptr()) },
            "barrier",
        )
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: the handle came from crossover_dist_create and is destroyed only here.
        unsafe { crossover_dist_destroy(self.handle.as_ptr()) };
    }
}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGroup")
            .field("backend", &self.backend)
            .field("rank", &self.rank)
            .field("world", &self.world)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_at_most_the_limit_and_keep_the_order() {
        // (tensor bytes, limit, buckets as (start, end))
        type Case<'a> = (&'a [usize], usize, &'a [(usize, usize)]);
        let cases: [Case; 6] = [
            (&[], 10, &[]),
            (&[4, 4, 4], 12, &[(0, 3)]),
            (&[4, 4, 4], 8, &[(0, 2), (2, 3)]),
            // A tensor larger than the limit is a bucket alone.
            (&[4, 20, 4], 8, &[(0, 1), (1, 2), (2, 3)]),
            (&[20], 8, &[(0, 1)]),
            (&[3, 3, 3, 3, 3], 7, &[(0, 2), (2, 4), (4, 5)]),
        ];
        for (bytes, limit, expected) in cases {
            let got: Vec<(usize, usize)> = buckets(bytes, limit)
                .into_iter()
                .map(|range| (range.start, range.end))
                .collect();
            assert_eq!(got, expected, "{bytes:?} / {limit}");
        }
    }

    /// What each backend accepts: NCCL refuses host tensors (the benchmark scores of
    /// a milestone were once built on the CPU), mixed GPUs and bool flags.
    #[test]
    fn collective_inputs_by_backend() {
        let gpu = |kind| (Device::Cuda(0), kind);
        // (backend, inputs, accepted)
        type Case = (Backend, Vec<(Device, Kind)>, bool);
        let cases: Vec<Case> = vec![
            (Backend::Gloo, vec![(Device::Cpu, Kind::Double)], true),
            (Backend::Gloo, vec![gpu(Kind::Float)], true),
            (Backend::Gloo, vec![(Device::Cpu, Kind::Bool)], true),
            (
                Backend::Nccl,
                vec![gpu(Kind::Float), gpu(Kind::Double)],
                true,
            ),
            (
                Backend::Nccl,
                vec![gpu(Kind::BFloat16), gpu(Kind::Int64)],
                true,
            ),
            (Backend::Nccl, vec![(Device::Cpu, Kind::Double)], false),
            (
                Backend::Nccl,
                vec![gpu(Kind::Float), (Device::Cpu, Kind::Float)],
                false,
            ),
            (
                Backend::Nccl,
                vec![gpu(Kind::Float), (Device::Cuda(1), Kind::Float)],
                false,
            ),
            (Backend::Nccl, vec![gpu(Kind::Bool)], false),
            (Backend::Nccl, vec![], true),
        ];
        for (backend, inputs, accepted) in cases {
            let result = check_inputs(backend, &inputs, "all-reduce (sum)");
            assert_eq!(
                result.is_ok(),
                accepted,
                "{backend:?} {inputs:?}: {result:?}"
            );
            if let Err(message) = result {
                assert!(message.starts_with("all-reduce (sum): "), "{message}");
            }
        }
    }
}
