//! The run's CSV logs: train.csv, eval.csv, eval_items.csv and (mixtures of experts)
//! expert_load.csv, cut back to the step a run resumes from and appended to after.

use crate::error::Result;
use crate::eval::result::{EvalPoint, EvalResult, write_eval_row, write_item_rows};
use crate::model::mixture::RouterStats;
use crate::runfolder::{self, CsvLog, number};
use crate::train::job::Job;
use tch::{Device, Tensor};

/// The run's logs; only rank 0's write anything.
pub(crate) struct Logs {
    train: CsvLog,
    eval: CsvLog,
    items: CsvLog,
    /// None for a dense model.
    expert_load: Option<CsvLog>,
}

/// One train.csv row's measurements; its first columns are the step's `EvalPoint`.
pub(crate) struct TrainRow<'a> {
    /// The objective's loss.
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    /// Of all ranks together.
    pub tokens_per_s: f64,
    pub elapsed: f64,
    pub mfu: Option<f64>,
    /// The routers' statistics (None for a dense model).
    pub router: Option<&'a RouterStats>,
    pub world: usize,
}

impl Logs {
    /// Cut every log back to step `start` (rank 0; expert_load.csv only for a mixture of
    /// experts), then open them for appending.
    pub fn open(job: &Job<'_>, start: u64, moe: bool) -> Result<Self> {
        let writes = job.writes();
        let logs = [
            (runfolder::TRAIN_LOG, runfolder::TRAIN_HEADER),
            (runfolder::EVAL_LOG, runfolder::EVAL_HEADER),
            (runfolder::EVAL_ITEMS_LOG, runfolder::EVAL_ITEMS_HEADER),
            (runfolder::EXPERT_LOAD_LOG, runfolder::EXPERT_LOAD_HEADER),
        ];
        for (name, header) in logs {
            if writes && (moe || name != runfolder::EXPERT_LOAD_LOG) {
                runfolder::truncate_log(&job.dir.join(name), start, header)?;
            }
        }
        let open =
            |name: &str, header: &[&str]| CsvLog::open_if(writes, &job.dir.join(name), header);
        let expert_load = match moe {
            true => Some(open(
                runfolder::EXPERT_LOAD_LOG,
                runfolder::EXPERT_LOAD_HEADER,
            )?),
            false => None,
        };
        let train = open(runfolder::TRAIN_LOG, runfolder::TRAIN_HEADER)?;
        let eval = open(runfolder::EVAL_LOG, runfolder::EVAL_HEADER)?;
        let items = open(runfolder::EVAL_ITEMS_LOG, runfolder::EVAL_ITEMS_HEADER)?;
        Ok(Self {
            train,
            eval,
            items,
            expert_load,
        })
    }

    /// One train.csv row.
    pub fn train_row(&mut self, at: EvalPoint, row: &TrainRow<'_>) -> Result<()> {
        self.train.append(
            &[
                at.step.to_string(),
                number(at.epoch),
                at.tokens.to_string(),
                number(at.flops),
                number(row.loss),
                number(row.lr),
                number(row.grad_norm),
                format!("{:.1}", row.tokens_per_s),
                format!("{:.3}", row.elapsed),
                row.mfu.map_or_else(String::new, |mfu| format!("{mfu:.4}")),
            ]
            .into_iter()
            .chain(router_columns(row.router))
            .chain([format!("{:.1}", row.tokens_per_s / row.world as f64)])
            .collect::<Vec<_>>(),
        )
    }

    /// One evaluation result: its eval.csv row and its eval_items.csv rows.
    pub fn eval_result(&mut self, at: EvalPoint, result: &EvalResult) -> Result<()> {
        write_eval_row(&mut self.eval, at, result)?;
        write_item_rows(&mut self.items, at, result)
    }

    /// expert_load.csv's rows for the mean `load` since the last milestone (nothing for
    /// a dense model).
    pub fn expert_load(&mut self, at: EvalPoint, load: &Tensor, blocks: &[usize]) -> Result<()> {
        match self.expert_load.as_mut() {
            Some(log) => write_load_rows(log, at, load, blocks),
            None => Ok(()),
        }
    }
}

/// train.csv's mixture columns: aux_loss, z_loss, expert_load_max (empty when dense).
fn router_columns(router: Option<&RouterStats>) -> [String; 3] {
    match router {
        None => Default::default(),
        Some(router) => {
            let experts = router.load.size().last().copied().unwrap_or(1) as f64;
            [
                number(router.balance.double_value(&[])),
                number(router.z.double_value(&[])),
                number(router.load.max().double_value(&[]) * experts),
            ]
        }
    }
}

/// expert_load.csv rows: one per (mixture block, expert); `blocks` are the mixture
/// blocks' indices among all blocks (from 0), in the order of `load`'s rows.
fn write_load_rows(log: &mut CsvLog, at: EvalPoint, load: &Tensor, blocks: &[usize]) -> Result<()> {
    let load = load.to_device(Device::Cpu).to_kind(tch::Kind::Double);
    let (rows, experts) = load.size2().unwrap_or_default();
    let values = Vec::<f64>::try_from(&load.reshape([-1])).unwrap_or_default();
    for (row, block) in blocks.iter().enumerate().take(rows as usize) {
        for expert in 0..experts {
            let share = values[row * experts as usize + expert as usize];
            log.append(&[
                at.step.to_string(),
                number(at.epoch),
                at.tokens.to_string(),
                number(at.flops),
                block.to_string(),
                expert.to_string(),
                number(share),
            ])?;
        }
    }
    Ok(())
}
