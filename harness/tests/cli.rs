//! The `harness` binary's front door: its help names every command, and a missing
//! sweep file is reported by name. (Being an integration test also makes
//! `cargo test --workspace` build the harness binary that the end-to-end tests in
//! `tests/` drive, with the same features as everything else.)

use std::process::Command;

fn harness(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .output()
        .expect("harness starts")
}

#[test]
fn help_names_every_command() {
    let output = harness(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in [
        "plan", "prepare", "run", "status", "cancel", "clean", "analyze",
    ] {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(command)),
            "`{command}` missing from:\n{help}"
        );
    }
}

#[test]
fn a_missing_sweep_file_is_named() {
    let folder = tempfile::tempdir().expect("temp dir");
    let missing = folder.path().join("nowhere.yaml");
    let output = harness(&["plan", &missing.to_string_lossy()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nowhere.yaml"), "{stderr}");
}
