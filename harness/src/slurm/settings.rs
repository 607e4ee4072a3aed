//! What an sbatch script asks Slurm for: the sweep's `slurm:` section overridden by
//! flags, every value validated before it can reach the script.
//!
//! Values are checked against what Slurm accepts rather than quoted: `#SBATCH` lines
//! are read by sbatch, not by a shell, so shell quoting would not make them safe and
//! would change their meaning. The setup preamble is the one exception: it is shell
//! by design, and only ever comes from the sweep file (no flag sets it).

use anyhow::bail;
use clap::Args;
use jobspec::SlurmSection;

/// `harness run --backend slurm` flags; each overrides the sweep's `slurm:` field.
#[derive(Args, Debug, Default, Clone)]
#[command(next_help_heading = "Slurm (--backend slurm; override the sweep's `slurm:` section)")]
pub struct SlurmFlags {
    #[arg(long)]
    pub partition: Option<String>,
    #[arg(long)]
    pub account: Option<String>,
    #[arg(long)]
    pub qos: Option<String>,
    /// Time limit per task: `MM`, `HH:MM:SS`, `D-HH[:MM[:SS]]`.
    #[arg(long)]
    pub time: Option<String>,
    /// Generic resources per task, `name[:type]:count`, e.g. `gpu:1`.
    #[arg(long)]
    pub gres: Option<String>,
    #[arg(long)]
    pub cpus_per_task: Option<u32>,
    /// Memory per task's node, e.g. `16G`.
    #[arg(long)]
    pub mem: Option<String>,
    /// At most this many array tasks run at once (`--array=...%N`).
    #[arg(long)]
    pub max_running: Option<u32>,
    /// Let Slurm requeue preempted tasks (they resume from their checkpoints).
    #[arg(long, overrides_with = "no_requeue")]
    pub requeue: bool,
    #[arg(long)]
    pub no_requeue: bool,
    /// Seconds before the time limit at which a task is told to checkpoint and
    /// requeues itself (`--signal=B:USR1@N`; default 120, 0 turns it off). Slurm may
    /// send it up to a minute earlier.
    #[arg(long, value_name = "SECONDS")]
    pub signal_lead: Option<u32>,
    /// Requeues after time limits per task before it waits for the next `harness run`
    /// (default 20).
    #[arg(long)]
    pub max_requeues: Option<u32>,
    /// Extra `#SBATCH --option` line (repeatable).
    #[arg(long = "sbatch-line", value_name = "LINE")]
    pub extra: Vec<String>,
}

/// Default lead of the time-limit signal, in seconds: a checkpoint of a 1B model
/// (13 GB) with a step in flight fits in it.
pub const DEFAULT_SIGNAL_LEAD: u32 = 120;
/// Default requeues after time limits: a 516-hour job under a 48-hour limit needs 11.
pub const DEFAULT_MAX_REQUEUES: u32 = 20;

/// Validated settings for one sbatch script.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settings {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    pub time: Option<String>,
    pub gres: Option<String>,
    pub cpus_per_task: Option<u32>,
    pub mem: Option<String>,
    pub max_running: Option<u32>,
    pub requeue: Option<bool>,
    /// LibTorch threads per trainer; None: the task's CPUs (`$SLURM_CPUS_PER_TASK`).
    pub threads: Option<u32>,
    /// Seconds before the limit of the checkpoint-and-requeue signal; 0: none.
    pub signal_lead: u32,
    pub max_requeues: u32,
    pub extra: Vec<String>,
    pub setup: Option<String>,
}

