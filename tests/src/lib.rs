//! Helpers for the end-to-end tests: find (or build) the workspace's binaries and run
//! them in temporary folders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default()
}

/// Path of a workspace binary in the dev profile, building it if it is missing.
pub fn binary(name: &str) -> PathBuf {
    // `trainer` is the launcher; it runs `trainer-worker` from its own folder.
    if name == "trainer" {
        binary("trainer-worker");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let path = target.join("debug").join(name);
    if !path.exists() {
        // The same build as every recipe's (justfile, `build_bins`), so that it reuses
        // the compiled dependencies instead of making copies with other features.
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--workspace", "--bins"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building {name} failed");
    }
    path
}

/// Run a binary and return its output, failing with its stderr when it fails.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("binary starts");
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Column `name` of a CSV file as floats.
pub fn csv_column(path: &Path, name: &str) -> Vec<f64> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let index = header
        .iter()
        .position(|column| *column == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    lines
        .map(|line| {
            line.split(',')
                .nth(index)
                .and_then(|field| field.parse().ok())
                .unwrap_or(f64::NAN)
        })
        .collect()
}
