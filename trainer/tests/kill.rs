//! The trainer as several processes meet it: killed while it writes a checkpoint, and
//! two of it preparing one corpus at once (issues 26 and 27).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{deterministic_columns, write_corpus};

/// A nano AR job that writes a checkpoint after every step (a timer of 0.6 ms), so
/// that a checkpoint is being written most of the time.
fn job(root: &Path, name: &str) -> PathBuf {
    let folder = root.join(name);
    std::fs::create_dir_all(&folder).expect("job folder");
    let yaml = format!(
        "objective: ar\nseed: 3\nmodel: {{ preset: nano }}\n\
         data: {{ corpus: {}, tokenizer: bytes, seq_len: 32, unique_tokens: 4k, val_tokens: 2k }}\n\
         train: {{ epochs: 2, batch_size: 8, lr: 3e-3, log_every: 1, checkpoint_minutes: 0.00001 }}\n\
         eval: {{ at: log2, val_loss_tokens: 1k, dlm_draws: 2 }}\n",
        root.join("corpus").display()
    );
    std::fs::write(folder.join("job.yaml"), yaml).expect("job.yaml");
    folder
}

fn trainer(root: &Path, job: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trainer-worker"));
    command
        .arg("run")
        .arg(job)
        .args(["--threads", "1", "--quiet"])
        .env("CROSSOVER_CACHE", root.join("cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// A checkpoint being written: a staging folder under checkpoints/.
fn staging(job: &Path) -> Option<PathBuf> {
    std::fs::read_dir(job.join("checkpoints"))
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(".staging-"))
        })
}

/// Four times, the trainer is SIGKILLed the moment a checkpoint's staging folder
/// appears (its files half written or not yet synced) and started again; the fifth
/// run ends the job. At least one kill must leave its staging folder behind. Its train.csv, eval.csv and eval_items.csv equal those of an
/// uninterrupted run, and no staging folder is left.
#[test]
fn a_trainer_killed_while_writing_checkpoints_resumes_to_the_same_logs() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path();
    write_corpus(&root.join("corpus"), 40);
    let straight = job(root, "straight");
    let status = trainer(root, &straight).status().expect("trainer runs");
    assert!(status.success(), "uninterrupted run");
    let killed = job(root, "killed");
    let (mut kills, mut mid_write) = (0, 0);
    for _ in 0..4 {
        let mut child = trainer(root, &killed).spawn().expect("trainer starts");
        let start = Instant::now();
        loop {
            if staging(&killed).is_some() {
                child.kill().expect("SIGKILL");
                kills += 1;
                break;
            }
            if let Some(status) = child.try_wait().expect("wait") {
                panic!("the trainer ended ({status}) before a checkpoint was caught");
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "no checkpoint written"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = child.wait();
        // The rename that publishes a checkpoint may win the race with the kill;
        // most kills land before it.
        mid_write += usize::from(staging(&killed).is_some());
    }
    assert_eq!(kills, 4);
    assert!(
        mid_write >= 1,
        "no kill landed while a checkpoint was being written"
    );
    let status = trainer(root, &killed).status().expect("trainer runs");
    assert!(status.success(), "the run after the kills");
    for log in ["train.csv", "eval.csv", "eval_items.csv"] {
        let (a, b) = (
            deterministic_columns(&straight.join(log)),
            deterministic_columns(&killed.join(log)),
        );
        assert!(a.len() >= 3, "{log}: too few rows");
        assert_eq!(a, b, "{log} differs after the kills");
    }
    assert!(staging(&killed).is_none(), "a staging folder was left");
}

/// Two trainer processes preparing the same corpus at once (two jobs of a sweep, or two
/// ranks) make one store: one tokenizes, the other waits on the store's lock (or finds
/// it done) and reads it; both succeed and the two stores they report are the same
/// folder.
#[test]
fn two_processes_preparing_one_corpus_make_one_store() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path();
    write_corpus(&root.join("corpus"), 400);
    let jobs = [job(root, "first"), job(root, "second")];
    let children: Vec<_> = jobs
        .iter()
        .map(|job| {
            Command::new(env!("CARGO_BIN_EXE_trainer-worker"))
                .arg("prepare")
                .arg(job)
                .env("CROSSOVER_CACHE", root.join("cache"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("trainer starts")
        })
        .collect();
    let outputs: Vec<String> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().expect("prepare ends");
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            assert!(output.status.success(), "{stderr}");
            stderr
        })
        .collect();
    let built = outputs
        .iter()
        .filter(|text| text.contains("prepared in"))
        .count();
    assert_eq!(built, 1, "{outputs:?}");
    let stores: Vec<_> = std::fs::read_dir(root.join("cache").join("tokens"))
        .expect("tokens")
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .collect();
    assert_eq!(stores.len(), 1, "{stores:?}");
}
