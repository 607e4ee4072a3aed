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
    /// Mixture-of-experts MLPs (absent: dense). Fields override the preset's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moe: Option<MoeConfig>,
}

/// The `model.moe` section: every field optional, filled from the preset or the
/// defaults of `MoeShape` (only `experts` has none for a dense preset).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MoeConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experts: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert_ffn: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_experts: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z_loss: Option<f64>,
    /// A number, or `none` (the default: dropless).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_factor: Option<Capacity>,
}

/// Expert capacity: `none` (dropless, every routed token is computed) or a factor c
/// (each expert takes at most ceil(c x tokens x top_k / experts) tokens per layer and
/// batch; the rest skip the MLP through the residual, as in Switch and GShard).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Capacity {
    #[default]
    Dropless,
    Factor(f64),
}

impl Serialize for Capacity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Dropless => serializer.serialize_str("none"),
            Self::Factor(factor) => serializer.serialize_f64(*factor),
        }
    }
}

impl<'de> Deserialize<'de> for Capacity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Capacity;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("`none` (dropless) or a positive capacity factor such as 1.25")
            }
            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Capacity, E> {
                if value.is_finite() && value > 0.0 {
                    Ok(Capacity::Factor(value))
                } else {
                    Err(E::custom(format!(
                        "capacity_factor {value} must be positive (or `none` for dropless)"
                    )))
                }
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Capacity, E> {
                self.visit_f64(value as f64)
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Capacity, E> {
                self.visit_f64(value as f64)
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Capacity, E> {
                match value {
                    "none" | "dropless" => Ok(Capacity::Dropless),
                    other => other
                        .parse::<f64>()
                        .map_err(|_| {
                            E::custom(format!(
                                "capacity_factor `{other}` is not `none` or a number such as 1.25"
                            ))
                        })
                        .and_then(|value| self.visit_f64(value)),
                }
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Capacity, E> {
                Ok(Capacity::Dropless)
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Capacity, E> {
                Ok(Capacity::Dropless)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A resolved mixture-of-experts layout (glossary: E = experts, k = top_k, F =
/// expert_ffn, the SwiGLU hidden width of one expert).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoeShape {
    pub experts: usize,
    pub top_k: usize,
    pub expert_ffn: usize,
    /// Always-on experts of width F (DeepSeekMoE's shared experts), 0 for none.
    pub shared_experts: usize,
    /// Every n-th block's MLP is a mixture (blocks n-1, 2n-1, ...; 1 = every block).
    pub every: usize,
    /// Weight of the load-balancing loss (Switch/GShard) added to the objective's loss.
    pub aux_loss: f64,
    /// Weight of the router z-loss (ST-MoE).
    pub z_loss: f64,
    pub capacity_factor: Capacity,
}

impl MoeShape {
    /// A layout with the usual weights: load balancing 0.01 (Switch, OLMoE), z-loss
    /// 0.001 (ST-MoE, OLMoE), dropless, every block.
    pub fn new(experts: usize, top_k: usize, expert_ffn: usize) -> Self {
        Self {
            experts,
            top_k,
            expert_ffn,
            shared_experts: 0,
            every: 1,
            aux_loss: 0.01,
            z_loss: 0.001,
            capacity_factor: Capacity::Dropless,
        }
    }

    /// Whether block `index` (from 0) has a mixture MLP.
    pub fn is_moe_block(&self, index: usize) -> bool {
        (index + 1).is_multiple_of(self.every.max(1))
    }
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
    /// Mixture-of-experts MLPs; absent for a dense model (and then not written, so
    /// dense jobs keep their ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moe: Option<MoeShape>,
}

/// Preset names, smallest first (dense, then mixtures of experts).
pub const PRESETS: [&str; 10] = [
    "nano", "tiny", "small", "125m", "350m", "1b", "1.7b", "moe-tiny", "moe-125m", "8b-a1b",
];

impl ModelShape {
    /// The named preset. `1b` and `1.7b` are the study's shapes (MegaDLMs: RMSNorm eps
    /// 1e-6, RoPE base 1e4, SwiGLU, qk-norm, no biases); `125m` and `350m` are the
    /// usual Llama-style widths with SwiGLU hidden ~8/3 d_model.
    ///
    /// The mixtures keep a dense preset's attention and split its MLP into experts
    /// whose k active ones add up to the dense d_ff, so their active shape IS that
    /// dense preset (plus the router):
    /// - `moe-tiny` (CPU): `tiny` with 8 experts of width 168, top-2.
    /// - `moe-125m` (one GPU): `125m` with 32 experts of width 512, top-4 (0.52B total).
    /// - `8b-a1b`: the study's sparse model, 8B total and 1B active. Its code is not
    ///   released, so the shape is ours: the study's `1b` with each MLP cut into 96
    ///   fine-grained experts of width 592 = 4736 / 8, top-8 (OLMoE's granularity, 64
    ///   experts top-8, with the expert count raised to reach 8B): 8.37B total, 1.09B
    ///   active.
    pub fn preset(name: &str) -> Option<Self> {
        let moe = |base: &str, experts: usize, top_k: usize, expert_ffn: usize| {
            Self::preset(base).map(|dense| Self {
                moe: Some(MoeShape::new(experts, top_k, expert_ffn)),
                ..dense
            })
        };
        match name {
            "moe-tiny" => return moe("tiny", 8, 2, 168),
            "moe-125m" => return moe("125m", 32, 4, 512),
            "8b-a1b" => return moe("1b", 96, 8, 592),
            _ => {}
        }
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
            moe: None,
        })
    }

    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_head
    }

    /// Parameters outside the embedding and output tables (every expert counted).
    pub fn non_embedding_params(&self) -> u64 {
        self.block_params(false)
    }

    /// Parameters outside the tables that one token uses: the top-k experts, shared
    /// experts and router of each mixture block (equal to `non_embedding_params` for a
    /// dense model).
    pub fn active_non_embedding_params(&self) -> u64 {
        self.block_params(true)
    }

    fn block_params(&self, active_only: bool) -> u64 {
        let d = self.d_model as u64;
        let attention = 4 * d * d;
        let norms = 2 * d
            + if self.qk_norm {
                2 * self.head_dim() as u64
            } else {
                0
            };
        let mlps: u64 = (0..self.n_layer)
            .map(|block| self.mlp_params(block, active_only))
            .sum();
        self.n_layer as u64 * (attention + norms) + mlps + d
    }

    /// The MLP of block `block`: dense SwiGLU 3 d d_ff, or router d E plus experts of
    /// 3 d F each (E of them, or k when counting what one token uses) plus shared ones.
    fn mlp_params(&self, block: usize, active_only: bool) -> u64 {
        let d = self.d_model as u64;
        match &self.moe {
            Some(moe) if moe.is_moe_block(block) => {
                let expert = 3 * d * moe.expert_ffn as u64;
                let routed = if active_only { moe.top_k } else { moe.experts } as u64;
                d * moe.experts as u64 + (routed + moe.shared_experts as u64) * expert
            }
            _ => 3 * d * self.d_ff as u64,
        }
    }

    /// Blocks whose MLP is a mixture of experts.
    pub fn moe_blocks(&self) -> Vec<usize> {
        self.moe.as_ref().map_or_else(Vec::new, |moe| {
            (0..self.n_layer)
                .filter(|&block| moe.is_moe_block(block))
                .collect()
        })
    }

    /// Every trainable parameter for a model whose tables have `vocab_rows` rows.
    pub fn total_params(&self, vocab_rows: usize) -> u64 {
        self.non_embedding_params() + self.table_params(vocab_rows)
    }

    /// The parameters one token uses (tables included): what a mixture's "active
    /// size" means; equal to `total_params` for a dense model.
    pub fn active_params(&self, vocab_rows: usize) -> u64 {
        self.active_non_embedding_params() + self.table_params(vocab_rows)
    }

    fn table_params(&self, vocab_rows: usize) -> u64 {
        let table = (vocab_rows * self.d_model) as u64;
        if self.tied_embeddings {
            table
        } else {
            2 * table
        }
    }

    /// Training FLOPs per token: 6 x (matmul parameters a token uses, output head and
    /// routers included) plus attention scores and values, 12 x n_layer x seq_len x
    /// d_model (Chinchilla, Hoffmann et al. 2022, appendix F: forward 2N + 4 n_layer L
    /// d, backward twice the forward). The causal mask is not credited, so AR and DLM
    /// cost the same. A mixture is counted by its ACTIVE parameters (top-k experts and
    /// the router), so it costs what its active dense shape costs plus 6 d E per
    /// mixture block for the router.
    pub fn train_flops_per_token(&self, vocab_rows: usize, seq_len: usize) -> f64 {
        let matmul_params =
            self.active_non_embedding_params() as f64 + (vocab_rows * self.d_model) as f64;
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
        let base_d_ff = base.d_ff;
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
            moe: match (&self.moe, base.moe) {
                (None, base) => base,
                (Some(config), base) => {
                    let mut config = config.clone();
                    // A dense preset made sparse: by default its experts add up, k at a
                    // time, to the dense MLP (the same active size).
                    if base.is_none() && config.expert_ffn.is_none() {
                        let top_k = config.top_k.unwrap_or(2).max(1);
                        config.expert_ffn = Some(self.d_ff.unwrap_or(base_d_ff) / top_k);
                    }
                    Some(config.resolve(base.as_ref())?)
                }
            },
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
            moe: shape.moe.map(|moe| MoeConfig {
                experts: Some(moe.experts),
                top_k: Some(moe.top_k),
                expert_ffn: Some(moe.expert_ffn),
                shared_experts: Some(moe.shared_experts),
                every: Some(moe.every),
                aux_loss: Some(moe.aux_loss),
                z_loss: Some(moe.z_loss),
                capacity_factor: Some(moe.capacity_factor),
            }),
        })
    }
}

impl MoeConfig {
    /// Fill every field from the preset's layout (if the preset is a mixture) and the
    /// defaults; errors name the field (`model.moe.FIELD` is the caller's prefix).
    pub fn resolve(&self, base: Option<&MoeShape>) -> Result<MoeShape, String> {
        let experts = self.experts.or(base.map(|moe| moe.experts)).ok_or(
            "moe.experts is missing: a mixture needs a number of experts (e.g. `moe: { experts: 8, top_k: 2 }`)",
        )?;
        let top_k = self.top_k.or(base.map(|moe| moe.top_k)).unwrap_or(2);
        let defaults = base
            .cloned()
            .unwrap_or_else(|| MoeShape::new(experts, top_k, 0));
        let moe = MoeShape {
            experts,
            top_k,
            expert_ffn: self.expert_ffn.unwrap_or(defaults.expert_ffn),
            shared_experts: self.shared_experts.unwrap_or(defaults.shared_experts),
            every: self.every.unwrap_or(defaults.every),
            aux_loss: self.aux_loss.unwrap_or(defaults.aux_loss),
            z_loss: self.z_loss.unwrap_or(defaults.z_loss),
            capacity_factor: self.capacity_factor.unwrap_or(defaults.capacity_factor),
        };
        moe.validate()?;
        Ok(moe)
    }
}

impl MoeShape {
    /// Config-time checks: top-k over fewer experts would route a token to nothing.
    pub fn validate(&self) -> Result<(), String> {
        if self.experts == 0 {
            return Err("moe.experts must be at least 1".into());
        }
        if self.top_k == 0 || self.top_k > self.experts {
            return Err(format!(
                "moe.top_k {} must be between 1 and moe.experts ({}): each token is sent to top_k different experts",
                self.top_k, self.experts
            ));
        }
        if self.expert_ffn == 0 {
            return Err(
                "moe.expert_ffn must be positive: the SwiGLU hidden width of one expert (e.g. d_ff / top_k for the dense model's active size)"
                    .into(),
            );
        }
        if self.every == 0 {
            return Err("moe.every must be at least 1 (1 = every block's MLP is a mixture)".into());
        }
        for (name, value) in [("aux_loss", self.aux_loss), ("z_loss", self.z_loss)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(format!("moe.{name} {value} must be zero or more"));
            }
        }
        Ok(())
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
            moe: None,
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
    fn moe_flops_are_the_active_dense_shape_plus_the_router() {
        for (name, dense, experts) in [
            ("moe-tiny", "tiny", 8),
            ("moe-125m", "125m", 32),
            ("8b-a1b", "1b", 96),
        ] {
            let moe = ModelShape::preset(name).expect("moe preset");
            let dense = ModelShape::preset(dense).expect("dense preset");
            let layout = moe.moe.as_ref().expect("a mixture");
            assert_eq!(layout.top_k * layout.expert_ffn, dense.d_ff, "{name}");
            let rows = padded_vocab(50_257);
            let router = (moe.n_layer * moe.d_model * experts) as f64;
            let expected = dense.train_flops_per_token(rows, 2048) + 6.0 * router;
            assert_eq!(moe.train_flops_per_token(rows, 2048), expected, "{name}");
            assert_eq!(
                moe.active_params(rows),
                dense.total_params(rows) + router as u64,
                "{name}"
            );
            assert!(moe.total_params(rows) > moe.active_params(rows));
        }
    }

    #[test]
    fn study_moe_is_8b_total_1b_active() {
        let shape = ModelShape::preset("8b-a1b").expect("preset");
        let rows = padded_vocab(50_257);
        let (total, active) = (
            shape.total_params(rows) as f64,
            shape.active_params(rows) as f64,
        );
        assert!((8.0e9..8.5e9).contains(&total), "{total}");
        assert!((1.0e9..1.2e9).contains(&active), "{active}");
    }

    #[test]
    fn moe_hand_count_with_shared_experts_and_every_other_block() {
        let mut shape = ModelShape::preset("nano").expect("nano");
        shape.d_model = 4;
        shape.n_layer = 2;
        shape.n_head = 2;
        shape.d_ff = 8;
        shape.moe = Some(MoeShape {
            shared_experts: 1,
            every: 2,
            ..MoeShape::new(3, 2, 2)
        });
        // block 0 dense: 3*4*8 = 96; block 1: router 4*3 = 12 + (3 + 1) experts x 3*4*2.
        let attention_norms = 2 * (4 * 16 + 2 * 4);
        assert_eq!(shape.moe_blocks(), vec![1]);
        assert_eq!(
            shape.non_embedding_params(),
            attention_norms + 96 + 12 + 4 * 24 + 4
        );
        assert_eq!(
            shape.active_non_embedding_params(),
            attention_norms + 96 + 12 + 3 * 24 + 4
        );
    }

    #[test]
    fn moe_config_resolution_and_errors() {
        let parse = |text: &str| -> Result<ModelShape, String> {
            let config: ModelConfig = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
            config.resolve()
        };
        // A dense preset made sparse: expert width defaults to d_ff / top_k.
        let shape = parse("preset: tiny\nmoe: { experts: 4 }").expect("resolves");
        let moe = shape.moe.expect("moe");
        assert_eq!((moe.experts, moe.top_k, moe.expert_ffn), (4, 2, 168));
        assert_eq!(moe.capacity_factor, Capacity::Dropless);
        // A preset's layout with one field overridden, capacity as a number.
        let shape =
            parse("preset: moe-tiny\nmoe: { top_k: 1, capacity_factor: 1.25 }").expect("ok");
        let moe = shape.moe.expect("moe");
        assert_eq!((moe.experts, moe.top_k, moe.expert_ffn), (8, 1, 168));
        assert_eq!(moe.capacity_factor, Capacity::Factor(1.25));
        let cases = [
            (
                "preset: tiny\nmoe: { experts: 2, top_k: 3 }",
                "between 1 and moe.experts",
            ),
            ("preset: tiny\nmoe: { top_k: 2 }", "moe.experts is missing"),
            ("preset: tiny\nmoe: { experts: 0 }", "at least 1"),
            ("preset: moe-tiny\nmoe: { every: 0 }", "moe.every"),
            ("preset: moe-tiny\nmoe: { aux_loss: -1 }", "moe.aux_loss"),
            (
                "preset: moe-tiny\nmoe: { capacity_factor: 0 }",
                "must be positive",
            ),
            (
                "preset: moe-tiny\nmoe: { capacity_factor: lots }",
                "not `none` or a number",
            ),
            ("preset: moe-tiny\nmoe: { expertz: 3 }", "unknown field"),
        ];
        for (text, expected) in cases {
            let error = parse(text).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
        // resolved() writes every field, and reads back to the same shape.
        let config: ModelConfig = serde_saphyr::from_str("preset: moe-tiny").expect("parses");
        let resolved = config.resolved().expect("resolves");
        assert_eq!(resolved.resolve(), config.resolve());
        let text = serde_saphyr::to_string(&resolved).expect("writes");
        assert!(text.contains("capacity_factor: none"), "{text}");
        let back: ModelConfig = serde_saphyr::from_str(&text).expect("reads back");
        assert_eq!(back, resolved);
    }

    #[test]
    fn dense_shapes_write_no_moe_field() {
        let shape = ModelShape::preset("tiny").expect("tiny");
        let text = serde_json::to_string(&shape).expect("json");
        assert!(!text.contains("moe"), "{text}");
    }

    #[test]
    fn vocab_padding() {
        assert_eq!(padded_vocab(50_257), 50_304);
        assert_eq!(padded_vocab(2048), 2112);
        assert_eq!(padded_vocab(257), 320);
    }
}
