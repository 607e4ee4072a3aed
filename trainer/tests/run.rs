//! Whole jobs through `trainer::run`: resume equivalence, divergence, and the errors a
//! user meets (missing corpus, corpus too small, tokenizer changed under a checkpoint,
//! unwritable run folder).
//!
//! Length: about 1,000 lines. One test file is one binary linked against LibTorch;
//! the run folder's tests share one build and one set of fixtures here.

use std::path::{Path, PathBuf};
use trainer::runfolder::{self, State};
use trainer::{RunOptions, TrainerError};

mod common;
use common::{deterministic_columns, write_corpus};

/// LibTorch's generator is global to the process (the trainer runs one job per
/// process); tests that train run one at a time so their draws do not interleave.
static TRAINING: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Fixture {
    _temp: tempfile::TempDir,
    root: PathBuf,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Fixture {
    fn new() -> Self {
        let serial = TRAINING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let temp = tempfile::tempdir().expect("temp dir");
        let root = temp.path().to_owned();
        write_corpus(&root.join("corpus"), 40);
        Self {
            _temp: temp,
            root,
            _serial: serial,
        }
    }

    fn job(&self, name: &str, objective: &str, extra: &str) -> PathBuf {
        self.job_with_model(name, objective, "{ preset: nano }", extra)
    }

    fn job_with_model(&self, name: &str, objective: &str, model: &str, extra: &str) -> PathBuf {
        let folder = self.root.join(name);
        std::fs::create_dir_all(&folder).expect("job folder");
        let yaml = format!(
            "objective: {objective}\nseed: 3\nmodel: {model}\n\
             data: {{ corpus: {}, tokenizer: bytes, seq_len: 32, unique_tokens: 4k, val_tokens: 2k }}\n\
             train: {{ epochs: 2, batch_size: 8, lr: 3e-3, log_every: 1, checkpoint_minutes: 0 }}\n\
             eval: {{ at: log2, val_loss_tokens: 1k, dlm_draws: 2 }}\n{extra}",
            self.root.join("corpus").display()
        );
        std::fs::write(folder.join("job.yaml"), yaml).expect("job.yaml");
        folder
    }

    fn options(&self, max_steps: Option<u64>) -> RunOptions {
        RunOptions {
            max_steps,
            threads: Some(1),
            quiet: true,
            cache_root: Some(self.root.join("cache")),
            ..Default::default()
        }
    }
}

#[test]
fn resumed_job_logs_exactly_what_an_uninterrupted_one_does() {
    let fixture = Fixture::new();
    for objective in ["ar", "dlm"] {
        let straight = fixture.job(&format!("straight-{objective}"), objective, "");
        trainer::run(&straight, &fixture.options(None)).expect("uninterrupted run");
        let resumed = fixture.job(&format!("resumed-{objective}"), objective, "");
        let stopped = trainer::run(&resumed, &fixture.options(Some(5))).expect("first part");
        assert_eq!(stopped, trainer::Outcome::Stopped { step: 5 });
        let status = runfolder::read_status(&resumed)
            .expect("status")
            .expect("present");
        assert_eq!(status.state, State::Cancelled);
        trainer::run(&resumed, &fixture.options(None)).expect("resumed run");
        // Step 5 is mid-epoch (15.5 steps per epoch), in reshuffled windows.
        for log in ["train.csv", "eval.csv", "eval_items.csv"] {
            let a = deterministic_columns(&straight.join(log));
            let b = deterministic_columns(&resumed.join(log));
            assert!(a.len() >= 3, "{objective} {log}: too few rows");
            assert_eq!(a, b, "{objective} {log} differs after resume");
        }
        let status = runfolder::read_status(&resumed)
            .expect("status")
            .expect("present");
        assert_eq!((status.state, status.attempts), (State::Done, 2));
    }
}

/// Mixtures of experts (`moe-tiny`): the loss falls for AR and the DLM, a resumed job
/// logs exactly what an uninterrupted one does, train.csv carries the routers' losses
/// and expert_load.csv one row per (milestone, block, expert) whose shares sum to 1.
#[test]
fn mixture_jobs_learn_resume_exactly_and_log_expert_load() {
    let fixture = Fixture::new();
    for objective in ["ar", "dlm"] {
        let model = "{ preset: moe-tiny }";
        let straight = fixture.job_with_model(&format!("moe-{objective}"), objective, model, "");
        trainer::run(&straight, &fixture.options(None)).expect("uninterrupted run");
        let resumed =
            fixture.job_with_model(&format!("moe-resumed-{objective}"), objective, model, "");
        let stopped = trainer::run(&resumed, &fixture.options(Some(5))).expect("first part");
        assert_eq!(stopped, trainer::Outcome::Stopped { step: 5 });
        trainer::run(&resumed, &fixture.options(None)).expect("resumed run");
        for log in ["train.csv", "eval.csv", "eval_items.csv"] {
            let a = deterministic_columns(&straight.join(log));
            let b = deterministic_columns(&resumed.join(log));
            assert_eq!(a, b, "{objective} {log} differs after resume");
        }
        let text = std::fs::read_to_string(straight.join("train.csv")).expect("train.csv");
        let header: Vec<&str> = text.lines().next().expect("header").split(',').collect();
        let column = |name: &str| header.iter().position(|h| *h == name).expect(name);
        let rows: Vec<Vec<f64>> = text
            .lines()
            .skip(1)
            .map(|line| {
                line.split(',')
                    .map(|f| f.parse().unwrap_or(f64::NAN))
                    .collect()
            })
            .collect();
        let losses: Vec<f64> = rows.iter().map(|row| row[column("loss")]).collect();
        let head = losses[..3].iter().sum::<f64>() / 3.0;
        let tail = losses[losses.len() - 3..].iter().sum::<f64>() / 3.0;
        assert!(
            tail < head - 0.5,
            "{objective}: loss {head:.3} -> {tail:.3}"
        );
        for row in &rows {
            let (aux, z, load) = (
                row[column("aux_loss")],
                row[column("z_loss")],
                row[column("expert_load_max")],
            );
            // E sum f P is near 1 for a balanced router; z-loss positive; the busiest
            // expert between an even share and E / k = 4 times it.
            assert!((0.5..4.0).contains(&aux), "{objective}: aux_loss {aux}");
            assert!(z > 0.0, "{objective}: z_loss {z}");
            assert!(
                (1.0..=4.0).contains(&load),
                "{objective}: expert_load_max {load}"
            );
        }
        let loads = std::fs::read_to_string(straight.join("expert_load.csv")).expect("loads");
        let mut sums = std::collections::BTreeMap::<(String, String), f64>::new();
        for line in loads.lines().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            *sums
                .entry((fields[0].into(), fields[4].into()))
                .or_default() += fields[6].parse::<f64>().expect("share");
        }
        // Two milestones x four blocks, eight experts each.
        assert_eq!(loads.lines().count(), 1 + 2 * 4 * 8, "{loads}");
        assert!(
            sums.values().all(|sum| (sum - 1.0).abs() < 1e-5),
            "{sums:?}"
        );
        assert_eq!(
            deterministic_columns(&straight.join("expert_load.csv")),
            deterministic_columns(&resumed.join("expert_load.csv")),
            "{objective}: expert load after resume (step 5 is not a milestone)"
        );
    }
}

