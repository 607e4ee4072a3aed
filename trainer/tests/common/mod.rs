//! Helpers shared by the trainer's integration tests.
// Each test crate includes this module and uses part of it.
#![allow(dead_code)]

use std::path::Path;

/// Deterministic English-like text: documents of sentences from a small grammar.
pub fn write_corpus(folder: &Path, documents: usize) {
    let subjects = [
        "the model",
        "a reader",
        "the old sailor",
        "our nation",
        "the whale",
        "every student",
    ];
    let verbs = [
        "sees",
        "remembers",
        "follows",
        "questions",
        "builds",
        "describes",
    ];
    let objects = [
        "the long sea",
        "a quiet harbour",
        "the final answer",
        "its own data",
        "the storm",
        "a new law",
    ];
    std::fs::create_dir_all(folder).expect("corpus folder");
    let mut next = draws(17);
    for document in 0..documents {
        let mut text = String::new();
        for _ in 0..40 {
            text.push_str(&format!(
                "{} {} {}. ",
                subjects[next(6)],
                verbs[next(6)],
                objects[next(6)]
            ));
        }
        std::fs::write(folder.join(format!("doc{document:03}.txt")), text).expect("document");
    }
}

/// A small deterministic generator of draws in `0..n` (Knuth's MMIX LCG), for test data.
pub fn draws(seed: u64) -> impl FnMut(usize) -> usize {
    let mut state = seed;
    move |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % n
    }
}

/// The columns of a log that must match between runs of one job: everything but
/// timings.
pub fn deterministic_columns(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("log");
    let header: Vec<&str> = text.lines().next().expect("header").split(',').collect();
    text.lines()
        .map(|line| {
            line.split(',')
                .zip(&header)
                .filter(|(_, name)| {
                    !matches!(**name, "tokens_per_s" | "elapsed_s" | "tokens_per_s_device")
                })
                .map(|(field, _)| field)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}
