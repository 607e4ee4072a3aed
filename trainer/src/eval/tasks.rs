//! The evaluation tasks of a job, prepared once (items tokenized, windows cut) and
//! scored at every milestone: validation loss, the built-in cloze levels, and the
//! multiple-choice benchmarks.

use crate::error::{Result, io_error};
use crate::eval::cloze;
use crate::eval::result::EvalResult;
use crate::eval::scoring;
use crate::eval::scoring::metrics;
use crate::eval::scoring::questions::{Candidate, CandidateScore, Question, Scorer};
use crate::eval::scoring::uniforms::Uniforms;
use crate::eval::shard::EvalShard;
use crate::eval::validation_loss;
use crate::model::transformer::Transformer;
use crate::objectives::vocab::Vocab;
use jobspec::{DlmScorer, JobConfig, Objective};
use std::path::Path;
use tch::Tensor;

/// Seed of the cloze items and of the benchmark samples: fixed, so every job on a
/// corpus is scored on the same items.
const ITEM_SEED: u64 = 0x17E5;
/// Seed of the DLM scoring draws (common to every evaluation of every job).
const SCORING_SEED: u64 = 0x5C0E;
/// Seed of the validation windows (with data.split_seed): the same for every job.
const VALIDATION_WINDOW_SEED: u64 = 0x7A11;

#[derive(Debug)]
enum Prepared {
    ValidationLoss(Tensor),
    Choice(Vec<Question>),
}

#[derive(Debug)]
pub struct TaskSet {
    tasks: Vec<(String, Prepared)>,
}

impl TaskSet {
    /// Tokenize every task's items once. `tasks` defaults to the job's `eval.tasks`.
    pub fn prepare(
        config: &JobConfig,
        dataset: &corpus::Dataset,
        tokenizer: &corpus::Tokenizer,
        tasks: &[String],
        benchmarks_root: &Path,
    ) -> Result<Self> {
        let mut prepared = Vec::new();
        for task in tasks {
            let entry = if task == "val_loss" {
                let lengths: Vec<usize> = dataset.val_documents.iter().map(Vec::len).collect();
                let starts = corpus::validation_starts(
                    &lengths,
                    config.data.seq_len,
                    config.eval.val_loss_tokens.get() as usize,
                    config.eval.val_windows,
                    config.data.split_seed ^ VALIDATION_WINDOW_SEED,
                );
                let windows = validation_loss::validation_windows(
                    &dataset.val_stream(),
                    config.data.seq_len,
                    &starts,
                )
                .ok_or_else(|| crate::error::TrainerError::RunFolder {
                    path: "job.yaml".into(),
                    message: "data.val_tokens is shorter than one window of seq_len + 1".into(),
                })?;
                Prepared::ValidationLoss(windows)
            } else if let Some(level) = cloze::level(task) {
                let questions = cloze_questions(dataset, tokenizer, level, config.eval.cloze_items);
                if questions.is_empty() {
                    return Err(crate::error::TrainerError::RunFolder {
                        path: "job.yaml".into(),
                        message: format!(
                            "eval.tasks `{task}` needs at least two held-out documents of {} tokens or more; raise data.val_tokens",
                            cloze::CONTEXT + cloze::CONTINUATION
                        ),
                    });
                }
                Prepared::Choice(questions)
            } else {
                let items = benchmarks::load_task(task, benchmarks_root)?;
                let items = sample(items, config.eval.max_items);
                Prepared::Choice(
                    items
                        .iter()
                        .map(|item| tokenize_item(tokenizer, item))
                        .collect(),
                )
            };
            prepared.push((task.clone(), entry));
        }
        Ok(Self { tasks: prepared })
    }

    /// Score every task; `item_scores` (a folder) also receives per-item CSVs.
    pub fn evaluate(
        &self,
        model: &Transformer,
        config: &JobConfig,
        vocab: Vocab,
        item_scores: Option<(&Path, u64)>,
    ) -> Result<Vec<EvalResult>> {
        self.evaluate_shard(model, config, vocab, item_scores, &EvalShard::single())
    }

