//! The Slurm backend (design.md, "Dispatch"): one job array per `harness run` and job
//! shape (train.devices x train.nodes; one array for a sweep of one-process jobs),
//! task i running `trainer run` on the i-th job folder submitted, once per rank.
//!
//! Files, under `<results>/slurm/`: `array-<n>.sh` (the script, kept for the user to
//! read or resubmit), `array-<n>.txt` (its job folders, task i = line i+1),
//! `submissions.json` (each array's Slurm id and jobs) and `logs/` (what a task
//! prints before it switches to its job's log.txt). Status reads the job folders
//! together with squeue, and sacct where accounting works.

mod client;
mod parse;
mod script;
mod settings;
mod track;

use crate::lock::RunLock;
use crate::target::{JobRow, Shape, Target, folder_shape};
use anyhow::Context;
use jobspec::status::{State, now, read_status};
use std::path::{Path, PathBuf};

pub use parse::TaskRecord;
use settings::Settings;
pub use settings::SlurmFlags;
pub use track::merged_state;
use track::{Submission, slurm_dir};

/// What `harness run --backend slurm` needs besides the sweep.
pub struct SubmitOptions {
    pub trainer: PathBuf,
    /// `--threads`: LibTorch threads per trainer.
    pub threads: Option<u32>,
    pub flags: SlurmFlags,
}

/// Write the job folders and submit every job that is neither done nor already in
/// Slurm's queue as one array. Settings are validated before anything is written.
pub fn run(
    sweep_path: &Path,
    results: Option<PathBuf>,
    options: &SubmitOptions,
) -> anyhow::Result<()> {
    let target = Target::resolve(sweep_path, results)?;
    let section = match &target.sweep {
        Some(sweep) => sweep.slurm.clone(),
        None => section_of_copy(&target.results)?,
    };
    let settings = Settings::resolve(section.as_ref(), &options.flags, options.threads)?;
    let (lock, _) = RunLock::acquire(&target.results)?;
    if let Some(sweep) = &target.sweep {
        if let Some(kept) = jobspec::store::archive_changed_sweep(sweep_path, &target.results)? {
            eprintln!(
                "note: {} changed since its results were written; the earlier version is kept as {}",
                sweep_path.display(),
                kept.display()
            );
        }
        jobspec::store::write_jobs(sweep, sweep_path, &target.results)?;
    }
    let (_, rows) = target.jobs()?;
    let results = std::path::absolute(&target.results)
        .with_context(|| format!("resolving {}", target.results.display()))?;
    let name = match &target.sweep {
        Some(sweep) => sweep.name.clone(),
        None => folder_name(&results),
    };
    let line = submit(&results, &name, &rows, &settings, options)?;
    drop(lock);
    println!("{line}");
    Ok(())
}

/// The `slurm:` section of `<results>/sweep.yaml`, for a run given a results folder.
fn section_of_copy(results: &Path) -> anyhow::Result<Option<jobspec::SlurmSection>> {
    let copy = results.join(jobspec::store::SWEEP_COPY);
    let sweep = jobspec::store::load_sweep(&copy)
        .with_context(|| format!("reading the slurm section of {}", copy.display()))?;
    Ok(sweep.slurm)
}

fn folder_name(results: &Path) -> String {
    let name = results
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    // The name goes into `#SBATCH --job-name=`: keep it to a safe set.
    name.filter(|name| settings::is_name(name))
        .unwrap_or_else(|| "sweep".into())
}

fn submit(
    results: &Path,
    name: &str,
    rows: &[JobRow],
    settings: &Settings,
    options: &SubmitOptions,
) -> anyhow::Result<String> {
    let mut submissions = track::read_submissions(results)?;
    let records = client::task_records(&track::array_ids(&submissions))?;
    let by_job = track::job_records(&submissions, &records);
    let mut chosen = Vec::new();
    for row in rows {
        let state = read_status(&row.folder)?.map_or(State::Pending, |status| status.state);
        if track::needs_submission(state, by_job.get(&row.id)) {
            chosen.push(row);
        }
    }
    if chosen.is_empty() {
        let active = rows
            .iter()
            .filter(|row| by_job.get(&row.id).is_some_and(TaskRecord::active));
        return Ok(format!(
            "nothing to submit: {} jobs queued or running in Slurm, the others done",
            active.count()
        ));
    }
    let mut lines = Vec::new();
    let rows_to_run: Vec<JobRow> = chosen.iter().map(|row| (*row).clone()).collect();
    let units = crate::prepare::units(&rows_to_run)?;
    let prepare_job = if units.is_empty() {
        None
    } else {
        let (id, script) = submit_prepare(results, name, &units, settings, options)?;
        lines.push(format!(
            "submitted the preparation of {} corpus(es) as Slurm job {id} (script {}); the arrays start when it succeeds",
            units.len(),
            script.display()
        ));
        Some(id)
    };
    for (shape, group) in by_shape(&chosen) {
        let number = submissions.len() + 1;
        let submission = submit_array(
            results,
            name,
            &group,
            (shape, prepare_job.as_deref()),
            number,
            settings,
            options,
        )?;
        let each = if shape == Shape::SINGLE {
            String::new()
        } else {
            format!(" ({shape} each)")
        };
        lines.push(format!(
            "submitted {} of {} jobs{each} as Slurm array {} (script {})",
            group.len(),
            rows.len(),
            submission.slurm_job,
            slurm_dir(results).join(&submission.script).display()
        ));
        // Recorded at once: an sbatch failing for a later shape leaves this one tracked.
        submissions.push(submission);
        track::write_submissions(results, &submissions)?;
    }
    Ok(lines.join("\n"))
}

