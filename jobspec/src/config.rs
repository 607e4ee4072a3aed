//! The schema of `job.yaml`: one fully resolved training job.

use crate::count::TokenCount;
use crate::model::ModelConfig;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
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

/// Which tokenizer turns the corpus into ids.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerSpec {
    /// GPT-2 BPE (50,257 ids, built in).
    Gpt2,
    /// Raw UTF-8 bytes (256 ids plus an end-of-document id).
    Bytes,
    /// A byte-level BPE with this many ids, trained on the corpus and cached.
    Bpe(usize),
    /// Any Hugging Face `tokenizer.json`.
    File(String),
}

impl TokenizerSpec {
    /// Vocabulary size when it is known without reading a file.
    pub fn known_vocab(&self) -> Option<usize> {
        match self {
            Self::Gpt2 => Some(50_257),
            Self::Bytes => Some(257),
            Self::Bpe(size) => Some(*size),
            Self::File(_) => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A built-in corpus name (`sotu`, `wiki`, `moby`, see docs/data.md) or a path to a
    /// file, a folder of files, or a pattern of file names in one folder
    /// (`shards/*.parquet`): .txt/.md, .jsonl/.json, .jsonl.gz, .jsonl.zst, .parquet,
    /// .arrow (docs/data.md).
    pub corpus: String,
    /// Field (JSON lines) or column (parquet, Arrow) holding the text.
    #[serde(default = "default_text_field")]
    pub text_field: String,
    pub tokenizer: TokenizerSpec,
    /// Tokens per training window (the model's context in training).
    pub seq_len: usize,
    /// Unique training tokens: a prefix of the training stream, repeated for `epochs`.
    pub unique_tokens: TokenCount,
    /// Held-out tokens (whole documents) that no budget touches.
    pub val_tokens: TokenCount,
    /// Seed choosing the held-out documents and the order of the training documents;
    /// shared by every job on a corpus.
    #[serde(default)]
    pub split_seed: u64,
    /// Order of the training documents that budgets are prefixes of: `shuffled` (a
    /// seeded order from `split_seed`, so every budget is a fair sample of the corpus)
    /// or `corpus` (file order, the old behaviour, kept to measure its effect).
    #[serde(default)]
    pub order: DocumentOrder,
    /// Draw the training order from the job's `seed` instead of `split_seed`, so that
    /// seeds differ in which documents a budget holds, not only in initialisation and
    /// window order. The held-out documents stay those of `split_seed`; budgets stay
    /// nested (prefixes of that seed's order). Needs `order: shuffled`. Left out of
    /// job.yaml when false, so jobs that do not set it keep their ids.
    #[serde(default, skip_serializing_if = "is_false")]
    pub resample: bool,
    /// How an epoch cuts its windows: `reshuffle` (each epoch re-orders the budget's
    /// documents and cuts windows from that concatenation, as Megatron does, so a
    /// repeated document lands at a new offset with new neighbours) or `fixed` (the
    /// same windows every epoch, only visited in a new order).
    #[serde(default)]
    pub windows: WindowMode,
    /// Skip files of no known format in the corpus folder (each named in a warning)
    /// instead of stopping with an error.
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_unknown: bool,
}

/// Order of the training documents (see [`DataConfig::order`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentOrder {
    #[default]
    Shuffled,
    Corpus,
}

/// How training windows are cut each epoch (see [`DataConfig::windows`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowMode {
    #[default]
    Reshuffle,
    Fixed,
}

fn default_text_field() -> String {
    "text".into()
}

/// Learning-rate warmup: a number of steps (`200`) or a share of training (`"1%"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Warmup {
    Steps(u64),
    Fraction(f64),
}

impl Warmup {
    pub fn steps(&self, total_steps: u64) -> u64 {
        match *self {
            Self::Steps(steps) => steps.min(total_steps),
            Self::Fraction(share) => ((share * total_steps as f64).round() as u64).min(total_steps),
        }
    }
}

impl Serialize for Warmup {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Self::Steps(steps) => serializer.serialize_u64(steps),
            Self::Fraction(share) => serializer.serialize_str(&format!("{}%", share * 100.0)),
        }
    }
}

