//! `prepare` end to end on small corpora written into temp folders.

use corpus::{CorpusError, Dataset, load_tokenizer, prepare};
use jobspec::{DataConfig, DocumentOrder, TokenCount, TokenizerSpec, WindowMode};
use std::fs;
use std::path::Path;

fn config(corpus: &str, tokenizer: TokenizerSpec, val_tokens: u64) -> DataConfig {
    DataConfig {
        corpus: corpus.into(),
        text_field: "text".into(),
        tokenizer,
        seq_len: 16,
        unique_tokens: TokenCount(1000),
        val_tokens: TokenCount(val_tokens),
        split_seed: 3,
        order: DocumentOrder::Shuffled,
        windows: WindowMode::Reshuffle,
        skip_unknown: false,
        resample: false,
    }
}

/// 60 short, distinct documents as text files in `folder/texts`.
fn write_texts(folder: &Path) {
    let texts = folder.join("texts");
    fs::create_dir_all(&texts).expect("mkdir");
    for d in 0..60 {
        let words: Vec<String> = (0..(5 + d % 9))
            .map(|w| format!("word{} of doc{d}", w * 7 % 11))
            .collect();
        fs::write(texts.join(format!("doc{d:02}.txt")), words.join(" ")).expect("write");
    }
}

fn documents_of(stream: &[u32], eos: u32) -> Vec<Vec<u32>> {
    stream
        .split_inclusive(|&id| id == eos)
        .map(<[u32]>::to_vec)
        .collect()
}

#[test]
fn second_prepare_is_a_cache_hit_with_identical_streams() {
    let folder = tempfile::tempdir().expect("tempdir");
    write_texts(folder.path());
    let cache = folder.path().join("cache");
    let config = config("texts", TokenizerSpec::Bpe(300), 200);
    let first = prepare(&config, &cache, folder.path()).expect("first");
    assert!(!first.cache_hit);
    assert_eq!(first.vocab_size, 300);
    assert!(first.tokenizer_id.starts_with("bpe300-"));
    assert!(
        first.cache_dir.join("index.bin").exists() && first.cache_dir.join("meta.json").exists()
    );

    // Without the trained tokenizer a re-tokenization would have to retrain it: a hit
    // must not need it.
    fs::remove_dir_all(cache.join("tokenizers")).expect("remove tokenizer");
    let second = prepare(&config, &cache, folder.path()).expect("second");
    assert!(second.cache_hit);
    assert!(
        !cache.join("tokenizers").exists(),
        "a cache hit re-tokenized"
    );
    assert_eq!(
        (
            second.train_stream().expect("train"),
            &second.val_documents,
            second.vocab_size,
            second.eos_id
        ),
        (
            first.train_stream().expect("train"),
            &first.val_documents,
            first.vocab_size,
            first.eos_id
        )
    );

    // load_tokenizer rebuilds the same BPE, which decodes the held-out text back.
    let tokenizer = load_tokenizer(&config, &cache, folder.path()).expect("tokenizer");
    let document = &first.val_documents[0];
    let text = tokenizer.decode(&document[..document.len() - 1]);
    let corpus = corpus::read_corpus(&config, &cache, folder.path()).expect("corpus");
    assert!(corpus.documents.contains(&text), "{text}");

    // Another tokenizer on the same corpus is another cache entry.
    let bytes = prepare(
        &config_with(&config, TokenizerSpec::Bytes),
        &cache,
        folder.path(),
    )
    .expect("bytes");
    assert!(!bytes.cache_hit);
    assert_ne!(bytes.cache_dir, first.cache_dir);
}

fn config_with(config: &DataConfig, tokenizer: TokenizerSpec) -> DataConfig {
    DataConfig {
        tokenizer,
        ..config.clone()
    }
}

