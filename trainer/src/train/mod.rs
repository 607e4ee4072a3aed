//! Stage 4, the training run of one job. `run` keeps status.json up to date around it
//! and joins the job's ranks; `recipe` is the loop (data, model and optimizer, resume,
//! steps, milestones, checkpoints); `gradient` and `reduce` make one step's gradient;
//! `optim` (AdamW), `schedule`, `checkpoint`, `logs` and `progress` serve it.

pub mod checkpoint;
pub mod gradient;
pub mod job;
pub(crate) mod logs;
pub mod optim;
pub(crate) mod progress;
pub(crate) mod recipe;
pub(crate) mod reduce;
pub mod run;
pub mod schedule;
