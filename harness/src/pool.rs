//! The local backend: a pool of `trainer run <job>` processes on CPU slots or GPUs.
//!
//! A job with `train.devices N` takes N slots at once (packing.rs: which jobs start,
//! and on which slots); its one trainer process starts its other local ranks itself,
//! with CUDA_VISIBLE_DEVICES naming the job's group of GPUs. One loop polls the
//! workers (no threads): it reaps finished ones, decides retries, starts queued jobs
//! on free slots and forwards Ctrl-C. Workers run in their own process groups, so a
//! Ctrl-C in the terminal reaches only the harness, which then sends SIGTERM once
//! (the trainer checkpoints and exits with code 3) and SIGKILL, to each worker's
//! process group, on a second Ctrl-C.

pub use crate::packing::Slot;
use crate::packing::{check_fits, first_fit, visible_devices};
use crate::process::{self, SIGKILL, SIGTERM};
use crate::report::{Counts, Reporter};
use crate::schedule::{Action, decide, retry};
use crate::target::{JobRow, Shape, describe, folder_shape};
use anyhow::{Context, bail};
use jobspec::status::{State, Status, now, read_status, write_status};
use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Each job's trainer output, appended run after run.
pub const LOG_FILE: &str = "log.txt";
/// The trainer's exit code when a signal stopped it after a checkpoint.
const EXIT_STOPPED: i32 = 3;
const POLL: Duration = Duration::from_millis(200);

#[derive(Clone, Debug)]
pub struct PoolOptions {
    pub trainer: PathBuf,
    pub slots: Vec<Slot>,
    /// LibTorch threads per process (per slot).
    pub threads: usize,
    pub max_retries: u32,
}

/// Where each job stands in this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Queued,
    Running,
    /// Run by a trainer this harness did not start (left by a harness killed earlier).
    External(u32),
    Done,
    Failed,
    Cancelled,
}

struct Worker {
    job: usize,
    child: Child,
    started: Instant,
    /// The slots it holds (indices into `PoolOptions::slots`).
    slots: Vec<usize>,
}

#[derive(Debug)]
pub struct Summary {
    pub counts: Counts,
    /// Stopped by Ctrl-C / SIGTERM before every job ended.
    pub interrupted: bool,
}

/// Run every job that needs running; `signals` counts Ctrl-Cs received.
pub fn run_pool(
    jobs: &[JobRow],
    options: &PoolOptions,
    signals: &AtomicUsize,
) -> anyhow::Result<Summary> {
    let mut pool = Pool::new(jobs, options)?;
    let result = pool.drive(signals);
    if result.is_err() {
        pool.signal_all(SIGTERM);
    }
    result
}

/// The checks [`run_pool`] makes before it starts anything (every job can run on
/// these slots), made without starting: so a sweep that cannot run is refused before
/// its corpora are prepared.
pub fn check(jobs: &[JobRow], options: &PoolOptions) -> anyhow::Result<()> {
    for job in jobs {
        let phase = plan_job(job, options.max_retries)?;
        if matches!(phase, Phase::Queued | Phase::External(_)) {
            let (shape, _) = folder_shape(job);
            check_fits(&job.id, shape, &options.slots)?;
        }
    }
    Ok(())
}

struct Pool<'a> {
    jobs: &'a [JobRow],
    options: &'a PoolOptions,
    phases: Vec<Phase>,
    /// Each job's shape, as its job.yaml says (what the trainer runs).
    shapes: Vec<Shape>,
    queue: VecDeque<usize>,
    workers: Vec<Worker>,
    /// Which slots a worker holds.
    busy: Vec<bool>,
    reporter: Reporter,
    /// Ctrl-Cs acted on: 1 = SIGTERM sent, 2 = SIGKILL sent.
    stopping: usize,
}

