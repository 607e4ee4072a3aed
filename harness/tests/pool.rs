//! The local pool's packing of data-parallel jobs (train.devices N takes N slots or
//! GPUs at once), driven through the real `harness run` with a fake trainer: a shell
//! script that records the CUDA_VISIBLE_DEVICES it was given and when it ran, sleeps,
//! and marks its job done. No GPU and no LibTorch needed; the real trainer's ranks
//! are tested with the trainer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What the fake trainer writes to `<job>/fake.txt`: `<devices>|<start ns>|<end ns>|<args>`.
const FAKE_TRAINER: &str = r#"#!/bin/sh
# Called as: trainer run <job-dir> --threads N (and `trainer prepare <job-dir>` first,
# which has nothing to do here)
[ "$1" = prepare ] && exit 0
job=$2
start=$(date +%s%N)
sleep 1
end=$(date +%s%N)
echo "${CUDA_VISIBLE_DEVICES-unset}|$start|$end|$*" >>"$job/fake.txt"
printf '{"state":"done","attempts":1}\n' >"$job/status.json"
"#;

struct Run {
    folder: tempfile::TempDir,
    trainer: PathBuf,
}

impl Run {
    fn new() -> Self {
        let folder = tempfile::tempdir().expect("temp dir");
        let trainer = folder.path().join("trainer");
        std::fs::write(&trainer, FAKE_TRAINER).expect("write the fake trainer");
        let chmod = Command::new("chmod").arg("+x").arg(&trainer).status();
        assert!(chmod.is_ok_and(|status| status.success()), "chmod");
        Self { folder, trainer }
    }

    /// A sweep of jobs with train.devices/nodes from `train` and the axes in `rest`.
    fn sweep(&self, name: &str, train: &str, rest: &str) -> PathBuf {
        let text = format!(
            "name: {name}
base:
  objective: ar
  model: {{ preset: nano }}
  data: {{ corpus: sotu, tokenizer: bytes, seq_len: 64, unique_tokens: 12k, val_tokens: 8k }}
  train: {{ epochs: 1, batch_size: 16, lr: 3e-3{train} }}
{rest}"
        );
        let path = self.folder.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).expect("write sweep");
        path
    }

    fn results(&self, name: &str) -> PathBuf {
        self.folder.path().join("results").join(name)
    }

    fn harness(&self, sweep: &Path, flags: &[&str]) -> Output {
        let name = sweep
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        Command::new(env!("CARGO_BIN_EXE_harness"))
            .arg("run")
            .arg(sweep)
            .arg("--results")
            .arg(self.results(&name))
            .arg("--trainer")
            .arg(&self.trainer)
            .args(flags)
            .output()
            .expect("harness starts")
    }
}

/// One fake trainer run: the devices it saw, its time span and its arguments.
#[derive(Debug)]
struct Ran {
    devices: String,
    start: u128,
    end: u128,
    args: String,
}

impl Ran {
    fn gpus(&self) -> BTreeSet<&str> {
        self.devices.split(',').collect()
    }

