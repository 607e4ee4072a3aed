//! Model shapes: presets from a CPU-sized model to the study's 1B and 1.7B, and the
//! parameter and FLOPs accounting used for logging, planning and MFU.

use serde::{Deserialize, Serialize};

/// The model section of a job: a preset name and/or explicit fields. Explicit fields
/// override the preset; `resolve` fills every field so `job.yaml` is self-contained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_model: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_layer: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_head: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_ff: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qk_norm: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tied_embeddings: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_base: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm_eps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seq_len: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_std: Option<f64>,
}

/// A fully specified model shape (glossary: d_model = width, n_layer = blocks,
/// n_head = attention heads, d_ff = SwiGLU hidden width).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelShape {
    pub d_model: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub d_ff: usize,
    pub qk_norm: bool,
    pub tied_embeddings: bool,
    pub rope_base: f64,
    pub norm_eps: f64,
    pub max_seq_len: usize,
    pub init_std: f64,
}

/// Preset names, smallest first.
pub const PRESETS: [&str; 7] = ["nano", "tiny", "small", "125m", "350m", "1b", "1.7b"];

impl ModelShape {
    /// The named preset. `1b` and `1.7b` are the study's shapes (MegaDLMs: RMSNorm eps
    /// 1e-6, RoPE base 1e4, SwiGLU, qk-norm, no biases); `125m` and `350m` are the
    /// usual Llama-style widths with SwiGLU hidden ~8/3 d_model.
    pub fn preset(name: &str) -> Option<Self> {
        let (d_model, n_layer, n_head, d_ff, qk_norm, tied) = match name {
            "nano" => (64, 2, 2, 176, false, true),
            "tiny" => (128, 4, 4, 336, false, true),
            "small" => (256, 6, 4, 688, false, true),
            "125m" => (768, 12, 12, 2048, false, true),
            "350m" => (1024, 24, 16, 2816, false, true),
            "1b" => (1792, 26, 14, 4736, true, true),
            "1.7b" => (2048, 28, 16, 6144, true, false),
            _ => return None,
        };
        Some(Self {
            d_model,
            n_layer,
            n_head,
            d_ff,
            qk_norm,
            tied_embeddings: tied,
            rope_base: 10_000.0,
            norm_eps: 1e-6,
            max_seq_len: 2048,
            init_std: 0.02,
        })
    }

    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_head
    }

    /// Parameters outside the embedding and output tables.
    pub fn non_embedding_params(&self) -> u64 {
        let d = self.d_model as u64;
        let attention = 4 * d * d;
        let mlp = 3 * d * self.d_ff as u64;
        let norms = 2 * d
            + if self.qk_norm {
                2 * self.head_dim() as u64
            } else {
                0
            };
        self.n_layer as u64 * (attention + mlp + norms) + d
    }

    /// Every trainable parameter for a model whose tables have `vocab_rows` rows.
    pub fn total_params(&self, vocab_rows: usize) -> u64 {
        let table = (vocab_rows * self.d_model) as u64;
        let tables = if self.tied_embeddings {
            table
        } else {
            2 * table
        };
        self.non_embedding_params() + tables
    }

    /// Training FLOPs per token: 6 x (matmul parameters, output head included) plus
    /// attention scores and values, 12 x n_layer x seq_len x d_model (Chinchilla,
    /// Hoffmann et al. 2022, appendix F: forward 2N + 4 n_layer L d, backward twice
    /// the forward). The causal mask is not credited, so AR and DLM cost the same.
    pub fn train_flops_per_token(&self, vocab_rows: usize, seq_len: usize) -> f64 {
        let matmul_params = self.non_embedding_params() as f64 + (vocab_rows * self.d_model) as f64;
        let attention = 12.0 * (self.n_layer * seq_len * self.d_model) as f64;
        6.0 * matmul_params + attention
    }
}

