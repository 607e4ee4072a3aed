//! Starting a one-node job's other ranks: copies of the same `trainer run` with the
//! rank variables set, meeting on 127.0.0.1 (what torchrun does).

use crate::parallel::env::{LOCAL_RANK, MASTER_ADDR, MASTER_PORT, RANK, RankEnv, WORLD_SIZE};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// How a launcher starts its local ranks: the trainer executable and the arguments of
/// `trainer run` after the job folder.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    pub exe: Option<PathBuf>,
    pub args: Vec<String>,
}

/// A free TCP port on 127.0.0.1 (asked of the kernel, then released for the store).
pub(super) fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|error| format!("finding a free port for the ranks' rendezvous: {error}"))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| format!("finding a free port for the ranks' rendezvous: {error}"))
}

/// Start ranks 1..world-1 on this node as copies of this `trainer run`, and return
/// this process's place (rank 0) with them.
pub(super) fn launch_local(
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
