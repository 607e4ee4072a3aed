//! `<results>/.lock`: one `harness run` per results folder.
//!
//! An exclusive `flock` on the file (released by the kernel when the holder exits,
//! even on kill -9) plus the holder's pid written inside, for messages and for
//! `harness cancel`. The file is never deleted, only emptied: deleting a lock file
//! lets a third process lock a fresh file while a second still holds the old one.

use crate::process;
use anyhow::{Context, bail};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = ".lock";

#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

fn open(results: &Path) -> anyhow::Result<(File, PathBuf)> {
    std::fs::create_dir_all(results).with_context(|| format!("creating {}", results.display()))?;
    let path = results.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    Ok((file, path))
}

fn recorded_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

impl RunLock {
    /// Take the lock or explain who holds it. Returns the lock and, when a previous
    /// holder died without releasing its pid, that pid (a stale lock, now replaced).
    pub fn acquire(results: &Path) -> anyhow::Result<(Self, Option<u32>)> {
        let (mut file, path) = open(results)?;
        let previous = recorded_pid(&mut file);
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => bail!(
                "{} is already being run by harness pid {} (lock file {}); wait for it to finish, or stop it with `harness cancel {}`",
                results.display(),
                previous.map_or_else(|| "unknown".into(), |pid| pid.to_string()),
                path.display(),
                results.display()
            ),
            Err(TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("locking {}", path.display()));
            }
        }
        let me = std::process::id();
        let stale = match previous {
            // File locks do not hold on some network filesystems: trust a live pid too.
            Some(pid) if pid != me && process::alive(pid, "harness") => bail!(
                "{} is already being run by harness pid {pid} (lock file {}; file locks may not work on this filesystem)",
                results.display(),
                path.display()
            ),
            Some(pid) if pid != me => Some(pid),
            _ => None,
        };
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{me}").with_context(|| format!("writing {}", path.display()))?;
        file.sync_all()?;
        Ok((Self { file, path }, stale))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Empty, not deleted (see the module comment); the flock goes with the file.
        let _ = self.file.set_len(0);
    }
}

/// The pid of the harness holding the lock on `results`, if one does.
pub fn holder(results: &Path) -> anyhow::Result<Option<u32>> {
    let path = results.join(LOCK_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let mut file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let pid = recorded_pid(&mut file);
    match file.try_lock_shared() {
        Ok(()) => Ok(pid.filter(|pid| process::alive(*pid, "harness"))),
        Err(TryLockError::WouldBlock) => Ok(pid),
        Err(TryLockError::Error(error)) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_and_a_released_one_is_free() {
        let folder = tempfile::tempdir().expect("temp dir");
        let (lock, stale) = RunLock::acquire(folder.path()).expect("first lock");
        assert_eq!(stale, None);
        let message = RunLock::acquire(folder.path())
            .expect_err("second lock")
            .to_string();
        assert!(
            message.contains(&format!("harness pid {}", std::process::id())),
            "{message}"
        );
        drop(lock);
        assert!(RunLock::acquire(folder.path()).is_ok(), "free again");
    }

    #[test]
    fn a_dead_holder_is_a_stale_lock() {
        let folder = tempfile::tempdir().expect("temp dir");
        // Pids are below 2^22 on Linux, so this one is never alive.
        std::fs::write(folder.path().join(LOCK_FILE), "4194999\n").expect("write");
        let (_lock, stale) = RunLock::acquire(folder.path()).expect("lock");
        assert_eq!(stale, Some(4_194_999));
    }
}
