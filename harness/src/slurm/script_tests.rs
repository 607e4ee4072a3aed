//! Tests of script.rs: the generated sbatch lines for each job shape, checked with
//! `bash -n`; the one-process script byte for byte.
//!
//! Length: about 620 lines of table-driven cases for the generated batch scripts,
//! executed in bash with stand-ins; one case per behaviour.

use super::*;
use std::path::PathBuf;

#[test]
fn quoting() {
    let cases = [
        ("plain", "'plain'"),
        ("it's", r"'it'\''s'"),
        ("$(touch x); `id`", "'$(touch x); `id`'"),
    ];
    for (text, expected) in cases {
        assert_eq!(shell_quote(text), expected);
    }
}

fn input<'a>(dir: &'a Path, file: &'a Path, trainer: &'a Path) -> ScriptInput<'a> {
    ScriptInput {
        sweep_name: "smoke",
        tasks: 3,
        array_file: file,
        slurm_log_dir: dir,
        trainer,
        shape: Shape::SINGLE,
        after: None,
    }
}

#[test]
fn a_script_carries_every_setting() {
    let settings = Settings {
        partition: Some("gpu".into()),
        gres: Some("gpu:1".into()),
        max_running: Some(2),
        requeue: Some(true),
        threads: Some(1),
        extra: vec!["#SBATCH --exclusive".into()],
        setup: Some("module load cuda\n".into()),
        ..Settings::default()
    };
    let dir = PathBuf::from("/r/slurm/logs");
    let file = PathBuf::from("/r/$x/array-1.txt");
    let trainer = PathBuf::from("/it's/trainer");
    let script = render(&settings, &input(&dir, &file, &trainer)).expect("renders");
    for expected in [
        "#SBATCH --array=0-2%2\n",
        "#SBATCH --output=/r/slurm/logs/%A_%a.out\n",
        "#SBATCH --partition=gpu\n",
        "#SBATCH --gres=gpu:1\n",
        "#SBATCH --requeue\n",
        "#SBATCH --exclusive\n",
        "array_file='/r/$x/array-1.txt'\n",
        "module load cuda\n",
        "exec '/it'\\''s/trainer' run \"$job\" --threads 1\n",
    ] {
        assert!(script.contains(expected), "{expected} in\n{script}");
    }
}

#[test]
fn log_paths_sbatch_cannot_read_are_refused() {
    let settings = Settings::default();
    let file = PathBuf::from("/r/array-1.txt");
    let trainer = PathBuf::from("/bin/trainer");
    for dir in ["/r s/logs", "/r%j/logs", "/r'/logs"] {
        let dir = PathBuf::from(dir);
        assert!(
            render(&settings, &input(&dir, &file, &trainer)).is_err(),
            "{dir:?}"
        );
    }
    let dir = PathBuf::from("/r$(touch${IFS}x)/logs");
    let script = render(&settings, &input(&dir, &file, &trainer)).expect("renders");
    assert!(
        script.contains("--threads \"${SLURM_CPUS_PER_TASK:-1}\""),
        "{script}"
    );
}

/// The script of docs/running.md, byte for byte: a one-process job's script is
/// what it was before data parallelism.
#[test]
fn a_single_process_script_is_unchanged() {
    let settings = Settings {
        time: Some("0:30:00".into()),
        mem: Some("1G".into()),
        cpus_per_task: Some(1),
        max_running: Some(2),
        requeue: Some(true),
        threads: Some(1),
        ..Settings::default()
    };
    let dir = PathBuf::from("/tmp/smoke-slurm/slurm/logs");
    let file = PathBuf::from("/tmp/smoke-slurm/slurm/array-1.txt");
    let trainer = PathBuf::from("/work/target-harness/debug/trainer");
    let script = render(&settings, &input(&dir, &file, &trainer)).expect("renders");
    let expected = r#"#!/bin/bash
# Sweep `smoke`: 3 jobs as one Slurm job array, written by `harness run --backend slurm`.
# Task i trains the job folder on line i+1 of /tmp/smoke-slurm/slurm/array-1.txt.
#SBATCH --job-name=smoke
#SBATCH --array=0-2%2
#SBATCH --output=/tmp/smoke-slurm/slurm/logs/%A_%a.out
#SBATCH --time=0:30:00
#SBATCH --mem=1G
#SBATCH --cpus-per-task=1
#SBATCH --requeue
set -eo pipefail

array_file='/tmp/smoke-slurm/slurm/array-1.txt'
job=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$array_file")
if [ -z "$job" ]; then
  echo "no job for task $SLURM_ARRAY_TASK_ID in $array_file" >&2
  exit 2
fi
# From here on the task writes to its job's own log, like the local backend.
exec >>"$job/log.txt" 2>&1
echo "--- slurm task ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} on $(hostname) starts \`trainer run\` at unix time $(date +%s) ---"

# exec: the trainer becomes the task, so Slurm's SIGTERM (scancel, time limit,
# preemption) reaches it: it checkpoints and exits with code 3, and a resubmitted
# or requeued task resumes from that checkpoint.
exec '/work/target-harness/debug/trainer' run "$job" --threads 1
"#;
    assert_eq!(script, expected);
}

