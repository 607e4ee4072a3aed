//! `harness run / status / cancel / clean` end to end with the real trainer, on small
//! sweeps shaped like sweeps/smoke.yaml (nano model, the `sotu` corpus, byte tokens)
//! and trimmed so each test takes seconds on a shared two-core machine.
//!
//! Length: about 540 lines of end-to-end cases that share one built binary and one
//! fixture corpus.

use e2e::{binary, csv_column, run_ok};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The tests train real models on a small machine: one at a time keeps them quick.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A smoke-like sweep: `grid` is appended under the base.
fn write_sweep(folder: &Path, name: &str, grid: &str) -> PathBuf {
    let text = format!(
        "name: {name}
base:
  seed: 0
  model: {{ preset: nano }}
  data: {{ corpus: sotu, tokenizer: bytes, seq_len: 64, unique_tokens: 12k, val_tokens: 8k }}
  train: {{ epochs: 4, batch_size: 16, lr: 3e-3, warmup: 5%, log_every: 2 }}
  eval: {{ at: log2, tasks: [val_loss], val_loss_tokens: 4k, dlm_draws: 2 }}
grid:
{grid}"
    );
    let path = folder.join(format!("{name}.yaml"));
    std::fs::write(&path, text).expect("write sweep");
    path
}

fn harness() -> Command {
    let mut command = Command::new(binary("harness"));
    // The harness starts the trainer next to itself; make sure it is built too.
    binary("trainer");
    command.stdin(Stdio::null());
    command
}

/// A background harness, killed (SIGKILL) if a test fails before it ends.
struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status_json(results: &Path) -> Value {
    let output = run_ok(harness().arg("status").arg(results).arg("--json"));
    serde_json::from_slice(&output.stdout).expect("status --json is JSON")
}

fn jobs(status: &Value) -> Vec<Value> {
    status["jobs"].as_array().cloned().unwrap_or_default()
}

fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn job_status(results: &Path, id: &str) -> Value {
    let path = results.join("jobs").join(id).join("status.json");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null)
}

fn plan_ids(results: &Path) -> Vec<String> {
    let plan = std::fs::read_to_string(results.join("plan.csv")).unwrap_or_default();
    plan.lines()
        .skip(1)
        .filter_map(|line| line.split(',').next().map(str::to_owned))
        .collect()
}

/// Steps of a log: strictly increasing, every `log_every` (plus the last step).
fn assert_contiguous(path: &Path, log_every: u64, total: u64) {
    let steps: Vec<u64> = csv_column(path, "step").iter().map(|s| *s as u64).collect();
    let mut expected: Vec<u64> = (1..=total / log_every).map(|k| k * log_every).collect();
    if !total.is_multiple_of(log_every) {
        expected.push(total);
    }
    assert_eq!(steps, expected, "{}", path.display());
}

