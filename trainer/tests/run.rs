//! Whole jobs through `trainer::run`: resume equivalence, divergence, and the errors a
//! user meets (missing corpus, corpus too small, tokenizer changed under a checkpoint,
//! unwritable run folder).

use std::path::{Path, PathBuf};
use trainer::runfolder::{self, State};
use trainer::{RunOptions, TrainerError};

/// Deterministic English-like text: documents of sentences from a small grammar.
fn write_corpus(folder: &Path, documents: usize) {
    let subjects = [
        "the model",
        "a reader",
        "the old sailor",
        "our nation",
        "the whale",
        "every student",
    ];
    let verbs = [
        "sees",
        "remembers",
        "follows",
        "questions",
        "builds",
        "describes",
    ];
    let objects = [
        "the long sea",
        "a quiet harbour",
        "the final answer",
        "its own data",
        "the storm",
        "a new law",
    ];
    std::fs::create_dir_all(folder).expect("corpus folder");
    let mut state = 17u64;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % n
    };
    for document in 0..documents {
        let mut text = String::new();
        for _ in 0..40 {
            text.push_str(&format!(
                "{} {} {}. ",
                subjects[next(6)],
                verbs[next(6)],
                objects[next(6)]
            ));
        }
        std::fs::write(folder.join(format!("doc{document:03}.txt")), text).expect("document");
    }
}

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
        let folder = self.root.join(name);
        std::fs::create_dir_all(&folder).expect("job folder");
        let yaml = format!(
            "objective: {objective}\nseed: 3\nmodel: {{ preset: nano }}\n\
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

/// The columns that must match between runs: everything but timings.
fn deterministic_columns(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("log");
    let header: Vec<&str> = text.lines().next().expect("header").split(',').collect();
    text.lines()
        .map(|line| {
            line.split(',')
                .zip(&header)
                .filter(|(_, name)| !matches!(**name, "tokens_per_s" | "elapsed_s"))
                .map(|(field, _)| field)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
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
/// documented message (docs/gpu.md); `auto` falls back to the CPU.
#[test]
fn cuda_request_without_cuda_names_what_to_install() {
    let fixture = Fixture::new();
    let empty = fixture.root.join("no-torch-lib");
    std::fs::create_dir_all(&empty).expect("folder");
    let trainer = |job: &Path, extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_trainer"))
            .arg("run")
            .arg(job)
            .args(["--threads", "1", "--quiet"])
            .args(extra)
            .env("CROSSOVER_TORCH_LIB", &empty)
            .env("CROSSOVER_CACHE", fixture.root.join("cache"))
            .output()
            .expect("trainer runs")
    };
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
    // `auto` trains on the CPU (stopped after 2 steps: exit code 3, resumable).
    let auto = fixture.job("auto", "ar", "");
    let output = trainer(&auto, &["--device", "auto", "--max-steps", "2"]);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