#[test]
fn losses_fall_and_validation_is_logged_at_milestones() {
    let fixture = Fixture::new();
    for objective in ["ar", "dlm", "{ar_masked: 0.3}", "{ar_dropout: 0.1}"] {
        let job = fixture.job(&format!("job-{}", objective.len()), objective, "");
        trainer::run(&job, &fixture.options(None)).expect("run");
        let text = std::fs::read_to_string(job.join("train.csv")).expect("train.csv");
        let losses: Vec<f64> = text
            .lines()
            .skip(1)
            .map(|line| {
                line.split(',')
                    .nth(4)
                    .expect("loss")
                    .parse()
                    .expect("number")
            })
            .collect();
        let head = losses[..3].iter().sum::<f64>() / 3.0;
        let tail = losses[losses.len() - 3..].iter().sum::<f64>() / 3.0;
        assert!(
            tail < head - 0.5,
            "{objective}: loss {head:.3} -> {tail:.3}"
        );
        let eval = std::fs::read_to_string(job.join("eval.csv")).expect("eval.csv");
        // 4k unique bytes / 32 = 124 windows, 2 epochs, batch 8: milestones at epoch 1 and the end.
        assert_eq!(eval.lines().count(), 3, "{objective}: {eval}");
        assert!(
            eval.lines()
                .skip(1)
                .all(|line| line.contains(",val_loss,loss,"))
        );
        // eval_items.csv: one row per validation window and milestone, whose mean is
        // the eval.csv value (what the analysis' paired bootstrap resamples).
        let items = std::fs::read_to_string(job.join("eval_items.csv")).expect("eval_items.csv");
        for line in eval.lines().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            let (step, value, n) = (fields[0], fields[6], fields[8]);
            let values: Vec<f64> = items
                .lines()
                .skip(1)
                .filter(|row| row.starts_with(&format!("{step},")))
                .map(|row| {
                    row.rsplit(',')
                        .next()
                        .expect("value")
                        .parse()
                        .expect("number")
                })
                .collect();
            assert_eq!(
                values.len().to_string(),
                n,
                "{objective}: one row per window"
            );
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let value: f64 = value.parse().expect("number");
            assert!(
                (mean - value).abs() < 1e-4 * value.abs(),
                "{objective}: items average {mean}, eval.csv says {value}"
            );
        }
    }
}

