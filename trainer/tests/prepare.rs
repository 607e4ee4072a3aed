//! `trainer prepare` end to end (issue 26): a prepare killed at random points and run
//! again gives a store byte-identical to an uninterrupted one, and a job trains from
//! the prepared store without tokenizing again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

/// A jsonl corpus of `files` files of about `kb` KB of varied English-like text.
fn write_jsonl_corpus(folder: &Path, files: usize, kb: usize) {
    let words = [
        "the",
        "whale",
        "sea",
        "nation",
        "harbour",
        "storm",
        "law",
        "reader",
        "model",
        "quiet",
        "long",
        "final",
        "answer",
        "sailor",
        "builds",
        "remembers",
        "questions",
        "congress",
        "union",
        "ship",
        "captain",
        "voyage",
        "island",
        "morning",
        "history",
    ];
    std::fs::create_dir_all(folder).expect("corpus folder");
    let mut next = common::draws(5);
    for file in 0..files {
        let mut lines = String::new();
        while lines.len() < kb * 1024 {
            let length = 20 + next(300);
            let text: Vec<&str> = (0..length).map(|_| words[next(words.len())]).collect();
            let record = serde_json::json!({ "text": format!("{}.", text.join(" ")) });
            lines.push_str(&record.to_string());
            lines.push('\n');
        }
        std::fs::write(folder.join(format!("part-{file:03}.jsonl")), lines).expect("file");
    }
}

fn write_job(root: &Path, corpus: &Path) -> PathBuf {
    let job = root.join("job");
    std::fs::create_dir_all(&job).expect("job folder");
    let yaml = format!(
        "objective: ar\nseed: 0\nmodel: {{ preset: nano }}\n\
         data: {{ corpus: {}, tokenizer: gpt2, seq_len: 32, unique_tokens: 20k, val_tokens: 5k }}\n\
         train: {{ epochs: 1, batch_size: 4, lr: 1e-3, log_every: 1, checkpoint_minutes: 0 }}\n\
         eval: {{ at: log2, tasks: [val_loss], val_loss_tokens: 1k }}\n",
        corpus.display()
    );
    std::fs::write(job.join("job.yaml"), yaml).expect("job.yaml");
    job
}

fn prepare_command(job: &Path, cache: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trainer-worker"));
    command
        .args(["prepare", "--quiet", "--shard-mb", "0.25"])
        .arg(job)
        .env("CROSSOVER_CACHE", cache)
        .env("RAYON_NUM_THREADS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// `trainer prepare JOB` with its summary on stderr.
fn prepare_verbose(job: &Path, cache: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trainer-worker"))
        .arg("prepare")
        .arg(job)
        .env("CROSSOVER_CACHE", cache)
        .output()
        .expect("prepare")
}

/// Every file under `folder` (relative path -> bytes), lock files left out.
fn files(folder: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![folder.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_none_or(|ext| ext != "lock") {
                let relative = path
                    .strip_prefix(folder)
                    .expect("inside")
                    .display()
                    .to_string();
                found.insert(relative, std::fs::read(&path).expect("read"));
            }
        }
    }
    found
}

#[test]
fn a_killed_prepare_resumes_to_a_byte_identical_store() {
    let temp = tempfile::tempdir().expect("tempdir");
    let root = temp.path();
    write_jsonl_corpus(&root.join("corpus"), 12, 1500);
    let job = write_job(root, &root.join("corpus"));

    let reference_cache = root.join("reference");
    let output = prepare_command(&job, &reference_cache)
        .output()
        .expect("prepare");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reference = files(&reference_cache.join("tokens"));
    let shards = reference
        .keys()
        .filter(|name| name.ends_with(".bin") && name.contains("shard-"))
        .count();
    assert!(
        shards >= 8,
        "{shards} shards: too few to cut a prepare between them"
    );

    // Kill -9 at spread-out moments, each run resuming the last one's shards.
    let cache = root.join("killed");
    let mut killed_midway = 0;
    let mut state = 11u64;
    for _ in 0..6 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
        let delay = Duration::from_millis(100 + (state >> 33) % 1200);
        let mut child = prepare_command(&job, &cache).spawn().expect("spawn");
        std::thread::sleep(delay);
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("kill");
            killed_midway += 1;
        }
        child.wait().expect("reap");
    }
    let output = prepare_command(&job, &cache).output().expect("prepare");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        killed_midway > 0,
        "no run was cut short: the test cannot tell"
    );
    let resumed = files(&cache.join("tokens"));
    assert_eq!(
        resumed.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &reference {
        assert!(&resumed[name] == bytes, "{name} differs after resuming");
    }

    // A job on the prepared corpus finds the store (no tokenizing) and trains.
    let run = Command::new(env!("CARGO_BIN_EXE_trainer-worker"))
        .args(["run", "--threads", "1", "--max-steps", "2"])
        .arg(&job)
        .env("CROSSOVER_CACHE", &cache)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("stopped after step 2 of"), "{stderr}");
    assert_eq!(
        files(&cache.join("tokens")),
        resumed,
        "the job rewrote the store"
    );
}

#[test]
fn prepare_prints_what_the_store_holds_and_names_bad_files() {
    let temp = tempfile::tempdir().expect("tempdir");
    let root = temp.path();
    write_jsonl_corpus(&root.join("corpus"), 2, 20);
    std::fs::write(
        root.join("corpus/part-999.jsonl"),
        "{\"text\": \"kept\"}\n{\"body\": \"no text\"}\n",
    )
    .expect("write");
    let job = write_job(root, &root.join("corpus"));
    let output = prepare_verbose(&job, &root.join("cache"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    for expected in [
        "prepared in",
        "documents,",
        "50257 ids, u16",
        "tokens to train on",
        "1 records had no string field `text`",
        "part-999.jsonl:2",
    ] {
        assert!(
            stderr.contains(expected),
            "`{expected}` missing from:\n{stderr}"
        );
    }
    let again = prepare_verbose(&job, &root.join("cache"));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already prepared"));

    // A stray file of no known format stops the prepare and is named.
    std::fs::write(root.join("corpus/notes.csv"), "a,b\n").expect("write");
    let output = prepare_verbose(&job, &root.join("cache"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("notes.csv") && stderr.contains("data.skip_unknown"),
        "{stderr}"
    );
}