impl<'a> Pool<'a> {
    fn new(jobs: &'a [JobRow], options: &'a PoolOptions) -> anyhow::Result<Self> {
        let mut phases = Vec::with_capacity(jobs.len());
        let mut shapes = Vec::with_capacity(jobs.len());
        let mut queue = VecDeque::new();
        for (index, job) in jobs.iter().enumerate() {
            let phase = plan_job(job, options.max_retries)?;
            let mut shape = job.shape;
            if matches!(phase, Phase::Queued | Phase::External(_)) {
                let note;
                (shape, note) = folder_shape(job);
                if let Some(note) = note {
                    eprintln!("{note}");
                }
                // Before anything starts: a job that can never fit is an error, not a hang.
                check_fits(&job.id, shape, &options.slots)?;
            }
            if phase == Phase::Queued {
                queue.push_back(index);
            }
            phases.push(phase);
            shapes.push(shape);
        }
        let total: u64 = jobs.iter().map(|job| job.tokens).sum();
        let done: u64 = jobs
            .iter()
            .zip(&phases)
            .filter(|(_, phase)| **phase == Phase::Done)
            .map(|(job, _)| job.tokens)
            .sum();
        Ok(Self {
            jobs,
            options,
            phases,
            shapes,
            queue,
            workers: Vec::new(),
            busy: vec![false; options.slots.len()],
            reporter: Reporter::new(total, done),
            stopping: 0,
        })
    }

    fn drive(&mut self, signals: &AtomicUsize) -> anyhow::Result<Summary> {
        self.reporter.event(
            &format!(
                "{} jobs: {} to run, {} {} x {} threads (a job takes train.devices of them)",
                self.jobs.len(),
                self.queue.len(),
                self.busy.len(),
                match self.options.slots.first() {
                    Some(Slot::Gpu(_)) => "GPUs",
                    _ => "slots",
                },
                self.options.threads
            ),
            self.counts(),
        );
        loop {
            self.forward_signals(signals.load(Ordering::SeqCst));
            self.reap()?;
            self.watch_external()?;
            if self.stopping == 0 {
                self.launch()?;
            }
            let busy = !self.workers.is_empty();
            let external = self.phases.iter().any(|p| matches!(p, Phase::External(_)));
            if !busy && (self.stopping > 0 || (self.queue.is_empty() && !external)) {
                break;
            }
            self.reporter.update(self.counts(), self.tokens_trained());
            std::thread::sleep(POLL);
        }
        let counts = self.counts();
        let interrupted = self.stopping > 0;
        self.reporter.finish(&if interrupted {
            format!("stopped: {counts}; run again to resume")
        } else {
            format!("finished: {counts}")
        });
        Ok(Summary {
            counts,
            interrupted,
        })
    }

    /// First Ctrl-C: SIGTERM to every worker and start nothing more; second: SIGKILL.
    fn forward_signals(&mut self, received: usize) {
        if received <= self.stopping || self.stopping >= 2 {
            return;
        }
        self.stopping = received.min(2);
        let (signal, line) = if self.stopping == 1 {
            (
                SIGTERM,
                "stopping: workers checkpoint and exit (Ctrl-C again to kill them)",
            )
        } else {
            (SIGKILL, "killing the workers")
        };
        self.reporter.event(line, self.counts());
        self.signal_all(signal);
    }

    /// SIGTERM goes to each trainer, which stops the ranks it started itself after a
    /// checkpoint (a second SIGTERM to them could cut that short); SIGKILL goes to
    /// each worker's whole process group, so no rank it started outlives it.
    fn signal_all(&self, signal: nix::sys::signal::Signal) {
        for worker in &self.workers {
            let _ = if signal == SIGKILL {
                process::signal_group(worker.child.id(), signal)
            } else {
                process::signal(worker.child.id(), signal)
            };
        }
    }

    fn reap(&mut self) -> anyhow::Result<()> {
        let mut index = 0;
        while index < self.workers.len() {
            let worker = &mut self.workers[index];
            let Some(exit) = worker.child.try_wait().context("waiting for a worker")? else {
                index += 1;
                continue;
            };
            let worker = self.workers.remove(index);
            for &slot in &worker.slots {
                self.busy[slot] = false;
            }
            self.finished(worker.job, exit, worker.started.elapsed())?;
        }
        Ok(())
    }

