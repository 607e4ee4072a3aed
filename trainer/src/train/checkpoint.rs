//! Checkpoints: weights, optimizer moments and the position in training, written
//! atomically as `checkpoints/step-NNNNNNNN/` (a staging folder renamed into place).
//! The data position and every random draw are functions of the step, so the step is
//! all the RNG and data-loader state a resume needs.

use crate::error::{Result, TrainerError, io_error};
use crate::runfolder::{CHECKPOINTS, write_atomic};
use jobspec::Keep;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::Tensor;
use tch::nn::VarStore;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Optimizer steps completed.
    pub step: u64,
    pub total_steps: u64,
    pub epoch: f64,
    pub tokens: u64,
    pub flops: f64,
    pub elapsed_s: f64,
    /// Kept for evaluation later (milestones); other checkpoints are replaced.
    pub milestone: bool,
    pub vocab_size: usize,
    pub tokenizer_id: String,
    /// Mixtures of experts: the routers' load summed since the last milestone, so a
    /// resumed job's expert_load.csv equals an uninterrupted one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert_load: Option<LoadSum>,
}

/// A (blocks, experts) float32 sum of expert shares over `steps` training steps,
/// stored as f64 (exact for f32 values).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadSum {
    pub steps: u64,
    pub blocks: i64,
    pub experts: i64,
    pub sums: Vec<f64>,
}

pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIMIZER_FILE: &str = jobspec::status::OPTIMIZER_FILE;
pub const STATE_FILE: &str = "state.json";

pub fn folder_name(step: u64) -> String {
    format!("step-{step:08}")
}

/// Write a checkpoint (every file and the folder synced to disk before the rename that
/// publishes it), then apply the retention `keep` to the older ones. `optimizer`: the
/// whole optimizer state by name ([`crate::train::optim::AdamW::gathered_state`]).
pub fn save(
    job_dir: &Path,
    state: &CheckpointState,
    variables: &VarStore,
    optimizer: &[(String, Tensor)],
    keep: Keep,
) -> Result<PathBuf> {
    let root = job_dir.join(CHECKPOINTS);
    std::fs::create_dir_all(&root).map_err(io_error(&root))?;
    let target = root.join(folder_name(state.step));
    let staging = root.join(format!(".staging-{}", folder_name(state.step)));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_error(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(io_error(&staging))?;
    let failed = |message: String| TrainerError::Checkpoint {
        path: staging.clone(),
        message,
    };
    variables
        .save(staging.join(MODEL_FILE))
        .map_err(|error| failed(error.to_string()))?;
    crate::train::optim::write_state(optimizer, &staging.join(OPTIMIZER_FILE)).map_err(failed)?;
    let text = serde_json::to_string_pretty(state).unwrap_or_default();
    write_atomic(&staging.join(STATE_FILE), text.as_bytes())?;
    sync_folder(&staging)?;
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(io_error(&target))?;
    }
    std::fs::rename(&staging, &target).map_err(io_error(&target))?;
    sync(&root)?;
    prune(job_dir, state.step, keep)?;
    Ok(target)
}

/// fsync a file or a folder (a folder's entries: the names renamed into it).
fn sync(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(io_error(path))
}

/// fsync every file of a folder, then the folder.
fn sync_folder(folder: &Path) -> Result<()> {
    for entry in std::fs::read_dir(folder).map_err(io_error(folder))? {
        let path = entry.map_err(io_error(folder))?.path();
        if path.is_file() {
            sync(&path)?;
        }
    }
    sync(folder)
}

/// What an existing checkpoint keeps after a newer one is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retain {
    /// Model, optimizer state and state.json.
    Everything,
    /// Model and state.json (`trainer eval` reads these).
    Weights,
    /// Nothing: the folder is removed.
    Nothing,
}

/// The retention rule: the newest checkpoint keeps everything (a resume needs it);
/// older ones that are not milestones go; milestones keep what `train.keep` says.
pub fn retain(newest: bool, milestone: bool, keep: Keep) -> Retain {
    match (newest, milestone, keep) {
        (true, _, _) => Retain::Everything,
        (false, false, _) | (false, true, Keep::None) => Retain::Nothing,
        (false, true, Keep::Weights) => Retain::Weights,
        (false, true, Keep::All) => Retain::Everything,
    }
}

/// Every complete checkpoint, oldest first.
pub fn list(job_dir: &Path) -> Result<Vec<(CheckpointState, PathBuf)>> {
    let root = job_dir.join(CHECKPOINTS);
    if !root.exists() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&root).map_err(io_error(&root))? {
        let path = entry.map_err(io_error(&root))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.starts_with("step-") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(path.join(STATE_FILE)) else {
            continue;
        };
        let state: CheckpointState =
            serde_json::from_str(&text).map_err(|error| TrainerError::Checkpoint {
                path: path.clone(),
                message: format!("bad {STATE_FILE}: {error}"),
            })?;
        found.push((state, path));
    }
    found.sort_by_key(|(state, _)| state.step);
    Ok(found)
}