impl<'de> Deserialize<'de> for Warmup {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Steps(u64),
            Text(String),
        }
        let invalid = |text: &str| {
            serde::de::Error::custom(format!(
                "warmup `{text}` must be a number of steps (200) or a percentage (\"1%\")"
            ))
        };
        match Raw::deserialize(deserializer)? {
            Raw::Steps(steps) => Ok(Self::Steps(steps)),
            Raw::Text(text) => {
                let number = text
                    .trim()
                    .strip_suffix('%')
                    .ok_or_else(|| invalid(&text))?;
                let percent: f64 = number.trim().parse().map_err(|_| invalid(&text))?;
                if !(0.0..=100.0).contains(&percent) {
                    return Err(invalid(&text));
                }
                Ok(Self::Fraction(percent / 100.0))
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Linear warmup, then cosine from `lr` to `lr * min_lr_ratio` (PB).
    Cosine,
    /// Warmup, constant, then linear decay over the last `decay_fraction` (MegaDLMs'
    /// warmup-stable-decay).
    Wsd,
    /// Warmup, then constant.
    Constant,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the unique tokens (fractional allowed).
    pub epochs: f64,
    /// Sequences per optimizer step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    #[serde(default = "default_min_lr_ratio")]
    pub min_lr_ratio: f64,
    #[serde(default = "default_warmup")]
    pub warmup: Warmup,
    #[serde(default = "default_schedule")]
    pub schedule: Schedule,
    /// Share of training spent decaying in the `wsd` schedule.
    #[serde(default = "default_decay_fraction")]
    pub decay_fraction: f64,
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// Which weights decay: `matrices` (the block's linear weights only, as is usual
    /// in small-model codes), `megatron` (every 2-D weight, the embedding and head
    /// included, norm gains excluded: what Megatron and so MegaDLMs do) or `all`.
    #[serde(default)]
    pub decay: DecayScope,
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    #[serde(default = "default_adam_eps")]
    pub adam_eps: f64,
    /// Clip the global gradient norm to this value (0 disables).
    #[serde(default = "default_grad_clip")]
    pub grad_clip: f64,
    /// Write a train.csv row every this many steps.
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// Also checkpoint every this many minutes of training (0 disables).
    #[serde(default = "default_checkpoint_minutes")]
    pub checkpoint_minutes: f64,
    /// Where to train: `auto` (CUDA when LibTorch's CUDA library and a GPU are found,
    /// else CPU), `cpu`, `cuda` or `cuda:N`. Left out of job.yaml (and the job id)
    /// when `auto`.
    #[serde(default, skip_serializing_if = "DeviceSpec::is_auto")]
    pub device: DeviceSpec,
    /// Arithmetic: `auto` (bf16 mixed precision on CUDA, fp32 on CPU), `fp32` or
    /// `bf16` (fp32 weights and optimizer, bf16 matmuls and attention, fp32 norms,
    /// softmax and loss). Left out of job.yaml (and the job id) when `auto`.
    #[serde(default, skip_serializing_if = "Precision::is_auto")]
    pub precision: Precision,
    /// Rows per forward/backward pass on each device (gradient accumulation): a
    /// device's share of the batch is processed in pieces of this many and the
    /// optimizer steps once, with the whole batch's mean gradient. Unset: the share
    /// at once. The noise of the DLM and of AR input masking is drawn for the whole
    /// batch before it is cut, so pieces change nothing but memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micro_batch_size: Option<usize>,
    /// Data parallel: processes per node that share every step (one GPU each on CUDA;
    /// on CPU, processes joined by Gloo). Each takes `batch_size / (devices x nodes)`
    /// rows of every batch and gradients are averaged. What a job computes does not
    /// depend on it, so it is left out of the job id (and of job.yaml when 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub devices: usize,
    /// Nodes of `devices` processes each (Slurm: `--nodes`).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub nodes: usize,
    /// Data parallel: keep each parameter's AdamW moments on one rank only (ZeRO
    /// stage 1), which updates that parameter and sends it to the others, instead of
    /// a full copy of the optimizer on every rank. It cuts the optimizer's 8 bytes per
    /// parameter to 8 / ranks at the cost of one broadcast of the weights per step;
    /// the result is the same bit for bit, so it is left out of the job id (and of
    /// job.yaml when false). No effect on a job of one process.
    #[serde(default, skip_serializing_if = "is_false")]
    pub shard_optimizer: bool,
    /// Bit-exact CUDA runs: LibTorch's deterministic algorithms, the math attention
    /// kernel instead of flash / memory-efficient ones, and a fixed cuBLAS workspace
    /// (`CUBLAS_WORKSPACE_CONFIG=:4096:8`). Without it a CUDA run (and a resumed one)
    /// differs from another in the last bits (atomics in `index_add`, flash attention's
    /// backward); CPU runs are bit-exact either way. Math attention rounds otherwise
    /// than the default kernels (on the CPU too), so the flag is part of the job id
    /// when true; left out of job.yaml when false. Slower on GPUs.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deterministic: bool,
    /// Keep only each block's input during the forward pass and run the blocks again,
    /// one at a time, during backward (Chen et al. 2016): a block's saved activations
    /// (about 40 bytes a token and channel in bf16) shrink to its fp32 input (4), at
    /// the cost of a second forward pass through the blocks (about a third more
    /// compute). Dropout draws the same masks when a block is run again, so the
    /// gradient is the one computed without it; like `devices` it changes memory, not
    /// what a job computes, so it is left out of the job id (and of job.yaml when
    /// false), and a job can be resumed with it switched on after running out of
    /// memory. `harness plan` counts it in GiB/GPU and hours.
    #[serde(default, skip_serializing_if = "is_false")]
    pub activation_checkpointing: bool,
    /// What a milestone checkpoint keeps once a newer checkpoint exists: `weights`
    /// (default: the model, enough for `trainer eval`; AdamW's moments, two thirds of
    /// a checkpoint, are deleted), `all`, or `none` (deleted). The newest checkpoint
    /// always keeps everything a resume needs. Left out of job.yaml when `weights`.
    #[serde(default, skip_serializing_if = "Keep::is_default")]
    pub keep: Keep,
}

/// Retention of milestone checkpoints (see [`TrainConfig::keep`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    #[default]
    Weights,
    All,
    None,
}

