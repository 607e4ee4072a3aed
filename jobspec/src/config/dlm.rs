//! The `dlm:` section: how the masked diffusion objective draws and weights its
//! masks (read only by DLM jobs).

use serde::{Deserialize, Serialize};

/// How the DLM's loss weights each masked token (reference/recipes.md).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DlmWeighting {
    /// 1 / p_mask(t): the unbiased ELBO for the linear schedule (MDLM, SMDM, PB).
    InverseT,
    /// 1 / (masked count / L), at least one masked token per row (MegaDLMs).
    MaskFraction,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlmConfig {
    /// Smallest masking probability: p_mask = (1 - eps) t + eps.
    #[serde(default = "default_eps")]
    pub eps: f64,
    #[serde(default = "default_weighting")]
    pub weighting: DlmWeighting,
    /// Stratified times across the batch, t_i = (u + i / B) mod 1 (MDLM).
    #[serde(default = "default_true")]
    pub stratified: bool,
    /// Probability that a training batch is cut to a random length in [2, L - 1], so the
    /// DLM also learns short sequences it is scored on (MegaDLMs'
    /// `--difflm-varilen-prob 0.01`; SMDM and LLaDA train 1% the same way).
    #[serde(default = "default_truncate_prob")]
    pub truncate_prob: f64,
}

fn default_truncate_prob() -> f64 {
    0.01
}

fn default_eps() -> f64 {
    1e-3
}
fn default_weighting() -> DlmWeighting {
    DlmWeighting::InverseT
}
fn default_true() -> bool {
    true
}

impl Default for DlmConfig {
    fn default() -> Self {
        Self {
            eps: default_eps(),
            weighting: default_weighting(),
            stratified: true,
            truncate_prob: default_truncate_prob(),
        }
    }
}

impl DlmConfig {
    /// Ranges within `dlm:`.
    pub(super) fn validate(&self, check: &super::Check) -> crate::Result<()> {
        check.require(
            (0.0..1.0).contains(&self.eps),
            "dlm.eps",
            "must be in [0, 1)".into(),
        )?;
        check.require(
            (0.0..=1.0).contains(&self.truncate_prob),
            "dlm.truncate_prob",
            "must be in [0, 1]".into(),
        )?;
        Ok(())
    }
}
