//! The processes of one data-parallel job (`train.devices` x `train.nodes`) and how
//! they find each other.
//!
//! - One process (world 1): nothing to do, no process group.
//! - Under Slurm (`srun`, one task per rank): rank, world size and local rank come
//!   from SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID; the rendezvous address and port
//!   from CROSSOVER_MASTER_ADDR and CROSSOVER_MASTER_PORT, which the harness' sbatch
//!   script exports before `srun`.
//! - Started by hand or by another launcher: CROSSOVER_RANK, CROSSOVER_WORLD_SIZE,
//!   CROSSOVER_LOCAL_RANK, CROSSOVER_MASTER_ADDR, CROSSOVER_MASTER_PORT (these win over
//!   Slurm's).
//! - Otherwise, on one node (the local pool, or `trainer run` by hand): this process is
//!   rank 0 and starts ranks 1..devices-1 itself, copies of the same `trainer run`
//!   with the variables above, rendezvous on 127.0.0.1 (what torchrun does).
//!
//! Rank 0 is the only writer (status.json, logs, checkpoints); every rank reads the
//! same checkpoint to resume. A rank that dies makes the others' next collective fail;
//! rank 0 then records the error in status.json and stops the ranks it started.

use crate::parallel::process_group::{Backend, GroupConfig, ProcessGroup};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tch::Tensor;

/// Where this process sits in its job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RankEnv {
    pub rank: usize,
    pub world: usize,
    /// Index among the ranks on this node (the GPU it uses: cuda:local_rank).
    pub local_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
}

/// A second stop signal this soon after the first is the same stop delivered twice
/// (Slurm signals a job's processes and its batch script passes the signal on), not a
/// request to kill at once.
pub const STOP_ECHO: std::time::Duration = std::time::Duration::from_secs(2);

/// Exit code of `trainer run` when it stopped early with a checkpoint.
pub const STOPPED_EXIT: i32 = 3;

/// Environment variables of a launched rank.
pub const RANK: &str = "CROSSOVER_RANK";
pub const WORLD_SIZE: &str = "CROSSOVER_WORLD_SIZE";
pub const LOCAL_RANK: &str = "CROSSOVER_LOCAL_RANK";
pub const MASTER_ADDR: &str = "CROSSOVER_MASTER_ADDR";
pub const MASTER_PORT: &str = "CROSSOVER_MASTER_PORT";

impl RankEnv {
    /// This process's place in a job of `world` processes, from the variables `get`
    /// reads (the process environment in `from_env`): None when nothing names a rank
    /// (a single process, or the launcher of a one-node job). Errors say which
    /// variable is wrong and what it should be.
    pub fn from_vars(
        get: impl Fn(&str) -> Option<String>,
        world: usize,
    ) -> Result<Option<Self>, String> {
        let number = |name: &str| -> Result<Option<usize>, String> {
            get(name)
                .map(|text| {
                    text.trim()
                        .parse::<usize>()
                        .map_err(|_| format!("{name}={text} is not a whole number"))
                })
                .transpose()
        };
        let (rank, size, local) = match number(RANK)? {
            Some(rank) => (
                rank,
                number(WORLD_SIZE)?,
                number(LOCAL_RANK)?.unwrap_or(rank),
            ),
            None => match (number("SLURM_PROCID")?, number("SLURM_NTASKS")?) {
                // A one-task Slurm job (today's single-process jobs) names no rank.
                (Some(rank), Some(tasks)) if tasks > 1 || world > 1 => {
                    (rank, Some(tasks), number("SLURM_LOCALID")?.unwrap_or(0))
                }
                _ => return Ok(None),
            },
        };
        let size = size.unwrap_or(world);
        if size != world {
            return Err(format!(
                "this process is one of {size} ranks ({WORLD_SIZE} or SLURM_NTASKS) but the job asks for train.devices x train.nodes = {world}; start {world} ranks (Slurm: --ntasks-per-node=devices --nodes=nodes)"
            ));
        }
        if rank >= world {
            return Err(format!(
                "rank {rank} is out of range for {world} ranks ({RANK} or SLURM_PROCID)"
            ));
        }
        if world == 1 {
            return Ok(None);
        }
        let master_addr = get(MASTER_ADDR).ok_or_else(|| {
            format!("{MASTER_ADDR} is not set: the host of rank 0 (the harness' Slurm script exports it)")
        })?;
        let master_port = get(MASTER_PORT)
            .ok_or_else(|| format!("{MASTER_PORT} is not set: a free port on rank 0's host"))?;
        let master_port = master_port
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("{MASTER_PORT}={master_port} is not a port number"))?;
        Ok(Some(Self {
            rank,
            world,
            local_rank: local,
            master_addr,
            master_port,
        }))
    }

    pub fn from_env(world: usize) -> Result<Option<Self>, String> {
        Self::from_vars(|name| std::env::var(name).ok(), world)
    }
}

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
fn bucket_bytes() -> usize {
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

/// How a launcher starts its local ranks: the trainer executable and the arguments of
/// `trainer run` after the job folder.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    pub exe: Option<PathBuf>,
    pub args: Vec<String>,
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

/// A free TCP port on 127.0.0.1 (asked of the kernel, then released for the store).
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|error| format!("finding a free port for the ranks' rendezvous: {error}"))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| format!("finding a free port for the ranks' rendezvous: {error}"))
}

