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

pub mod env;
pub mod launch;
pub mod process_group;
pub mod ranks;
pub mod self_check;
