//! Stage 4, the training run of one job. `run` keeps status.json up to date around it
//! and joins the job's ranks (`job`: what a run is given); `recipe` names the run's
//! steps: the model and optimizer (`learner`), the loop's steps (`steps`: `gradient`
//! and `reduce` make one step's gradient, `optim` is AdamW, `schedule` the learning
//! rate), where training is (`clock`), the logs (`logs`, `expert_load`, `progress`)
//! and checkpoints (`checkpoint`).

pub mod checkpoint;
pub(crate) mod clock;
pub(crate) mod expert_load;
pub mod gradient;
pub mod job;
pub(crate) mod learner;
pub(crate) mod logs;
pub mod optim;
pub(crate) mod progress;
pub(crate) mod recipe;
pub(crate) mod reduce;
pub mod run;
pub mod schedule;
pub(crate) mod steps;