impl Settings {
    /// The sweep's section with flags on top (`threads` is the run's `--threads`).
    pub fn resolve(
        section: Option<&SlurmSection>,
        flags: &SlurmFlags,
        threads: Option<u32>,
    ) -> anyhow::Result<Self> {
        let section = section.cloned().unwrap_or_default();
        let requeue = match (flags.requeue, flags.no_requeue) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => section.requeue,
        };
        let mut extra = section.extra;
        extra.extend(flags.extra.iter().cloned());
        let settings = Self {
            partition: flags.partition.clone().or(section.partition),
            account: flags.account.clone().or(section.account),
            qos: flags.qos.clone().or(section.qos),
            time: flags.time.clone().or(section.time),
            gres: flags.gres.clone().or(section.gres),
            cpus_per_task: flags.cpus_per_task.or(section.cpus_per_task),
            mem: flags.mem.clone().or(section.mem),
            max_running: flags.max_running.or(section.max_running),
            requeue,
            threads: threads.or(section.threads),
            signal_lead: flags
                .signal_lead
                .or(section.signal_lead)
                .unwrap_or(DEFAULT_SIGNAL_LEAD),
            max_requeues: flags
                .max_requeues
                .or(section.max_requeues)
                .unwrap_or(DEFAULT_MAX_REQUEUES),
            extra,
            setup: section.setup,
        };
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let checks: [Check; 6] = [
            (
                "partition",
                &self.partition,
                is_name,
                "letters, digits, _ . -",
            ),
            ("account", &self.account, is_name, "letters, digits, _ . -"),
            ("qos", &self.qos, is_name, "letters, digits, _ . -"),
            (
                "time",
                &self.time,
                is_time,
                "MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS",
            ),
            (
                "mem",
                &self.mem,
                is_memory,
                "a number with an optional K, M, G or T",
            ),
            ("gres", &self.gres, is_gres, "name[:type]:count, e.g. gpu:1"),
        ];
        for (field, value, valid, expected) in checks {
            if let Some(value) = value
                && !valid(value)
            {
                bail!("slurm.{field} `{value}` is not valid: expected {expected}");
            }
        }
        let positive = [
            ("cpus_per_task", self.cpus_per_task),
            ("max_running", self.max_running),
            ("threads", self.threads),
        ];
        for (field, value) in positive {
            if value == Some(0) {
                bail!("slurm.{field} must be at least 1");
            }
        }
        for line in &self.extra {
            check_extra_line(line)?;
        }
        Ok(())
    }
}

/// A field's name, its value, its test and what the test expects, for messages.
type Check<'a> = (&'a str, &'a Option<String>, fn(&str) -> bool, &'a str);

/// Partition, account and QoS names.
pub fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 128
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn is_number(text: &str) -> bool {
    !text.is_empty() && text.len() <= 9 && text.bytes().all(|b| b.is_ascii_digit())
}

/// Slurm's time formats (sbatch(1), `--time`), plus UNLIMITED / INFINITE.
pub fn is_time(text: &str) -> bool {
    if matches!(text, "UNLIMITED" | "INFINITE" | "unlimited" | "infinite") {
        return true;
    }
    let (days, clock) = match text.split_once('-') {
        Some((days, clock)) => (Some(days), clock),
        None => (None, text),
    };
    if days.is_some_and(|days| !is_number(days)) {
        return false;
    }
    // MM, MM:SS, HH:MM:SS without days; HH, HH:MM, HH:MM:SS after `D-`.
    let parts: Vec<&str> = clock.split(':').collect();
    parts.len() <= 3 && parts.iter().all(|part| is_number(part))
}

/// `--mem`: a number of megabytes or a number with a K/M/G/T suffix.
pub fn is_memory(text: &str) -> bool {
    let digits = text.strip_suffix(['K', 'M', 'G', 'T']).unwrap_or(text);
    is_number(digits)
}

/// `--gres`: `name[:type]:count`.
pub fn is_gres(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        [name, count] => is_name(name) && is_number(count),
        [name, kind, count] => is_name(name) && is_name(kind) && is_number(count),
        _ => false,
    }
}

/// Characters that mean something to a shell. An `#SBATCH` line is read by sbatch,
/// not a shell, but a line that looks innocent and holds these is suspicious, and a
/// user copying it to a command line would run them.
const SHELL_METACHARACTERS: &[char] = &[
    '$', '`', ';', '&', '|', '<', '>', '(', ')', '\\', '"', '\'', '!', '*', '?', '{', '}', '~',
];

