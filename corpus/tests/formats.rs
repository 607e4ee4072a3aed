//! Every corpus format reads to the same documents, damaged files name themselves,
//! and two concurrent prepares of one corpus make one store (issue 26).

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use corpus::{Dataset, prepare, read_corpus};
use jobspec::{DataConfig, DocumentOrder, TokenCount, TokenizerSpec, WindowMode};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn config(corpus: &str) -> DataConfig {
    DataConfig {
        corpus: corpus.into(),
        text_field: "text".into(),
        tokenizer: TokenizerSpec::Bytes,
        seq_len: 16,
        unique_tokens: TokenCount(1000),
        val_tokens: TokenCount(300),
        split_seed: 1,
        order: DocumentOrder::Shuffled,
        windows: WindowMode::Reshuffle,
        skip_unknown: false,
        resample: false,
    }
}

/// 300 documents with multi-byte characters, quotes and newlines inside.
fn texts() -> Vec<String> {
    (0..300)
        .map(|d| {
            let words: Vec<String> = (0..(3 + d % 11))
                .map(|w| format!("wörd{}", (w * 7 + d) % 13))
                .collect();
            format!("doc {d}: \"{}\"\nend é", words.join(" "))
        })
        .collect()
}

fn jsonl(texts: &[String]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (id, text) in texts.iter().enumerate() {
        let record = serde_json::json!({ "id": id, "text": text });
        bytes.extend_from_slice(record.to_string().as_bytes());
        bytes.push(b'\n');
    }
    bytes
}

fn batch(texts: &[String]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("text", DataType::Utf8, true),
    ]);
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..texts.len() as i64));
    let text: ArrayRef = Arc::new(StringArray::from_iter_values(texts));
    RecordBatch::try_new(Arc::new(schema), vec![ids, text]).expect("batch")
}

/// The corpus written as `name` (two files, so the document order spans files).
fn write_corpus(folder: &Path, name: &str, texts: &[String]) -> PathBuf {
    let root = folder.join(name);
    fs::create_dir_all(&root).expect("mkdir");
    let (first, second) = texts.split_at(texts.len() / 3);
    for (part, texts) in [(0, first), (1, second)] {
        match name {
            "jsonl" => fs::write(root.join(format!("part{part}.jsonl")), jsonl(texts)),
            "gz" => {
                let file =
                    fs::File::create(root.join(format!("part{part}.jsonl.gz"))).expect("create");
                let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
                encoder.write_all(&jsonl(texts)).expect("gzip");
                encoder.finish().map(drop)
            }
            "zst" => fs::write(
                root.join(format!("part{part}.jsonl.zst")),
                zstd::encode_all(&jsonl(texts)[..], 3).expect("zstd"),
            ),
            "parquet" => {
                let file =
                    fs::File::create(root.join(format!("part{part}.parquet"))).expect("create");
                let batch = batch(texts);
                let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)
                    .expect("writer");
                // Two row groups, so the reader crosses a boundary.
                let half = batch.num_rows() / 2;
                writer.write(&batch.slice(0, half)).expect("write");
                writer.flush().expect("row group");
                writer
                    .write(&batch.slice(half, batch.num_rows() - half))
                    .expect("write");
                writer.close().map(drop).expect("close");
                Ok(())
            }
            "arrow" => {
                // As `datasets.save_to_disk` lays it out: IPC streams plus metadata.
                let file = fs::File::create(root.join(format!("data-0000{part}-of-00002.arrow")))
                    .expect("create");
                let batch = batch(texts);
                let mut writer =
                    arrow_ipc::writer::StreamWriter::try_new(file, &batch.schema()).expect("ipc");
                writer.write(&batch).expect("write");
                writer.finish().expect("finish");
                fs::write(root.join("state.json"), "{}").expect("state");
                fs::write(root.join("dataset_info.json"), "{}")
            }
            "arrow-file" => {
                let file =
                    fs::File::create(root.join(format!("part{part}.arrow"))).expect("create");
                let batch = batch(texts);
                let mut writer =
                    arrow_ipc::writer::FileWriter::try_new(file, &batch.schema()).expect("ipc");
                writer.write(&batch).expect("write");
                writer
                    .finish()
                    .map_err(|error| std::io::Error::other(error.to_string()))
            }
            other => panic!("no format {other}"),
        }
        .expect("write");
    }
    root
}