#[test]
fn divergence_stops_the_job_with_the_reason() {
    let fixture = Fixture::new();
    let job = fixture.job("diverge", "ar", "");
    let yaml = std::fs::read_to_string(job.join("job.yaml"))
        .expect("yaml")
        .replace("lr: 3e-3", "lr: 1e30");
    std::fs::write(job.join("job.yaml"), yaml).expect("write");
    let error = trainer::run(&job, &fixture.options(None)).expect_err("must diverge");
    assert!(matches!(error, TrainerError::NonFinite { .. }), "{error}");
    let status = runfolder::read_status(&job)
        .expect("status")
        .expect("present");
    assert_eq!(status.state, State::Failed);
    assert!(status.error.unwrap_or_default().contains("diverged"));
}

#[test]
fn user_errors_name_what_to_fix() {
    let fixture = Fixture::new();
    // A corpus that does not exist.
    let job = fixture.job("missing", "ar", "");
    let yaml = std::fs::read_to_string(job.join("job.yaml")).expect("yaml");
    let corpus = fixture.root.join("corpus").display().to_string();
    std::fs::write(
        job.join("job.yaml"),
        yaml.replace(&corpus, "/nonexistent/texts"),
    )
    .expect("write");
    let message = trainer::run(&job, &fixture.options(None))
        .expect_err("missing corpus")
        .to_string();
    assert!(message.contains("/nonexistent/texts"), "{message}");
    // More unique tokens than the corpus has.
    let job = fixture.job("small", "ar", "");
    let yaml = std::fs::read_to_string(job.join("job.yaml"))
        .expect("yaml")
        .replace("unique_tokens: 4k", "unique_tokens: 50M");
    std::fs::write(job.join("job.yaml"), yaml).expect("write");
    let message = trainer::run(&job, &fixture.options(None))
        .expect_err("too small")
        .to_string();
    assert!(message.contains("50000000"), "{message}");
    // An unknown key in job.yaml.
    let job = fixture.job("unknown", "ar", "optimiser: sgd\n");
    let message = trainer::run(&job, &fixture.options(None))
        .expect_err("unknown key")
        .to_string();
    assert!(
        message.contains("optimiser") && message.contains("job.yaml"),
        "{message}"
    );
    // A run folder whose status file cannot be written (a folder stands in its way).
    let job = fixture.job("blocked", "ar", "");
    std::fs::create_dir_all(job.join("status.json").join("x")).expect("blocker");
    let message = trainer::run(&job, &fixture.options(None))
        .expect_err("unwritable")
        .to_string();
    assert!(message.contains("status.json"), "{message}");
    // A job folder that does not exist.
    let message = trainer::run(&fixture.root.join("nowhere"), &fixture.options(None))
        .expect_err("no folder")
        .to_string();
    assert!(message.contains("nowhere/job.yaml"), "{message}");
}

#[test]
fn changing_the_tokenizer_under_a_checkpoint_is_refused() {
    let fixture = Fixture::new();
    let job = fixture.job("retokenized", "ar", "");
    trainer::run(&job, &fixture.options(Some(2))).expect("first part");
    let yaml = std::fs::read_to_string(job.join("job.yaml"))
        .expect("yaml")
        .replace("tokenizer: bytes", "tokenizer: gpt2");
    std::fs::write(job.join("job.yaml"), yaml).expect("write");
    let message = trainer::run(&job, &fixture.options(None))
        .expect_err("mismatch")
        .to_string();
    assert!(
        message.contains("tokenizer") && message.contains("gpt2"),
        "{message}"
    );
}

