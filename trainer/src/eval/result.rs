//! What an evaluation gives (one eval.csv row per task and metric) and where in
//! training it was made; the rows of eval.csv and eval_items.csv.

use crate::error::Result;
use crate::runfolder::{CsvLog, number};

/// One result row of eval.csv (without the step columns).
#[derive(Clone, Debug, PartialEq)]
pub struct EvalResult {
    pub task: String,
    pub metric: String,
    pub value: f64,
    pub stderr: f64,
    pub n: u64,
    /// Per-item values whose mean is `value` (validation windows, questions), for the
    /// analysis' paired bootstrap (eval_items.csv); empty when the metric has none.
    pub items: Vec<f64>,
}

/// Where in training an evaluation was made: the first columns of eval.csv and
/// eval_items.csv.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EvalPoint {
    pub step: u64,
    pub epoch: f64,
    pub tokens: u64,
    pub flops: f64,
}

impl EvalPoint {
    /// step, epoch, tokens, flops, task, metric.
    fn columns(&self, result: &EvalResult) -> Vec<String> {
        vec![
            self.step.to_string(),
            number(self.epoch),
            self.tokens.to_string(),
            number(self.flops),
            result.task.clone(),
            result.metric.clone(),
        ]
    }
}

/// The per-item values of one eval.csv row (none for metrics without items).
pub(crate) fn write_item_rows(log: &mut CsvLog, at: EvalPoint, result: &EvalResult) -> Result<()> {
    for (item, value) in result.items.iter().enumerate() {
        let mut fields = at.columns(result);
        fields.extend([item.to_string(), number(*value)]);
        log.append(&fields)?;
    }
    Ok(())
}

pub(crate) fn write_eval_row(log: &mut CsvLog, at: EvalPoint, result: &EvalResult) -> Result<()> {
    let mut fields = at.columns(result);
    fields.extend([
        number(result.value),
        number(result.stderr),
        result.n.to_string(),
    ]);
    log.append(&fields)
}