#[test]
fn validation_never_overlaps_training() {
    let folder = tempfile::tempdir().expect("tempdir");
    write_texts(folder.path());
    let cache = folder.path().join("cache");
    for (val_tokens, split_seed) in [(1, 0), (500, 0), (500, 1), (2000, 7)] {
        let config = DataConfig {
            split_seed,
            ..config("texts", TokenizerSpec::Bytes, val_tokens)
        };
        let dataset = prepare(&config, &cache, folder.path()).expect("prepare");
        let held_out: u64 = dataset.val_stream().len() as u64;
        assert!(held_out >= val_tokens);
        let train_documents = documents_of(&dataset.train_stream().expect("train"), dataset.eos_id);
        assert_eq!(train_documents.len() + dataset.val_documents.len(), 60);
        for document in &dataset.val_documents {
            assert_eq!(document.last(), Some(&dataset.eos_id));
            assert!(
                !train_documents.contains(document),
                "held-out document in training"
            );
        }
        // Training documents come in a seeded order (data.order: shuffled), the same
        // for every job on the corpus; `order: corpus` keeps doc00, doc01, ...
        let numbers = train_numbers(&train_documents);
        assert!(
            !numbers.windows(2).all(|pair| pair[0] < pair[1]),
            "{numbers:?}"
        );
        let again = prepare(&config, &cache, folder.path()).expect("prepare");
        assert_eq!(
            again.train_stream().expect("train"),
            dataset.train_stream().expect("train")
        );
        let ordered = prepare(
            &DataConfig {
                order: DocumentOrder::Corpus,
                ..config.clone()
            },
            &cache,
            folder.path(),
        )
        .expect("prepare");
        let numbers = train_numbers(&documents_of(
            &ordered.train_stream().expect("train"),
            ordered.eos_id,
        ));
        assert!(
            numbers.windows(2).all(|pair| pair[0] < pair[1]),
            "{numbers:?}"
        );
    }
}

/// The doc number of each `docNN` document of a bytes-tokenized stream.
fn train_numbers(train_documents: &[Vec<u32>]) -> Vec<usize> {
    let texts: Vec<String> = train_documents
        .iter()
        .map(|document| {
            String::from_utf8(
                document[..document.len() - 1]
                    .iter()
                    .map(|&b| b as u8)
                    .collect(),
            )
            .expect("utf8")
        })
        .collect();
    let numbers: Vec<usize> = texts
        .iter()
        .map(|text| {
            text.rsplit("doc")
                .next()
                .expect("doc")
                .parse()
                .expect("number")
        })
        .collect();
    numbers
}

#[test]
fn budgets_nest_and_too_large_budgets_say_so() {
    let folder = tempfile::tempdir().expect("tempdir");
    write_texts(folder.path());
    let dataset: Dataset = prepare(
        &config("texts", TokenizerSpec::Gpt2, 100),
        &folder.path().join("cache"),
        folder.path(),
    )
    .expect("prepare");
    let tokens = |budget: u64| {
        dataset
            .budget(budget)
            .expect("budget")
            .to_vec()
            .expect("tokens")
    };
    let train = dataset.train_stream().expect("train");
    assert_eq!(train.len() as u64, dataset.train_tokens);
    assert_eq!(tokens(50), tokens(200)[..50]);
    assert_eq!(tokens(dataset.train_tokens), train);

    let asked = dataset.train_tokens + 1;
    let error = dataset.budget(asked).expect_err("an error");
    assert!(matches!(error, CorpusError::BudgetTooLarge { .. }));
    let message = error.to_string();
    assert!(
        message.contains(&format!("unique_tokens = {asked}")),
        "{message}"
    );
    assert!(
        message.contains(&format!("only {} tokens", train.len())),
        "{message}"
    );
    assert!(
        message.contains("lower unique_tokens or val_tokens"),
        "{message}"
    );
}

#[test]
fn jsonl_corpus_with_a_custom_text_field() {
    let folder = tempfile::tempdir().expect("tempdir");
    let records: Vec<String> = (0..20)
        .map(|i| format!("{{\"id\": {i}, \"body\": \"record number {i}\"}}"))
        .collect();
    fs::write(folder.path().join("data.jsonl"), records.join("\n")).expect("write");
    let cache = folder.path().join("cache");
    let config = DataConfig {
        text_field: "body".into(),
        ..config("data.jsonl", TokenizerSpec::Bytes, 30)
    };
    let dataset = prepare(&config, &cache, folder.path()).expect("prepare");
    assert_eq!(
        dataset.train_tokens as usize + dataset.val_stream().len(),
        (0..20)
            .map(|i| format!("record number {i}").len() + 1)
            .sum::<usize>()
    );
    assert!(dataset.val_documents.iter().all(|document| {
        let bytes: Vec<u8> = document.iter().map(|&id| id as u8).collect();
        bytes.starts_with(b"record number ")
    }));

    let error = prepare(
        &DataConfig {
            text_field: "text".into(),
            ..config
        },
        &cache,
        folder.path(),
    )
    .expect_err("an error");
    assert!(
        error.to_string().contains("data.jsonl:1") && error.to_string().contains("`text`"),
        "{error}"
    );
}