/// An extra line: `#SBATCH --option[=value]`, one line, no shell metacharacters.
pub fn check_extra_line(line: &str) -> anyhow::Result<()> {
    if !line.starts_with("#SBATCH --") {
        bail!("extra sbatch line `{line}` must start with `#SBATCH --`");
    }
    if line.chars().any(char::is_control) {
        bail!("extra sbatch line {line:?} must be one line without control characters");
    }
    if let Some(bad) = line.chars().find(|c| SHELL_METACHARACTERS.contains(c)) {
        bail!("extra sbatch line `{line}` contains `{bad}`: shell metacharacters are refused");
    }
    // sbatch keeps the last --signal: one here would replace the script's USR1, and a
    // task at its time limit would then stop without requeueing itself.
    if line.starts_with("#SBATCH --signal") {
        bail!(
            "extra sbatch line `{line}` would replace the signal the script asks for at the time limit (USR1: checkpoint, then requeue); set slurm.signal_lead (or --signal-lead) to choose how long before the limit it comes"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_slurm_accepts() {
        type Case = (fn(&str) -> bool, &'static str, bool);
        let cases: [Case; 27] = [
            (is_name, "gpu", true),
            (is_name, "gpu_a100.long-1", true),
            (is_name, "", false),
            (is_name, "gpu;rm", false),
            (is_name, "gpu part", false),
            (is_time, "30", true),
            (is_time, "30:00", true),
            (is_time, "4:00:00", true),
            (is_time, "1-12", true),
            (is_time, "1-12:30", true),
            (is_time, "1-12:30:00", true),
            (is_time, "UNLIMITED", true),
            (is_time, "1:2:3:4", false),
            (is_time, "1h", false),
            (is_time, "", false),
            (is_time, "1-", false),
            (is_time, "$(date)", false),
            (is_memory, "16G", true),
            (is_memory, "4096", true),
            (is_memory, "512M", true),
            (is_memory, "16GB", false),
            (is_memory, "G", false),
            (is_gres, "gpu:1", true),
            (is_gres, "gpu:a100:2", true),
            (is_gres, "gpu", false),
            (is_gres, "gpu:one", false),
            (is_gres, "gpu:1;x", false),
        ];
        for (check, text, expected) in cases {
            assert_eq!(check(text), expected, "{text}");
        }
    }

    #[test]
    fn extra_lines() {
        let cases = [
            ("#SBATCH --constraint=a100", true),
            ("#SBATCH --nodes 1", true),
            ("#SBATCH --mail-type=END,FAIL", true),
            ("#SBATCH --comment=$(touch /tmp/x)", false),
            ("#SBATCH --comment=`id`", false),
            ("#SBATCH --comment=a;b", false),
            ("#SBATCH --comment=a\n#SBATCH --x", false),
            ("--constraint=a100", false),
            ("#SBATCH -N 1", false),
            ("echo hi", false),
            ("#SBATCH --signal=B:TERM@120", false),
            ("#SBATCH --signal B:USR1@300", false),
        ];
        for (line, ok) in cases {
            assert_eq!(check_extra_line(line).is_ok(), ok, "{line}");
        }
    }

    #[test]
    fn flags_override_the_section_and_bad_values_are_refused() {
        let section = SlurmSection {
            partition: Some("cpu".into()),
            time: Some("10".into()),
            requeue: Some(true),
            extra: vec!["#SBATCH --constraint=a".into()],
            ..SlurmSection::default()
        };
        let flags = SlurmFlags {
            partition: Some("gpu".into()),
            no_requeue: true,
            extra: vec!["#SBATCH --exclusive".into()],
            ..SlurmFlags::default()
        };
        let settings = Settings::resolve(Some(&section), &flags, Some(2)).expect("valid");
        assert_eq!(settings.partition.as_deref(), Some("gpu"));
        assert_eq!(settings.time.as_deref(), Some("10"));
        assert_eq!(settings.requeue, Some(false));
        assert_eq!(settings.threads, Some(2));
        assert_eq!(settings.extra.len(), 2);
        let bad = SlurmFlags {
            account: Some("a b".into()),
            ..SlurmFlags::default()
        };
        let message = Settings::resolve(None, &bad, None)
            .expect_err("a blank in a name")
            .to_string();
        assert!(message.contains("slurm.account"), "{message}");
    }
}
