//! The `train:` section: epochs, batch, optimizer and schedule, devices and
//! precision, checkpoints.

use super::is_false;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

impl TrainConfig {
    /// Ranges and relations within `train:`.
    pub(super) fn validate(&self, check: &super::Check) -> crate::Result<()> {
        check.require(
            self.epochs > 0.0 && self.epochs.is_finite(),
            "train.epochs",
            format!("{} must be positive", self.epochs),
        )?;
        check.require(
            self.batch_size > 0,
            "train.batch_size",
            "must be positive".into(),
        )?;
        check.require(
            self.devices >= 1 && self.nodes >= 1,
            "train.devices",
            "train.devices and train.nodes must be at least 1".into(),
        )?;
        check.require(
            self.batch_size.is_multiple_of(self.world_size()),
            "train.batch_size",
            format!(
                "{} rows cannot be split evenly over {} processes (train.devices {} x train.nodes {}); choose a batch_size that is a multiple of {}",
                self.batch_size,
                self.world_size(),
                self.devices,
                self.nodes,
                self.world_size()
            ),
        )?;
        check.require(
            self
                .micro_batch_size
                .is_none_or(|micro| micro > 0 && micro <= self.rows_per_rank()),
            "train.micro_batch_size",
            format!(
                "must be between 1 and the rows each process trains on (train.batch_size / (devices x nodes) = {}); leave it out to process them at once",
                self.rows_per_rank()
            ),
        )?;
        check.require(
            self.lr > 0.0 && self.lr.is_finite(),
            "train.lr",
            format!("{} must be positive", self.lr),
        )?;
        check.require(
            (0.0..=1.0).contains(&self.min_lr_ratio),
            "train.min_lr_ratio",
            "must be in [0, 1]".into(),
        )?;
        check.require(
            (0.0..=1.0).contains(&self.decay_fraction),
            "train.decay_fraction",
            "must be in [0, 1]".into(),
        )?;
        check.require(
            self.log_every > 0,
            "train.log_every",
            "must be positive".into(),
        )?;
        Ok(())
    }
}