#[test]
fn impossible_validation_and_missing_corpora_are_errors() {
    let folder = tempfile::tempdir().expect("tempdir");
    write_texts(folder.path());
    let cache = folder.path().join("cache");
    let error = prepare(
        &config("texts", TokenizerSpec::Bytes, 1_000_000),
        &cache,
        folder.path(),
    )
    .expect_err("an error");
    assert!(
        error.to_string().contains("val_tokens = 1000000"),
        "{error}"
    );
    let error = prepare(
        &config("moby", TokenizerSpec::Bytes, 10),
        &cache,
        folder.path(),
    )
    .expect_err("an error");
    assert!(error.to_string().contains("just corpus moby"), "{error}");
}

/// Two corpora in one folder whose texts share no word: `a/` (words "alpha...") sorted
/// before `b/` (words "beta..."), 40 documents each.
fn write_two_halves(folder: &Path) {
    for (half, word) in [("a", "alpha"), ("b", "beta")] {
        let texts = folder.join("halves").join(half);
        fs::create_dir_all(&texts).expect("mkdir");
        for d in 0..40 {
            let words: Vec<String> = (0..(8 + d % 5)).map(|w| format!("{word}{w}")).collect();
            fs::write(texts.join(format!("{d:02}.txt")), words.join(" ")).expect("write");
        }
    }
}

#[test]
fn shuffled_budgets_sample_both_halves_and_still_nest() {
    let folder = tempfile::tempdir().expect("tempdir");
    write_two_halves(folder.path());
    let cache = folder.path().join("cache");
    let shuffled = prepare(
        &config("halves", TokenizerSpec::Bytes, 300),
        &cache,
        folder.path(),
    )
    .expect("prepare");
    let text = |tokens: &[u32]| {
        String::from_utf8_lossy(&tokens.iter().map(|&t| t as u8).collect::<Vec<_>>()).into_owned()
    };
    // The smallest useful budget: about four documents.
    let tokens = |dataset: &Dataset, budget: u64| {
        dataset
            .budget(budget)
            .expect("budget")
            .to_vec()
            .expect("tokens")
    };
    let small = text(&tokens(&shuffled, 300));
    assert!(
        small.contains("alpha") && small.contains("beta"),
        "a 300-token budget drew from one half only: {small}"
    );
    let large = tokens(&shuffled, 1200);
    assert_eq!(tokens(&shuffled, 300), large[..300]);
    assert_eq!(
        shuffled
            .budget(1200)
            .expect("budget")
            .document_lengths()
            .iter()
            .sum::<usize>(),
        1200,
        "budget documents add up to the budget"
    );

    // `order: corpus` keeps the old file order: the small budget is all "alpha".
    let ordered = prepare(
        &DataConfig {
            order: DocumentOrder::Corpus,
            ..config("halves", TokenizerSpec::Bytes, 300)
        },
        &cache,
        folder.path(),
    )
    .expect("prepare");
    let small = text(&tokens(&ordered, 300));
    assert!(
        small.contains("alpha") && !small.contains("beta"),
        "{small}"
    );
    // The held-out documents do not depend on the order.
    assert_eq!(ordered.val_documents, shuffled.val_documents);
}