/// Jobs grouped by the shape their trainers will run with (one array each: an
/// sbatch script asks for one shape), groups in order of their first job.
fn by_shape<'a>(rows: &[&'a JobRow]) -> Vec<(Shape, Vec<&'a JobRow>)> {
    let mut groups: Vec<(Shape, Vec<&JobRow>)> = Vec::new();
    for &row in rows {
        let (shape, note) = folder_shape(row);
        if let Some(note) = note {
            eprintln!("{note}");
        }
        match groups.iter_mut().find(|(known, _)| *known == shape) {
            Some((_, group)) => group.push(row),
            None => groups.push((shape, vec![row])),
        }
    }
    groups
}

/// Write the prepare job's script (`slurm/prepare-<n>.sh`) and sbatch it: its id,
/// and the script's path.
fn submit_prepare(
    results: &Path,
    name: &str,
    units: &[crate::prepare::Unit],
    settings: &Settings,
    options: &SubmitOptions,
) -> anyhow::Result<(String, PathBuf)> {
    let dir = slurm_dir(results);
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let trainer = std::path::absolute(&options.trainer)
        .with_context(|| format!("resolving {}", options.trainer.display()))?;
    let folders = units
        .iter()
        .map(|unit| std::path::absolute(&unit.folder))
        .collect::<Result<Vec<_>, _>>()
        .context("resolving the job folders")?;
    let text = script::render_prepare(
        settings,
        &script::PrepareInput {
            sweep_name: name,
            slurm_log_dir: &logs,
            trainer: &trainer,
            folders: &folders,
        },
    )?;
    let mut number = 1;
    while dir.join(format!("prepare-{number}.sh")).exists() {
        number += 1;
    }
    let script_path = dir.join(format!("prepare-{number}.sh"));
    write(&script_path, &text)?;
    let id = client::sbatch(&script_path, results)?;
    Ok((id, script_path))
}

/// Write array `number`'s job list and script for `jobs` (all of one shape) and sbatch
/// it, after the prepare job if there is one.
fn submit_array(
    results: &Path,
    name: &str,
    jobs: &[&JobRow],
    (shape, after): (Shape, Option<&str>),
    number: usize,
    settings: &Settings,
    options: &SubmitOptions,
) -> anyhow::Result<Submission> {
    let dir = slurm_dir(results);
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let array_file = dir.join(format!("array-{number}.txt"));
    let script_path = dir.join(format!("array-{number}.sh"));
    let trainer = std::path::absolute(&options.trainer)
        .with_context(|| format!("resolving {}", options.trainer.display()))?;
    let input = script::ScriptInput {
        sweep_name: name,
        tasks: jobs.len(),
        array_file: &array_file,
        slurm_log_dir: &logs,
        trainer: &trainer,
        shape,
        after,
    };
    let text = script::render(settings, &input)?;
    let mut folders = String::new();
    for row in jobs {
        let folder = std::path::absolute(&row.folder)
            .with_context(|| format!("resolving {}", row.folder.display()))?;
        folders.push_str(&format!("{}\n", folder.display()));
    }
    write(&array_file, &folders)?;
    write(&script_path, &text)?;
    let slurm_job = client::sbatch(&script_path, results)?;
    Ok(Submission {
        slurm_job,
        script: format!("array-{number}.sh"),
        array_file: format!("array-{number}.txt"),
        jobs: jobs.iter().map(|row| row.id.clone()).collect(),
        submitted_at: now(),
    })
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    jobspec::status::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Slurm's record of each job of a sweep that was submitted to Slurm, by job id: None
/// when it was never submitted, or when squeue cannot be reached (said in a note; the
/// job folders' word then stands).
pub fn records_by_job(
    results: &Path,
) -> anyhow::Result<Option<std::collections::HashMap<String, TaskRecord>>> {
    let submissions = track::read_submissions(results)?;
    if submissions.is_empty() {
        return Ok(None);
    }
    match client::task_records(&track::array_ids(&submissions)) {
        Ok(records) => Ok(Some(track::job_records(&submissions, &records))),
        Err(error) => {
            eprintln!("note: cannot read Slurm's queue ({error:#}); showing the job folders only");
            Ok(None)
        }
    }
}

/// Refuse a local run of a sweep whose jobs Slurm is still running or about to run:
/// both would train the same job folders.
pub fn refuse_if_queued(results: &Path) -> anyhow::Result<()> {
    let submissions = track::read_submissions(results)?;
    if submissions.is_empty() {
        return Ok(());
    }
    let records = match client::task_records(&track::array_ids(&submissions)) {
        Ok(records) => records,
        // Results moved to a machine without Slurm: nothing there can be running them.
        Err(error) => {
            eprintln!("note: cannot read Slurm's queue ({error:#}); running locally");
            return Ok(());
        }
    };
    let active = records.values().filter(|record| record.active()).count();
    if active > 0 {
        anyhow::bail!(
            "{active} jobs of {} are queued or running in Slurm: wait for them, or stop them with `harness cancel {}`",
            results.display(),
            results.display()
        );
    }
    Ok(())
}

/// `harness cancel` for a sweep submitted to Slurm: scancel each of its arrays that
/// still has queued or running tasks. Returns a line per array cancelled.
pub fn cancel(results: &Path) -> anyhow::Result<Vec<String>> {
    let submissions = track::read_submissions(results)?;
    if submissions.is_empty() {
        return Ok(Vec::new());
    }
    let records = client::task_records(&track::array_ids(&submissions))?;
    let mut lines = Vec::new();
    for id in track::array_ids(&submissions) {
        let active = records
            .values()
            .filter(|record| record.array == id && record.active())
            .count();
        if active > 0 {
            client::scancel(std::slice::from_ref(&id))?;
            lines.push(format!("scancel {id} ({active} tasks queued or running)"));
        }
    }
    Ok(lines)
}