impl ModelConfig {
    /// Fill every field from the preset (default `tiny`) and the explicit overrides.
    pub fn resolve(&self) -> Result<ModelShape, String> {
        let name = self.preset.as_deref().unwrap_or("tiny");
        let base = ModelShape::preset(name).ok_or_else(|| {
            format!(
                "unknown preset `{name}`; choose one of {}",
                PRESETS.join(", ")
            )
        })?;
        let shape = ModelShape {
            d_model: self.d_model.unwrap_or(base.d_model),
            n_layer: self.n_layer.unwrap_or(base.n_layer),
            n_head: self.n_head.unwrap_or(base.n_head),
            d_ff: self.d_ff.unwrap_or(base.d_ff),
            qk_norm: self.qk_norm.unwrap_or(base.qk_norm),
            tied_embeddings: self.tied_embeddings.unwrap_or(base.tied_embeddings),
            rope_base: self.rope_base.unwrap_or(base.rope_base),
            norm_eps: self.norm_eps.unwrap_or(base.norm_eps),
            max_seq_len: self.max_seq_len.unwrap_or(base.max_seq_len),
            init_std: self.init_std.unwrap_or(base.init_std),
        };
        if shape.d_model == 0 || shape.n_layer == 0 || shape.n_head == 0 || shape.d_ff == 0 {
            return Err("d_model, n_layer, n_head and d_ff must be positive".into());
        }
        if !shape.d_model.is_multiple_of(shape.n_head) {
            return Err(format!(
                "d_model {} is not divisible by n_head {}",
                shape.d_model, shape.n_head
            ));
        }
        if !shape.head_dim().is_multiple_of(2) {
            return Err(format!(
                "head size {} must be even for RoPE",
                shape.head_dim()
            ));
        }
        Ok(shape)
    }

    /// The same config with every field written out (what goes into job.yaml).
    pub fn resolved(&self) -> Result<Self, String> {
        let shape = self.resolve()?;
        Ok(Self {
            preset: Some(self.preset.clone().unwrap_or_else(|| "tiny".into())),
            d_model: Some(shape.d_model),
            n_layer: Some(shape.n_layer),
            n_head: Some(shape.n_head),
            d_ff: Some(shape.d_ff),
            qk_norm: Some(shape.qk_norm),
            tied_embeddings: Some(shape.tied_embeddings),
            rope_base: Some(shape.rope_base),
            norm_eps: Some(shape.norm_eps),
            max_seq_len: Some(shape.max_seq_len),
            init_std: Some(shape.init_std),
        })
    }
}

/// Rows of the embedding and output tables: the tokenizer's ids plus the mask id
/// (one past the tokenizer's vocabulary), padded to a multiple of 64 for speed.
pub fn padded_vocab(tokenizer_vocab: usize) -> usize {
    (tokenizer_vocab + 1).div_ceil(64) * 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn study_1b_has_about_a_billion_parameters() {
        let shape = ModelShape::preset("1b").expect("preset");
        let params = shape.total_params(padded_vocab(50_257));
        // 26 x (4 x 1792^2 + 3 x 1792 x 4736) + tables 50304 x 1792 ~ 1.09e9
        assert!((1.0e9..1.2e9).contains(&(params as f64)), "{params}");
    }

    #[test]
    fn flops_per_token_matches_hand_count() {
        let shape = ModelShape {
            d_model: 4,
            n_layer: 1,
            n_head: 2,
            d_ff: 8,
            qk_norm: false,
            tied_embeddings: true,
            rope_base: 1e4,
            norm_eps: 1e-6,
            max_seq_len: 16,
            init_std: 0.02,
        };
        // non-embedding: 4*16 + 3*4*8 + 2*4 = 168, final norm 4 -> 172; head 64*4 = 256
        assert_eq!(shape.non_embedding_params(), 172);
        let expected = 6.0 * (172.0 + 256.0) + 12.0 * (1.0 * 10.0 * 4.0);
        assert_eq!(shape.train_flops_per_token(64, 10), expected);
    }

    #[test]
    fn overrides_and_errors() {
        let config = ModelConfig {
            preset: Some("tiny".into()),
            n_layer: Some(2),
            ..Default::default()
        };
        assert_eq!(config.resolve().expect("resolves").n_layer, 2);
        let bad = ModelConfig {
            preset: Some("huge".into()),
            ..Default::default()
        };
        assert!(
            bad.resolve()
                .expect_err("unknown preset")
                .contains("choose one of")
        );
        let odd = ModelConfig {
            d_model: Some(130),
            ..Default::default()
        };
        assert!(
            odd.resolve()
                .expect_err("indivisible")
                .contains("divisible")
        );
    }

    #[test]
    fn vocab_padding() {
        assert_eq!(padded_vocab(50_257), 50_304);
        assert_eq!(padded_vocab(2048), 2112);
        assert_eq!(padded_vocab(257), 320);
    }
}