    /// Classify a worker's exit from its exit status and status.json.
    fn finished(&mut self, index: usize, exit: ExitStatus, took: Duration) -> anyhow::Result<()> {
        let job = &self.jobs[index];
        let status = read_status(&job.folder).ok().flatten();
        let state = status.as_ref().map(|status| status.state);
        if exit.success() && state == Some(State::Done) {
            self.phases[index] = Phase::Done;
            let line = format!("done {} in {:.1}s", job.id, took.as_secs_f64());
            self.reporter.event(&line, self.counts());
            return Ok(());
        }
        let killed_by_us = self.stopping > 0 && exit.signal().is_some();
        if exit.code() == Some(EXIT_STOPPED) || state == Some(State::Cancelled) || killed_by_us {
            if killed_by_us {
                // The trainer had no chance to say so; its checkpoints still resume it.
                let mut status = status.unwrap_or_else(Status::pending);
                status.state = State::Cancelled;
                status.pid = None;
                status.error = Some("killed by harness; run again to resume".into());
                write_status(&job.folder, &status)?;
            }
            self.phases[index] = Phase::Cancelled;
            let line = format!("stopped {}; it resumes on the next run", job.id);
            self.reporter.event(&line, self.counts());
            return Ok(());
        }
        self.failed(index, status, exit)
    }

    fn failed(
        &mut self,
        index: usize,
        status: Option<Status>,
        exit: ExitStatus,
    ) -> anyhow::Result<()> {
        let job = &self.jobs[index];
        let mut status = status.unwrap_or_else(Status::pending);
        let error = match (status.state, status.error.take()) {
            (State::Failed, Some(error)) => error,
            _ => exit_reason(exit, &job.folder),
        };
        status.state = State::Failed;
        status.error = Some(error.clone());
        status.pid = None;
        status.failures += 1;
        write_status(&job.folder, &status)?;
        let tries = self.options.max_retries + 1;
        if self.stopping == 0 && retry(status.failures, self.options.max_retries) {
            self.phases[index] = Phase::Queued;
            self.queue.push_back(index);
            let line = format!(
                "failed {} (try {} of {tries}), retrying: {error}",
                job.id, status.failures
            );
            self.reporter.event(&line, self.counts());
        } else {
            self.phases[index] = Phase::Failed;
            let line = format!("FAILED {} after {} tries: {error}", job.id, status.failures);
            self.reporter.event(&line, self.counts());
        }
        Ok(())
    }

    /// Jobs a trainer from an earlier harness was running: once that process is gone,
    /// decide again from what it left in status.json.
    fn watch_external(&mut self) -> anyhow::Result<()> {
        for index in 0..self.jobs.len() {
            let Phase::External(pid) = self.phases[index] else {
                continue;
            };
            if process::alive(pid, "trainer") {
                continue;
            }
            let phase = plan_job(&self.jobs[index], self.options.max_retries)?;
            if phase == Phase::Queued {
                self.queue.push_back(index);
            }
            self.phases[index] = phase;
        }
        Ok(())
    }

    /// Start every queued job that fits in the free slots now (first fit in queue
    /// order, packing.rs).
    fn launch(&mut self) -> anyhow::Result<()> {
        let wanted: Vec<usize> = self
            .queue
            .iter()
            .map(|&index| self.shapes[index].devices)
            .collect();
        let starts = first_fit(&wanted, &self.busy);
        if starts.is_empty() && self.workers.is_empty() && !self.queue.is_empty() {
            // check_fits rules this out; never wait for slots nothing will free.
            bail!(
                "no job in the queue fits in the pool's {} slots",
                self.busy.len()
            );
        }
        let mut started = vec![false; self.queue.len()];
        for (position, slots) in starts {
            let index = self.queue[position];
            let job = &self.jobs[index];
            let devices = visible_devices(&self.options.slots, &slots);
            let child = spawn(job, devices.as_deref(), self.options)?;
            for &slot in &slots {
                self.busy[slot] = true;
            }
            self.phases[index] = Phase::Running;
            self.workers.push(Worker {
                job: index,
                child,
                started: Instant::now(),
                slots,
            });
            started[position] = true;
            let place = devices.map_or_else(String::new, |gpus| format!(" on GPU {gpus}"));
            let line = format!("start {} ({}){place}", job.id, describe(&job.values));
            self.reporter.event(&line, self.counts());
        }
        let mut position = 0;
        self.queue.retain(|_| {
            position += 1;
            !started[position - 1]
        });
        Ok(())
    }

    fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for phase in &self.phases {
            match phase {
                Phase::Done => counts.done += 1,
                Phase::Running | Phase::External(_) => counts.running += 1,
                Phase::Failed => counts.failed += 1,
                Phase::Queued | Phase::Cancelled => counts.pending += 1,
            }
        }
        counts
    }

    /// Tokens trained: whole finished jobs plus the part of running ones done so far.
    fn tokens_trained(&self) -> u64 {
        let mut tokens = 0;
        for (job, phase) in self.jobs.iter().zip(&self.phases) {
            match phase {
                Phase::Done => tokens += job.tokens,
                Phase::Running | Phase::External(_) => {
                    if let Ok(Some(status)) = read_status(&job.folder)
                        && status.total_steps > 0
                    {
                        let share = status.step as f64 / status.total_steps as f64;
                        tokens += (job.tokens as f64 * share.min(1.0)) as u64;
                    }
                }
                _ => {}
            }
        }
        tokens
    }
}

fn plan_job(job: &JobRow, max_retries: u32) -> anyhow::Result<Phase> {
    let status = read_status(&job.folder)?;
    let alive = |pid| process::alive(pid, "trainer");
    Ok(match decide(status.as_ref(), max_retries, alive) {
        Action::Skip => Phase::Done,
        Action::Run => Phase::Queued,
        Action::Wait(pid) => Phase::External(pid),
        Action::GiveUp => Phase::Failed,
    })
}

/// Start `trainer run <job>` with its output appended to the job's log.txt, seeing
/// only `devices` (CUDA_VISIBLE_DEVICES) when it runs on GPUs.
fn spawn(job: &JobRow, devices: Option<&str>, options: &PoolOptions) -> anyhow::Result<Child> {
    let log_path = job.folder.join(LOG_FILE);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    writeln!(
        log,
        "--- harness (pid {}) starts `trainer run` at unix time {} ---",
        std::process::id(),
        now()
    )?;
    let mut command = Command::new(&options.trainer);
    command
        .arg("run")
        .arg(&job.folder)
        .arg("--threads")
        .arg(options.threads.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a terminal's Ctrl-C reaches only the harness.
        .process_group(0);
    if let Some(devices) = devices {
        command.env("CUDA_VISIBLE_DEVICES", devices);
    }
    command.spawn().with_context(|| {
        format!(
            "starting the trainer {} (build it with `cargo build -p trainer`, or pass --trainer PATH)",
            options.trainer.display()
        )
    })
}

/// Why a worker failed when status.json does not say: its exit and the log's last error.
fn exit_reason(exit: ExitStatus, folder: &Path) -> String {
    let how = match (exit.code(), exit.signal()) {
        (_, Some(signal)) => format!("trainer killed by signal {signal} (out of memory?)"),
        (Some(code), _) => format!("trainer exited with code {code}"),
        _ => "trainer ended".into(),
    };
    let log = std::fs::read_to_string(folder.join(LOG_FILE)).unwrap_or_default();
    let last = log
        .lines()
        .rev()
        .find(|line| line.contains("error"))
        .or_else(|| log.lines().next_back());
    match last {
        Some(line) if !line.starts_with("--- harness") => format!("{how}: {}", line.trim()),
        _ => how,
    }
}
