//! What a job folder is read into (design.md, "Run folder contract"): one record per
//! row of its logs, and the job with its config and status.

use jobspec::JobConfig;
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;

/// One train.csv row.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct TrainRow {
    pub step: u64,
    pub epoch: f64,
    pub tokens: f64,
    pub flops: f64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
    /// Model FLOPs utilisation; NaN when the trainer knew no peak (CPU) or the log
    /// predates the column.
    #[serde(default = "nan", deserialize_with = "lenient_f64")]
    pub mfu: f64,
    /// Mixtures of experts (NaN for dense models and older logs): the routers'
    /// load-balancing loss and z-loss, and the busiest expert's share over an even one.
    #[serde(default = "nan", deserialize_with = "lenient_f64")]
    pub aux_loss: f64,
    #[serde(default = "nan", deserialize_with = "lenient_f64")]
    pub z_loss: f64,
    #[serde(default = "nan", deserialize_with = "lenient_f64")]
    pub expert_load_max: f64,
    /// One device's share of tokens_per_s (data-parallel jobs; NaN in older logs).
    #[serde(default = "nan", deserialize_with = "lenient_f64")]
    pub tokens_per_s_device: f64,
}

/// One expert_load.csv row: a mixture block's share of the (token, expert)
/// assignments that went to one expert, averaged over the steps before a milestone.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct LoadRow {
    pub step: u64,
    pub tokens: f64,
    pub block: u32,
    pub expert: u32,
    pub share: f64,
}

fn nan() -> f64 {
    f64::NAN
}

/// One eval.csv row (stderr may be NaN; n may be empty).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct EvalRow {
    pub step: u64,
    pub epoch: f64,
    pub tokens: f64,
    pub flops: f64,
    pub task: String,
    pub metric: String,
    pub value: f64,
    #[serde(deserialize_with = "lenient_f64")]
    pub stderr: f64,
    pub n: Option<u64>,
}

/// One (task, metric)'s per-item scores in a job's eval_items.csv (design.md, "Run
/// folder contract"): row r is item `items[r]` scored `values[r]` at step `steps[r]`.
/// `item` names the same validation window or question in every job of a sweep that
/// shares the data config, so both objectives' scores of an item pair up; the metric in
/// eval.csv is the mean of `value` over items (per-window loss for `val_loss`/`loss`,
/// 0/1 per question for `acc` and `acc_norm`). Kept as columns (16 bytes a score): a
/// study's item logs run to tens of millions of rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ItemSeries {
    pub task: String,
    pub metric: String,
    pub steps: Vec<u32>,
    pub items: Vec<u32>,
    pub values: Vec<f64>,
}

impl ItemSeries {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Per-item scores of a job; absent in jobs from trainers that predate them.
pub use jobspec::status::EVAL_ITEMS_LOG as ITEMS_LOG;

/// A float where an empty field or any unparsable text means "unknown" (NaN): stderr
/// is diagnostic, and a missing one should not cost the row its value.
fn lenient_f64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let text = String::deserialize(deserializer)?;
    Ok(text.trim().parse().unwrap_or(f64::NAN))
}

/// One job as read from its folder.
#[derive(Clone, Debug)]
pub struct Run {
    pub id: String,
    pub config: JobConfig,
    /// `Objective::label()`: ar, dlm, ar_masked(0.3), ...
    pub objective: String,
    /// status.json's state; `pending` when the file is absent, `unknown` when unreadable.
    pub state: String,
    pub attempts: u32,
    pub error: Option<String>,
    pub step: u64,
    pub total_steps: u64,
    pub params: Option<u64>,
    /// Parameters one token uses (equal to `params` for a dense model).
    pub active_params: Option<u64>,
    /// The mixture-of-experts layout (None: dense).
    pub moe: Option<jobspec::MoeShape>,
    pub train: Vec<TrainRow>,
    pub eval: Vec<EvalRow>,
    /// eval_items.csv by (task, metric), in file order (empty when the job did not
    /// write it).
    pub items: Vec<ItemSeries>,
    /// expert_load.csv (mixtures of experts; empty otherwise).
    pub expert_load: Vec<LoadRow>,
}

impl Run {
    /// The per-item scores of (task, metric), if the job logged any.
    pub fn item_series(&self, task: &str, metric: &str) -> Option<&ItemSeries> {
        self.items
            .iter()
            .find(|s| s.task == task && s.metric == metric)
    }

    /// Item score rows over every task.
    pub fn item_rows(&self) -> usize {
        self.items.iter().map(ItemSeries::len).sum()
    }
}

/// A problem with one file that did not stop the analysis.
#[derive(Clone, Debug, PartialEq)]
pub struct Warning {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}
