//! Stage 1, the job's tokens: `prepare` (`trainer prepare`) tokenizes a job's corpus
//! into the token store, `job` resolves a job's model shape, dataset and tokenizer,
//! `batches` puts a step's token ids on the device.

pub mod batches;
pub mod job;
pub mod prepare;
