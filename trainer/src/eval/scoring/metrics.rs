//! A task's accuracy metrics and their standard errors from its candidates' scores.

use crate::eval::scoring::questions::{CandidateScore, Question};

pub fn mean_and_stderr(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, f64::NAN);
    }
    let variance = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (variance / n).sqrt())
}

/// Accuracy metrics of a task from its scores.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskMetrics {
    pub n: usize,
    pub acc: f64,
    pub acc_norm: f64,
    /// Per question: whether `acc` and `acc_norm` count it correct.
    pub correct: Vec<bool>,
    pub correct_norm: Vec<bool>,
    /// Mean Monte Carlo standard error of the candidates' scores (0 when exact).
    pub mc_stderr: f64,
}

pub fn task_metrics(questions: &[Question], scores: &[Vec<CandidateScore>]) -> TaskMetrics {
    let argmax = |values: &mut dyn Iterator<Item = f64>| {
        values
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (i, v)| {
                if v > best.1 { (i, v) } else { best }
            })
            .0
    };
    let (mut correct, mut correct_norm) = (Vec::new(), Vec::new());
    let (mut stderr_sum, mut stderr_count) = (0.0, 0usize);
    for (question, candidates) in questions.iter().zip(scores) {
        if candidates.len() == 1 {
            // Single continuation (LAMBADA): correct when it is the greedy prediction.
            correct.push(candidates[0].greedy);
            correct_norm.push(candidates[0].greedy);
        } else {
            correct.push(argmax(&mut candidates.iter().map(|s| s.score)) == question.gold);
            let normalised = candidates
                .iter()
                .zip(&question.candidates)
                .map(|(s, c)| s.score / c.bytes.max(1) as f64);
            correct_norm.push(argmax(&mut normalised.into_iter()) == question.gold);
        }
        for score in candidates.iter().filter(|s| s.stderr.is_finite()) {
            stderr_sum += score.stderr;
            stderr_count += 1;
        }
    }
    let n = questions.len().max(1) as f64;
    TaskMetrics {
        n: questions.len(),
        acc: correct.iter().filter(|&&c| c).count() as f64 / n,
        acc_norm: correct_norm.iter().filter(|&&c| c).count() as f64 / n,
        correct,
        correct_norm,
        mc_stderr: if stderr_count > 0 {
            stderr_sum / stderr_count as f64
        } else {
            0.0
        },
    }
}

/// Binomial standard error of an accuracy over n items.
pub fn binomial_stderr(accuracy: f64, n: usize) -> f64 {
    if n == 0 {
        f64::NAN
    } else {
        (accuracy * (1.0 - accuracy) / n as f64).sqrt()
    }
}