#[test]
fn kill_9_mid_run_then_resume_runs_every_job_once() {
    let _serial = serial();
    let folder = tempfile::tempdir().expect("temp dir");
    let sweep = write_sweep(
        folder.path(),
        "kill",
        "  objective: [ar, dlm, { ar_masked: 0.3 }]\n",
    );
    let results = folder.path().join("results");
    let mut first = Background(
        harness()
            .arg("run")
            .arg(&sweep)
            .arg("--results")
            .arg(&results)
            .args(["--slots", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("harness starts"),
    );
    wait_until("plan.csv", Duration::from_secs(20), || {
        plan_ids(&results).len() == 3
    });
    let ids = plan_ids(&results);
    let second_log = results.join("jobs").join(&ids[1]).join("train.csv");
    wait_until("job 2 to log a row", Duration::from_secs(120), || {
        job_status(&results, &ids[0])["state"] == "done"
            && std::fs::read_to_string(&second_log).is_ok_and(|text| text.lines().count() >= 2)
    });
    // kill -9 the harness and its worker: nothing gets to clean up.
    first.0.kill().expect("kill -9 harness");
    let _ = first.0.wait();
    let worker = job_status(&results, &ids[1])["pid"]
        .as_u64()
        .expect("worker pid");
    run_ok(Command::new("kill").args(["-9", &worker.to_string()]));
    assert_eq!(
        job_status(&results, &ids[1])["state"],
        "running",
        "left stale"
    );

    run_ok(
        harness()
            .arg("run")
            .arg(&sweep)
            .arg("--results")
            .arg(&results)
            .args(["--slots", "1"]),
    );
    let status = status_json(&results);
    let attempts: Vec<u64> = jobs(&status)
        .iter()
        .map(|job| {
            assert_eq!(job["state"], "done", "{job}");
            job["attempts"].as_u64().unwrap_or(0)
        })
        .collect();
    assert_eq!(attempts, [1, 2, 1], "the finished job was not run again");
    for id in &ids {
        let job = results.join("jobs").join(id);
        let total = job_status(&results, id)["total_steps"]
            .as_u64()
            .unwrap_or(0);
        assert_contiguous(&job.join("train.csv"), 2, total);
        // log2 milestones over 4 epochs: one val_loss row at each of 3 steps.
        let eval_steps = csv_column(&job.join("eval.csv"), "step");
        assert_eq!(eval_steps.len(), 3, "{id}: {eval_steps:?}");
        assert!(
            eval_steps.windows(2).all(|pair| pair[0] < pair[1]),
            "{eval_steps:?}"
        );
    }
}

#[test]
fn a_failing_job_is_retried_then_marked_failed_while_others_finish() {
    let _serial = serial();
    let folder = tempfile::tempdir().expect("temp dir");
    let grid =
        "  objective: [ar]\n  data.corpus: [sotu, /nonexistent/corpus.txt]\n  train.epochs: [1]\n";
    let sweep = write_sweep(folder.path(), "failing", grid);
    let results = folder.path().join("results");
    let output = harness()
        .arg("run")
        .arg(&sweep)
        .arg("--results")
        .arg(&results)
        .args(["--slots", "1", "--max-retries", "1"])
        .output()
        .expect("harness runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a failed job fails the run:\n{stderr}"
    );
    assert!(stderr.contains("retrying"), "{stderr}");
    let status = status_json(&results);
    let jobs = jobs(&status);
    assert_eq!(jobs[0]["state"], "done", "{status}");
    assert_eq!(jobs[1]["state"], "failed", "{status}");
    assert_eq!(jobs[1]["failures"], 2, "one run and one retry: {status}");
    assert_eq!(jobs[1]["attempts"], 2, "{status}");
    let error = jobs[1]["error"].as_str().unwrap_or_default();
    assert!(error.contains("nonexistent"), "{error}");

    // A second run leaves the exhausted job alone; clean --failed makes it pending.
    let again = harness()
        .arg("run")
        .arg(&sweep)
        .arg("--results")
        .arg(&results)
        .args(["--max-retries", "1"])
        .output()
        .expect("harness runs");
    assert!(!again.status.success());
    assert_eq!(
        status_json(&results)["jobs"][1]["attempts"],
        2,
        "not run again"
    );
    run_ok(harness().args(["clean", "--failed"]).arg(&results));
    let cleaned = status_json(&results);
    assert_eq!(cleaned["jobs"][1]["state"], "pending", "{cleaned}");
    assert_eq!(cleaned["jobs"][1]["failures"], 0, "{cleaned}");

    // Editing the sweep is reported, the old copy kept, finished jobs kept.
    std::fs::write(
        &sweep,
        std::fs::read_to_string(&sweep)
            .expect("read")
            .replace(", /nonexistent/corpus.txt", ""),
    )
    .expect("edit sweep");
    let status = run_ok(
        harness()
            .arg("status")
            .arg(&sweep)
            .arg("--results")
            .arg(&results),
    );
    assert!(String::from_utf8_lossy(&status.stdout).contains("changed since"));
    let edited = run_ok(
        harness()
            .arg("run")
            .arg(&sweep)
            .arg("--results")
            .arg(&results),
    );
    assert!(String::from_utf8_lossy(&edited.stderr).contains("changed since"));
    let kept = std::fs::read_dir(&results)
        .expect("results")
        .filter_map(Result::ok)
        .any(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("sweep.yaml.")
        });
    assert!(kept, "the earlier sweep.yaml is kept");
    assert_eq!(
        status_json(&results)["jobs"][0]["attempts"],
        1,
        "done job kept"
    );
}

#[test]
fn a_second_run_of_one_results_folder_is_refused_and_cancel_stops_the_first() {
    let _serial = serial();
    let folder = tempfile::tempdir().expect("temp dir");
    let sweep = write_sweep(
        folder.path(),
        "lock",
        "  objective: [ar, dlm]\n  train.epochs: [8]\n",
    );
    let results = folder.path().join("results");
    let mut first = Background(
        harness()
            .arg("run")
            .arg(&sweep)
            .arg("--results")
            .arg(&results)
            .args(["--slots", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("harness starts"),
    );
    let lock = results.join(".lock");
    wait_until("the lock", Duration::from_secs(20), || {
        std::fs::read_to_string(&lock).is_ok_and(|text| text.trim() == first.0.id().to_string())
    });
    let second = harness()
        .arg("run")
        .arg(&sweep)
        .arg("--results")
        .arg(&results)
        .output()
        .expect("second harness runs");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(
        stderr.contains(&format!(
            "already being run by harness pid {}",
            first.0.id()
        )),
        "{stderr}"
    );
    // cancel: SIGTERM to the first harness, which stops its worker gracefully.
    wait_until("plan.csv", Duration::from_secs(20), || {
        plan_ids(&results).len() == 2
    });
    let ids = plan_ids(&results);
    wait_until("a worker", Duration::from_secs(30), || {
        job_status(&results, &ids[0])["pid"].is_u64()
    });
    run_ok(harness().arg("cancel").arg(&results));
    let exit = first.0.wait().expect("first harness exits");
    assert_eq!(exit.code(), Some(130), "interrupted");
    let state = job_status(&results, &ids[0])["state"].clone();
    assert!(state == "cancelled" || state == "done", "{state}");
    assert_eq!(
        job_status(&results, &ids[1])["state"],
        "pending",
        "not started"
    );
}

/// `moe-tiny` (8 experts, top-2) trains for AR and the DLM on the smoke corpus through
/// the harness: both finish, their loss falls, and the routers' logs are written.
#[test]
fn mixture_of_experts_jobs_learn_on_the_smoke_corpus() {
    let _serial = serial();
    let folder = tempfile::tempdir().expect("temp dir");
    let sweep = write_sweep(
        folder.path(),
        "moe",
        "  objective: [ar, dlm]\n  model.preset: [moe-tiny]\n",
    );
    let results = folder.path().join("results");
    let output = run_ok(
        harness()
            .arg("run")
            .arg(&sweep)
            .arg("--results")
            .arg(&results)
            .args(["--slots", "2", "--threads", "1"]),
    );
    // The run's first step prepares the one corpus both jobs share, with the trainer.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("prepare 1/1: ") && stderr.contains("for 2 job(s)"),
        "{stderr}"
    );
    let status = status_json(&results);
    let jobs = jobs(&status);
    assert_eq!(jobs.len(), 2);
    for job in &jobs {
        assert_eq!(job["state"], "done", "{job}");
        let folder = results
            .join("jobs")
            .join(job["id"].as_str().unwrap_or_default());
        let losses = csv_column(&folder.join("train.csv"), "loss");
        let (first, last) = (losses[0], losses[losses.len() - 1]);
        assert!(last < first - 0.5, "{}: loss {first} -> {last}", job["id"]);
        let aux = csv_column(&folder.join("train.csv"), "aux_loss");
        assert!(aux.iter().all(|a| (0.5..4.0).contains(a)), "{aux:?}");
        let shares = csv_column(&folder.join("expert_load.csv"), "share");
        // Milestones at epochs 1, 2, 4: three x four blocks x eight experts.
        assert_eq!(shares.len(), 3 * 4 * 8);
    }
    // Retention: only each job's newest checkpoint kept its AdamW moments (the
    // default `train.keep: weights`); `clean --checkpoints` frees those of done jobs.
    let count = |name: &str| {
        jobs.iter()
            .flat_map(|job| {
                let root = results
                    .join("jobs")
                    .join(job["id"].as_str().unwrap_or_default())
                    .join("checkpoints");
                std::fs::read_dir(root)
                    .expect("checkpoints")
                    .map(|entry| entry.expect("entry").path())
            })
            .filter(|checkpoint| checkpoint.join(name).exists())
            .count()
    };
    assert_eq!(
        (count("optimizer.safetensors"), count("model.safetensors")),
        (2, 6)
    );
    let clean = |extra: &[&str]| {
        let output = run_ok(
            harness()
                .args(["clean", "--checkpoints"])
                .args(extra)
                .arg(&results),
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let dry = clean(&["--dry-run"]);
    assert!(
        dry.starts_with("would delete 2 optimizer files of done jobs: "),
        "{dry}"
    );
    assert_eq!(count("optimizer.safetensors"), 2);
    let done = clean(&[]);
    assert!(
        done.starts_with("deleted 2 optimizer files of done jobs: "),
        "{done}"
    );
    assert_eq!(
        (count("optimizer.safetensors"), count("model.safetensors")),
        (0, 6)
    );
}

/// `harness plan big.yaml | head` ends like other Unix tools when the reader goes
/// away (SIGPIPE), without a panic and its backtrace. The plan is larger than a pipe's
/// buffer, so the write after the reader closed is certain to fail.
#[test]
fn plan_into_a_closed_pipe_ends_quietly() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let folder = tempfile::tempdir().expect("temp dir");
    let seeds: Vec<String> = (0..3000).map(|seed| seed.to_string()).collect();
    let sweep = write_sweep(
        folder.path(),
        "many",
        &format!("  objective: [ar]\n  seed: [{}]\n", seeds.join(", ")),
    );
    let mut child = harness()
        .arg("plan")
        .arg(&sweep)
        .arg("--results")
        .arg(folder.path().join("results"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("harness starts");
    let mut first = [0u8; 64];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("the plan starts");
    let output = child.wait_with_output().expect("harness ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        output.status.signal(),
        Some(13),
        "SIGPIPE: {:?}",
        output.status
    );
}

/// `harness prepare` with the real trainer (issue 26): a sweep whose jobs need two
/// splits of one corpus folder (jsonl, gzip'd jsonl and text) prepares each once, in
/// its own step with a summary, into the cache it is given; a second call finds them
/// prepared; a damaged file added to the corpus fails the command with the file's name
/// and the count of corpora that failed.
#[test]
fn harness_prepare_tokenizes_each_corpus_once_and_names_a_damaged_file() {
    let _serial = serial();
    let folder = tempfile::tempdir().expect("temp dir");
    let corpus = folder.path().join("corpus");
    std::fs::create_dir_all(&corpus).expect("corpus");
    let record =
        |i: usize| format!("{{\"text\": \"document {i} of the corpus, in plain words.\"}}");
    let lines: Vec<String> = (0..400).map(record).collect();
    std::fs::write(corpus.join("a.jsonl"), lines.join("\n")).expect("jsonl");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, lines.join("\n").as_bytes()).expect("gzip");
    std::fs::write(corpus.join("b.jsonl.gz"), gz.finish().expect("gzip")).expect("gz");
    std::fs::write(corpus.join("c.txt"), "A text file, one document.\n").expect("txt");
    let sweep = folder.path().join("prep.yaml");
    std::fs::write(
        &sweep,
        format!(
            "name: prep\nbase:\n  model: {{ preset: nano }}\n  data: {{ corpus: {}, tokenizer: bytes, seq_len: 32, unique_tokens: 4k, val_tokens: 2k }}\n  train: {{ epochs: 1, batch_size: 8, lr: 1e-3 }}\ngrid:\n  objective: [ar, dlm]\n  data.val_tokens: [2k, 3k]\n",
            corpus.display()
        ),
    )
    .expect("sweep");
    let cache = folder.path().join("cache");
    let results = folder.path().join("results");
    let prepare = || {
        harness()
            .arg("prepare")
            .arg(&sweep)
            .arg("--results")
            .arg(&results)
            .env("CROSSOVER_CACHE", &cache)
            .output()
            .expect("harness prepare")
    };
    let first = prepare();
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    for expected in [
        "prepare 1/2",
        "prepare 2/2",
        "for 2 job(s)",
        "801 documents",
        "held out (val_tokens 2000",
        "held out (val_tokens 3000",
    ] {
        assert!(stderr.contains(expected), "`{expected}` in\n{stderr}");
    }
    // One store for both splits: the second unit finds the corpus tokenized.
    let stores: Vec<_> = std::fs::read_dir(cache.join("tokens"))
        .expect("the store is in the given cache")
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .collect();
    assert_eq!(stores.len(), 1, "{stores:?}");
    let again = prepare();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert_eq!(stderr.matches("already prepared").count(), 2, "{stderr}");
    // A damaged file: named, and the command fails.
    let bad = corpus.join("d.jsonl.gz");
    std::fs::write(&bad, b"\x1f\x8b\x08\x00 not really gzip").expect("bad file");
    let broken = prepare();
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(!broken.status.success(), "{stderr}");
    assert!(
        stderr.contains(&bad.display().to_string())
            && stderr.contains("2 of 2 corpora failed to prepare"),
        "{stderr}"
    );
}
