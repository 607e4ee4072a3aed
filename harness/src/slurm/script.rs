//! The sbatch script for one job array, as text (pure).
//!
//! Task i trains the job folder on line i+1 of the array file. Paths go into the
//! shell part single-quoted; `#SBATCH` lines only carry validated values (see
//! settings.rs) and a log path checked to be one sbatch can read unquoted.
//!
//! Every job of one array has the same shape. A one-process job is one task whose
//! shell becomes the trainer. A data-parallel job (train.devices N per node on
//! train.nodes M) asks for `--nodes=M --ntasks-per-node=N`, exports the rendezvous
//! (CROSSOVER_MASTER_ADDR: the allocation's first node; CROSSOVER_MASTER_PORT: from
//! the Slurm job id) and becomes `srun`, which starts one trainer per rank; each
//! reads its rank, the world size and its local rank from SLURM_PROCID, SLURM_NTASKS
//! and SLURM_LOCALID.

use super::settings::Settings;
use crate::target::Shape;
use anyhow::bail;
use std::fmt::Write;
use std::path::Path;

/// Everything one script needs besides the settings.
pub struct ScriptInput<'a> {
    pub sweep_name: &'a str,
    /// Number of array tasks (jobs submitted).
    pub tasks: usize,
    /// `<results>/slurm/array-<n>.txt`, absolute.
    pub array_file: &'a Path,
    /// Where Slurm writes what a task prints before it switches to the job's log.
    pub slurm_log_dir: &'a Path,
    pub trainer: &'a Path,
    /// Every job's shape: processes per node and nodes.
    pub shape: Shape,
    /// The Slurm job that prepares the corpora: the array starts once it succeeded.
    pub after: Option<&'a str>,
}

/// `text` as one single-quoted shell word: nothing inside is expanded.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A path that sbatch reads from an `#SBATCH --output=` line: sbatch splits such
/// lines at blanks and treats `%` and `\` as pattern characters, so those are refused.
fn check_sbatch_path(path: &Path) -> anyhow::Result<String> {
    let text = path.display().to_string();
    let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '%' | '\\' | '"' | '\'');
    if let Some(c) = text.chars().find(|c| bad(*c)) {
        bail!(
            "the results folder {text:?} holds {c:?}, which an #SBATCH --output line cannot carry: use --results with a path of letters, digits and / _ . -"
        );
    }
    Ok(text)
}

pub fn render(settings: &Settings, input: &ScriptInput) -> anyhow::Result<String> {
    if input.tasks == 0 {
        bail!("an array needs at least one task");
    }
    let log_dir = check_sbatch_path(input.slurm_log_dir)?;
    // It is named in a comment line below, where a newline would end the comment.
    check_sbatch_path(input.array_file)?;
    let mut out = String::new();
    let _ = writeln!(out, "#!/bin/bash");
    let _ = writeln!(
        out,
        "# Sweep `{}`: {} jobs as one Slurm job array, written by `harness run --backend slurm`.",
        input.sweep_name, input.tasks
    );
    let _ = writeln!(
        out,
        "# Task i trains the job folder on line i+1 of {}.",
        input.array_file.display()
    );
    if input.shape != Shape::SINGLE {
        let _ = writeln!(
            out,
            "# Each job runs as {}: {} ranks, one srun task each (train.nodes x train.devices).",
            input.shape,
            input.shape.processes()
        );
    }
    out.push_str(&sbatch_lines(settings, input, &log_dir));
    out.push_str(&body(settings, input));
    Ok(out)
}

/// What the prepare job's script needs besides the settings.
pub struct PrepareInput<'a> {
    pub sweep_name: &'a str,
    pub slurm_log_dir: &'a Path,
    pub trainer: &'a Path,
    /// One job folder per corpus to prepare (absolute).
    pub folders: &'a [std::path::PathBuf],
}

