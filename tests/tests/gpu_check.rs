//! `just gpu-check` rehearsed on the CPU (issue 28): the pack holds everything the
//! check needs, and `run.sh --cpu-rehearsal` runs every step a CPU can from another
//! folder, with the cache inside its results folder (nothing from ~/.cache/crossover
//! but the build's LibTorch, which a GPU node replaces with its PyTorch).

use e2e::{binary, workspace_root};
use std::process::Command;

#[test]
fn the_packed_gpu_check_rehearses_on_the_cpu_from_an_empty_folder() {
    binary("trainer");
    let folder = tempfile::tempdir().expect("temp dir");
    let pack = folder.path().join("pack");
    let output = Command::new(workspace_root().join("scripts/gpu-check-pack.sh"))
        .args(["--debug", "--out"])
        .arg(&pack)
        .output()
        .expect("the pack script runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in [
        "run.sh",
        "BUILD.txt",
        "reference.py",
        "bin/trainer",
        "bin/trainer-worker",
        "corpus/demo/SOURCE.txt",
    ] {
        assert!(pack.join(file).exists(), "{file} is not in the pack");
    }
    // Run from an unrelated folder; PyTorch is left out (CI does not install it), so
    // the comparisons are skipped and every other step must pass.
    let results = folder.path().join("results");
    let output = Command::new(pack.join("run.sh"))
        .args(["--cpu-rehearsal", "--no-reference", "--out"])
        .arg(&results)
        .current_dir(folder.path())
        .env_remove("CROSSOVER_CACHE")
        .env_remove("CROSSOVER_TORCH_LIB")
        .output()
        .expect("run.sh runs");
    let summary = std::fs::read_to_string(results.join("summary.md")).unwrap_or_default();
    assert!(
        output.status.success(),
        "{summary}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (step, result) in [
        ("environment", "PASS"),
        ("check-fp32", "SKIP"),
        ("check-bf16", "SKIP"),
        ("jobs", "PASS"),
        ("speed", "SKIP"),
        ("memory", "PASS"),
        ("nccl", "PASS"),
    ] {
        assert!(
            summary.contains(&format!("| {step} | {result} |")),
            "{step} {result} in\n{summary}"
        );
    }
    // The jobs were stopped half-way, resumed, and evaluated at a milestone on the way.
    let jobs = std::fs::read_to_string(results.join("jobs.log")).expect("jobs.log");
    assert_eq!(jobs.matches("evaluated at [30, 59]").count(), 2, "{jobs}");
    // The token store went into the results folder's cache.
    assert!(results.join("cache/tokens").is_dir());
}