/// The lines that depend on a job's shape, for (devices, nodes) = (1, 1), (2, 1) and
/// (4, 2), each with and without a GPU gres: each case is (devices, nodes, gres,
/// cpus_per_task, texts the script must hold, texts it must not).
#[test]
fn lines_for_each_shape() {
    type Case = (
        usize,
        usize,
        Option<&'static str>,
        Option<u32>,
        Vec<&'static str>,
        Vec<&'static str>,
    );
    let exec_srun = "exec srun --label --kill-on-bad-exit=1";
    let rendezvous = [
        "CROSSOVER_MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | sed -n 1p)\nexport CROSSOVER_MASTER_ADDR\n",
        "export CROSSOVER_MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))\n",
    ];
    let single_exec =
        "\nexec '/bin/trainer' run \"$job\" --threads \"${SLURM_CPUS_PER_TASK:-1}\"\n";
    let cases: Vec<Case> = vec![
        (
            1,
            1,
            None,
            None,
            vec![single_exec],
            vec![
                "#SBATCH --nodes",
                "#SBATCH --ntasks-per-node",
                "#SBATCH --gres",
                "srun",
                "CROSSOVER_MASTER",
            ],
        ),
        (
            1,
            1,
            Some("gpu:1"),
            Some(4),
            vec![
                "#SBATCH --gres=gpu:1\n",
                "#SBATCH --cpus-per-task=4\n",
                single_exec,
            ],
            vec!["#SBATCH --nodes", "srun", "CROSSOVER_MASTER"],
        ),
        (
            2,
            1,
            None,
            None,
            vec![
                "#SBATCH --nodes=1\n#SBATCH --ntasks-per-node=2\n",
                rendezvous[0],
                rendezvous[1],
                "exec srun --label --kill-on-bad-exit=1 --nodes=1 --ntasks-per-node=2 '/bin/trainer' run \"$job\" --threads \"${SLURM_CPUS_PER_TASK:-1}\"\n",
                "# Each job runs as 1 node x 2 devices: 2 ranks",
            ],
            vec![
                "#SBATCH --gres",
                "#SBATCH --cpus-per-task",
                "\nexec '/bin/trainer'",
            ],
        ),
        (
            2,
            1,
            Some("gpu:1"),
            Some(3),
            vec![
                "#SBATCH --nodes=1\n#SBATCH --ntasks-per-node=2\n",
                "#SBATCH --gres=gpu:2\n",
                "#SBATCH --cpus-per-task=3\n",
                rendezvous[0],
                rendezvous[1],
                "exec srun --label --kill-on-bad-exit=1 --nodes=1 --ntasks-per-node=2 --cpus-per-task=3 '/bin/trainer' run",
            ],
            vec!["#SBATCH --gres=gpu:1\n", "\nexec '/bin/trainer'"],
        ),
        (
            4,
            2,
            None,
            Some(1),
            vec![
                "#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=4\n",
                "#SBATCH --cpus-per-task=1\n",
                rendezvous[0],
                rendezvous[1],
                "exec srun --label --kill-on-bad-exit=1 --nodes=2 --ntasks-per-node=4 --cpus-per-task=1 '/bin/trainer' run",
                "# Each job runs as 2 nodes x 4 devices: 8 ranks",
            ],
            vec!["#SBATCH --gres", "\nexec '/bin/trainer'"],
        ),
        (
            4,
            2,
            Some("gpu:h100:1"),
            None,
            vec![
                "#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=4\n",
                "#SBATCH --gres=gpu:h100:4\n",
                rendezvous[0],
                rendezvous[1],
                "exec srun --label --kill-on-bad-exit=1 --nodes=2 --ntasks-per-node=4 '/bin/trainer' run \"$job\" --threads \"${SLURM_CPUS_PER_TASK:-1}\"\n",
            ],
            vec!["#SBATCH --cpus-per-task", "\nexec '/bin/trainer'"],
        ),
    ];
    let dir = PathBuf::from("/r/slurm/logs");
    let file = PathBuf::from("/r/slurm/array-1.txt");
    let trainer = PathBuf::from("/bin/trainer");
    for (devices, nodes, gres, cpus, present, absent) in cases {
        let settings = Settings {
            gres: gres.map(str::to_owned),
            cpus_per_task: cpus,
            ..Settings::default()
        };
        let input = ScriptInput {
            shape: Shape { devices, nodes },
            ..input(&dir, &file, &trainer)
        };
        let script = render(&settings, &input).expect("renders");
        let case = format!("devices {devices}, nodes {nodes}, gres {gres:?}, cpus {cpus:?}");
        for line in present {
            assert!(script.contains(line), "{case}: {line:?} in\n{script}");
        }
        for line in absent {
            assert!(!script.contains(line), "{case}: no {line:?} in\n{script}");
        }
        assert_eq!(
            script.matches(exec_srun).count(),
            usize::from(devices * nodes > 1),
            "{case}"
        );
        let exports = script.find("export CROSSOVER_MASTER_PORT");
        let srun = script.find(exec_srun);
        assert!(
            exports < srun || srun.is_none(),
            "{case}: rendezvous before srun"
        );
        check_syntax(&script);
    }
}