    /// `evaluate` with the work shared out over data-parallel ranks (`EvalShard`):
    /// every rank gets the same results.
    pub fn evaluate_shard(
        &self,
        model: &Transformer,
        config: &JobConfig,
        vocab: Vocab,
        item_scores: Option<(&Path, u64)>,
        shard: &EvalShard<'_>,
    ) -> Result<Vec<EvalResult>> {
        let mut results = Vec::new();
        for (task, prepared) in &self.tasks {
            match prepared {
                Prepared::ValidationLoss(windows) => results.push(
                    validation_loss::validation_loss(
                        model,
                        &config.objective,
                        windows,
                        vocab,
                        (config.eval.batch_size, config.eval.dlm_draws),
                        shard,
                    )
                    .map_err(crate::error::TrainerError::Device)?,
                ),
                Prepared::Choice(questions) => {
                    let scorer = scorer_for(config);
                    let settings = scoring::ScoreSettings {
                        vocab,
                        max_len: config.data.seq_len,
                        batch_tokens: config.eval.batch_tokens,
                        seed: SCORING_SEED,
                        eps: config.dlm.eps,
                        pad_to_max_len: config.eval.dlm_pad == jobspec::DlmPad::Mask,
                    };
                    let owned = |question: usize| shard.owns(question);
                    let scores = scoring::score_owned(model, questions, scorer, &settings, &owned);
                    let scores = gather_scores(scores, shard, model.device())?;
                    if let Some((folder, step)) = item_scores {
                        write_item_scores(folder, task, step, questions, &scores)?;
                    }
                    results.extend(metric_rows(
                        task,
                        scorer,
                        &metrics::task_metrics(questions, &scores),
                    ));
                }
            }
        }
        Ok(results)
    }
}

/// The scorer an objective's model is evaluated with: AR controls are plain AR.
pub fn scorer_for(config: &JobConfig) -> Scorer {
    match (config.objective, config.eval.dlm_scorer) {
        (Objective::Dlm, DlmScorer::Elbo) => Scorer::DlmElbo {
            draws: config.eval.score_draws,
        },
        (Objective::Dlm, DlmScorer::Llada) => Scorer::DlmLlada {
            draws: config.eval.score_draws,
        },
        (Objective::Dlm, DlmScorer::ChainRule) => Scorer::DlmChainRule,
        _ => Scorer::Ar,
    }
}

fn metric_rows(task: &str, scorer: Scorer, metrics: &metrics::TaskMetrics) -> Vec<EvalResult> {
    let row = |metric: &str, value: f64, stderr: f64, items: &[bool]| EvalResult {
        task: task.to_owned(),
        metric: metric.to_owned(),
        value,
        stderr,
        n: metrics.n as u64,
        items: items
            .iter()
            .map(|&correct| f64::from(u8::from(correct)))
            .collect(),
    };
    let mut rows = vec![
        row(
            "acc",
            metrics.acc,
            metrics::binomial_stderr(metrics.acc, metrics.n),
            &metrics.correct,
        ),
        row(
            "acc_norm",
            metrics.acc_norm,
            metrics::binomial_stderr(metrics.acc_norm, metrics.n),
            &metrics.correct_norm,
        ),
    ];
    if matches!(scorer, Scorer::DlmElbo { .. } | Scorer::DlmLlada { .. }) {
        rows.push(row("score_mc_stderr", metrics.mc_stderr, f64::NAN, &[]));
    }
    rows
}

/// A seeded sample of `max` items (all when `max` is 0 or more than there are), in
/// their original order.
fn sample(items: Vec<benchmarks::Item>, max: usize) -> Vec<benchmarks::Item> {
    if max == 0 || items.len() <= max {
        return items;
    }
    let mut uniforms = Uniforms::new(ITEM_SEED, items.len() as u64);
    let mut keyed: Vec<(f64, usize)> = (0..items.len())
        .map(|i| (uniforms.next_uniform(), i))
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut chosen: Vec<usize> = keyed[..max].iter().map(|(_, i)| *i).collect();
    chosen.sort_unstable();
    let mut items: Vec<Option<benchmarks::Item>> = items.into_iter().map(Some).collect();
    chosen.into_iter().filter_map(|i| items[i].take()).collect()
}

/// Tokenize as lm-evaluation-harness does: the continuation is the tail of
/// encode(context + continuation) after encode(context), when that is a prefix.
fn tokenize_item(tokenizer: &corpus::Tokenizer, item: &benchmarks::Item) -> Question {
    let candidates = item
        .choices
        .iter()
        .map(|choice| {
            let context = tokenizer.encode(&choice.context);
            let whole = tokenizer.encode(&format!("{}{}", choice.context, choice.continuation));
            let continuation = if whole.starts_with(&context) && whole.len() > context.len() {
                whole[context.len()..].to_vec()
            } else {
                tokenizer.encode(&choice.continuation)
            };
            Candidate {
                context: context.into_iter().map(i64::from).collect(),
                continuation: continuation.into_iter().map(i64::from).collect(),
                bytes: choice.continuation.len(),
            }
        })
        .collect();
    Question {
        candidates,
        gold: item.gold,
    }
}