impl Keep {
    pub fn is_default(&self) -> bool {
        *self == Self::Weights
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn one() -> usize {
    1
}

fn is_one(value: &usize) -> bool {
    *value == 1
}

impl TrainConfig {
    /// Processes in the job: devices x nodes.
    pub fn world_size(&self) -> usize {
        self.devices.max(1) * self.nodes.max(1)
    }

    /// How the job is spread over processes and memory: (devices, nodes,
    /// shard_optimizer, activation_checkpointing). Not part of what it computes, so
    /// left out of the job id.
    pub fn spread(&self) -> (usize, usize, bool, bool) {
        (
            self.devices,
            self.nodes,
            self.shard_optimizer,
            self.activation_checkpointing,
        )
    }

    /// Rows of each batch that one process trains on.
    pub fn rows_per_rank(&self) -> usize {
        self.batch_size / self.world_size()
    }
}

/// Which parameters take weight decay (see [`TrainConfig::decay`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecayScope {
    #[default]
    Matrices,
    Megatron,
    All,
}

impl DecayScope {
    /// Whether the parameter `name` (`embedding...`, `...norm...`, block weights)
    /// decays under this scope.
    pub fn decays(self, name: &str) -> bool {
        let norm = name.contains("norm");
        let embedding = name.starts_with("embedding");
        match self {
            Self::Matrices => !norm && !embedding,
            Self::Megatron => !norm,
            Self::All => true,
        }
    }
}

/// Where a job runs. Written `auto`, `cpu`, `cuda` or `cuda:N`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceSpec {
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl DeviceSpec {
    pub fn is_auto(&self) -> bool {
        *self == Self::Auto
    }
}

impl std::str::FromStr for DeviceSpec {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text.trim() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|index| index.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| {
                    format!("`{other}` is not a device: write auto, cpu, cuda or cuda:N")
                }),
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(index) => write!(f, "cuda:{index}"),
        }
    }
}

impl Serialize for DeviceSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for DeviceSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Arithmetic of the forward and backward passes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// bf16 on CUDA, fp32 on CPU.
    #[default]
    Auto,
    Fp32,
    Bf16,
}

impl Precision {
    pub fn is_auto(&self) -> bool {
        *self == Self::Auto
    }

    /// What `auto` means on a device: bf16 on CUDA, fp32 on CPU.
    pub fn resolve(self, cuda: bool) -> Self {
        match self {
            Self::Auto if cuda => Self::Bf16,
            Self::Auto => Self::Fp32,
            other => other,
        }
    }
}