const FORMATS: [&str; 6] = ["jsonl", "gz", "zst", "parquet", "arrow", "arrow-file"];

#[test]
fn every_format_reads_to_the_same_documents_and_tokens() {
    let folder = tempfile::tempdir().expect("tempdir");
    let cache = folder.path().join("cache");
    let texts = texts();
    let mut reference: Option<(Vec<u32>, Vec<Vec<u32>>)> = None;
    for format in FORMATS {
        write_corpus(folder.path(), format, &texts);
        let corpus = read_corpus(&config(format), &cache, folder.path()).expect(format);
        assert_eq!(corpus.documents, texts, "{format}");
        let dataset: Dataset = prepare(&config(format), &cache, folder.path()).expect(format);
        let streams = (
            dataset.train_stream().expect("train"),
            dataset.val_documents.clone(),
        );
        match &reference {
            None => reference = Some(streams),
            Some(reference) => assert!(&streams == reference, "{format}: other tokens"),
        }
    }
}

#[test]
fn damaged_files_name_themselves() {
    let folder = tempfile::tempdir().expect("tempdir");
    let cache = folder.path().join("cache");
    let texts = texts();
    for (format, file, expected) in [
        ("gz", "part1.jsonl.gz", "truncated or corrupt"),
        ("zst", "part1.jsonl.zst", "truncated or corrupt"),
        // Cut at 2/3 the footer is gone (the file's end holds it).
        ("parquet", "part1.parquet", "not a readable parquet file"),
    ] {
        let root = write_corpus(folder.path(), format, &texts);
        let path = root.join(file);
        let bytes = fs::read(&path).expect("read");
        fs::write(&path, &bytes[..bytes.len() * 2 / 3]).expect("truncate");
        let error = prepare(&config(format), &cache, folder.path())
            .expect_err(format)
            .to_string();
        assert!(
            error.contains(&path.display().to_string()) && error.contains(expected),
            "{format}: {error}"
        );
    }
    // A parquet file without the text column says which columns it has.
    let root = write_corpus(folder.path(), "parquet", &texts);
    let error = prepare(
        &DataConfig {
            text_field: "body".into(),
            ..config("parquet")
        },
        &cache,
        folder.path(),
    )
    .expect_err("no column")
    .to_string();
    assert!(
        error.contains("no column `body`") && error.contains("id, text"),
        "{error}"
    );
    drop(root);
}

#[test]
fn two_concurrent_prepares_make_one_store() {
    let folder = tempfile::tempdir().expect("tempdir");
    let cache = folder.path().join("cache");
    let texts: Vec<String> = (0..4000)
        .map(|d| format!("document {d} {}", "text ".repeat(d % 40)))
        .collect();
    write_corpus(folder.path(), "jsonl", &texts);
    let config = DataConfig {
        tokenizer: TokenizerSpec::Gpt2,
        ..config("jsonl")
    };
    let results: Vec<(bool, PathBuf, Vec<u32>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    let dataset = prepare(&config, &cache, folder.path()).expect("prepare");
                    (
                        dataset.cache_hit,
                        dataset.cache_dir.clone(),
                        dataset.train_stream().expect("train"),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("thread"))
            .collect()
    });
    let built = results.iter().filter(|(hit, _, _)| !hit).count();
    assert_eq!(built, 1, "exactly one prepare tokenized the corpus");
    assert!(
        results
            .windows(2)
            .all(|pair| pair[0].1 == pair[1].1 && pair[0].2 == pair[1].2)
    );
    let stores: Vec<_> = fs::read_dir(cache.join("tokens"))
        .expect("tokens")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .collect();
    assert_eq!(stores.len(), 1);
}