    fn overlaps(&self, other: &Ran) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Every job's runs, in plan.csv order.
fn runs(results: &Path) -> Vec<Vec<Ran>> {
    let plan = std::fs::read_to_string(results.join("plan.csv")).expect("plan.csv");
    plan.lines()
        .skip(1)
        .filter_map(|line| line.split(',').next())
        .map(|id| {
            let path = results.join("jobs").join(id).join("fake.txt");
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            text.lines()
                .map(|line| {
                    let fields: Vec<&str> = line.splitn(4, '|').collect();
                    assert_eq!(fields.len(), 4, "{line}");
                    Ran {
                        devices: fields[0].to_owned(),
                        start: fields[1].parse().expect("start"),
                        end: fields[2].parse().expect("end"),
                        args: fields[3].to_owned(),
                    }
                })
                .collect()
        })
        .collect()
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Each job ran once; returns those runs in plan order.
fn once_each(results: &Path) -> Vec<Ran> {
    runs(results)
        .into_iter()
        .map(|mut job| {
            assert_eq!(job.len(), 1, "{job:?}");
            job.remove(0)
        })
        .collect()
}

#[test]
fn two_2_device_jobs_on_4_gpus_run_at_once_on_disjoint_pairs() {
    let run = Run::new();
    let sweep = run.sweep("pairs", ", devices: 2", "grid:\n  objective: [ar, dlm]\n");
    assert_ok(&run.harness(&sweep, &["--gpus", "0,1,2,3"]));
    let ran = once_each(&run.results("pairs"));
    let groups: BTreeSet<&str> = ran.iter().map(|ran| ran.devices.as_str()).collect();
    assert_eq!(groups, BTreeSet::from(["0,1", "2,3"]), "{ran:?}");
    assert!(ran[0].overlaps(&ran[1]), "both at once: {ran:?}");
}

#[test]
fn a_2_device_and_two_1_device_jobs_on_3_gpus_never_share_one() {
    let run = Run::new();
    let zip = "zip:\n  objective: [ar, dlm, { ar_masked: 0.3 }]\n  train.devices: [2, 1, 1]\n";
    let sweep = run.sweep("mixed", "", zip);
    assert_ok(&run.harness(&sweep, &["--gpus", "0,1,2"]));
    let ran = once_each(&run.results("mixed"));
    let sizes: Vec<usize> = ran.iter().map(|ran| ran.gpus().len()).collect();
    assert_eq!(sizes, [2, 1, 1], "{ran:?}");
    for (i, first) in ran.iter().enumerate() {
        for second in &ran[i + 1..] {
            if first.overlaps(second) {
                assert!(first.gpus().is_disjoint(&second.gpus()), "{ran:?}");
            }
        }
    }
    // First fit: the 1-device job behind the pair starts with it, on the third GPU.
    assert!(ran[0].overlaps(&ran[1]), "{ran:?}");
}

#[test]
fn a_wide_job_does_not_hold_up_the_narrow_ones_behind_it() {
    let run = Run::new();
    // On 2 GPUs with one busy, the 2-device job waits while both 1-device jobs run.
    let zip = "zip:\n  objective: [ar, dlm, { ar_masked: 0.3 }]\n  train.devices: [1, 2, 1]\n";
    let sweep = run.sweep("wide", "", zip);
    assert_ok(&run.harness(&sweep, &["--gpus", "0,1"]));
    let ran = once_each(&run.results("wide"));
    assert!(ran[0].overlaps(&ran[2]), "{ran:?}");
    assert!(
        !ran[1].overlaps(&ran[0]) && !ran[1].overlaps(&ran[2]),
        "{ran:?}"
    );
    assert_eq!(ran[1].devices, "0,1");
}

#[test]
fn on_cpu_a_job_takes_one_slot_per_process() {
    let run = Run::new();
    let sweep = run.sweep("cpu", ", devices: 2", "grid:\n  objective: [ar, dlm]\n");
    assert_ok(&run.harness(&sweep, &["--slots", "3", "--threads", "2"]));
    let ran = once_each(&run.results("cpu"));
    assert!(
        !ran[0].overlaps(&ran[1]),
        "2 + 2 processes > 3 slots: {ran:?}"
    );
    for ran in &ran {
        assert_eq!(ran.devices, "unset");
        assert!(ran.args.ends_with("--threads 2"), "{}", ran.args);
    }
}

#[test]
fn jobs_the_pool_cannot_run_are_refused_by_name_before_any_starts() {
    let run = Run::new();
    let grid = "grid:\n  objective: [ar, dlm]\n";
    let cases: [(&str, &str, &[&str], &[&str]); 3] = [
        (
            "four",
            ", devices: 4",
            &["--gpus", "0,1"],
            &["needs 4 GPUs at once (train.devices 4) but --gpus gives 2"],
        ),
        (
            "slots",
            ", devices: 4",
            &["--slots", "2"],
            &["runs 4 processes (train.devices 4), one per slot, but --slots is 2"],
        ),
        (
            "nodes",
            ", devices: 2, nodes: 2",
            &["--gpus", "0,1,2,3"],
            &["has train.nodes 2 (4 processes)", "--backend slurm"],
        ),
    ];
    for (name, train, flags, expected) in cases {
        let sweep = run.sweep(name, train, grid);
        let output = run.harness(&sweep, flags);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name}: {stderr}");
        let plan = std::fs::read_to_string(run.results(name).join("plan.csv")).expect("plan");
        let first = plan
            .lines()
            .nth(1)
            .and_then(|line| line.split(',').next())
            .expect("a job");
        assert!(
            stderr.contains(&format!("job {first} ")),
            "{name}: {stderr}"
        );
        for text in expected {
            assert!(stderr.contains(text), "{name}: {text} in {stderr}");
        }
        let ran: usize = runs(&run.results(name)).iter().map(Vec::len).sum();
        assert_eq!(ran, 0, "{name}: nothing started");
    }
}

/// A trainer that starts another rank (here a `sleep`) and ignores SIGTERM, as a
/// rank stuck in a collective might; it records both pids.
const STUCK_TRAINER: &str = r#"#!/bin/sh
[ "$1" = prepare ] && exit 0
job=$2
trap '' TERM
sleep 60 &
echo $! >"$job/child.pid"
wait
"#;

/// Whether `pid` is still a running process (a zombie waiting for its reaper is not).
fn running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

#[test]
fn a_second_ctrl_c_kills_the_ranks_a_trainer_started_too() {
    let run = Run::new();
    std::fs::write(&run.trainer, STUCK_TRAINER).expect("write the stuck trainer");
    let sweep = run.sweep("stuck", ", devices: 2", "grid:\n  objective: [ar]\n");
    let mut harness = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("run")
        .arg(&sweep)
        .arg("--results")
        .arg(run.results("stuck"))
        .arg("--trainer")
        .arg(&run.trainer)
        .args(["--slots", "2"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("harness starts");
    let start = std::time::Instant::now();
    let child = loop {
        let found = std::fs::read_dir(run.results("stuck").join("jobs"))
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|entry| std::fs::read_to_string(entry.path().join("child.pid")).ok());
        if let Some(pid) = found.filter(|pid| !pid.trim().is_empty()) {
            break pid.trim().to_owned();
        }
        assert!(
            start.elapsed().as_secs() < 20,
            "the fake rank never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let interrupt = || {
        let status = Command::new("kill")
            .args(["-INT", &harness.id().to_string()])
            .status();
        assert!(status.is_ok_and(|status| status.success()), "kill -INT");
    };
    interrupt();
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert!(running(&child), "SIGTERM is the trainer's to pass on");
    interrupt();
    let exit = harness.wait().expect("harness exits");
    assert_eq!(exit.code(), Some(130), "interrupted");
    let start = std::time::Instant::now();
    while running(&child) {
        assert!(
            start.elapsed().as_secs() < 5,
            "rank {child} outlived its trainer"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// devices are not in the job id, so editing them keeps the job's folder; its
/// job.yaml (what the trainer reads) follows the sweep, and the pool packs the job by
/// its new shape.
#[test]
fn a_job_follows_the_devices_the_sweep_now_asks_for() {
    let run = Run::new();
    let grid = "grid:\n  objective: [ar]\n";
    let sweep = run.sweep("edited", ", devices: 2", grid);
    assert_ok(&run.harness(&sweep, &["--slots", "2"]));
    let sweep = run.sweep("edited", "", grid);
    let jobs = run.results("edited").join("jobs");
    let folders: Vec<_> = std::fs::read_dir(&jobs).expect("jobs").flatten().collect();
    assert_eq!(folders.len(), 1, "the same job folder");
    for entry in &folders {
        let pending = "{\"state\":\"pending\",\"attempts\":1}";
        std::fs::write(entry.path().join("status.json"), pending).expect("reset the job");
    }
    let output = run.harness(&sweep, &["--slots", "1"]);
    assert_ok(&output);
    let job = std::fs::read_to_string(folders[0].path().join("job.yaml")).expect("job.yaml");
    assert!(
        !job.contains("devices"),
        "job.yaml follows the sweep: {job}"
    );
}
