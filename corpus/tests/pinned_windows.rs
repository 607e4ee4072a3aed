//! Pinned training windows of the demo's jobs (issue 26): the token store, the
//! budgets read from it and the windows cut each epoch must give the very rows the
//! in-memory stream gave before the store existed, so that no demo number moves.
//!
//! Each case hashes (blake3) every row of the first `STEPS` optimizer steps of one
//! demo budget, plus the held-out stream; the hashes were taken with the in-memory
//! implementation (commit 405888e) before the store replaced it.

use corpus::{cache_root, prepare};
use jobspec::{DataConfig, DocumentOrder, TokenCount, TokenizerSpec, WindowMode};

/// Steps hashed per case: past the first epoch of the 25k budget (24 steps of 8).
const STEPS: u64 = 60;
const BATCH: usize = 8;

fn demo(unique_tokens: u64, windows: WindowMode) -> DataConfig {
    DataConfig {
        corpus: "demo".into(),
        text_field: "text".into(),
        tokenizer: TokenizerSpec::Bytes,
        seq_len: 128,
        unique_tokens: TokenCount(unique_tokens),
        val_tokens: TokenCount(300_000),
        split_seed: 0,
        order: DocumentOrder::Shuffled,
        windows,
        skip_unknown: false,
        resample: false,
    }
}

/// (budget, window mode, seed, hash of the rows of the first STEPS steps).
const CASES: [(u64, WindowMode, u64, &str); 4] = [
    (
        25_000,
        WindowMode::Reshuffle,
        0,
        "8678718970f8d4f931319936813e20611c498c815defd3506c708dee72bd374b",
    ),
    (
        100_000,
        WindowMode::Reshuffle,
        0,
        "b3891a283addadad1e698786f1fe45f4df3f946070310b9666efe410db911f00",
    ),
    (
        100_000,
        WindowMode::Reshuffle,
        3,
        "d076ac5b5859f1cbee6fbd72b83d930e458a2a3aab274ad1aef179199b5567f3",
    ),
    (
        100_000,
        WindowMode::Fixed,
        0,
        "3aba14c5c9bb9e45f9544dfbd62eafd0240476e4bd3d7cb9aefca3b85fdf4777",
    ),
];
const VALIDATION: &str = "0e5a72f98ef886b8a746a16c8602b29cb7770924f22ea46a38b2ba26e59e057b";

#[test]
fn demo_windows_match_the_in_memory_stream() {
    let cache = cache_root();
    assert!(
        cache.join("corpora/demo").exists(),
        "the demo corpus is not fetched: run `just corpus demo`"
    );
    let mut measured = Vec::new();
    let mut validation = String::new();
    for (unique_tokens, mode, seed, _) in CASES {
        let config = demo(unique_tokens, mode);
        let dataset = prepare(&config, &cache, std::path::Path::new(".")).expect("prepare");
        let budget = dataset.budget(unique_tokens).expect("budget");
        let windows = budget.windows(mode, 128, seed).expect("windows");
        // The same rows from the budget in memory and read piece by piece from the store.
        let in_memory = budget.to_vec().expect("budget tokens");
        let mut hasher = blake3::Hasher::new();
        for step in 0..STEPS {
            let rows = windows.read_batch(&budget, step, BATCH).expect("batch");
            assert_eq!(rows, windows.batch(&in_memory, step, BATCH), "step {step}");
            for id in rows {
                hasher.update(&id.to_le_bytes());
            }
        }
        measured.push(hasher.finalize().to_hex().to_string());
        let mut hasher = blake3::Hasher::new();
        for id in dataset.val_stream() {
            hasher.update(&id.to_le_bytes());
        }
        validation = hasher.finalize().to_hex().to_string();
    }
    let pinned: Vec<&str> = CASES.iter().map(|case| case.3).collect();
    assert_eq!(
        (
            measured.iter().map(String::as_str).collect::<Vec<_>>(),
            validation.as_str()
        ),
        (pinned, VALIDATION),
        "the demo's training windows or held-out stream moved"
    );
}