fn default_min_lr_ratio() -> f64 {
    0.1
}
fn default_warmup() -> Warmup {
    Warmup::Fraction(0.01)
}
fn default_schedule() -> Schedule {
    Schedule::Cosine
}
fn default_decay_fraction() -> f64 {
    0.2
}
fn default_weight_decay() -> f64 {
    0.1
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.95
}
fn default_adam_eps() -> f64 {
    1e-8
}
fn default_grad_clip() -> f64 {
    1.0
}
fn default_log_every() -> u64 {
    10
}
fn default_checkpoint_minutes() -> f64 {
    10.0
}

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
        let check = |ok: bool, field: &str, message: String| {
            if ok {
                Ok(())
            } else {
                Err(invalid(path, field, message))
            }
        };
        if let Objective::ArMasked(p) | Objective::ArDropout(p) = self.objective {
            check(
                (0.0..1.0).contains(&p),
                "objective",
                format!("probability {p} must be in [0, 1)"),
            )?;
        }
        let data = &self.data;
        check(
            !data.resample || data.order == DocumentOrder::Shuffled,
            "data.resample",
            "needs `data.order: shuffled`: it draws each seed's own shuffled training order, and `corpus` order has none".into(),
        )?;
        check(
            data.seq_len >= 2,
            "data.seq_len",
            format!("{} is too short (at least 2)", data.seq_len),
        )?;
        check(
            data.seq_len <= shape.max_seq_len,
            "data.seq_len",
            format!(
                "{} is longer than the model takes (model.max_seq_len = {}); shorten it or raise max_seq_len",
                data.seq_len, shape.max_seq_len
            ),
        )?;
        check(
            data.unique_tokens.get() > data.seq_len as u64,
            "data.unique_tokens",
            format!(
                "{} tokens is less than one window of seq_len + 1 = {}",
                data.unique_tokens,
                data.seq_len + 1
            ),
        )?;
        check(
            data.val_tokens.get() > 0,
            "data.val_tokens",
            "must be positive".into(),
        )?;
        if let TokenizerSpec::Bpe(size) = data.tokenizer {
            check(
                (300..=1_000_000).contains(&size),
                "data.tokenizer.bpe",
                format!("vocab {size} must be in 300..=1000000"),
            )?;
        }
        let train = &self.train;
        check(
            train.epochs > 0.0 && train.epochs.is_finite(),
            "train.epochs",
            format!("{} must be positive", train.epochs),
        )?;
        check(
            train.batch_size > 0,
            "train.batch_size",
            "must be positive".into(),
        )?;
        check(
            train.devices >= 1 && train.nodes >= 1,
            "train.devices",
            "train.devices and train.nodes must be at least 1".into(),
        )?;
        check(
            train.batch_size.is_multiple_of(train.world_size()),
            "train.batch_size",
            format!(
                "{} rows cannot be split evenly over {} processes (train.devices {} x train.nodes {}); choose a batch_size that is a multiple of {}",
                train.batch_size,
                train.world_size(),
                train.devices,
                train.nodes,
                train.world_size()
            ),
        )?;
        check(
            train
                .micro_batch_size
                .is_none_or(|micro| micro > 0 && micro <= train.rows_per_rank()),
            "train.micro_batch_size",
            format!(
                "must be between 1 and the rows each process trains on (train.batch_size / (devices x nodes) = {}); leave it out to process them at once",
                train.rows_per_rank()
            ),
        )?;
        check(
            train.lr > 0.0 && train.lr.is_finite(),
            "train.lr",
            format!("{} must be positive", train.lr),
        )?;
        check(
            (0.0..=1.0).contains(&train.min_lr_ratio),
            "train.min_lr_ratio",
            "must be in [0, 1]".into(),
        )?;
        check(
            (0.0..=1.0).contains(&train.decay_fraction),
            "train.decay_fraction",
            "must be in [0, 1]".into(),
        )?;
        check(
            train.log_every > 0,
            "train.log_every",
            "must be positive".into(),
        )?;
        check(
            (0.0..1.0).contains(&self.dlm.eps),
            "dlm.eps",
            "must be in [0, 1)".into(),
        )?;
        check(
            (0.0..=1.0).contains(&self.dlm.truncate_prob),
            "dlm.truncate_prob",
            "must be in [0, 1]".into(),
        )?;
        for task in &self.eval.tasks {
            check(
                KNOWN_TASKS.contains(&task.as_str()),
                "eval.tasks",
                format!(
                    "unknown task `{task}`; known tasks: {}",
                    KNOWN_TASKS.join(", ")
                ),
            )?;
        }
        check(
            self.eval.dlm_draws > 0,
            "eval.dlm_draws",
            "must be positive".into(),
        )?;
        check(
            self.eval.batch_size > 0,
            "eval.batch_size",
            "must be positive".into(),
        )?;
        check(
            self.eval.score_draws > 0,
            "eval.score_draws",
            "must be positive".into(),
        )?;
        check(
            self.eval.batch_tokens > 0,
            "eval.batch_tokens",
            "must be positive".into(),
        )?;
        if let Milestones::Epochs(epochs) = &self.eval.at {
            check(
                epochs.iter().all(|e| *e > 0.0 && e.is_finite()),
                "eval.at.epochs",
                "epochs must be positive".into(),
            )?;
        }
        if let Milestones::Points(points) = &self.eval.at {
            check(
                *points >= 1,
                "eval.at.points",
                "give at least 1 evaluation (the end of training is always one)".into(),
            )?;
        }
        Ok(())
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
