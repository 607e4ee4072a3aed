//! `harness run --backend slurm`, `status` and `cancel` against a real single-node
//! Slurm cluster (`scripts/slurm-local.sh up`, idempotent, run by the first test),
//! with the real trainer on sweeps trimmed to a second or two per job.
//!
//! The cluster needs root and Debian packages; set CROSSOVER_SKIP_SLURM=1 to skip
//! these tests where that is impossible.
//!
//! Length: about 620 lines. One binary for every test that needs the local cluster,
//! which it brings up once.

use e2e::{binary, csv_column, run_ok, workspace_root};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One test at a time: the cap and GPU tests read the whole cluster's queue.
static SERIAL: Mutex<()> = Mutex::new(());

/// SLURM_CONF of the local cluster, started on first use; None when skipped.
fn cluster() -> Option<&'static str> {
    static CONF: OnceLock<Option<String>> = OnceLock::new();
    CONF.get_or_init(|| {
        if std::env::var_os("CROSSOVER_SKIP_SLURM").is_some() {
            return None;
        }
        let script = workspace_root().join("scripts/slurm-local.sh");
        let output = run_ok(Command::new(script).arg("up").stdin(Stdio::null()));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let env_file = stdout
            .lines()
            .last()
            .expect("slurm-local.sh prints its env file");
        let env = std::fs::read_to_string(env_file.trim()).expect("read the env file");
        let conf = env
            .lines()
            .find_map(|line| line.strip_prefix("export SLURM_CONF="))
            .expect("SLURM_CONF in the env file");
        Some(conf.trim().to_owned())
    })
    .as_deref()
}

/// The cluster and the lock, or None (test skipped).
fn setup() -> Option<(std::sync::MutexGuard<'static, ()>, &'static str)> {
    let serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match cluster() {
        Some(conf) => Some((serial, conf)),
        None => {
            eprintln!("CROSSOVER_SKIP_SLURM is set: skipped");
            None
        }
    }
}

/// A smoke-like sweep (nano model, `sotu`, byte tokens): `rest` is appended.
fn write_sweep(folder: &Path, name: &str, rest: &str) -> PathBuf {
    write_sweep_training(folder, name, "", rest)
}

/// `write_sweep` with more `train` fields (`train_extra`, e.g. `, devices: 2`).
fn write_sweep_training(folder: &Path, name: &str, train_extra: &str, rest: &str) -> PathBuf {
    let text = format!(
        "name: {name}
base:
  seed: 0
  objective: ar
  model: {{ preset: nano }}
  data: {{ corpus: sotu, tokenizer: bytes, seq_len: 64, unique_tokens: 12k, val_tokens: 8k }}
  train: {{ epochs: 1, batch_size: 16, lr: 3e-3, warmup: 5%, log_every: 2{train_extra} }}
  eval: {{ at: log2, tasks: [val_loss], val_loss_tokens: 4k, dlm_draws: 2 }}
{rest}"
    );
    let path = folder.join("sweep.yaml");
    std::fs::write(&path, text).expect("write sweep");
    path
}

fn harness(conf: &str, cwd: &Path) -> Command {
    binary("trainer");
    let mut command = Command::new(binary("harness"));
    command
        .env("SLURM_CONF", conf)
        .current_dir(cwd)
        .stdin(Stdio::null());
    command
}

fn submit(conf: &str, cwd: &Path, sweep: &Path, results: &Path, flags: &[&str]) -> Output {
    run_ok(
        harness(conf, cwd)
            .args(["run", "--backend", "slurm", "--threads", "1"])
            .arg(sweep)
            .arg("--results")
            .arg(results)
            .args(flags),
    )
}

fn status(conf: &str, results: &Path) -> Vec<Value> {
    let output = run_ok(
        harness(conf, Path::new("/"))
            .arg("status")
            .arg(results)
            .arg("--json"),
    );
    let value: Value = serde_json::from_slice(&output.stdout).expect("status --json is JSON");
    value["jobs"].as_array().cloned().unwrap_or_default()
}

fn slurm_active(job: &Value) -> bool {
    // The harness's own rule (SIGNALING, REQUEUE_FED and other transient states count).
    job["slurm"]["active"]
        .as_bool()
        .expect("harness status --json gives each Slurm record `active`")
}

