//! Where this process sits in its job, from the environment (CROSSOVER_* or Slurm's
//! variables).

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

#[cfg(test)]
mod tests {
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
