//! Which runs feed the fits, and how they are grouped.
//!
//! A *family* is a model size plus every training setting other than the unique-token
//! budget, the epochs and the seed: the runs one law is fitted to (per objective) and
//! whose budgets the critical-compute and data-potential curves run over. It is read
//! off the comparison groups (`pairs::groups::group_runs`), so what counts as a training
//! setting is decided in one place: a group's `variant` lists the varying settings
//! other than budget and model, and dropping its `epochs=` entry leaves the family.
//!
//! The R_D* fit uses each done run's final validation loss only. A milestone in the
//! middle of a cosine schedule is not the loss a run trained for that many epochs would
//! reach (its learning rate has not decayed), so intermediate evaluations are not
//! points of the law. A done run whose last evaluation is not at its planned end is
//! left out with a warning.

use super::law::LossPoint;
use crate::ingest::records::{EvalRow, Run, Warning};
use crate::pairs::groups::Group;
use std::path::Path;

/// A model size and the training settings shared by the runs of one fit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Family {
    pub params: Option<u64>,
    pub preset: String,
    /// `field=value` settings that vary between families of the same model (e.g.
    /// `lr=0.001`), sorted; empty when only budgets, epochs and models vary.
    pub settings: Vec<String>,
}

impl Family {
    /// The family of a comparison group.
    pub fn of_group(group: &Group) -> Self {
        let mut settings: Vec<String> = group
            .variant
            .split_whitespace()
            .filter(|setting| !setting.starts_with("epochs="))
            .map(str::to_string)
            .collect();
        settings.sort();
        Self {
            params: group.params,
            preset: group.preset.clone(),
            settings,
        }
    }

    /// "model nano", "model nano, lr=0.001".
    pub fn label(&self) -> String {
        let mut label = format!("model {}", self.preset);
        for setting in &self.settings {
            label += &format!(", {setting}");
        }
        label
    }

    /// A file-name-safe form of the label.
    pub fn slug(&self) -> String {
        let mut slug = self.preset.clone();
        for setting in &self.settings {
            slug.push('_');
            slug.extend(
                setting
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }),
            );
        }
        slug
    }

    /// Whether `self` holds every setting of `other` on the same model (an AR family
    /// is inside each DLM-setting family it is compared with).
    pub fn contains(&self, other: &Family) -> bool {
        self.params == other.params
            && self.preset == other.preset
            && other.settings.iter().all(|s| self.settings.contains(s))
    }
}

/// The family of each run (indexed like `runs`; None for a run in no group). A run
/// compared in several groups (an AR run paired with each `dlm.*` setting of the DLM)
/// keeps the settings common to all of them.
pub fn run_families(runs: &[Run], groups: &[Group]) -> Vec<Option<Family>> {
    families_of(runs.len(), groups)
}

fn families_of(runs: usize, groups: &[Group]) -> Vec<Option<Family>> {
    let mut families: Vec<Option<Family>> = vec![None; runs];
    for group in groups {
        let family = Family::of_group(group);
        for &i in &group.runs {
            families[i] = Some(match families[i].take() {
                None => family.clone(),
                Some(mut kept) => {
                    kept.settings.retain(|s| family.settings.contains(s));
                    kept
                }
            });
        }
    }
    families
}

/// One run's point of the law.
#[derive(Clone, Debug, PartialEq)]
pub struct FinalLoss {
    pub family: Family,
    pub objective: String,
    pub point: LossPoint,
}

/// The final validation loss of every done run evaluated at its planned end, and a
/// warning for each done run left out (last evaluation before the end, or a loss that
/// is not a number).
pub fn final_losses(
    runs: &[Run],
    families: &[Option<Family>],
    results: &Path,
) -> (Vec<FinalLoss>, Vec<Warning>) {
    let mut points = Vec::new();
    let mut warnings = Vec::new();
    for (run, family) in runs.iter().zip(families) {
        let (Some(family), true) = (family, run.state == "done") else {
            continue;
        };
        let Some(last) = last_val_loss(run) else {
            continue;
        };
        let warn = |message: String| Warning {
            path: results.join("jobs").join(&run.id),
            message,
        };
        if !at_planned_end(run, last) {
            warnings.push(warn(format!(
                "done, but its last validation loss is at epoch {} of {} planned: left out of the scaling-law fits (they use each run's loss at the end of its schedule)",
                crate::format::epochs(last.epoch),
                crate::format::epochs(run.config.train.epochs)
            )));
            continue;
        }
        if !last.value.is_finite() {
            warnings.push(warn(format!(
                "final validation loss is {}: left out of the scaling-law fits",
                last.value
            )));
            continue;
        }
        points.push(FinalLoss {
            family: family.clone(),
            objective: run.objective.clone(),
            point: LossPoint {
                unique_tokens: run.config.data.unique_tokens.get() as f64,
                epochs: last.epoch,
                loss: last.value,
                stderr: last.stderr,
            },
        });
    }
    (points, warnings)
}

/// The run's last validation-loss evaluation (by step).
fn last_val_loss(run: &Run) -> Option<&EvalRow> {
    run.eval
        .iter()
        .filter(|e| e.task == "val_loss" && e.metric == "loss")
        .max_by_key(|e| e.step)
}

/// Whether an evaluation is at the end of the run's schedule: at its last step, or
/// within 1% of its planned epochs (steps are whole, so epochs are rounded).
pub fn at_planned_end(run: &Run, eval: &EvalRow) -> bool {
    let planned = run.config.train.epochs;
    (run.total_steps > 0 && eval.step >= run.total_steps)
        || (planned > 0.0 && (eval.epoch - planned).abs() <= 0.01 * planned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(variant: &str, runs: Vec<usize>) -> Group {
        Group {
            index: 0,
            label: String::new(),
            variant: variant.into(),
            unique_tokens: 1,
            preset: "nano".into(),
            params: Some(10),
            runs,
        }
    }

    #[test]
    fn families_drop_the_epochs_and_keep_other_settings() {
        let cases = [
            ("", Vec::<&str>::new(), "model nano"),
            ("epochs=4", vec![], "model nano"),
            (
                "epochs=4 lr=0.001",
                vec!["lr=0.001"],
                "model nano, lr=0.001",
            ),
        ];
        for (variant, settings, label) in cases {
            let family = Family::of_group(&group(variant, vec![]));
            assert_eq!(family.settings, settings, "{variant}");
            assert_eq!(family.label(), label);
        }
    }

    #[test]
    fn a_run_in_several_groups_keeps_the_common_settings() {
        let groups = [
            group("eps=0.001 lr=0.001", vec![0, 1]),
            group("eps=0.01 lr=0.001", vec![0, 2]),
        ];
        assert!(run_families(&[], &[]).is_empty());
        // Three runs: 0 is the AR run in both groups.
        let out = families_of(3, &groups);
        let settings = |i: usize| out[i].as_ref().map(|f| f.settings.clone());
        assert_eq!(settings(0), Some(vec!["lr=0.001".to_string()]));
        assert_eq!(
            settings(1),
            Some(vec!["eps=0.001".to_string(), "lr=0.001".to_string()])
        );
        let dlm = Family::of_group(&groups[1]);
        assert!(dlm.contains(out[0].as_ref().unwrap_or(&dlm)));
    }
}
