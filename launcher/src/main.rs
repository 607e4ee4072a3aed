//! `trainer`: chooses the LibTorch this node runs on (launcher's lib.rs says the rule)
//! and replaces itself with `trainer-worker`, which does the work (`trainer --help`).
//! The process keeps its pid, so the harness and Slurm signal the worker directly.

use launcher::{
    DRIVER_ENV, LAUNCHED_ENV, TORCH_LIB_ENV, UNUSABLE_ENV, WORKER, choose, library_path,
    parse_driver, read_install, recorded_folder, search_folders, visible_gpu,
};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The LibTorch lib folder the worker was linked against (build.rs).
const BUILD_LIB: &str = env!("CROSSOVER_BUILD_LIBTORCH_LIB");

fn main() -> ExitCode {
    match run() {
        Ok(never) => match never {},
        Err(message) => {
            eprintln!("trainer: {message}");
            ExitCode::from(2)
        }
    }
}

enum Never {}

fn run() -> Result<Never, String> {
    let exe = std::env::current_exe().map_err(|error| format!("finding this program: {error}"))?;
    let worker = exe.with_file_name(WORKER);
    if !worker.is_file() {
        return Err(format!(
            "{} is missing: the launcher `trainer` starts it and must sit beside it (build both: `cargo build --workspace --bins`; a pack copies both)",
            worker.display()
        ));
    }
    let mut command = std::process::Command::new(&worker);
    command.args(std::env::args_os().skip(1));
    // A worker started by a launcher (the ranks a worker starts run the worker
    // directly and inherit this) needs no second choice.
    if std::env::var_os(LAUNCHED_ENV).is_none() {
        let launch = decide()?;
        match &launch.lib {
            Some(lib) => {
                let current = std::env::var("LD_LIBRARY_PATH").ok();
                command.env("LD_LIBRARY_PATH", library_path(lib, current.as_deref()));
                command.env(TORCH_LIB_ENV, lib);
                command.env(LAUNCHED_ENV, lib);
            }
            None => {
                command.env(LAUNCHED_ENV, "build");
            }
        }
        if let Some(why) = &launch.unusable {
            command.env(UNUSABLE_ENV, why);
        }
    }
    let error = command.exec();
    Err(format!("starting {}: {error}", worker.display()))
}

/// Read this machine's facts and apply the rule.
fn decide() -> Result<launcher::Launch, String> {
    let explicit = std::env::var_os(TORCH_LIB_ENV)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from);
    let installs: Vec<_> = search_folders(explicit, recorded_folder())
        .into_iter()
        .map(|folder| {
            let install = read_install(&folder);
            (folder, install)
        })
        .collect();
    let gpu = visible_gpu();
    let driver = gpu.as_ref().and_then(|_| driver_version());
    let build_present = Path::new(BUILD_LIB).join(launcher::CORE_LIBRARY).exists();
    choose(gpu.as_deref(), &installs, driver.as_deref(), build_present)
}

/// The NVIDIA driver's version: `$CROSSOVER_NVIDIA_DRIVER`, the kernel module's
/// /proc/driver/nvidia/version, or `nvidia-smi`.
fn driver_version() -> Option<Vec<u32>> {
    if let Ok(stated) = std::env::var(DRIVER_ENV) {
        return parse_driver(&stated);
    }
    if let Some(version) = std::fs::read_to_string("/proc/driver/nvidia/version")
        .ok()
        .and_then(|text| parse_driver(&text))
    {
        return Some(version);
    }
    let output = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=driver_version", "--format=csv,noheader"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| parse_driver(&String::from_utf8_lossy(&output.stdout)))
        .flatten()
}
