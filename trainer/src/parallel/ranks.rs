//! The ranks of one job once joined: their process group, the GPU each uses, the
//! collectives training calls, and how they finish (rank 0 waits for the ranks it
//! started; a stopped job exits with `STOPPED_EXIT`).

use crate::parallel::env::RankEnv;
use crate::parallel::env::{MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE};
use crate::parallel::launch::{Launch, launch_local};
use crate::parallel::process_group::{Backend, GroupConfig, ProcessGroup};
use std::process::Child;
use std::time::Duration;
use tch::Tensor;

/// A second stop signal this soon after the first is the same stop delivered twice
/// (Slurm signals a job's processes and its batch script passes the signal on), not a
/// request to kill at once.
pub const STOP_ECHO: std::time::Duration = std::time::Duration::from_secs(2);

/// Exit code of `trainer run` when it stopped early with a checkpoint.
pub const STOPPED_EXIT: i32 = 3;

/// Timeouts of a job's process group: joining may wait for slow starters (a
/// scheduler, the data cache); a collective may wait while rank 0 evaluates or writes
/// a checkpoint. `CROSSOVER_DIST_TIMEOUT_S` overrides the collective timeout.
fn timeouts() -> (Duration, Duration) {
    let collective = std::env::var("CROSSOVER_DIST_TIMEOUT_S")
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .filter(|seconds| *seconds > 0.0)
        .unwrap_or(1800.0);
    (
        Duration::from_secs(600),
        Duration::from_secs_f64(collective),
    )
}

/// Bucket size of the gradients' all-reduce: `CROSSOVER_BUCKET_MB` or
/// [`crate::parallel::process_group::BUCKET_BYTES`].
pub(super) fn bucket_bytes() -> usize {
    std::env::var("CROSSOVER_BUCKET_MB")
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .filter(|mb| *mb > 0.0)
        .map_or(crate::parallel::process_group::BUCKET_BYTES, |mb| {
            (mb * f64::from(1u32 << 20)) as usize
        })
}

/// This process's membership in its job: rank, world and (world > 1) the process
/// group; on a launcher, the local ranks it started.
pub struct Ranks {
    pub rank: usize,
    pub world: usize,
    pub local_rank: usize,
    /// This rank's GPU (made the current CUDA device before the group was joined).
    pub gpu: Option<usize>,
    group: Option<ProcessGroup>,
    children: Vec<Child>,
}

impl std::fmt::Debug for Ranks {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Ranks")
            .field("rank", &self.rank)
            .field("world", &self.world)
            .field("local_rank", &self.local_rank)
            .field("children", &self.children.len())
            .finish()
    }
}

/// The process group's backend, and a warning when CUDA tensors must go through Gloo
/// (a trainer built without NCCL): every step then copies all gradients to the host
/// and back, seconds per step at 1B parameters.
pub fn choose_backend(cuda: bool, nccl: bool) -> (Backend, Option<String>) {
    match (cuda, nccl) {
        (true, true) => (Backend::Nccl, None),
        (true, false) => (
            Backend::Gloo,
            Some("this trainer was built without NCCL, so the ranks' GPUs exchange gradients through host memory with Gloo (slow: every step copies all gradients to the host and back); build with CROSSOVER_NCCL_INCLUDE set (docs/gpu.md)".into()),
        ),
        (false, _) => (Backend::Gloo, None),
    }
}

impl Ranks {
    pub fn single() -> Self {
        Self {
            rank: 0,
            world: 1,
            local_rank: 0,
            gpu: None,
            group: None,
            children: Vec::new(),
        }
    }