pub fn latest(job_dir: &Path) -> Result<Option<(CheckpointState, PathBuf)>> {
    Ok(list(job_dir)?.pop())
}

/// Apply [`retain`] to every checkpoint but the newest, and drop any staging left by a
/// crash.
fn prune(job_dir: &Path, newest: u64, keep: Keep) -> Result<()> {
    let root = job_dir.join(CHECKPOINTS);
    for (state, path) in list(job_dir)? {
        match retain(state.step == newest, state.milestone, keep) {
            Retain::Everything => {}
            Retain::Weights => {
                let moments = path.join(OPTIMIZER_FILE);
                if moments.exists() {
                    std::fs::remove_file(&moments).map_err(io_error(&moments))?;
                }
            }
            Retain::Nothing => {
                // Renamed out of the way first (atomic), so a kill half-way through
                // the deletion leaves a `.deleting-` folder the next prune removes,
                // not a `step-` folder that looks like a checkpoint.
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let doomed = root.join(format!("{DELETING}{name}"));
                std::fs::rename(&path, &doomed).map_err(io_error(&path))?;
                std::fs::remove_dir_all(&doomed).map_err(io_error(&doomed))?;
            }
        }
    }
    for entry in std::fs::read_dir(&root).map_err(io_error(&root))? {
        let path = entry.map_err(io_error(&root))?.path();
        if is_leftover(&path) {
            std::fs::remove_dir_all(&path).map_err(io_error(&path))?;
        }
    }
    Ok(())
}

/// Prefix of a checkpoint folder being deleted.
const DELETING: &str = ".deleting-";

/// What a killed writer or pruner left under checkpoints/: a staging folder never
/// published, a folder renamed for deletion, or a `step-` folder without its
/// state.json (a checkpoint is published whole by a rename, so one without it is a
/// deletion cut short by an older version). `list` never returns these.
fn is_leftover(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.starts_with(".staging-")
        || name.starts_with(DELETING)
        || (name.starts_with("step-") && path.is_dir() && !path.join(STATE_FILE).exists())
}

#[cfg(test)]
mod retention_tests {
    use super::*;

    #[test]
    fn retention_by_age_milestone_and_keep() {
        // (newest, milestone, keep, retained)
        let cases = [
            (true, false, Keep::None, Retain::Everything),
            (true, true, Keep::Weights, Retain::Everything),
            (false, false, Keep::All, Retain::Nothing),
            (false, false, Keep::Weights, Retain::Nothing),
            (false, true, Keep::Weights, Retain::Weights),
            (false, true, Keep::All, Retain::Everything),
            (false, true, Keep::None, Retain::Nothing),
        ];
        for (newest, milestone, keep, retained) in cases {
            assert_eq!(
                retain(newest, milestone, keep),
                retained,
                "{newest} {milestone} {keep:?}"
            );
        }
    }

    /// What killed writers and pruners leave behind is removed by the next prune, and
    /// only that: a staging folder, a folder renamed for deletion and a `step-` folder
    /// without state.json go; the newest checkpoint and a milestone's weights stay.
    #[test]
    fn a_prune_removes_what_a_killed_writer_or_pruner_left() {
        let job = tempfile::tempdir().expect("temp dir");
        let root = job.path().join(CHECKPOINTS);
        let state = |step: u64, milestone: bool| CheckpointState {
            step,
            total_steps: 10,
            epoch: 0.0,
            tokens: 0,
            flops: 0.0,
            elapsed_s: 0.0,
            milestone,
            vocab_size: 256,
            tokenizer_id: "bytes".into(),
            expert_load: None,
        };
        let write = |name: &str, state: Option<CheckpointState>| {
            let folder = root.join(name);
            std::fs::create_dir_all(&folder).expect("folder");
            std::fs::write(folder.join(MODEL_FILE), b"w").expect("model");
            std::fs::write(folder.join(OPTIMIZER_FILE), b"m").expect("moments");
            if let Some(state) = state {
                let text = serde_json::to_string(&state).expect("json");
                std::fs::write(folder.join(STATE_FILE), text).expect("state");
            }
        };
        write("step-00000002", Some(state(2, true)));
        write("step-00000003", None);
        write(".deleting-step-00000004", Some(state(4, false)));
        write(".staging-step-00000006", Some(state(6, false)));
        write("step-00000005", Some(state(5, false)));
        prune(job.path(), 5, Keep::Weights).expect("prune");
        let mut left: Vec<String> = std::fs::read_dir(&root)
            .expect("read")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        left.sort();
        assert_eq!(left, ["step-00000002", "step-00000005"]);
        assert!(!root.join("step-00000002").join(OPTIMIZER_FILE).exists());
        assert!(root.join("step-00000005").join(OPTIMIZER_FILE).exists());
    }
}