/// Poll `harness status` until every job has a Slurm record and none is queued or running.
fn wait_for_slurm(conf: &str, results: &Path) -> Vec<Value> {
    wait_for_slurm_within(conf, results, Duration::from_secs(120))
}

fn wait_for_slurm_within(conf: &str, results: &Path, limit: Duration) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let jobs = status(conf, results);
        if jobs
            .iter()
            .all(|job| job["slurm"].is_object() && !slurm_active(job))
        {
            return jobs;
        }
        assert!(start.elapsed() < limit, "timed out: {jobs:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn states(jobs: &[Value]) -> Vec<String> {
    jobs.iter()
        .map(|job| job["state"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn job_folder(results: &Path, job: &Value) -> PathBuf {
    results
        .join("jobs")
        .join(job["id"].as_str().unwrap_or_default())
}

/// Run `sweep` on the local pool (`--slots slots`) and through Slurm, wait for Slurm,
/// and return (local results, Slurm results, Slurm's jobs).
fn local_and_slurm(
    conf: &str,
    folder: &Path,
    sweep: &Path,
    slots: &str,
) -> (PathBuf, PathBuf, Vec<Value>) {
    let local = run_locally(conf, folder, sweep, slots);
    let slurm = folder.join("slurm");
    let output = submit(conf, folder, sweep, &slurm, &[]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("submitted"));
    let jobs = wait_for_slurm(conf, &slurm);
    (local, slurm, jobs)
}

/// The sweep run by the local pool into `<folder>/local`, one LibTorch thread a slot.
fn run_locally(conf: &str, folder: &Path, sweep: &Path, slots: &str) -> PathBuf {
    let local = folder.join("local");
    run_ok(
        harness(conf, folder)
            .arg("run")
            .arg(sweep)
            .arg("--results")
            .arg(&local)
            .args(["--slots", slots, "--threads", "1"]),
    );
    local
}

/// The same (file, column) values in a job's folder under both results.
fn assert_same_logs(slurm: &Path, local: &Path, job: &Value, columns: &[(&str, &str)]) {
    let (a, b) = (job_folder(slurm, job), job_folder(local, job));
    for (file, column) in columns {
        let (through_slurm, here) = (
            csv_column(&a.join(file), column),
            csv_column(&b.join(file), column),
        );
        assert!(!here.is_empty());
        assert_eq!(through_slurm, here, "{file} {column} of {}", job["id"]);
    }
}

#[test]
fn a_sweep_through_slurm_equals_a_local_run() {
    let Some((_serial, conf)) = setup() else {
        return;
    };
    let folder = tempfile::tempdir().expect("temp dir");
    let sweep = write_sweep(folder.path(), "same", "grid:\n  objective: [ar, dlm]\n");
    let (local, slurm, jobs) = local_and_slurm(conf, folder.path(), &sweep, "1");
    assert_eq!(states(&jobs), ["done", "done"], "{jobs:?}");
    let local_jobs = status(conf, &local);
    let ids = |jobs: &[Value]| jobs.iter().map(|job| job["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&jobs), ids(&local_jobs), "same job ids");
    for job in &jobs {
        assert_same_logs(
            &slurm,
            &local,
            job,
            &[("train.csv", "loss"), ("eval.csv", "value")],
        );
    }
    let script = std::fs::read_to_string(slurm.join("slurm/array-1.sh")).expect("script kept");
    assert!(script.contains("#SBATCH --array=0-1\n"), "{script}");
    assert!(script.contains("--threads 1"), "{script}");
    // The corpus was prepared once, by its own Slurm job, which the array waited for.
    assert!(script.contains("#SBATCH --dependency=afterok:"), "{script}");
    let prepare =
        std::fs::read_to_string(slurm.join("slurm/prepare-1.sh")).expect("prepare script");
    assert_eq!(
        prepare.matches(" prepare '").count(),
        1,
        "one corpus: {prepare}"
    );
    let logs: Vec<String> = std::fs::read_dir(slurm.join("slurm/logs"))
        .expect("logs")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("prepare-"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = std::fs::read_to_string(slurm.join("slurm/logs").join(&logs[0])).expect("log");
    assert!(log.contains("tokens to train on"), "{log}");
}

#[test]
fn a_failing_task_reports_its_exit_code_and_a_cancelled_array_finishes_on_rerun() {
    let Some((_serial, conf)) = setup() else {
        return;
    };
    let folder = tempfile::tempdir().expect("temp dir");
    let grid = "grid:\n  data.corpus: [sotu, /nonexistent/corpus.txt]\n";
    let sweep = write_sweep(folder.path(), "failing", grid);
    let results = folder.path().join("failing");
    submit(conf, folder.path(), &sweep, &results, &[]);
    let jobs = wait_for_slurm(conf, &results);
    assert_eq!(states(&jobs), ["done", "failed"], "{jobs:?}");
    assert_eq!(jobs[1]["slurm"]["state"], "FAILED");
    assert_eq!(jobs[1]["slurm"]["exit_code"], 1);
    // A real failure is not retried by the script (the retry rule, executed with every
    // case in script_tests.rs): the task ran once.
    assert_eq!(
        jobs[1]["slurm"]["restarts"].as_u64().unwrap_or(0),
        0,
        "{jobs:?}"
    );
    let error = jobs[1]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("exit code 1") && error.contains("nonexistent"),
        "{error}"
    );

    // One task at a time, long enough to be cancelled mid-run.
    let rest = "grid:\n  objective: [ar, dlm, { ar_masked: 0.3 }]\n  train.epochs: [16]\nslurm:\n  max_running: 1\n";
    let sweep = write_sweep(folder.path(), "cancel", rest);
    let results = folder.path().join("cancel");
    submit(conf, folder.path(), &sweep, &results, &[]);
    let start = Instant::now();
    while status(conf, &results)[0]["step"].as_u64().unwrap_or(0) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the first task never ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let cancel = run_ok(harness(conf, folder.path()).arg("cancel").arg(&results));
    assert!(String::from_utf8_lossy(&cancel.stdout).contains("scancel"));
    let jobs = wait_for_slurm(conf, &results);
    assert_eq!(states(&jobs), ["cancelled"; 3], "{jobs:?}");

    let again = submit(conf, folder.path(), &sweep, &results, &[]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("submitted 3 of 3 jobs"));
    let jobs = wait_for_slurm(conf, &results);
    assert_eq!(states(&jobs), ["done"; 3], "{jobs:?}");
    assert_eq!(
        jobs[0]["attempts"], 2,
        "the cancelled job resumed: {jobs:?}"
    );
    let nothing = submit(conf, folder.path(), &sweep, &results, &[]);
    assert!(String::from_utf8_lossy(&nothing.stdout).contains("nothing to submit"));
}

#[test]
fn an_array_larger_than_its_cap_respects_it() {
    let Some((_serial, conf)) = setup() else {
        return;
    };
    let folder = tempfile::tempdir().expect("temp dir");
    let sweep = write_sweep(folder.path(), "capped", "grid:\n  seed: [0, 1, 2, 3, 4]\n");
    let results = folder.path().join("capped");
    let output = submit(
        conf,
        folder.path(),
        &sweep,
        &results,
        &["--max-running", "2"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let array = stdout
        .split("Slurm array ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("array id")
        .to_owned();
    let mut most = 0;
    let start = Instant::now();
    loop {
        let queue = run_ok(
            Command::new("squeue")
                .env("SLURM_CONF", conf)
                .args(["-h", "-t", "all", "-j", &array, "-o", "%i|%T"]),
        );
        let text = String::from_utf8_lossy(&queue.stdout).into_owned();
        let running = text
            .lines()
            .filter(|line| line.ends_with("|RUNNING"))
            .count();
        most = most.max(running);
        let active = ["PENDING", "RUNNING", "COMPLETING", "CONFIGURING"];
        if !text.is_empty() && !active.iter().any(|state| text.contains(state)) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(most, 2, "at most the cap, and the cap was reached");
    assert_eq!(states(&status(conf, &results)), ["done"; 5]);
}

#[test]
fn shell_metacharacters_never_run() {
    let Some((_serial, conf)) = setup() else {
        return;
    };
    let folder = tempfile::tempdir().expect("temp dir");
    let marker = folder.path().join("pwned");
    let marker_text = marker.display().to_string();
    let grid = "grid:\n  objective: [ar]\n";
    let refused = |sweep: &Path, flags: &[&str], expected: &str| {
        let output = harness(conf, folder.path())
            .args(["run", "--backend", "slurm"])
            .arg(sweep)
            .arg("--results")
            .arg(folder.path().join("refused"))
            .args(flags)
            .output()
            .expect("harness runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(expected),
            "{stderr}"
        );
        assert!(
            !folder.path().join("refused/slurm").exists(),
            "nothing submitted"
        );
    };
    // A name is a folder and a Slurm job name: refused.
    let sweep = write_sweep(folder.path(), &format!("\"x$(touch {marker_text})\""), grid);
    refused(&sweep, &[], "must be 1-100 letters");
    // An extra option from the sweep file or a flag: refused before anything is written.
    let extra = format!("{grid}slurm:\n  extra: ['#SBATCH --comment=$(touch {marker_text})']\n");
    let sweep = write_sweep(folder.path(), "extra", &extra);
    refused(&sweep, &[], "shell metacharacters are refused");
    let sweep = write_sweep(folder.path(), "flags", grid);
    refused(
        &sweep,
        &["--partition", "debug;touch pwned"],
        "slurm.partition",
    );
    refused(
        &sweep,
        &["--sbatch-line", "#SBATCH --comment=`touch pwned`"],
        "metacharacters",
    );
    // A results path full of them is quoted: the job runs, nothing else does.
    let results = folder.path().join("r$(touch${IFS}pwned);touch${IFS}pwned");
    submit(conf, folder.path(), &sweep, &results, &[]);
    assert_eq!(states(&wait_for_slurm(conf, &results)), ["done"]);
    let found = Command::new("find")
        .arg(folder.path())
        .args(["-name", "pwned*"])
        .output()
        .expect("find runs");
    assert!(
        found.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&found.stdout)
    );
}

#[test]
fn gres_gpu_tasks_receive_distinct_fake_gpus() {
    let Some((_serial, conf)) = setup() else {
        return;
    };
    let folder = tempfile::tempdir().expect("temp dir");
    // The GPUs are fake, so the jobs train on the CPU on purpose (`device: auto` would
    // refuse: it sees CUDA_VISIBLE_DEVICES and no CUDA); the setup preamble records the
    // device, and waits so both tasks hold their GPU at once.
    let rest = "grid:\n  objective: [ar, dlm]\nslurm:\n  gres: gpu:1\n  setup: |\n    echo \"gpu=$CUDA_VISIBLE_DEVICES\"\n    sleep 2\n";
    let sweep = write_sweep_training(folder.path(), "gpus", ", device: cpu", rest);
    let results = folder.path().join("gpus");
    submit(conf, folder.path(), &sweep, &results, &[]);
    let jobs = wait_for_slurm(conf, &results);
    assert_eq!(states(&jobs), ["done", "done"], "{jobs:?}");
    let mut devices: Vec<String> = jobs
        .iter()
        .map(|job| {
            let log = std::fs::read_to_string(job_folder(&results, job).join("log.txt"))
                .expect("job log");
            log.lines()
                .find_map(|line| line.strip_prefix("gpu="))
                .expect("the device line")
                .to_owned()
        })
        .collect();
    devices.sort();
    assert_eq!(devices, ["0", "1"]);
}

/// A data-parallel job (`train.devices: 2`) through Slurm runs as a 2-task step
/// (`--ntasks-per-node=2`, ranks started by `srun`, Gloo on the CPU) to completion,
/// and its losses and evaluations equal the same job run by the local pool, where the
/// trainer starts its second rank itself.
#[test]
fn a_two_task_job_through_slurm_equals_the_local_two_rank_run() {
    let Some((_serial, conf)) = setup() else {
        return;
    };
    let folder = tempfile::tempdir().expect("temp dir");
    let sweep = write_sweep_training(folder.path(), "ranks", ", devices: 2", "");
    let (local, slurm, jobs) = local_and_slurm(conf, folder.path(), &sweep, "2");
    assert_eq!(states(&jobs), ["done"], "{jobs:?}");
    let columns = [
        ("train.csv", "loss"),
        ("train.csv", "grad_norm"),
        ("eval.csv", "value"),
    ];
    assert_same_logs(&slurm, &local, &jobs[0], &columns);
    let script = std::fs::read_to_string(slurm.join("slurm/array-1.sh")).expect("script kept");
    assert!(script.contains("--ntasks-per-node=2"), "{script}");
    assert!(script.contains("srun"), "{script}");
}

/// A fake trainer for the multi-rank script: each rank appends what Slurm and the
/// script told it, prints a line (to the job's log.txt), holds on for a second so the ranks overlap, and rank 0 marks the
/// job done. (The real trainer's ranks are tested once it has them.)
const FAKE_RANK: &str = r#"#!/bin/sh
# Called by srun as: trainer run <job-dir> --threads N (and by the prepare job as
# `trainer prepare <job-dir>`, which has nothing to do here)
[ "$1" = prepare ] && exit 0
job=$2
echo "rank=${SLURM_PROCID-} ntasks=${SLURM_NTASKS-} local=${SLURM_LOCALID-} cpus=${SLURM_CPUS_PER_TASK-} gpus=${CUDA_VISIBLE_DEVICES-} addr=${CROSSOVER_MASTER_ADDR-} port=${CROSSOVER_MASTER_PORT-}" >>"$job/ranks.txt"
echo "output of rank ${SLURM_PROCID-}"
sleep 1
if [ "${SLURM_PROCID:-0}" = 0 ]; then
  printf '{"state":"done","attempts":1}\n' >"$job/status.json"
fi
"#;

#[test]
fn a_2_device_job_runs_as_2_srun_tasks_with_one_rendezvous() {
    let Some((_serial, conf)) = setup() else {
        return;
    };
    let folder = tempfile::tempdir().expect("temp dir");
    let trainer = folder.path().join("trainer");
    std::fs::write(&trainer, FAKE_RANK).expect("write the fake trainer");
    run_ok(Command::new("chmod").arg("+x").arg(&trainer));
    // Two shapes: two arrays. 2 tasks x 2 CPUs fill the local node's 4 CPUs, and
    // `gpu:1` becomes `gpu:2` for the 2-device job (the cluster's two fake GPUs).
    let rest = "zip:\n  objective: [ar, dlm]\n  train.devices: [1, 2]\nslurm:\n  gres: gpu:1\n  cpus_per_task: 2\n";
    let sweep = write_sweep(folder.path(), "ranks", rest);
    let results = folder.path().join("ranks");
    let output = submit(
        conf,
        folder.path(),
        &sweep,
        &results,
        &["--trainer", &trainer.to_string_lossy()],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("submitted 1 of 2 jobs as Slurm array"),
        "{stdout}"
    );
    assert!(
        stdout.contains("submitted 1 of 2 jobs (1 node x 2 devices each) as Slurm array"),
        "{stdout}"
    );
    let script = std::fs::read_to_string(results.join("slurm/array-2.sh")).expect("script");
    for line in [
        "#SBATCH --nodes=1\n",
        "#SBATCH --ntasks-per-node=2\n",
        "#SBATCH --gres=gpu:2\n",
        "srun --label --kill-on-bad-exit=1 --nodes=1 --ntasks-per-node=2 --cpus-per-task=2 ",
        "#SBATCH --signal=B:USR1@120\n",
    ] {
        assert!(script.contains(line), "{line} in\n{script}");
    }
    let jobs = wait_for_slurm(conf, &results);
    assert_eq!(states(&jobs), ["done", "done"], "{jobs:?}");
    let log = std::fs::read_to_string(job_folder(&results, &jobs[1]).join("ranks.txt"))
        .expect("the ranks' lines");
    let mut lines: Vec<&str> = log.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines.len(), 2, "{log}");
    let port = |line: &str| {
        line.rsplit_once("port=")
            .and_then(|(_, port)| port.parse::<u32>().ok())
            .unwrap_or(0)
    };
    for (rank, line) in lines.iter().enumerate() {
        let expected =
            format!("rank={rank} ntasks=2 local={rank} cpus=2 gpus=0,1 addr=localhost port=");
        assert!(line.starts_with(&expected), "{expected} in\n{log}");
        assert!((20000..40000).contains(&port(line)), "{log}");
    }
    assert_eq!(port(lines[0]), port(lines[1]), "one rendezvous: {log}");
    // Both ranks write to the job's log.txt, each line labelled with its rank.
    let log = std::fs::read_to_string(job_folder(&results, &jobs[1]).join("log.txt"))
        .expect("the job's log");
    for rank in 0..2 {
        let line = format!("{rank}: output of rank {rank}");
        assert!(
            log.lines().any(|l| l.trim_start() == line),
            "{line} in\n{log}"
        );
    }
}

/// Issue 27: a job that needs more than its time limit finishes by itself. Slurm
/// signals the task (USR1) `signal_lead` seconds before its 2-minute limit (its
/// controller checks every 30 s or so, so between 20 and 50 s into the task here;
/// with a lead of 75 s a quiet Sapphire Rapids finished the job before any signal);
/// the trainer checkpoints and the task requeues itself; Slurm starts it again about
/// two minutes later (its fixed delay for requeued jobs) and it resumes. The job's
/// 60-90 s of training (machine-dependent) takes two to four allocations (4-12 minutes
/// in all), and its logs equal a local run's.
#[test]
fn a_job_longer_than_its_time_limit_requeues_itself_to_the_end() {
    let Some((_serial, conf)) = setup() else {
        return;
    };
    let folder = tempfile::tempdir().expect("temp dir");
    let rest = "grid:\n  train.epochs: [255]\nslurm:\n  time: \"2\"\n  signal_lead: 100\n";
    let sweep = write_sweep(folder.path(), "limit", rest);
    let local = run_locally(conf, folder.path(), &sweep, "1");
    let slurm = folder.path().join("slurm");
    submit(conf, folder.path(), &sweep, &slurm, &[]);
    let script = std::fs::read_to_string(slurm.join("slurm/array-1.sh")).expect("script");
    assert!(script.contains("#SBATCH --signal=B:USR1@100\n"), "{script}");
    let jobs = wait_for_slurm_within(conf, &slurm, Duration::from_secs(1500));
    assert_eq!(states(&jobs), ["done"], "{jobs:?}");
    let restarts = jobs[0]["slurm"]["restarts"].as_u64().unwrap_or(0);
    assert!(
        restarts >= 1,
        "never requeued: the test cannot tell: {jobs:?}"
    );
    let log = std::fs::read_to_string(job_folder(&slurm, &jobs[0]).join("log.txt")).expect("log");
    assert_eq!(
        log.matches("time limit near, checkpointed; requeued")
            .count() as u64,
        restarts,
        "{log}"
    );
    assert_same_logs(
        &slurm,
        &local,
        &jobs[0],
        &[("train.csv", "loss"), ("eval.csv", "value")],
    );
}

/// Issue 27, the same for a 2-task job: USR1 reaches the batch script, which signals
/// both ranks through Slurm (`scancel --signal=TERM` on the srun step); rank 0 writes
/// the checkpoint while rank 1 waits for it, both exit with code 3, and the task
/// requeues itself and resumes on 2 ranks again, ending with a local 2-rank run's logs.
#[test]
fn a_two_task_job_longer_than_its_time_limit_requeues_itself_to_the_end() {
    let Some((_serial, conf)) = setup() else {
        return;
    };
    let folder = tempfile::tempdir().expect("temp dir");
    let rest = "grid:\n  train.epochs: [405]\nslurm:\n  time: \"2\"\n  signal_lead: 100\n";
    let sweep = write_sweep_training(folder.path(), "ranks-limit", ", devices: 2", rest);
    let local = run_locally(conf, folder.path(), &sweep, "2");
    let slurm = folder.path().join("slurm");
    submit(conf, folder.path(), &sweep, &slurm, &[]);
    let jobs = wait_for_slurm_within(conf, &slurm, Duration::from_secs(1500));
    assert_eq!(states(&jobs), ["done"], "{jobs:?}");
    let restarts = jobs[0]["slurm"]["restarts"].as_u64().unwrap_or(0);
    assert!(
        restarts >= 1,
        "never requeued: the test cannot tell: {jobs:?}"
    );
    assert_same_logs(
        &slurm,
        &local,
        &jobs[0],
        &[
            ("train.csv", "loss"),
            ("train.csv", "grad_norm"),
            ("eval.csv", "value"),
        ],
    );
}