#[test]
fn a_trained_bpe_never_sees_held_out_documents() {
    let folder = tempfile::tempdir().expect("tempdir");
    write_texts(folder.path());
    let config = config("texts", TokenizerSpec::Bpe(300), 200);
    let dataset = prepare(&config, &folder.path().join("cache"), folder.path()).expect("prepare");
    let tokenizer =
        load_tokenizer(&config, &folder.path().join("cache"), folder.path()).expect("tokenizer");
    // The same BPE trained by hand on exactly the training documents.
    let corpus =
        corpus::read_corpus(&config, &folder.path().join("cache"), folder.path()).expect("corpus");
    let held_out_texts: Vec<String> = dataset
        .val_documents
        .iter()
        .map(|document| tokenizer.decode(&document[..document.len() - 1]))
        .collect();
    let held_out: Vec<&String> = held_out_texts.iter().collect();
    let training = corpus::Corpus {
        documents: corpus
            .documents
            .iter()
            .filter(|text| !held_out.contains(text))
            .cloned()
            .collect(),
        ..corpus.clone()
    };
    assert_eq!(
        training.documents.len() + held_out.len(),
        corpus.documents.len()
    );
    let by_hand = corpus::Tokenizer::load(
        &TokenizerSpec::Bpe(300),
        &training,
        &folder.path().join("other-cache"),
        folder.path(),
    )
    .expect("by hand");
    for text in corpus.documents.iter() {
        assert_eq!(tokenizer.encode(text), by_hand.encode(text), "{text}");
    }
    // And not the BPE of the whole corpus, which saw the held-out documents.
    let everything = corpus::Tokenizer::load(
        &TokenizerSpec::Bpe(300),
        &corpus,
        &folder.path().join("third-cache"),
        folder.path(),
    )
    .expect("whole corpus");
    assert!(
        held_out
            .iter()
            .any(|text| everything.encode(text) != tokenizer.encode(text)),
        "the split made no difference to the BPE: the test cannot tell"
    );
}

/// `data.resample`: each job seed trains on its own order of the same pool, budgets
/// nested within a seed; the held-out documents never move; without it every seed
/// reads the shared order.
#[test]
fn resample_gives_each_seed_its_own_nested_budgets_and_keeps_the_held_out_set() {
    let folder = tempfile::tempdir().expect("tempdir");
    write_texts(folder.path());
    let cache = folder.path().join("cache");
    let shared = config("texts", TokenizerSpec::Bytes, 500);
    let resampled = DataConfig {
        resample: true,
        ..shared.clone()
    };
    let open = |config: &DataConfig, seed: u64| {
        corpus::prepare_with(
            config,
            &cache,
            folder.path(),
            &corpus::PrepareOptions::for_seed(seed),
        )
        .expect("prepare")
    };
    // (seed, budget) -> the budget's tokens, for a small and a large budget.
    let budget = |dataset: &Dataset, tokens: u64| dataset.budget(tokens).expect("budget").to_vec();
    let reference = open(&shared, 0);
    let mut small_budgets = Vec::new();
    for seed in 0..3 {
        let plain = open(&shared, seed);
        assert_eq!(plain.val_documents, reference.val_documents, "seed {seed}");
        assert_eq!(
            budget(&plain, 300).expect("read"),
            budget(&reference, 300).expect("read"),
            "without resample every seed reads the shared order"
        );
        let own = open(&resampled, seed);
        assert_eq!(
            own.val_documents, reference.val_documents,
            "seed {seed}: the held-out set moved"
        );
        let (small, large) = (
            budget(&own, 300).expect("read"),
            budget(&own, 1200).expect("read"),
        );
        assert_eq!(small, large[..small.len()], "seed {seed}: budgets nest");
        // The same pool: every document trained on is one of the shared order's.
        let pool = documents_of(&reference.train_stream().expect("train"), reference.eos_id);
        let mine = documents_of(&own.train_stream().expect("train"), own.eos_id);
        let mut sorted_pool = train_numbers(&pool);
        let mut sorted_mine = train_numbers(&mine);
        sorted_pool.sort_unstable();
        sorted_mine.sort_unstable();
        assert_eq!(sorted_mine, sorted_pool, "seed {seed}: same training pool");
        assert_ne!(
            small,
            budget(&reference, 300).expect("read"),
            "seed {seed}: not the shared sample"
        );
        small_budgets.push(small);
    }
    assert_ne!(small_budgets[0], small_budgets[1]);
    assert_ne!(small_budgets[1], small_budgets[2]);
    // One split file per order: the shared one and one per resampled seed.
    let mut names: Vec<String> = fs::read_dir(reference.cache_dir.join("splits"))
        .expect("splits")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "val500-seed3-resample0.bin",
            "val500-seed3-resample1.bin",
            "val500-seed3-resample2.bin",
            "val500-seed3-shuffled.bin"
        ]
    );
}
