//! Processes by pid: liveness through /proc and signals through nix (no unsafe code).

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Whether `pid` is a live process (not a zombie) whose command line mentions `name`.
/// The name check guards against a recycled pid that now belongs to something else.
pub fn alive(pid: u32, name: &str) -> bool {
    let proc_dir = std::path::Path::new("/proc").join(pid.to_string());
    let zombie = std::fs::read_to_string(proc_dir.join("stat"))
        .ok()
        .and_then(|stat| {
            let after_name = stat.rsplit_once(')')?.1;
            after_name
                .split_whitespace()
                .next()
                .map(|state| state == "Z")
        })
        .unwrap_or(true);
    if zombie {
        return false;
    }
    std::fs::read(proc_dir.join("cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).contains(name))
        .unwrap_or(false)
}

/// Send `signal` to `pid`; a process that has already gone is not an error.
pub fn signal(pid: u32, signal: Signal) -> std::io::Result<()> {
    let Ok(raw) = i32::try_from(pid) else {
        return Ok(());
    };
    match kill(Pid::from_raw(raw), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(errno) => Err(std::io::Error::from(errno)),
    }
}

/// Send `signal` to process group `group` (a worker started with `process_group(0)`
/// leads its own, so its pid names it, and the ranks it starts inherit it); a group
/// that has gone is not an error.
pub fn signal_group(group: u32, signal: Signal) -> std::io::Result<()> {
    let Ok(raw) = i32::try_from(group) else {
        return Ok(());
    };
    match killpg(Pid::from_raw(raw), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(errno) => Err(std::io::Error::from(errno)),
    }
}

pub use nix::sys::signal::Signal::{SIGKILL, SIGTERM};