fn cloze_questions(
    dataset: &corpus::Dataset,
    tokenizer: &corpus::Tokenizer,
    level: cloze::ClozeLevel,
    count: usize,
) -> Vec<Question> {
    let documents: Vec<Vec<u32>> = dataset
        .val_documents
        .iter()
        .map(|d| d.iter().copied().filter(|&t| t != dataset.eos_id).collect())
        .collect();
    cloze::build(&documents, level, count, ITEM_SEED)
        .into_iter()
        .map(|(context, continuations, gold)| {
            let context: Vec<i64> = context.into_iter().map(i64::from).collect();
            let candidates = continuations
                .into_iter()
                .map(|continuation| Candidate {
                    context: context.clone(),
                    bytes: tokenizer.decode(&continuation).len(),
                    continuation: continuation.into_iter().map(i64::from).collect(),
                })
                .collect();
            Question { candidates, gold }
        })
        .collect()
}

/// Every rank's share of the scores added up: each question's comes from its owner
/// (the others hold zeros), flattened as (score, stderr, greedy) per candidate. The sum
/// runs on the model's device: NCCL moves CUDA tensors only.
fn gather_scores(
    scores: Vec<Vec<CandidateScore>>,
    shard: &EvalShard<'_>,
    device: tch::Device,
) -> Result<Vec<Vec<CandidateScore>>> {
    if shard.world() <= 1 {
        return Ok(scores);
    }
    let flat: Vec<f64> = scores
        .iter()
        .flatten()
        .flat_map(|s| [s.score, s.stderr, f64::from(u8::from(s.greedy))])
        .collect();
    let tensor = tch::Tensor::from_slice(&flat).to_device(device);
    shard
        .sum(&tensor)
        .map_err(crate::error::TrainerError::Device)?;
    let summed = Vec::<f64>::try_from(&tensor.to_device(tch::Device::Cpu)).unwrap_or(flat);
    let mut values = summed.chunks(3);
    Ok(scores
        .iter()
        .map(|candidates| {
            candidates
                .iter()
                .map(|_| {
                    let v = values.next().unwrap_or(&[f64::NAN, f64::NAN, 0.0]);
                    CandidateScore {
                        score: v[0],
                        stderr: v[1],
                        greedy: v[2] > 0.5,
                    }
                })
                .collect()
        })
        .collect())
}

fn write_item_scores(
    folder: &Path,
    task: &str,
    step: u64,
    questions: &[Question],
    scores: &[Vec<CandidateScore>],
) -> Result<()> {
    std::fs::create_dir_all(folder).map_err(io_error(folder))?;
    let mut text = String::from("item,choice,gold,score,stderr,bytes,greedy\n");
    for (q, (question, candidates)) in questions.iter().zip(scores).enumerate() {
        for (c, (candidate, score)) in question.candidates.iter().zip(candidates).enumerate() {
            text.push_str(&format!(
                "{q},{c},{},{},{},{},{}\n",
                question.gold, score.score, score.stderr, candidate.bytes, score.greedy
            ));
        }
    }
    let path = folder.join(format!("{task}-step-{step:08}.csv"));
    crate::runfolder::write_atomic(&path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    /// `eval.tasks` is checked against jobspec's list when a job is read (jobspec knows
    /// nothing of the benchmarks crate), so the two lists must agree: every benchmark
    /// the loaders know is a task a job may name, and every other known task is one the
    /// trainer scores itself.
    #[test]
    fn the_job_schema_knows_exactly_the_benchmarks_and_the_built_in_tasks() {
        let built_in = |task: &str| task == "val_loss" || super::cloze::level(task).is_some();
        for task in benchmarks::TASKS {
            assert!(jobspec::KNOWN_TASKS.contains(&task), "{task}");
        }
        for task in jobspec::KNOWN_TASKS {
            assert!(
                benchmarks::TASKS.contains(&task) || built_in(task),
                "{task} is neither a benchmark nor built in"
            );
        }
    }
}