/// The script of the job that tokenizes a sweep's corpora into the token store
/// (`trainer prepare`, one corpus after another, every CPU of the task) before its
/// arrays start: CPU work, so no GPUs are asked for; the sweep's partition, account,
/// QoS, time, memory and CPUs are.
pub fn render_prepare(settings: &Settings, input: &PrepareInput) -> anyhow::Result<String> {
    let log_dir = check_sbatch_path(input.slurm_log_dir)?;
    let mut out = String::from("#!/bin/bash\n");
    let _ = writeln!(
        out,
        "# Sweep `{}`: tokenize its {} corpus(es) into the token store once, before its \
         arrays start (they depend on this job), written by `harness run --backend slurm`.",
        input.sweep_name,
        input.folders.len()
    );
    let mut lines = vec![
        format!("--job-name={}-prepare", input.sweep_name),
        format!("--output={log_dir}/prepare-%j.out"),
    ];
    lines.extend(resource_lines(settings, None));
    lines.extend(time_limit_lines(settings));
    for line in &lines {
        let _ = writeln!(out, "#SBATCH {line}");
    }
    for line in &settings.extra {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("set -eo pipefail\n");
    if let Some(setup) = &settings.setup {
        out.push_str("\n# Setup: the sweep file's slurm.setup, verbatim.\n");
        out.push_str(setup.trim_end());
        out.push('\n');
    }
    out.push_str(&prepare_block(
        settings,
        &shell_quote(&input.trainer.display().to_string()),
        input.folders,
    ));
    Ok(out)
}

/// The prepare job's body: one `trainer prepare` per folder, each in the background so
/// that the time limit's USR1 is handled while it runs. A prepare is resumable at any
/// point (finished shards are kept), so at the limit the preparer is stopped and the
/// job requeues itself (at most `max_requeues` times; the arrays wait for it, afterok)
/// to continue. A corpus that cannot be read fails only its own jobs, which report the
/// same error, as a local run does.
fn prepare_block(settings: &Settings, trainer: &str, folders: &[std::path::PathBuf]) -> String {
    let max = settings.max_requeues;
    let mut out = String::from(
        "\n# The store goes under $CROSSOVER_CACHE (default ~/.cache/crossover): every node\n\
         # must see it. At the time limit (USR1, #SBATCH --signal) the preparer is stopped and\n\
         # this job requeued; the prepare resumes from its finished shards.\n\
         limit=0\n\
         trap 'limit=1; kill -TERM \"$pid\" 2>/dev/null' USR1\n",
    );
    for folder in folders {
        let folder = shell_quote(&folder.display().to_string());
        let _ = writeln!(
            out,
            "{trainer} prepare {folder} &\n\
             pid=$!\n\
             while :; do code=0; wait \"$pid\" || code=$?; kill -0 \"$pid\" 2>/dev/null || break; done\n\
             if [ \"$limit\" = 1 ]; then\n  \
             if [ \"${{SLURM_RESTART_COUNT:-0}}\" -lt {max} ]; then\n    \
             echo \"--- slurm: time limit near while preparing; requeued to resume (requeue $((${{SLURM_RESTART_COUNT:-0}} + 1)) of at most {max}) ---\"\n    \
             scontrol requeue \"$SLURM_JOB_ID\"\n    \
             exit 0\n  \
             fi\n  \
             echo \"--- slurm: time limit near while preparing; {max} requeues done: run harness run again ---\" >&2\n  \
             exit 1\n\
             fi\n\
             if [ \"$code\" != 0 ]; then echo \"prepare of \"{folder}\" failed (above): its jobs will report it\" >&2; fi"
        );
    }
    out
}

/// The `#SBATCH` options (without the prefix) of the time limit's signal (none when
/// `signal_lead` is 0) and of requeueing: a job that requeues itself after a time limit
/// must be requeueable, unless `--no-requeue` was asked for.
fn time_limit_lines(settings: &Settings) -> Vec<String> {
    let mut lines = Vec::new();
    if settings.signal_lead > 0 {
        lines.push(format!("--signal=B:USR1@{}", settings.signal_lead));
    }
    match (settings.requeue, settings.signal_lead > 0) {
        (Some(true), _) | (None, true) => lines.push("--requeue".into()),
        (Some(false), _) => lines.push("--no-requeue".into()),
        (None, false) => {}
    }
    lines
}

/// The `#SBATCH` options (without the prefix) for where and with what a job runs:
/// partition, account, QoS, time, GPUs (when given), memory and CPUs per task.
fn resource_lines(settings: &Settings, gres: Option<&String>) -> Vec<String> {
    let named = [
        ("partition", settings.partition.as_ref()),
        ("account", settings.account.as_ref()),
        ("qos", settings.qos.as_ref()),
        ("time", settings.time.as_ref()),
        ("gres", gres),
        ("mem", settings.mem.as_ref()),
    ];
    let mut lines: Vec<String> = named
        .into_iter()
        .filter_map(|(option, value)| value.map(|value| format!("--{option}={value}")))
        .collect();
    if let Some(cpus) = settings.cpus_per_task {
        lines.push(format!("--cpus-per-task={cpus}"));
    }
    lines
}

fn sbatch_lines(settings: &Settings, input: &ScriptInput, log_dir: &str) -> String {
    let last = input.tasks - 1;
    let cap = settings
        .max_running
        .map_or_else(String::new, |cap| format!("%{cap}"));
    let mut lines = vec![
        format!("--job-name={}", input.sweep_name),
        format!("--array=0-{last}{cap}"),
        format!("--output={log_dir}/%A_%a.out"),
    ];
    if let Some(prepare) = input.after {
        // If the prepare job fails, Slurm cancels the array instead of leaving it
        // pending forever; a later `harness run` resubmits both (prepare resumes).
        lines.push(format!("--dependency=afterok:{prepare}"));
        lines.push("--kill-on-invalid-dep=yes".into());
    }
    let shape = input.shape;
    if shape != Shape::SINGLE {
        lines.push(format!("--nodes={}", shape.nodes));
        lines.push(format!("--ntasks-per-node={}", shape.devices));
    }
    let gres = settings
        .gres
        .as_ref()
        .map(|gres| gres_per_node(gres, shape.devices));
    lines.extend(resource_lines(settings, gres.as_ref()));
    lines.extend(time_limit_lines(settings));
    let mut out: String = lines
        .iter()
        .map(|line| format!("#SBATCH {line}\n"))
        .collect();
    for line in &settings.extra {
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn body(settings: &Settings, input: &ScriptInput) -> String {
    let array_file = shell_quote(&input.array_file.display().to_string());
    let trainer = shell_quote(&input.trainer.display().to_string());
    let threads = settings.threads.map_or_else(
        || "\"${SLURM_CPUS_PER_TASK:-1}\"".to_owned(),
        |t| t.to_string(),
    );
    let mut out = String::from("set -eo pipefail\n\n");
    let _ = writeln!(out, "array_file={array_file}");
    out.push_str(
        "job=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" \"$array_file\")\n\
         if [ -z \"$job\" ]; then\n  echo \"no job for task $SLURM_ARRAY_TASK_ID in $array_file\" >&2\n  exit 2\nfi\n\
         # From here on the task writes to its job's own log, like the local backend.\n\
         exec >>\"$job/log.txt\" 2>&1\n\
         echo \"--- slurm task ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} on $(hostname) starts \\`trainer run\\` at unix time $(date +%s) ---\"\n",
    );
    if let Some(setup) = &settings.setup {
        out.push_str("\n# Setup: the sweep file's slurm.setup, verbatim.\n");
        out.push_str(setup.trim_end());
        out.push('\n');
    }
    let run = format!("{trainer} run \"$job\" --threads {threads}");
    if input.shape != Shape::SINGLE {
        let (rendezvous, srun) = ranks(settings, input.shape);
        out.push_str(&rendezvous);
        if settings.signal_lead == 0 {
            let _ = writeln!(out, "exec {srun}{run}");
        } else {
            out.push_str(&time_limit_block(settings, &format!("{srun}{run}"), true));
        }
        return out;
    }
    if settings.signal_lead > 0 {
        out.push_str(&time_limit_block(settings, &run, false));
        return out;
    }
    out.push_str(
        "\n# exec: the trainer becomes the task, so Slurm's SIGTERM (scancel, time limit,\n\
         # preemption) reaches it: it checkpoints and exits with code 3, and a resubmitted\n\
         # or requeued task resumes from that checkpoint.\n",
    );
    let _ = writeln!(out, "exec {run}");
    out
}

/// Run `command` (the trainer, or srun and its ranks) in the background and handle
/// the time limit: Slurm sends this script USR1 `signal_lead` seconds before the
/// limit (`--signal=B:USR1@lead`); the trainer is told to stop (TERM: every rank
/// checkpoints after its step and exits with code 3), and the task requeues itself
/// (`scontrol requeue`), up to `max_requeues` times, to resume from that checkpoint.
/// scancel and preemption send TERM: passed on, no requeue. Any other ending (a
/// crash, NaN, a bad config: not code 3 after USR1) is not retried here.
fn time_limit_block(settings: &Settings, command: &str, ranks: bool) -> String {
    let max = settings.max_requeues;
    let mut out = String::from(
        "\n# Time limit: Slurm sends USR1 ahead of it (#SBATCH --signal); the trainer is told to\n\
         # stop (TERM: it checkpoints after its step and exits with code 3) and the task is\n\
         # requeued to resume from that checkpoint. scancel and preemption send TERM, which\n\
         # is passed on without a requeue; any other ending is the trainer's exit code.\n\
         limit=0\n",
    );
    // srun ends its step when it is signalled; its ranks are signalled through Slurm
    // instead (`scancel --signal` signals the step's tasks and ends nothing).
    let stop = if ranks {
        "scancel --signal=TERM \"${SLURM_JOB_ID}.0\" 2>/dev/null"
    } else {
        "kill -TERM \"$pid\" 2>/dev/null"
    };
    let _ = writeln!(out, "trap 'limit=1; {stop}' USR1");
    let _ = writeln!(out, "trap '{stop}' TERM");
    let _ = writeln!(out, "{command} &");
    out.push_str(
        "pid=$!\n\
         # wait returns early when a trapped signal arrives: wait until the trainer is gone\n\
         # (`|| code=$?`: a non-zero wait must not end the script under set -e).\n\
         while :; do\n  \
         code=0; wait \"$pid\" || code=$?\n  \
         kill -0 \"$pid\" 2>/dev/null || break\n\
         done\n\
         restarts=${SLURM_RESTART_COUNT:-0}\n",
    );
    let _ = writeln!(
        out,
        "# Stopped with a checkpoint: the trainer's exit code 3, or (srun, whose code is that of\n\
         # the rank it ended last) the job's status.json saying so.\n\
         stopped=0\n\
         if [ \"$code\" = 3 ] || grep -q '\"state\": *\"cancelled\"' \"$job/status.json\" 2>/dev/null; then stopped=1; fi\n\
         if [ \"$limit\" = 1 ] && [ \"$stopped\" = 1 ]; then\n  \
         if [ \"$restarts\" -lt {max} ]; then\n    \
         echo \"--- slurm: time limit near, checkpointed; requeued (requeue $((restarts + 1)) of at most {max}) at unix time $(date +%s) ---\"\n    \
         scontrol requeue \"${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}\"\n    \
         exit 0\n  \
         fi\n  \
         echo \"--- slurm: time limit near, checkpointed; {max} requeues done, so not requeued: run harness run again ---\"\n\
         fi\n\
         exit \"$code\""
    );
    out
}

/// A data-parallel job's rendezvous (shell lines), and its `srun ...` up to the
/// trainer's path.
fn ranks(settings: &Settings, shape: Shape) -> (String, String) {
    let out = String::from(
        "\n# Rendezvous of the job's ranks: the allocation's first node, and a port from the\n\
         # job id (each array task is its own Slurm job). sed, not head: it reads all of\n\
         # scontrol's output, so no SIGPIPE can fail the pipeline under pipefail.\n\
         CROSSOVER_MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | sed -n 1p)\n\
         export CROSSOVER_MASTER_ADDR\n\
         export CROSSOVER_MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))\n\
         \n\
         # srun starts one trainer per rank; each reads its rank, the world size and its\n\
         # local rank from SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID. --kill-on-bad-exit:\n\
         # one dead rank ends the step rather than leaving the others waiting. --label: each\n\
         # line of log.txt starts with the rank that wrote it (\"1: ...\"). exec: Slurm's\n\
         # SIGTERM (scancel, time limit, preemption) reaches srun, which passes it to every\n\
         # rank: they checkpoint and exit with code 3, and the job resumes when run again.\n",
    );
    // Since Slurm 22.05 srun does not inherit --cpus-per-task from sbatch: say it again.
    let cpus = settings
        .cpus_per_task
        .map_or_else(String::new, |cpus| format!(" --cpus-per-task={cpus}"));
    let srun = format!(
        "srun --label --kill-on-bad-exit=1 --nodes={} --ntasks-per-node={}{cpus} ",
        shape.nodes, shape.devices
    );
    (out, srun)
}

/// `--gres` for a job of `devices` processes per node: a `gpu` gres asks for at least
/// one GPU per process (`gpu:a100:1` -> `gpu:a100:4` for 4 devices; Slurm counts gres
/// per node); other gres, and larger counts, as written.
fn gres_per_node(gres: &str, devices: usize) -> String {
    let parts: Vec<&str> = gres.split(':').collect();
    let (name, count) = match parts.as_slice() {
        [name, count] | [name, _, count] => (*name, *count),
        _ => return gres.to_owned(),
    };
    let Ok(count) = count.parse::<usize>() else {
        return gres.to_owned();
    };
    if name != "gpu" || count >= devices {
        return gres.to_owned();
    }
    let kind = parts
        .get(2)
        .map_or(String::new(), |_| format!("{}:", parts[1]));
    format!("gpu:{kind}{devices}")
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
