//! The schema of `job.yaml`: one fully resolved training job, one file per section
//! in the order the file reads:
//!
//! - `mod.rs`: the job itself (objective, seed, sections), parsing, validation and
//!   the planning counts (steps, tokens, FLOPs, evaluations, checkpoint bytes);
//! - `data.rs`: `data:` (corpus, tokenizer, budgets, windows);
//! - `train.rs`: `train:` (epochs, batch, optimizer, schedule, devices, checkpoints);
//! - `dlm.rs`: `dlm:` (mask draws and weighting, DLM jobs only);
//! - `eval.rs`: `eval:` (milestones, validation loss, tasks and scorers).
//!
//! The model section lives in `crate::model` beside its presets and accounting.

mod data;
mod dlm;
mod eval;
mod train;

pub use data::{DataConfig, DocumentOrder, TokenizerSpec, WindowMode};
pub use dlm::{DlmConfig, DlmWeighting};
pub use eval::{
    DlmPad, DlmScorer, EvalConfig, KNOWN_TASKS, Milestones, ValWindows, milestone_steps,
};
pub use train::{DecayScope, DeviceSpec, Keep, Precision, Schedule, TrainConfig, Warmup};

use crate::model::ModelConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One job: everything that determines its results. Two jobs with the same resolved
/// config are the same job (same id, same folder).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    pub objective: Objective,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub model: ModelConfig,
    pub data: DataConfig,
    pub train: TrainConfig,
    #[serde(default)]
    pub dlm: DlmConfig,
    #[serde(default)]
    pub eval: EvalConfig,
}

/// Training objective (reference/recipes.md). Written `ar`, `dlm`, `{ar_masked: 0.3}`
/// or `{ar_dropout: 0.1}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Causal next-token prediction.
    Ar,
    /// Masked (absorbing-state) diffusion, bidirectional.
    Dlm,
    /// AR whose input tokens are replaced by the mask id with probability p.
    ArMasked(f64),
    /// AR with residual and attention dropout p.
    ArDropout(f64),
}

impl Objective {
    /// Short label for tables and folder listings: `ar`, `dlm`, `ar_masked(0.3)`.
    pub fn label(&self) -> String {
        match self {
            Self::Ar => "ar".into(),
            Self::Dlm => "dlm".into(),
            Self::ArMasked(p) => format!("ar_masked({p})"),
            Self::ArDropout(p) => format!("ar_dropout({p})"),
        }
    }

    /// Whether the model attends causally under this objective.
    pub fn is_causal(&self) -> bool {
        !matches!(self, Self::Dlm)
    }
}

