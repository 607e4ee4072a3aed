//! The `eval:` section: when to evaluate, validation loss, and the benchmark tasks
//! and how each objective scores them.

use crate::count::TokenCount;
use serde::{Deserialize, Serialize};

/// When to evaluate (and keep a milestone checkpoint): `log2` (epochs 1, 2, 4, ... and
/// the end), a list of epochs (fractions too: `[0.25, 0.5, 1]`), `{every_tokens: 1B}`,
/// or `{points: 8}` (8 evenly spaced evaluations over the whole job, so that a 1-epoch
/// job draws a curve). The end of training is always one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestones {
    Log2,
    Epochs(Vec<f64>),
    EveryTokens(TokenCount),
    Points(u64),
}

/// Steps (counted as steps completed, 1..=total) after which to evaluate and keep a
/// checkpoint. The last step is always one. A step consumes `batch_size` windows of
/// `seq_len` tokens.
pub fn milestone_steps(
    at: &Milestones,
    total: u64,
    windows_per_epoch: u64,
    batch_size: usize,
    seq_len: usize,
) -> Vec<u64> {
    let step_at_epoch =
        |epoch: f64| ((epoch * windows_per_epoch as f64) / batch_size as f64).ceil() as u64;
    let mut steps: Vec<u64> = match at {
        Milestones::Log2 => {
            let epochs = total as f64 * batch_size as f64 / windows_per_epoch.max(1) as f64;
            std::iter::successors(Some(1.0f64), |epoch| Some(epoch * 2.0))
                .take_while(|epoch| *epoch < epochs)
                .map(step_at_epoch)
                .collect()
        }
        Milestones::Epochs(epochs) => epochs.iter().map(|epoch| step_at_epoch(*epoch)).collect(),
        Milestones::EveryTokens(count) => {
            let tokens_per_step = (batch_size * seq_len) as u64;
            let every = count.get().div_ceil(tokens_per_step).max(1);
            (1..=total / every).map(|i| i * every).collect()
        }
        Milestones::Points(points) => (1..=*points)
            .map(|i| (i as f64 * total as f64 / *points as f64).round() as u64)
            .collect(),
    };
    steps.retain(|step| *step >= 1 && *step <= total);
    steps.push(total);
    steps.sort_unstable();
    steps.dedup();
    steps
}

/// How the DLM scores a benchmark continuation (reference/recipes.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DlmScorer {
    /// Monte Carlo ELBO with stratified times and common random numbers (default).
    Elbo,
    /// LLaDA's estimator: l ~ U{1..|c|} masked tokens, weight |c| / l.
    Llada,
    /// Chain rule (semi-AR): |c| deterministic passes.
    ChainRule,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    #[serde(default = "default_milestones")]
    pub at: Milestones,
    /// Tasks scored at each milestone: `val_loss`, `cloze` (and `cloze_easy`,
    /// `cloze_hard`), and the benchmarks `hellaswag`, `mmlu`, `arc_easy`,
    /// `arc_challenge`, `piqa`, `winogrande`, `sciq`, `boolq`, `copa`, `openbookqa`,
    /// `lambada` (fetched by `just benchmarks`).
    #[serde(default = "default_tasks")]
    pub tasks: Vec<String>,
    /// Held-out tokens used for the validation loss (at most `data.val_tokens`).
    #[serde(default = "default_val_eval_tokens")]
    pub val_loss_tokens: TokenCount,
    /// Monte Carlo draws per sequence for the DLM's validation ELBO.
    #[serde(default = "default_draws")]
    pub dlm_draws: usize,
    /// Sequences per evaluation forward pass (validation loss).
    #[serde(default = "default_eval_batch")]
    pub batch_size: usize,
    /// DLM benchmark scorer.
    #[serde(default = "default_dlm_scorer")]
    pub dlm_scorer: DlmScorer,
    /// Monte Carlo draws per item for DLM benchmark scores.
    #[serde(default = "default_score_draws")]
    pub score_draws: usize,
    /// Items per benchmark task (a seeded sample; 0 = all).
    #[serde(default = "default_max_items")]
    pub max_items: usize,
    /// Items of the built-in cloze tasks.
    #[serde(default = "default_cloze_items")]
    pub cloze_items: usize,
    /// Tokens per scoring forward pass (items x choices x draws are packed into these).
    #[serde(default = "default_batch_tokens")]
    pub batch_tokens: usize,
    /// Also write per-candidate scores under `eval_items/` (for debugging).
    #[serde(default)]
    pub item_scores: bool,
    /// Which held-out windows the validation loss reads: `spread` (seeded windows
    /// spread over every held-out document, the same for every job) or `first` (the
    /// first `val_loss_tokens` of the held-out stream, the old behaviour).
    #[serde(default)]
    pub val_windows: ValWindows,
    /// How the DLM is scored on rows shorter than `data.seq_len`: `none` (the row as
    /// it is) or `mask` (padded to `seq_len` with mask tokens, SMDM's option; the
    /// scored positions are unchanged). AR scoring ignores it.
    #[serde(default)]
    pub dlm_pad: DlmPad,
}

