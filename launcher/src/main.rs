//! `trainer`: chooses the LibTorch this node runs on (launcher's lib.rs says the rule)
//! and replaces itself with `trainer-worker`, which does the work (`trainer --help`).
//! The process keeps its pid, so the harness and Slurm signal the worker directly.

use launcher::{LAUNCHED_ENV, TORCH_LIB_ENV, UNUSABLE_ENV, WORKER, library_path};
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

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
        let launch = launcher::Facts::read().decide()?;
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
