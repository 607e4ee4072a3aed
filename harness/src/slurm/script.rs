//! The sbatch script for one job array, as text (pure).
//!
//! Task i trains the job folder on line i+1 of the array file. Paths go into the
//! shell part single-quoted; `#SBATCH` lines only carry validated values (see
//! settings.rs) and a log path checked to be one sbatch can read unquoted.

use super::settings::Settings;
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
    out.push_str(&sbatch_lines(settings, input, &log_dir));
    out.push_str(&body(settings, input));
    Ok(out)
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
    let named = [
        ("partition", &settings.partition),
        ("account", &settings.account),
        ("qos", &settings.qos),
        ("time", &settings.time),
        ("gres", &settings.gres),
        ("mem", &settings.mem),
    ];
    for (option, value) in named {
        if let Some(value) = value {
            lines.push(format!("--{option}={value}"));
        }
    }
    if let Some(cpus) = settings.cpus_per_task {
        lines.push(format!("--cpus-per-task={cpus}"));
    }
    match settings.requeue {
        Some(true) => lines.push("--requeue".into()),
        Some(false) => lines.push("--no-requeue".into()),
        None => {}
    }
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
    out.push_str(
        "\n# exec: the trainer becomes the task, so Slurm's SIGTERM (scancel, time limit,\n\
         # preemption) reaches it: it checkpoints and exits with code 3, and a resubmitted\n\
         # or requeued task resumes from that checkpoint.\n",
    );
    let _ = writeln!(out, "exec {trainer} run \"$job\" --threads {threads}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn quoting() {
        let cases = [
            ("plain", "'plain'"),
            ("it's", r"'it'\''s'"),
            ("$(touch x); `id`", "'$(touch x); `id`'"),
        ];
        for (text, expected) in cases {
            assert_eq!(shell_quote(text), expected);
        }
    }

    fn input<'a>(dir: &'a Path, file: &'a Path, trainer: &'a Path) -> ScriptInput<'a> {
        ScriptInput {
            sweep_name: "smoke",
            tasks: 3,
            array_file: file,
            slurm_log_dir: dir,
            trainer,
        }
    }

    #[test]
    fn a_script_carries_every_setting() {
        let settings = Settings {
            partition: Some("gpu".into()),
            gres: Some("gpu:1".into()),
            max_running: Some(2),
            requeue: Some(true),
            threads: Some(1),
            extra: vec!["#SBATCH --exclusive".into()],
            setup: Some("module load cuda\n".into()),
            ..Settings::default()
        };
        let dir = PathBuf::from("/r/slurm/logs");
        let file = PathBuf::from("/r/$x/array-1.txt");
        let trainer = PathBuf::from("/it's/trainer");
        let script = render(&settings, &input(&dir, &file, &trainer)).expect("renders");
        for expected in [
            "#SBATCH --array=0-2%2\n",
            "#SBATCH --output=/r/slurm/logs/%A_%a.out\n",
            "#SBATCH --partition=gpu\n",
            "#SBATCH --gres=gpu:1\n",
            "#SBATCH --requeue\n",
            "#SBATCH --exclusive\n",
            "array_file='/r/$x/array-1.txt'\n",
            "module load cuda\n",
            "exec '/it'\\''s/trainer' run \"$job\" --threads 1\n",
        ] {
            assert!(script.contains(expected), "{expected} in\n{script}");
        }
    }

    #[test]
    fn log_paths_sbatch_cannot_read_are_refused() {
        let settings = Settings::default();
        let file = PathBuf::from("/r/array-1.txt");
        let trainer = PathBuf::from("/bin/trainer");
        for dir in ["/r s/logs", "/r%j/logs", "/r'/logs"] {
            let dir = PathBuf::from(dir);
            assert!(
                render(&settings, &input(&dir, &file, &trainer)).is_err(),
                "{dir:?}"
            );
        }
        let dir = PathBuf::from("/r$(touch${IFS}x)/logs");
        let script = render(&settings, &input(&dir, &file, &trainer)).expect("renders");
        assert!(
            script.contains("--threads \"${SLURM_CPUS_PER_TASK:-1}\""),
            "{script}"
        );
    }
}