/// Asking for CUDA where LibTorch's CUDA library is missing fails the job with the
/// documented message (docs/gpu.md); `auto` falls back to the CPU only when no GPU is
/// shown to the process.
#[test]
fn cuda_request_without_cuda_names_what_to_install() {
    let fixture = Fixture::new();
    let empty = fixture.root.join("no-torch-lib");
    std::fs::create_dir_all(&empty).expect("folder");
    let trainer_shown = |job: &Path, extra: &[&str], shown: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_trainer-worker"))
            .arg("run")
            .arg(job)
            .args(["--threads", "1", "--quiet"])
            .args(extra)
            .env("CROSSOVER_TORCH_LIB", &empty)
            .env("CROSSOVER_CACHE", fixture.root.join("cache"))
            .env("CUDA_VISIBLE_DEVICES", shown)
            .output()
            .expect("trainer runs")
    };
    // An empty CUDA_VISIBLE_DEVICES shows no GPU, whatever this machine has.
    let trainer = |job: &Path, extra: &[&str]| trainer_shown(job, extra, "");
    let expected = format!(
        "CUDA was asked for but LibTorch's CUDA library (libtorch_cuda.so) is not installed here (looked in {}): on a GPU node run `just setup-cuda`",
        empty.display()
    );
    // From the command line, and from job.yaml.
    let flag = fixture.job("flag", "ar", "");
    let output = trainer(&flag, &["--device", "cuda"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(&expected), "{stderr}");
    let yaml = fixture.job("yaml", "dlm", "");
    let text = std::fs::read_to_string(yaml.join("job.yaml")).expect("job.yaml");
    let text = text.replace(
        "checkpoint_minutes: 0 }",
        "checkpoint_minutes: 0, device: cuda }",
    );
    std::fs::write(yaml.join("job.yaml"), text).expect("job.yaml");
    let output = trainer(&yaml, &[]);
    assert!(!output.status.success());
    let status = runfolder::read_status(&yaml)
        .expect("status")
        .expect("written");
    assert_eq!(status.state, State::Failed);
    assert!(
        status
            .error
            .as_deref()
            .is_some_and(|error| error.contains(&expected)),
        "{:?}",
        status.error
    );
    // `auto` trains on the CPU when no GPU is shown (stopped after 2 steps: exit code
    // 3, resumable)...
    let auto = fixture.job("auto", "ar", "");
    let output = trainer(&auto, &["--device", "auto", "--max-steps", "2"]);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // ...and refuses, with the loader's reason, when one is shown but CUDA is unusable.
    let shown = fixture.job("shown", "ar", "");
    let output = trainer_shown(&shown, &["--device", "auto", "--max-steps", "2"], "0");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("device: auto sees a GPU here (CUDA_VISIBLE_DEVICES=0)")
            && stderr.contains(&expected)
            && stderr.contains("`train.device: cpu`"),
        "{stderr}"
    );
    assert!(
        !shown.join("train.csv").exists(),
        "nothing trained on the CPU"
    );
}

/// `trainer run` on a job, as the harness starts it (a data-parallel job's launcher
/// starts its other ranks itself).
fn run_binary(fixture: &Fixture, job: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_trainer-worker"))
        .arg("run")
        .arg(job)
        .args(["--threads", "1", "--quiet"])
        .env("CROSSOVER_CACHE", fixture.root.join("cache"))
        .output()
        .expect("trainer runs")
}

/// A job of the fixture with extra `train` fields.
fn job_with_train(fixture: &Fixture, name: &str, objective: &str, train: &str) -> PathBuf {
    let job = fixture.job(name, objective, "");
    let path = job.join("job.yaml");
    let text = std::fs::read_to_string(&path).expect("job.yaml");
    let text = text.replace(
        "checkpoint_minutes: 0 }",
        &format!("checkpoint_minutes: 0{train} }}"),
    );
    std::fs::write(&path, text).expect("job.yaml");
    job
}

fn column(path: &Path, name: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(path).expect("log");
    let header: Vec<&str> = text.lines().next().expect("header").split(',').collect();
    let index = header.iter().position(|h| *h == name).expect("column");
    text.lines()
        .skip(1)
        .map(|line| {
            line.split(',')
                .nth(index)
                .expect("field")
                .parse()
                .expect("number")
        })
        .collect()
}

fn last_checkpoint_weights(job: &Path) -> Vec<u8> {
    last_checkpoint_file(job, "model.safetensors")
}

/// A file of the job's newest checkpoint, as bytes.
fn last_checkpoint_file(job: &Path, name: &str) -> Vec<u8> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(job.join("checkpoints"))
        .expect("checkpoints")
        .map(|entry| entry.expect("entry").path())
        .collect();
    folders.sort();
    std::fs::read(folders.last().expect("a checkpoint").join(name)).expect(name)
}

