//! A sweep's first step: every corpus its jobs train on, tokenized once into the token
//! store (`trainer prepare`) before any job starts, so that N jobs (and their ranks)
//! on one corpus never tokenize it N times or wait on each other's locks.

use crate::target::JobRow;
use anyhow::{Context, bail};
use jobspec::DataConfig;
use jobspec::status::{State, read_status};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One store and split to prepare, and a job folder whose job.yaml names it.
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    pub key: String,
    pub folder: PathBuf,
    pub describe: String,
    pub jobs: usize,
}

/// What makes two jobs need the same store and split: the corpus (resolved from the
/// job folder when it is a path), its reading settings, the tokenizer and the split.
/// Budgets, sequence lengths and window modes share one store.
pub fn data_key(data: &DataConfig, job_dir: &Path) -> String {
    let as_path = job_dir.join(&data.corpus);
    let corpus = if as_path.exists() {
        as_path
            .canonicalize()
            .unwrap_or(as_path)
            .display()
            .to_string()
    } else {
        data.corpus.clone()
    };
    format!(
        "{corpus}|{}|{:?}|{}|{}|{:?}|{}",
        data.text_field,
        data.tokenizer,
        data.val_tokens.get(),
        data.split_seed,
        data.order,
        data.skip_unknown
    )
}

/// The units of the jobs in `rows` that are not done, in order of their first job.
pub fn units(rows: &[JobRow]) -> anyhow::Result<Vec<Unit>> {
    let mut units: Vec<Unit> = Vec::new();
    for row in rows {
        let state = read_status(&row.folder)?.map(|status| status.state);
        if state == Some(State::Done) {
            continue;
        }
        let path = row.folder.join(jobspec::status::JOB_FILE);
        let config = jobspec::JobConfig::from_file(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let key = data_key(&config.data, &row.folder);
        match units.iter_mut().find(|unit| unit.key == key) {
            Some(unit) => unit.jobs += 1,
            None => units.push(Unit {
                key,
                folder: row.folder.clone(),
                describe: format!(
                    "corpus {} ({:?} tokenizer, val_tokens {}, split_seed {})",
                    config.data.corpus,
                    config.data.tokenizer,
                    config.data.val_tokens.get(),
                    config.data.split_seed
                ),
                jobs: 1,
            }),
        }
    }
    Ok(units)
}

/// Prepare every unit with `trainer prepare`, one after another (each uses every
/// core); its progress bar and summary go to this terminal. Returns the units that
/// failed (their error is above): their jobs would fail the same way, the others can
/// go ahead.
pub fn prepare_all<'a>(units: &'a [Unit], trainer: &Path) -> anyhow::Result<Vec<&'a Unit>> {
    let mut failed = Vec::new();
    for (index, unit) in units.iter().enumerate() {
        eprintln!(
            "prepare {}/{}: {} for {} job(s)",
            index + 1,
            units.len(),
            unit.describe,
            unit.jobs
        );
        let status = Command::new(trainer)
            .arg("prepare")
            .arg(&unit.folder)
            .status()
            .with_context(|| format!("starting {} prepare", trainer.display()))?;
        if !status.success() {
            eprintln!(
                "prepare {}/{} failed (above): fix the corpus or {} ",
                index + 1,
                units.len(),
                unit.folder.join(jobspec::status::JOB_FILE).display()
            );
            failed.push(unit);
        }
    }
    Ok(failed)
}

/// `harness prepare`: every unit, and an error naming the ones that failed.
pub fn prepare_units(units: &[Unit], trainer: &Path) -> anyhow::Result<()> {
    let failed = prepare_all(units, trainer)?;
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|unit| unit.describe.as_str()).collect();
        bail!(
            "{} of {} corpora failed to prepare: {}",
            failed.len(),
            units.len(),
            names.join("; ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobspec::{DocumentOrder, TokenCount, TokenizerSpec, WindowMode};

    fn data(corpus: &str) -> DataConfig {
        DataConfig {
            corpus: corpus.into(),
            text_field: "text".into(),
            tokenizer: TokenizerSpec::Gpt2,
            seq_len: 128,
            unique_tokens: TokenCount(1000),
            val_tokens: TokenCount(100),
            split_seed: 0,
            order: DocumentOrder::Shuffled,
            windows: WindowMode::Reshuffle,
            skip_unknown: false,
            resample: false,
        }
    }

    #[test]
    fn jobs_share_a_unit_unless_store_or_split_differ() {
        let folder = Path::new("/nonexistent/job");
        let base = data_key(&data("demo"), folder);
        let same = [
            DataConfig {
                unique_tokens: TokenCount(5000),
                ..data("demo")
            },
            DataConfig {
                seq_len: 32,
                ..data("demo")
            },
            DataConfig {
                windows: WindowMode::Fixed,
                ..data("demo")
            },
        ];
        for config in same {
            assert_eq!(data_key(&config, folder), base, "{config:?}");
        }
        let other = [
            data("moby"),
            DataConfig {
                tokenizer: TokenizerSpec::Bytes,
                ..data("demo")
            },
            DataConfig {
                val_tokens: TokenCount(200),
                ..data("demo")
            },
            DataConfig {
                split_seed: 1,
                ..data("demo")
            },
            DataConfig {
                order: DocumentOrder::Corpus,
                ..data("demo")
            },
            DataConfig {
                text_field: "body".into(),
                ..data("demo")
            },
        ];
        for config in other {
            assert_ne!(data_key(&config, folder), base, "{config:?}");
        }
    }
}