#[test]
fn gpu_gres_per_node() {
    let cases = [
        ("gpu:1", 1, "gpu:1"),
        ("gpu:2", 1, "gpu:2"),
        ("gpu:1", 4, "gpu:4"),
        ("gpu:a100:1", 2, "gpu:a100:2"),
        ("gpu:8", 4, "gpu:8"),
        ("nic:1", 4, "nic:1"),
        ("gpu", 4, "gpu"),
    ];
    for (gres, devices, expected) in cases {
        assert_eq!(gres_per_node(gres, devices), expected, "{gres} {devices}");
    }
}

/// `bash -n`: the script parses as shell (sbatch would run it with bash).
fn check_syntax(script: &str) {
    let folder = tempfile::tempdir().expect("temp dir");
    let path = folder.path().join("array.sh");
    std::fs::write(&path, script).expect("write script");
    let output = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "{}\n{script}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn arrays_wait_for_the_prepare_job_which_asks_for_no_gpu() {
    let dir = PathBuf::from("/r/slurm/logs");
    let file = PathBuf::from("/r/slurm/array-1.txt");
    let trainer = PathBuf::from("/bin/trainer");
    let settings = Settings {
        partition: Some("gpu".into()),
        gres: Some("gpu:1".into()),
        time: Some("48:00:00".into()),
        cpus_per_task: Some(16),
        setup: Some("module load cuda\n".into()),
        signal_lead: 120,
        ..Settings::default()
    };
    let waiting = ScriptInput {
        after: Some("4242"),
        ..input(&dir, &file, &trainer)
    };
    let script = render(&settings, &waiting).expect("renders");
    for expected in [
        "#SBATCH --dependency=afterok:4242\n",
        "#SBATCH --kill-on-invalid-dep=yes\n",
    ] {
        assert!(script.contains(expected), "{expected} in\n{script}");
    }
    let alone = render(&settings, &input(&dir, &file, &trainer)).expect("renders");
    assert!(!alone.contains("--dependency"), "{alone}");

    let folders = [PathBuf::from("/r/jobs/a"), PathBuf::from("/r/it's/b")];
    let prepare = render_prepare(
        &settings,
        &PrepareInput {
            sweep_name: "smoke",
            slurm_log_dir: &dir,
            trainer: &trainer,
            folders: &folders,
        },
    )
    .expect("renders");
    for expected in [
        "#SBATCH --job-name=smoke-prepare\n",
        "#SBATCH --output=/r/slurm/logs/prepare-%j.out\n",
        "#SBATCH --partition=gpu\n",
        "#SBATCH --time=48:00:00\n",
        "#SBATCH --cpus-per-task=16\n",
        "module load cuda\n",
        "#SBATCH --signal=B:USR1@120\n",
        "#SBATCH --requeue\n",
        "'/bin/trainer' prepare '/r/jobs/a' &\n",
        "'/bin/trainer' prepare '/r/it'\\''s/b' &\n",
    ] {
        assert!(prepare.contains(expected), "{expected} in\n{prepare}");
    }
    assert!(!prepare.contains("gres"), "{prepare}");
    let check = std::process::Command::new("bash")
        .args(["-n", "-c", &prepare])
        .status()
        .expect("bash");
    assert!(check.success(), "{prepare}");
}