    /// Join (or, on one node with no rank named, launch and join) the job's ranks.
    /// `cuda` picks NCCL when the trainer has it (else Gloo, through host memory).
    pub fn join(
        world: usize,
        nodes: usize,
        job_dir: &std::path::Path,
        launch: &Launch,
        cuda: bool,
    ) -> Result<Self, String> {
        if world <= 1 {
            return Ok(Self::single());
        }
        let (env, children) = match RankEnv::from_env(world)? {
            Some(env) => (env, Vec::new()),
            None => {
                if nodes > 1 {
                    return Err(format!(
                        "train.nodes = {nodes}: a multi-node job needs one `trainer run` per rank started by Slurm (harness run --backend slurm) or with {RANK}, {WORLD_SIZE}, {MASTER_ADDR} and {MASTER_PORT} set"
                    ));
                }
                launch_local(world, job_dir, launch)?
            }
        };
        let (backend, warning) =
            choose_backend(cuda, crate::parallel::process_group::nccl_available());
        if let (Some(warning), 0) = (warning, env.rank) {
            eprintln!("warning: {warning}");
        }
        let (mut rendezvous_timeout, timeout) = timeouts();
        if !children.is_empty() {
            // Ranks started here join within seconds; a crashed one should not keep
            // rank 0 waiting as long as a scheduler's late start may.
            rendezvous_timeout = rendezvous_timeout.min(Duration::from_secs(120));
        }
        let mut ranks = Self {
            rank: env.rank,
            world,
            local_rank: env.local_rank,
            gpu: None,
            group: None,
            children,
        };
        // One GPU per rank: local rank r takes the r-th visible GPU, or the only one
        // when the scheduler shows each rank its own (Slurm's --gpus-per-task). It is
        // the current device before the group exists, and NCCL is bound to it.
        if cuda {
            let visible = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
            let gpu = crate::device::rank_gpu(env.local_rank, visible).and_then(|index| {
                crate::fused::set_cuda_device(index)
                    .map(|()| index)
                    .map_err(|error| format!("selecting the rank's GPU: {error}"))
            });
            match gpu {
                Ok(index) => ranks.gpu = Some(index),
                Err(message) => {
                    ranks.stop_children();
                    return Err(message);
                }
            }
        }
        let config = GroupConfig {
            backend,
            master_addr: env.master_addr.clone(),
            port: env.master_port,
            rank: env.rank,
            world,
            rendezvous_timeout,
            timeout,
            device: ranks.gpu,
            bucket_bytes: bucket_bytes(),
        };
        match ProcessGroup::new(&config) {
            Ok(group) => {
                ranks.group = Some(group);
                Ok(ranks)
            }
            Err(error) => {
                ranks.stop_children();
                Err(format!(
                    "rank {} of {world} could not join the others at {}:{}: {error}",
                    env.rank, env.master_addr, env.master_port
                ))
            }
        }
    }

    /// Rank 0 writes status, logs and checkpoints; the others only train.
    pub fn is_writer(&self) -> bool {
        self.rank == 0
    }

    /// Average `tensors` in place over the ranks (nothing to do alone).
    pub fn mean(&self, tensors: &[Tensor]) -> Result<(), String> {
        match &self.group {
            Some(group) => group
                .all_reduce_mean(tensors)
                .map_err(|error| self.lost(error)),
            None => Ok(()),
        }
    }

    /// Sum `tensors` in place over the ranks.
    pub fn sum(&self, tensors: &[Tensor]) -> Result<(), String> {
        match &self.group {
            Some(group) => group
                .all_reduce_sum(tensors)
                .map_err(|error| self.lost(error)),
            None => Ok(()),
        }
    }

    /// Overwrite `tensors` in place with rank `root`'s values (nothing to do alone).
    pub fn broadcast_from(&self, root: usize, tensors: &[Tensor]) -> Result<(), String> {
        match &self.group {
            Some(group) => group
                .broadcast_from(root, tensors)
                .map_err(|error| self.lost(error)),
            None => Ok(()),
        }
    }

    /// Return once every rank has reached this point (nothing to do alone).
    pub fn barrier(&self) -> Result<(), String> {
        match &self.group {
            Some(group) => group.barrier().map_err(|error| self.lost(error)),
            None => Ok(()),
        }
    }

    fn lost(&self, error: tch::TchError) -> String {
        format!(
            "rank {} of {}: a collective with the other ranks failed ({error}); a rank has probably died (see its output); run the job again to resume from its last checkpoint",
            self.rank, self.world
        )
    }

    /// Wait for the local ranks this process started; an error names one that failed.
    /// `stopped`: the job stopped early with a checkpoint, so the ranks exit as
    /// `trainer run` does then (code 3).
    pub fn finish(mut self, stopped: bool) -> Result<(), String> {
        self.group = None;
        let mut failures = Vec::new();
        for (index, child) in self.children.iter_mut().enumerate() {
            match child.wait() {
                Ok(status) if status.success() => {}
                Ok(status) if stopped && status.code() == Some(STOPPED_EXIT) => {}
                Ok(status) => failures.push(format!("rank {} exited with {status}", index + 1)),
                Err(error) => failures.push(format!("rank {}: {error}", index + 1)),
            }
        }
        self.children.clear();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    /// Stop the local ranks this process started (after an error on this one).
    fn stop_children(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Ranks {
    fn drop(&mut self) {
        // Leave the group first so the children's collectives fail rather than wait.
        self.group = None;
        self.stop_children();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NCCL whenever CUDA ranks can have it; Gloo otherwise, with a warning for CUDA.
    #[test]
    fn backend_follows_the_device_and_the_build() {
        // (cuda, nccl built, backend, warns)
        let cases = [
            (true, true, Backend::Nccl, false),
            (true, false, Backend::Gloo, true),
            (false, true, Backend::Gloo, false),
            (false, false, Backend::Gloo, false),
        ];
        for (cuda, nccl, backend, warns) in cases {
            let (chosen, warning) = choose_backend(cuda, nccl);
            assert_eq!(
                (chosen, warning.is_some()),
                (backend, warns),
                "{cuda} {nccl}"
            );
        }
    }
}