impl JobConfig {
    /// Parse a `job.yaml`, reporting line, column and field on error.
    pub fn from_yaml(text: &str, path: &Path) -> crate::Result<Self> {
        let config: Self = serde_saphyr::from_str(text).map_err(|error| crate::Error::Parse {
            path: path.to_owned(),
            message: error.to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> crate::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| crate::Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text, path)
    }

    pub fn to_yaml(&self) -> String {
        // serde-saphyr's writer handles every type in this schema.
        serde_saphyr::to_string(self).unwrap_or_else(|error| format!("# unserializable: {error}\n"))
    }

    /// The same job with the model shape written out, and the settings only a DLM
    /// reads (`dlm.*`, `eval.dlm_draws`, `eval.dlm_scorer`, `eval.score_draws`,
    /// `eval.dlm_pad`) reset to their defaults for the other objectives, so that an AR
    /// job is the same job (one id, one run) whatever DLM settings a sweep varies.
    pub fn resolved(&self, path: &Path) -> crate::Result<Self> {
        let mut resolved = self.clone();
        resolved.model = self
            .model
            .resolved()
            .map_err(|message| invalid(path, "model", message))?;
        resolved.validate(path)?;
        if resolved.objective != Objective::Dlm {
            let defaults = EvalConfig::default();
            resolved.dlm = DlmConfig::default();
            resolved.eval.dlm_draws = defaults.dlm_draws;
            resolved.eval.dlm_scorer = defaults.dlm_scorer;
            resolved.eval.score_draws = defaults.score_draws;
            resolved.eval.dlm_pad = defaults.dlm_pad;
        }
        Ok(resolved)
    }

    /// Check values that the types alone cannot (ranges, relations between fields).
    pub fn validate(&self, path: &Path) -> crate::Result<()> {
        let shape = self
            .model
            .resolve()
            .map_err(|message| invalid(path, "model", message))?;
        let check = Check { path };
        if let Objective::ArMasked(p) | Objective::ArDropout(p) = self.objective {
            check.require(
                (0.0..1.0).contains(&p),
                "objective",
                format!("probability {p} must be in [0, 1)"),
            )?;
        }
        self.data.validate(shape.max_seq_len, &check)?;
        self.train.validate(&check)?;
        self.dlm.validate(&check)?;
        self.eval.validate(&check)
    }

    /// Optimizer steps for the whole job: ceil(epochs x windows per epoch / batch).
    pub fn total_steps(&self, windows_per_epoch: u64) -> u64 {
        let windows = self.train.epochs * windows_per_epoch as f64;
        (windows / self.train.batch_size as f64).ceil().max(1.0) as u64
    }

    /// Training tokens the job will process: steps x batch x seq_len.
    pub fn planned_tokens(&self) -> u64 {
        self.total_steps(self.windows_per_epoch())
            * (self.train.batch_size * self.data.seq_len) as u64
    }

    /// Rows of the embedding and output tables as planning assumes them: the
    /// tokenizer's vocabulary padded, or 50,257 ids (GPT-2's) when it is unknown before
    /// the tokenizer file is read.
    pub fn planned_vocab_rows(&self) -> usize {
        crate::model::padded_vocab(self.data.tokenizer.known_vocab().unwrap_or(50_257))
    }

    /// Training FLOPs of the whole job, or None when the model is unknown; the
    /// vocabulary as `planned_vocab_rows` assumes it.
    pub fn planned_flops(&self) -> Option<f64> {
        let shape = self.model.resolve().ok()?;
        let rows = self.planned_vocab_rows();
        Some(self.planned_tokens() as f64 * shape.train_flops_per_token(rows, self.data.seq_len))
    }

    /// Total and active parameters (equal for a dense model; a mixture of experts
    /// uses only its top-k experts per token), with the vocabulary assumed as in
    /// `planned_flops`.
    pub fn planned_params(&self) -> Option<(u64, u64)> {
        let shape = self.model.resolve().ok()?;
        let rows = self.planned_vocab_rows();
        Some((shape.total_params(rows), shape.active_params(rows)))
    }

    /// Evaluations the job will make (its milestones, the end included).
    pub fn planned_evaluations(&self) -> usize {
        let windows = self.windows_per_epoch();
        milestone_steps(
            &self.eval.at,
            self.total_steps(windows),
            windows,
            self.train.batch_size,
            self.data.seq_len,
        )
        .len()
    }

    /// Bytes of checkpoints a finished job keeps under `train.keep`: the newest in full
    /// (fp32 weights and both AdamW moments, 12 bytes a parameter) and every earlier
    /// milestone as `keep` says (weights: 4 bytes a parameter; all: 12; none: 0).
    /// `harness clean --checkpoints` later frees the newest one's moments (8 bytes a
    /// parameter). None when the model is unknown.
    pub fn planned_checkpoint_bytes(&self) -> Option<f64> {
        let (params, _) = self.planned_params()?;
        let per_milestone = match self.train.keep {
            Keep::Weights => 4.0,
            Keep::All => 12.0,
            Keep::None => 0.0,
        };
        let earlier = self.planned_evaluations().saturating_sub(1) as f64;
        Some(params as f64 * (12.0 + earlier * per_milestone))
    }

    /// Training windows per epoch for the unique budget: the stream is cut into
    /// windows of seq_len + 1 tokens that overlap by one (inputs and shifted targets).
    pub fn windows_per_epoch(&self) -> u64 {
        (self.data.unique_tokens.get() - 1) / self.data.seq_len as u64
    }
}

fn invalid(path: &Path, field: &str, message: String) -> crate::Error {
    crate::Error::Invalid {
        path: path.to_owned(),
        field: field.into(),
        message,
    }
}

/// `skip_serializing_if` for flags that are off by default.
fn is_false(value: &bool) -> bool {
    !*value
}

/// Validation's error builder: a failed rule becomes an error naming the file and the
/// field.
struct Check<'a> {
    path: &'a Path,
}

impl Check<'_> {
    fn require(&self, ok: bool, field: &str, message: String) -> crate::Result<()> {
        if ok {
            Ok(())
        } else {
            Err(invalid(self.path, field, message))
        }
    }
}