/// Start ranks 1..world-1 on this node as copies of this `trainer run`, and return
/// this process's place (rank 0) with them.
fn launch_local(
    world: usize,
    job_dir: &std::path::Path,
    launch: &Launch,
) -> Result<(RankEnv, Vec<Child>), String> {
    let port = free_port()?;
    let exe = match &launch.exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe()
            .map_err(|error| format!("locating the trainer to start the other ranks: {error}"))?,
    };
    let mut children = Vec::new();
    for rank in 1..world {
        let child = Command::new(&exe)
            .arg("run")
            .arg(job_dir)
            .args(&launch.args)
            .env(RANK, rank.to_string())
            .env(WORLD_SIZE, world.to_string())
            .env(LOCAL_RANK, rank.to_string())
            .env(MASTER_ADDR, "127.0.0.1")
            .env(MASTER_PORT, port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn();
        match child {
            Ok(child) => children.push(child),
            Err(error) => {
                for mut started in children {
                    let _ = started.kill();
                    let _ = started.wait();
                }
                return Err(format!("starting rank {rank} ({}): {error}", exe.display()));
            }
        }
    }
    Ok((
        RankEnv {
            rank: 0,
            world,
            local_rank: 0,
            master_addr: "127.0.0.1".into(),
            master_port: port,
        },
        children,
    ))
}

#[cfg(test)]
mod tests {

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

    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)], world: usize) -> Result<Option<RankEnv>, String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RankEnv::from_vars(|name| map.get(name).cloned(), world)
    }

    #[test]
    fn ranks_from_the_environment() {
        let master = [(MASTER_ADDR, "node1"), (MASTER_PORT, "29500")];
        let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
            master.iter().chain(extra).copied().collect()
        };
        // Nothing named: a single process or a launcher.
        assert_eq!(env(&[], 1), Ok(None));
        assert_eq!(env(&[], 2), Ok(None));
        // A one-task Slurm job is a single process.
        assert_eq!(
            env(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "1")], 1),
            Ok(None)
        );
        // srun: Slurm's variables.
        let slurm = env(
            &with(&[
                ("SLURM_PROCID", "3"),
                ("SLURM_NTASKS", "4"),
                ("SLURM_LOCALID", "1"),
            ]),
            4,
        );
        assert_eq!(
            slurm,
            Ok(Some(RankEnv {
                rank: 3,
                world: 4,
                local_rank: 1,
                master_addr: "node1".into(),
                master_port: 29500,
            }))
        );
        // The harness' own variables win over Slurm's.
        let ours = env(
            &with(&[
                (RANK, "1"),
                (WORLD_SIZE, "2"),
                ("SLURM_PROCID", "0"),
                ("SLURM_NTASKS", "1"),
            ]),
            2,
        )
        .expect("valid")
        .expect("a rank");
        assert_eq!((ours.rank, ours.local_rank), (1, 1));
        let errors = [
            (with(&[(RANK, "2"), (WORLD_SIZE, "2")]), 2, "out of range"),
            (
                with(&[(RANK, "0"), (WORLD_SIZE, "4")]),
                2,
                "asks for train.devices x train.nodes = 2",
            ),
            (with(&[(RANK, "x")]), 2, "not a whole number"),
            (
                vec![(RANK, "1"), (WORLD_SIZE, "2")],
                2,
                "CROSSOVER_MASTER_ADDR is not set",
            ),
            (
                vec![
                    (RANK, "1"),
                    (WORLD_SIZE, "2"),
                    (MASTER_ADDR, "h"),
                    (MASTER_PORT, "99999"),
                ],
                2,
                "not a port number",
            ),
        ];
        for (vars, world, expected) in errors {
            let error = env(&vars, world).expect_err(expected);
            assert!(error.contains(expected), "{vars:?}: {error}");
        }
    }
}