#[test]
fn time_limits_signal_the_task_which_checkpoints_and_requeues_itself() {
    let dir = PathBuf::from("/r/slurm/logs");
    let file = PathBuf::from("/r/slurm/array-1.txt");
    let trainer = PathBuf::from("/bin/trainer");
    let settings = Settings {
        signal_lead: 120,
        max_requeues: 5,
        ..Settings::default()
    };
    for shape in [
        Shape::SINGLE,
        Shape {
            devices: 2,
            nodes: 1,
        },
    ] {
        let script = render(
            &settings,
            &ScriptInput {
                shape,
                ..input(&dir, &file, &trainer)
            },
        )
        .expect("renders");
        for expected in [
            "#SBATCH --signal=B:USR1@120\n",
            "#SBATCH --requeue\n",
            if shape == Shape::SINGLE {
                "trap 'limit=1; kill -TERM \"$pid\" 2>/dev/null' USR1\n"
            } else {
                "trap 'limit=1; scancel --signal=TERM \"${SLURM_JOB_ID}.0\" 2>/dev/null' USR1\n"
            },
            "run \"$job\" --threads \"${SLURM_CPUS_PER_TASK:-1}\" &\n",
            "code=0; wait \"$pid\" || code=$?\n",
            "if [ \"$code\" = 3 ] || grep -q '\"state\": *\"cancelled\"' \"$job/status.json\" 2>/dev/null; then stopped=1; fi\n",
            "if [ \"$limit\" = 1 ] && [ \"$stopped\" = 1 ]; then\n",
            "if [ \"$restarts\" -lt 5 ]; then\n",
            "scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"\n",
            "exit \"$code\"\n",
        ] {
            assert!(
                script.contains(expected),
                "{shape}: {expected} in\n{script}"
            );
        }
        assert!(
            !script.contains("exec '/bin/trainer'") && !script.contains("exec srun"),
            "{shape}: the script stays to requeue\n{script}"
        );
        let check = std::process::Command::new("bash")
            .args(["-n", "-c", &script])
            .status()
            .expect("bash");
        assert!(check.success(), "{script}");
    }
    // --no-requeue is kept when asked for (the trap still checkpoints; the requeue
    // then fails and the task ends as the limit leaves it, resumable by harness run).
    let refused = Settings {
        requeue: Some(false),
        ..settings.clone()
    };
    let script = render(&refused, &input(&dir, &file, &trainer)).expect("renders");
    assert!(script.contains("#SBATCH --no-requeue\n"), "{script}");
    // Lead 0: no signal, the trainer is exec'd as before.
    let off = render(&Settings::default(), &input(&dir, &file, &trainer)).expect("renders");
    assert!(
        !off.contains("--signal") && off.contains("exec '/bin/trainer'"),
        "{off}"
    );
}

/// How the stand-in trainer ends.
#[derive(Clone, Copy)]
enum Ending {
    /// At once, with this exit code.
    Exit(i32),
    /// When TERM comes, with this exit code.
    OnTerm(i32),
}

/// A script run in bash with stand-in tools first on PATH: `scontrol` records its
/// calls, and a stand-in trainer writes the folder it is given to `started`, then ends
/// as its `Ending` says.
struct StandIns {
    dir: tempfile::TempDir,
}