#[test]
fn many_small_shards_read_back_as_one_stream() {
    let folder = tempfile::tempdir().expect("tempdir");
    let texts = texts();
    // Ten files, so that 1-byte shards give ten shards and windows cross them.
    let root = folder.path().join("many");
    fs::create_dir_all(&root).expect("mkdir");
    for (part, chunk) in texts.chunks(30).enumerate() {
        fs::write(root.join(format!("part{part:02}.jsonl")), jsonl(chunk)).expect("write");
    }
    let one = prepare(&config("many"), &folder.path().join("one"), folder.path()).expect("one");
    let options = corpus::PrepareOptions {
        shard_bytes: 1,
        ..corpus::PrepareOptions::default()
    };
    let many = corpus::prepare_with(
        &config("many"),
        &folder.path().join("many-shards"),
        folder.path(),
        &options,
    )
    .expect("many");
    assert_eq!(
        (
            one.store_meta().shards.len(),
            many.store_meta().shards.len()
        ),
        (1, 10)
    );
    assert_eq!(
        one.train_stream().expect("one"),
        many.train_stream().expect("many")
    );
    assert_eq!(one.val_documents, many.val_documents);
    // Windows cut across documents (and so shards) read the same rows either way.
    let (a, b) = (one.budget(2000).expect("a"), many.budget(2000).expect("b"));
    let windows = corpus::Windows::try_new(a.len(), 64, 5).expect("windows");
    for step in 0..40 {
        assert_eq!(
            windows.read_batch(&a, step, 4).expect("a"),
            windows.read_batch(&b, step, 4).expect("b")
        );
    }
}

/// A killed preparer leaves `tempfile`'s `.tmp*` files (no destructor runs on SIGKILL);
/// the next prepare, which resumes the store under its lock, removes them, so the
/// resumed store holds exactly an uninterrupted one's files.
#[test]
fn a_resumed_prepare_removes_a_killed_preparers_temporary_files() {
    let folder = tempfile::tempdir().expect("tempdir");
    write_corpus(folder.path(), "jsonl", &texts());
    let cache = folder.path().join("cache");
    let listing = |root: &Path| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(root)
            .expect("store folder")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    };
    prepare(&config("jsonl"), &cache, folder.path()).expect("first prepare");
    let tokens = cache.join("tokens");
    let store = fs::read_dir(&tokens)
        .expect("tokens")
        .map(|entry| entry.expect("entry").path())
        .find(|path| path.is_dir())
        .expect("a store folder");
    let complete = listing(&store);
    // As a kill in the middle of a later shard leaves it: no meta.json, a temp file.
    fs::remove_file(store.join("meta.json")).expect("meta.json");
    fs::write(store.join(".tmpK1ll3d"), b"half a shard").expect("temp");
    prepare(&config("jsonl"), &cache, folder.path()).expect("resumed prepare");
    assert_eq!(listing(&store), complete);
}

/// A `datasets` DatasetDict saved to disk (dataset_dict.json naming its splits, a
/// folder each) is refused whole, naming its splits and the folder to use, so a test
/// split is never trained on; one split's folder reads as any Arrow corpus, with the
/// lock files `datasets` leaves beside its cache files ignored.
#[test]
fn a_dataset_dict_is_refused_whole_and_read_split_by_split() {
    let folder = tempfile::tempdir().expect("tempdir");
    let cache = folder.path().join("cache");
    let texts = texts();
    let dict = folder.path().join("dict");
    let split = write_corpus(&dict, "arrow", &texts);
    write_corpus(&dict, "jsonl", &texts);
    fs::write(
        dict.join("dataset_dict.json"),
        r#"{"splits": ["arrow", "jsonl"]}"#,
    )
    .expect("dataset_dict.json");
    fs::write(split.join("cache-1a2b.arrow.lock"), "").expect("lock file");
    let error = read_corpus(
        &DataConfig {
            corpus: "dict".into(),
            ..config("arrow")
        },
        &cache,
        folder.path(),
    )
    .expect_err("a DatasetDict")
    .to_string();
    assert!(
        error.contains("DatasetDict")
            && error.contains("the splits arrow, jsonl")
            && error.contains(&format!("{}/arrow", dict.display())),
        "{error}"
    );
    let corpus = read_corpus(
        &DataConfig {
            corpus: "dict/arrow".into(),
            ..config("arrow")
        },
        &cache,
        folder.path(),
    )
    .expect("one split");
    assert_eq!(corpus.documents, texts);
}