/// Two ranks (`train.devices: 2`, Gloo on the CPU) give exactly what one process
/// gives when it splits the batch into the same two halves (micro-batches of 4 of 8):
/// the same losses, gradient norms, evaluations and weight bytes, because the noise is
/// drawn for the whole batch before it is cut and averaging two gradients over the
/// ranks rounds as adding two halves does. Against one process taking the batch at
/// once they agree to 1e-5 over the first steps (the sums are ordered differently);
/// those rounding differences grow as training goes on (1.6e-5 by step 26 here), so
/// later steps are held to 1e-3.
#[test]
fn two_ranks_train_exactly_as_one_process() {
    let fixture = Fixture::new();
    for objective in ["ar", "dlm"] {
        let halves = job_with_train(
            &fixture,
            &format!("halves-{objective}"),
            objective,
            ", micro_batch_size: 4",
        );
        let ranks = job_with_train(
            &fixture,
            &format!("ranks-{objective}"),
            objective,
            ", devices: 2",
        );
        let whole = fixture.job(&format!("whole-{objective}"), objective, "");
        for job in [&halves, &ranks, &whole] {
            let output = run_binary(&fixture, job);
            assert!(
                output.status.success(),
                "{objective} {}: {}",
                job.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        for log in ["train.csv", "eval.csv", "eval_items.csv"] {
            assert_eq!(
                deterministic_columns(&halves.join(log)),
                deterministic_columns(&ranks.join(log)),
                "{objective} {log}: two ranks differ from one process in two halves"
            );
        }
        assert!(
            last_checkpoint_weights(&halves) == last_checkpoint_weights(&ranks),
            "{objective}: the weights' bytes differ"
        );
        for name in ["loss", "grad_norm"] {
            let (a, b) = (
                column(&whole.join("train.csv"), name),
                column(&ranks.join("train.csv"), name),
            );
            assert_eq!(a.len(), b.len());
            for (step, (x, y)) in a.iter().zip(&b).enumerate() {
                let tolerance = if step < 8 { 1e-5 } else { 1e-3 };
                assert!(
                    (x - y).abs() <= tolerance * x.abs().max(y.abs()),
                    "{objective} {name} at row {step}: {x} vs {y}"
                );
            }
        }
        // Only rank 0 wrote: one status with one attempt, no stray files.
        let status = runfolder::read_status(&ranks)
            .expect("status")
            .expect("written");
        assert_eq!((status.state, status.attempts), (State::Done, 1));
    }
}

/// A sharded optimizer (`train.shard_optimizer`, ZeRO stage 1: each rank keeps the
/// AdamW moments of its share of the parameters, updates those and broadcasts them)
/// moves the state, not the numbers: two sharded ranks give the same losses,
/// evaluations, weight bytes and optimizer-state bytes (gathered into the checkpoint)
/// as two unsharded ones. A sharded job stopped midway and resumed ends the same,
/// also when it checkpoints on rank 0's timer every step (the ranks agree on when to
/// gather) and when it is resumed unsharded. The job id ignores the setting.
#[test]
fn a_sharded_optimizer_changes_nothing_but_where_the_state_lives() {
    let fixture = Fixture::new();
    let plain = job_with_train(&fixture, "plain", "dlm", ", devices: 2");
    let sharded = job_with_train(
        &fixture,
        "sharded",
        "dlm",
        ", devices: 2, shard_optimizer: true",
    );
    // "checkpoint_minutes: 0" + ".0001": a timer checkpoint after (almost) every step.
    let timed = job_with_train(
        &fixture,
        "timed",
        "dlm",
        ".0001, devices: 2, shard_optimizer: true",
    );
    let switched = job_with_train(
        &fixture,
        "switched",
        "dlm",
        ", devices: 2, shard_optimizer: true",
    );
    for job in [&plain, &sharded] {
        let output = run_binary(&fixture, job);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for job in [&timed, &switched] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_trainer-worker"))
            .arg("run")
            .arg(job)
            .args(["--threads", "1", "--quiet", "--max-steps", "20"])
            .env("CROSSOVER_CACHE", fixture.root.join("cache"))
            .output()
            .expect("trainer runs");
        assert_eq!(
            output.status.code(),
            Some(3),
            "stopped at step 20: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(
        timed.join("checkpoints").join("step-00000020").exists()
            && switched.join("checkpoints").join("step-00000020").exists()
    );
    // Resume `switched` without sharding: the checkpoint holds the whole state.
    let path = switched.join("job.yaml");
    let text = std::fs::read_to_string(&path).expect("job.yaml");
    std::fs::write(&path, text.replace(", shard_optimizer: true", "")).expect("job.yaml");
    for job in [&timed, &switched] {
        let output = run_binary(&fixture, job);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for job in [&sharded, &timed, &switched] {
        for log in ["train.csv", "eval.csv", "eval_items.csv"] {
            assert_eq!(
                deterministic_columns(&plain.join(log)),
                deterministic_columns(&job.join(log)),
                "{log} of {} differs from the unsharded run's",
                job.display()
            );
        }
        assert!(
            last_checkpoint_weights(&plain) == last_checkpoint_weights(job),
            "the weights of {} differ",
            job.display()
        );
        assert!(
            last_checkpoint_file(&plain, "optimizer.safetensors")
                == last_checkpoint_file(job, "optimizer.safetensors"),
            "the optimizer state of {} differs",
            job.display()
        );
    }
    let config = |job: &Path| jobspec::JobConfig::from_file(&job.join("job.yaml")).expect("job");
    assert_eq!(
        jobspec::job_id(&config(&plain)),
        jobspec::job_id(&config(&sharded))
    );
}

/// The pids of `parent`'s children (from /proc).
fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|field| field.parse::<u32>().ok());
        if ppid == Some(parent) {
            children.push(pid);
        }
    }
    children
}

/// Start `trainer run` on a job in the background and wait for its first milestone
/// checkpoint (epoch 1, step 16).
fn start_until_first_checkpoint(fixture: &Fixture, job: &Path) -> std::process::Child {
    let launcher = std::process::Command::new(env!("CARGO_BIN_EXE_trainer-worker"))
        .arg("run")
        .arg(job)
        .args(["--threads", "1", "--quiet"])
        .env("CROSSOVER_CACHE", fixture.root.join("cache"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("trainer starts");
    let first = job.join("checkpoints").join("step-00000016");
    let started = std::time::Instant::now();
    while !first.exists() {
        assert!(
            started.elapsed().as_secs() < 120,
            "no checkpoint after 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    launcher
}

/// Killing rank 1 mid-run fails the job with a clear error in status.json, leaves no
/// half-written checkpoint, and running it again resumes from the last checkpoint with
/// both ranks and ends exactly where an uninterrupted two-rank run does. SIGTERM to
/// the launcher instead stops both ranks after the same step with a checkpoint (exit
/// 3, cancelled), and that job resumes the same way.
#[test]
fn a_killed_rank_fails_the_job_and_a_rerun_resumes() {
    let fixture = Fixture::new();
    let two_ranks = ", devices: 2";
    let straight = job_with_train(&fixture, "straight", "ar", two_ranks);
    let killed = job_with_train(&fixture, "killed", "ar", two_ranks);
    let stopped = job_with_train(&fixture, "stopped", "ar", two_ranks);
    for job in [&straight, &killed, &stopped] {
        let path = job.join("job.yaml");
        let text = std::fs::read_to_string(&path).expect("job.yaml");
        std::fs::write(&path, text.replace("epochs: 2,", "epochs: 16,")).expect("job.yaml");
    }
    let output = run_binary(&fixture, &straight);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // After the first milestone checkpoint, kill rank 1.
    let mut launcher = start_until_first_checkpoint(&fixture, &killed);
    let ranks = children_of(launcher.id());
    assert_eq!(
        ranks.len(),
        1,
        "the launcher started one other rank: {ranks:?}"
    );
    let killed_at = std::time::Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-9", &ranks[0].to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = launcher.wait().expect("launcher exits");
    assert!(!exit.success(), "the job must fail when a rank dies");
    assert!(
        killed_at.elapsed().as_secs() < 60,
        "failing took {:?}",
        killed_at.elapsed()
    );
    let status = runfolder::read_status(&killed)
        .expect("status")
        .expect("written");
    assert_eq!(status.state, State::Failed);
    let error = status.error.unwrap_or_default();
    assert!(
        error.contains("rank") && error.contains("run the job again"),
        "{error}"
    );
    // Nothing half-written: every checkpoint folder is complete, no staging left.
    for entry in std::fs::read_dir(killed.join("checkpoints"))
        .expect("checkpoints")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with(".staging"), "left {name}");
        assert!(
            entry.path().join("state.json").exists(),
            "{name} lacks state.json"
        );
    }
    let output = run_binary(&fixture, &killed);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = runfolder::read_status(&killed)
        .expect("status")
        .expect("written");
    assert_eq!((status.state, status.attempts), (State::Done, 2));
    // A graceful stop: SIGTERM to the launcher only.
    let mut launcher = start_until_first_checkpoint(&fixture, &stopped);
    let ranks = children_of(launcher.id());
    let status = std::process::Command::new("kill")
        .args(["-TERM", &launcher.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = launcher.wait().expect("launcher exits");
    assert_eq!(exit.code(), Some(3), "stopped with a checkpoint");
    let status = runfolder::read_status(&stopped)
        .expect("status")
        .expect("written");
    assert_eq!(status.state, State::Cancelled, "{:?}", status.error);
    assert!(
        ranks
            .iter()
            .all(|pid| !Path::new(&format!("/proc/{pid}")).exists()),
        "rank 1 outlived the stop"
    );
    let output = run_binary(&fixture, &stopped);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for job in [&killed, &stopped] {
        for log in ["train.csv", "eval.csv"] {
            assert_eq!(
                deterministic_columns(&straight.join(log)),
                deterministic_columns(&job.join(log)),
                "{log} of {} after the resumed run",
                job.display()
            );
        }
    }
}

/// `train.deterministic` switches LibTorch's deterministic algorithms and math-only
/// attention on for its job (and off again for the next job of the process); the job
/// trains and logs as usual.
#[test]
fn deterministic_jobs_switch_kernels_per_job() {
    let fixture = Fixture::new();
    let plain = job_with_train(&fixture, "plain", "dlm", "");
    let strict = job_with_train(&fixture, "strict", "dlm", ", deterministic: true");
    trainer::run(&strict, &fixture.options(None)).expect("deterministic job");
    trainer::run(&plain, &fixture.options(None)).expect("plain job");
    let losses = column(&strict.join("train.csv"), "loss");
    assert!(losses.iter().all(|loss| loss.is_finite()) && losses.len() > 4);
    // Run to run the same, bit for bit. (Here the numbers also differ from the default
    // kernels' in the last bits, math attention against the CPU flash kernel, which is
    // why the flag is part of the job id; not asserted, since on a CPU where SDPA picks
    // the math kernel anyway they would be equal.)
    let again = job_with_train(&fixture, "strict-again", "dlm", ", deterministic: true");
    trainer::run(&again, &fixture.options(None)).expect("deterministic job again");
    let rows = |job: &Path| deterministic_columns(&job.join("train.csv"));
    assert_eq!(rows(&strict), rows(&again));
    assert_eq!(rows(&plain).len(), rows(&strict).len());
    // The switch reads back, and the default job turned it off again.
    assert!(trainer::fused::set_deterministic(true).expect("on"));
    assert!(!trainer::fused::set_deterministic(false).expect("off"));
}

/// Checkpoint retention (`train.keep`): the newest checkpoint keeps everything a
/// resume needs; older milestones keep the weights (default), everything, or nothing.
#[test]
fn milestone_checkpoints_keep_what_train_keep_says() {
    let fixture = Fixture::new();
    let folders = |job: &Path| -> Vec<(String, bool, bool)> {
        let mut found: Vec<(String, bool, bool)> = std::fs::read_dir(job.join("checkpoints"))
            .expect("checkpoints")
            .map(|entry| entry.expect("entry").path())
            .map(|path| {
                (
                    path.file_name()
                        .expect("name")
                        .to_string_lossy()
                        .into_owned(),
                    path.join("model.safetensors").exists(),
                    path.join("optimizer.safetensors").exists(),
                )
            })
            .collect();
        found.sort();
        found
    };
    // Each retention after an uninterrupted run and after a stop at step 5 and a
    // resume (which starts from the newest checkpoint and prunes as it goes).
    for (keep, older) in [
        ("", Some((true, false))),
        (", keep: all", Some((true, true))),
        (", keep: none", None),
    ] {
        for resumed in [false, true] {
            let name = format!("keep{}-{resumed}", keep.len());
            let job = job_with_train(&fixture, &name, "ar", keep);
            if resumed {
                trainer::run(&job, &fixture.options(Some(5))).expect("first half");
            }
            trainer::run(&job, &fixture.options(None)).expect("job");
            let found = folders(&job);
            let (newest, rest) = found.split_last().expect("a checkpoint");
            assert_eq!(
                (newest.1, newest.2),
                (true, true),
                "{name}: newest {newest:?}"
            );
            match older {
                // The milestones before the newest (log2 over 2 epochs: epoch 1).
                Some(older) => {
                    assert!(!rest.is_empty(), "{name}: {found:?}");
                    for folder in rest {
                        assert_eq!((folder.1, folder.2), older, "{name}: {folder:?}");
                    }
                }
                None => assert!(rest.is_empty(), "{name}: {found:?}"),
            }
        }
    }
}

/// `eval.at: {points: N}` evaluates N times, evenly spaced, so that a 1-epoch job
/// draws a curve (issue 27): 4k unique bytes / 32 = 124 windows, batch 8, one epoch =
/// 16 steps, so points at steps 4, 8, 12 and 16.
#[test]
fn points_spread_evaluations_over_a_one_epoch_job() {
    let fixture = Fixture::new();
    let job = fixture.root.join("points");
    std::fs::create_dir_all(&job).expect("job folder");
    let yaml = format!(
        "objective: ar\nseed: 3\nmodel: {{ preset: nano }}\n\
         data: {{ corpus: {}, tokenizer: bytes, seq_len: 32, unique_tokens: 4k, val_tokens: 2k }}\n\
         train: {{ epochs: 1, batch_size: 8, lr: 3e-3, log_every: 1, checkpoint_minutes: 0 }}\n\
         eval: {{ at: {{ points: 4 }}, tasks: [val_loss], val_loss_tokens: 1k }}\n",
        fixture.root.join("corpus").display()
    );
    std::fs::write(job.join("job.yaml"), yaml).expect("job.yaml");
    trainer::run(&job, &fixture.options(None)).expect("run");
    let mut steps = column(&job.join("eval.csv"), "step");
    steps.dedup();
    assert_eq!(steps, [4.0, 8.0, 12.0, 16.0]);
}

/// Issue 27: what a kill in the middle of writing a checkpoint leaves behind (its
/// staging folder, half written) and a kill in the middle of pruning an older one (a
/// folder whose state.json is already gone) do not stop the resume: it continues from
/// the last complete checkpoint, logs exactly what an uninterrupted run does, and
/// clears the half-written staging folder when it writes that step again.
#[test]
fn a_kill_during_a_checkpoint_write_leaves_the_previous_one_usable() {
    let fixture = Fixture::new();
    let straight = fixture.job("straight", "ar", "");
    trainer::run(&straight, &fixture.options(None)).expect("uninterrupted run");
    let resumed = fixture.job("killed", "ar", "");
    let stopped = trainer::run(&resumed, &fixture.options(Some(5))).expect("first part");
    assert_eq!(stopped, trainer::Outcome::Stopped { step: 5 });
    let checkpoints = resumed.join("checkpoints");
    // The next checkpoint, cut short while its weights were being written.
    let staging = checkpoints.join(".staging-step-00000007");
    std::fs::create_dir_all(&staging).expect("staging");
    std::fs::write(staging.join("model.safetensors"), b"\x00\x01half").expect("partial");
    // An older checkpoint being pruned: its state.json gone, its weights not yet.
    let pruned = checkpoints.join("step-00000003");
    std::fs::create_dir_all(&pruned).expect("pruned");
    std::fs::write(pruned.join("model.safetensors"), b"left over").expect("left over");
    trainer::run(&resumed, &fixture.options(None)).expect("resumed run");
    for log in ["train.csv", "eval.csv"] {
        let a = deterministic_columns(&straight.join(log));
        let b = deterministic_columns(&resumed.join(log));
        assert_eq!(a, b, "{log} differs after resuming past a torn checkpoint");
    }
    // The resumed run went on from step 5: its first logged step after the stop is 6.
    let steps = column(&resumed.join("train.csv"), "step");
    assert!(steps.contains(&6.0), "{steps:?}");
}

/// `data.resample: true` (issue 29): the job's seed, not only the split seed, orders
/// its training documents, so the job writes and reads its seed's own split file.
#[test]
fn a_resampled_job_reads_the_split_of_its_own_seed() {
    let fixture = Fixture::new();
    let job = fixture.job("resample", "ar", "");
    let yaml = std::fs::read_to_string(job.join("job.yaml")).expect("job.yaml");
    let yaml = yaml.replace("val_tokens: 2k }", "val_tokens: 2k, resample: true }");
    std::fs::write(job.join("job.yaml"), yaml).expect("job.yaml");
    trainer::run(&job, &fixture.options(Some(1))).expect("run");
    let mut splits = Vec::new();
    for store in std::fs::read_dir(fixture.root.join("cache/tokens")).expect("stores") {
        let folder = store.expect("store").path().join("splits");
        for entry in std::fs::read_dir(&folder).into_iter().flatten() {
            splits.push(
                entry
                    .expect("split")
                    .file_name()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    assert_eq!(
        splits,
        ["val2000-seed0-resample3.bin"],
        "seed 3's order only"
    );
}

/// `train.activation_checkpointing` changes memory, not the job: an AR-with-dropout job
/// (dropout must redraw the same masks when blocks run again) and a DLM job log the
/// same numbers and end on the same weights with it as without, keep their job id,
/// and a job stopped without it can be resumed with it (what a user does after
/// running out of memory).
#[test]
fn activation_checkpointing_changes_nothing_but_memory() {
    let fixture = Fixture::new();
    for objective in ["{ ar_dropout: 0.1 }", "dlm"] {
        let name = if objective == "dlm" { "dlm" } else { "dropout" };
        let plain = fixture.job(&format!("plain-{name}"), objective, "");
        trainer::run(&plain, &fixture.options(None)).expect("plain run");
        let checkpointed = job_with_train(
            &fixture,
            &format!("checkpointed-{name}"),
            objective,
            ", activation_checkpointing: true",
        );
        trainer::run(&checkpointed, &fixture.options(None)).expect("checkpointed run");
        let switched = fixture.job(&format!("switched-{name}"), objective, "");
        let stopped = trainer::run(&switched, &fixture.options(Some(5))).expect("first part");
        assert_eq!(stopped, trainer::Outcome::Stopped { step: 5 });
        let path = switched.join("job.yaml");
        let text = std::fs::read_to_string(&path).expect("job.yaml");
        std::fs::write(
            &path,
            text.replace(
                "checkpoint_minutes: 0 }",
                "checkpoint_minutes: 0, activation_checkpointing: true }",
            ),
        )
        .expect("job.yaml");
        trainer::run(&switched, &fixture.options(None)).expect("resumed with checkpointing");
        for job in [&checkpointed, &switched] {
            for log in ["train.csv", "eval.csv", "eval_items.csv"] {
                assert_eq!(
                    deterministic_columns(&plain.join(log)),
                    deterministic_columns(&job.join(log)),
                    "{log} of {} differs from the run without checkpointing",
                    job.display()
                );
            }
            assert!(
                last_checkpoint_weights(&plain) == last_checkpoint_weights(job),
                "the weights of {} differ",
                job.display()
            );
        }
        let config =
            |job: &Path| jobspec::JobConfig::from_file(&job.join("job.yaml")).expect("job");
        assert_eq!(
            jobspec::job_id(&config(&plain)),
            jobspec::job_id(&config(&checkpointed))
        );
    }
}