impl StandIns {
    fn new(ending: Ending) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let stand_ins = Self { dir };
        let calls = stand_ins.path("scontrol.log");
        stand_ins.tool("scontrol", &format!("echo \"$*\" >> '{}'", calls.display()));
        let started = stand_ins.path("started");
        let ending = match ending {
            Ending::OnTerm(code) => {
                format!("trap 'exit {code}' TERM\nwhile :; do sleep 0.05; done")
            }
            Ending::Exit(code) => format!("exit {code}"),
        };
        stand_ins.tool(
            "fake-trainer",
            &format!("echo \"$2\" >> '{}'\n{ending}", started.display()),
        );
        stand_ins
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn tool(&self, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let bin = self.path("bin");
        std::fs::create_dir_all(&bin).expect("bin");
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/usr/bin/env bash\n{body}\n")).expect("tool");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    /// Run `script` with `env`, send it `signal` once the stand-in trainer has
    /// started, and return its exit code, scontrol's calls and the folders started.
    fn run(
        &self,
        script: &str,
        env: &[(&str, String)],
        signal: Option<&str>,
    ) -> (Option<i32>, String, String) {
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = std::process::Command::new("bash")
            .args(["-c", script])
            .env("PATH", path)
            .envs(env.iter().map(|(key, value)| (*key, value)))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("bash");
        let started = self.path("started");
        let start = std::time::Instant::now();
        while !started.exists() {
            assert!(
                start.elapsed().as_secs() < 20,
                "the stand-in trainer never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if let Some(signal) = signal {
            // The trap is set before the trainer starts, so it is in place by now.
            let status = std::process::Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(status.success());
        }
        let status = child.wait().expect("script ends");
        let read = |name: &str| std::fs::read_to_string(self.path(name)).unwrap_or_default();
        (status.code(), read("scontrol.log"), read("started"))
    }
}

/// The retry rule, executed: the time-limit block of a one-process script runs in
/// bash with a stand-in trainer (it exits with a chosen code, on TERM or at once) and
/// a stand-in `scontrol` that records its calls. Only a trainer stopped with its
/// checkpoint (code 3) after the limit's USR1, with requeues left, is requeued; a
/// crash after USR1, a failure without any signal, TERM (scancel, preemption) and a
/// task out of requeues end with the trainer's own code and no requeue.
#[test]
fn only_a_checkpointed_stop_at_the_time_limit_is_requeued() {
    let settings = Settings {
        max_requeues: 2,
        ..Settings::default()
    };
    // (signal sent to the script, trainer's exit code, SLURM_RESTART_COUNT,
    //  requeued, the script's exit code)
    let cases = [
        (Some("USR1"), 3, 0, true, 0),
        (Some("USR1"), 3, 1, true, 0),
        (Some("USR1"), 1, 0, false, 1),
        (Some("USR1"), 137, 0, false, 137),
        (None, 1, 0, false, 1),
        (None, 0, 0, false, 0),
        (Some("TERM"), 3, 0, false, 3),
        (Some("USR1"), 3, 2, false, 3),
    ];
    for (signal, code, restarts, requeued, exit) in cases {
        let stand_ins = StandIns::new(if signal.is_some() {
            Ending::OnTerm(code)
        } else {
            Ending::Exit(code)
        });
        let script = format!(
            "job='{}'\n{}",
            stand_ins.path("job").display(),
            time_limit_block(&settings, "fake-trainer run /job", false)
        );
        let env = [
            ("SLURM_RESTART_COUNT", restarts.to_string()),
            ("SLURM_ARRAY_JOB_ID", "41".to_owned()),
            ("SLURM_ARRAY_TASK_ID", "2".to_owned()),
        ];
        let (status, calls, _) = stand_ins.run(&script, &env, signal);
        let case = format!("{signal:?}, trainer exit {code}, {restarts} restarts");
        assert_eq!(status, Some(exit), "{case}: the script's exit code");
        assert_eq!(
            calls.contains("requeue 41_2"),
            requeued,
            "{case}: scontrol calls {calls:?}"
        );
    }
}

/// The prepare job's time limit, executed: its body runs in bash with a stand-in
/// trainer (it prepares until TERM, or exits at once with a code) and a stand-in
/// `scontrol`. USR1 stops the preparer and requeues the job while requeues are left,
/// else the job fails (its arrays are then cancelled, and `harness run` resubmits);
/// without a signal a failed corpus is reported and the job goes on to the next.
#[test]
fn a_prepare_job_at_its_time_limit_requeues_itself() {
    let settings = Settings {
        max_requeues: 2,
        ..Settings::default()
    };
    // (USR1 sent, the stand-in's exit code, SLURM_RESTART_COUNT, requeued, exit code,
    //  folders prepared)
    let cases = [
        (true, 0, 0, true, 0, 1),
        (true, 0, 2, false, 1, 1),
        (false, 0, 0, false, 0, 2),
        (false, 1, 0, false, 0, 2),
    ];
    for (signal, code, restarts, requeued, exit, prepared) in cases {
        let stand_ins = StandIns::new(if signal {
            Ending::OnTerm(143)
        } else {
            Ending::Exit(code)
        });
        let folders = [PathBuf::from("/r/jobs/a"), PathBuf::from("/r/jobs/b")];
        let script = prepare_block(&settings, "fake-trainer", &folders);
        let env = [
            ("SLURM_RESTART_COUNT", restarts.to_string()),
            ("SLURM_JOB_ID", "77".to_owned()),
        ];
        let (status, calls, started) = stand_ins.run(&script, &env, signal.then_some("USR1"));
        let case = format!("USR1 {signal}, exit {code}, {restarts} restarts");
        assert_eq!(status, Some(exit), "{case}");
        assert_eq!(calls.contains("requeue 77"), requeued, "{case}: {calls:?}");
        assert_eq!(started.lines().count(), prepared, "{case}: {started:?}");
    }
}
