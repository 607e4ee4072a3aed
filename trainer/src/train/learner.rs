//! What training changes: the model's weights, initialised from the job seed, and
//! AdamW's state; both restored from the newest checkpoint when a run resumes.

use crate::data::batches::TrainingData;
use crate::error::{Result, TrainerError, torch_error};
use crate::model::init::build_model;
use crate::model::transformer::Transformer;
use crate::train::checkpoint;
use crate::train::expert_load::ExpertLoad;
use crate::train::job::Job;
use crate::train::optim::{AdamW, AdamWConfig, named_parameters};
use tch::nn::VarStore;

/// The weights (and the model over them) and the optimizer of a run.
pub(crate) struct Learner {
    pub variables: VarStore,
    pub model: Transformer,
    pub optimizer: AdamW,
}

/// Where a run starts: after `start` steps and `elapsed_before` seconds of training by
/// earlier runs, with the expert load they summed since their last milestone.
#[derive(Debug, Default)]
pub(crate) struct Resumed {
    pub start: u64,
    pub elapsed_before: f64,
    pub expert_load: ExpertLoad,
}

impl Learner {
    /// The model, initialised from the job seed, and AdamW over its parameters (each
    /// rank keeping its shard of AdamW's state under `train.shard_optimizer`).
    pub fn build(job: &Job<'_>, data: &TrainingData) -> Self {
        let config = job.config;
        let (variables, model) =
            build_model(config, &data.shape, data.rows(), job.device, job.precision);
        let parameters = named_parameters(&variables, config.train.decay);
        let train = &config.train;
        let mut optimizer = AdamW::new(
            parameters,
            AdamWConfig {
                beta1: train.beta1,
                beta2: train.beta2,
                eps: train.adam_eps,
                weight_decay: train.weight_decay,
            },
        );
        if train.shard_optimizer {
            optimizer.shard(job.ranks.rank, job.ranks.world);
        }
        Self {
            variables,
            model,
            optimizer,
        }
    }

    /// Resume from the newest checkpoint, if there is one: its weights, AdamW's moments
    /// and where it stopped. A checkpoint of another tokenizer is refused.
    pub fn resume(&mut self, job: &Job<'_>, data: &TrainingData) -> Result<Resumed> {
        let Some((state, path)) = checkpoint::latest(job.dir)? else {
            return Ok(Resumed::default());
        };
        let dataset = &data.dataset;
        if state.vocab_size != dataset.vocab_size || state.tokenizer_id != dataset.tokenizer_id {
            return Err(TrainerError::Checkpoint {
                path,
                message: format!(
                    "was trained with tokenizer {} ({} ids) but job.yaml now gives {} ({} ids); restore job.yaml or delete the checkpoints to start over",
                    state.tokenizer_id, state.vocab_size, dataset.tokenizer_id, dataset.vocab_size
                ),
            });
        }
        self.variables
            .load(path.join(checkpoint::MODEL_FILE))
            .map_err(torch_error(format!("loading {}", path.display())))?;
        self.optimizer
            .load(&path.join(checkpoint::OPTIMIZER_FILE), state.step as i64)
            .map_err(|message| TrainerError::Checkpoint {
                path: path.clone(),
                message,
            })?;
        Ok(Resumed {
            start: state.step,
            elapsed_before: state.elapsed_s,
            expert_load: ExpertLoad::restored(state.expert_load, job.device),
        })
    }
}