/// See [`EvalConfig::val_windows`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValWindows {
    #[default]
    Spread,
    First,
}

/// See [`EvalConfig::dlm_pad`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DlmPad {
    #[default]
    None,
    Mask,
}

fn default_milestones() -> Milestones {
    Milestones::Log2
}
fn default_tasks() -> Vec<String> {
    vec!["val_loss".into()]
}
fn default_val_eval_tokens() -> TokenCount {
    TokenCount(100_000)
}
fn default_draws() -> usize {
    8
}
fn default_eval_batch() -> usize {
    32
}
fn default_dlm_scorer() -> DlmScorer {
    DlmScorer::Elbo
}
fn default_score_draws() -> usize {
    16
}
fn default_max_items() -> usize {
    500
}
fn default_cloze_items() -> usize {
    400
}
fn default_batch_tokens() -> usize {
    16_384
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            at: default_milestones(),
            tasks: default_tasks(),
            val_loss_tokens: default_val_eval_tokens(),
            dlm_draws: default_draws(),
            batch_size: default_eval_batch(),
            dlm_scorer: default_dlm_scorer(),
            score_draws: default_score_draws(),
            max_items: default_max_items(),
            cloze_items: default_cloze_items(),
            batch_tokens: default_batch_tokens(),
            item_scores: false,
            val_windows: ValWindows::default(),
            dlm_pad: DlmPad::default(),
        }
    }
}

/// Tasks the trainer can score.
pub const KNOWN_TASKS: [&str; 15] = [
    "val_loss",
    "cloze",
    "cloze_easy",
    "cloze_hard",
    "hellaswag",
    "mmlu",
    "arc_easy",
    "arc_challenge",
    "piqa",
    "winogrande",
    "sciq",
    "boolq",
    "copa",
    "openbookqa",
    "lambada",
];

impl EvalConfig {
    /// Ranges within `eval:` and the task names.
    pub(super) fn validate(&self, check: &super::Check) -> crate::Result<()> {
        for task in &self.tasks {
            check.require(
                KNOWN_TASKS.contains(&task.as_str()),
                "eval.tasks",
                format!(
                    "unknown task `{task}`; known tasks: {}",
                    KNOWN_TASKS.join(", ")
                ),
            )?;
        }
        check.require(
            self.dlm_draws > 0,
            "eval.dlm_draws",
            "must be positive".into(),
        )?;
        check.require(
            self.batch_size > 0,
            "eval.batch_size",
            "must be positive".into(),
        )?;
        check.require(
            self.score_draws > 0,
            "eval.score_draws",
            "must be positive".into(),
        )?;
        check.require(
            self.batch_tokens > 0,
            "eval.batch_tokens",
            "must be positive".into(),
        )?;
        if let Milestones::Epochs(epochs) = &self.at {
            check.require(
                epochs.iter().all(|e| *e > 0.0 && e.is_finite()),
                "eval.at.epochs",
                "epochs must be positive".into(),
            )?;
        }
        if let Milestones::Points(points) = &self.at {
            check.require(
                *points >= 1,
                "eval.at.points",
                "give at least 1 evaluation (the end of training is always one)".into(),
            )?;
        }
        Ok(())
    }
}
