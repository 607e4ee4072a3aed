//! Reading a corpus: a built-in name, a file, or a folder of files in the formats
//! pretraining corpora ship in, streamed document by document in a deterministic order,
//! with a content hash that keys every cache.
//!
//! Formats (by file name, case-insensitive):
//!
//! | name ends in | documents |
//! |---|---|
//! | `.txt`, `.text`, `.md` | the whole file is one document |
//! | `.jsonl`, `.json` | one JSON record a line, its `data.text_field` |
//! | `.jsonl.gz`, `.json.gz` | the same, gzip-compressed (Dolma) |
//! | `.jsonl.zst`, `.json.zst` | the same, zstd-compressed (DCLM, Nemotron-CC) |
//! | `.parquet` | one row a document, the `data.text_field` column (FineWeb) |
//! | `.arrow` | Arrow IPC streams as `datasets.save_to_disk` writes them |
//!
//! Any other file in a corpus folder is an error that names it, unless
//! `data.skip_unknown` is set (then it is listed and counted). A record without the
//! text field is counted and reported, not fatal: one bad record of a 400 GB corpus
//! should not stop it.
//!
//! Length: about 550 lines of code and 180 of tests. Every format feeds one document
//! stream with one order and one content hash; split by format, each file would
//! re-state those rules.

use crate::error::{CorpusError, io_error};
use crate::format::{Format, format_of};
use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Built-in corpora, fetched into `<cache_root>/corpora/<name>/` by
/// `scripts/fetch-corpus.sh` (`just corpus NAME`).
pub const BUILTIN_CORPORA: [&str; 4] = ["sotu", "moby", "wiki", "demo"];

/// Files in a corpus folder that describe it rather than belong to it: the fetch
/// script's notes and the metadata `datasets.save_to_disk` writes beside its Arrow files
/// (a folder holding `dataset_dict.json` is refused: see `refuse_dataset_dict`).
const METADATA_FILES: [&str; 5] = [
    "SOURCE.txt",
    "LICENSE.txt",
    "dataset_info.json",
    "state.json",
    "dataset_dict.json",
];

/// One file of a corpus, as listed (nothing read yet).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// Path relative to the corpus root with `/` separators (its file name for a
    /// single-file corpus); the reading order is the order of these.
    pub relative: String,
    #[serde(skip)]
    pub path: PathBuf,
    pub format: Format,
    pub bytes: u64,
    /// Modification time in nanoseconds since the epoch (0 where unknown).
    pub modified_ns: u64,
}

/// The files of a corpus in reading order.
#[derive(Clone, Debug)]
pub struct Listing {
    /// Where the corpus was read from (a file or a folder).
    pub source: PathBuf,
    pub files: Vec<SourceFile>,
    /// Files of no known format, skipped because `data.skip_unknown` is set.
    pub skipped: Vec<PathBuf>,
}

impl Listing {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|file| file.bytes).sum()
    }
}

/// The documents of a corpus in reading order, held in memory (small corpora, and the
/// training set of a BPE tokenizer).
#[derive(Clone, Debug)]
pub struct Corpus {
    /// Where the corpus was read from (a file or a folder).
    pub source: PathBuf,
    pub documents: Vec<String>,
    /// blake3 (hex) over every file's relative path and bytes, plus the text field.
    pub hash: String,
}

/// Where `corpus` lives: a built-in name resolves into the cache, anything else is a
/// path, relative to `base_dir` unless absolute.
pub fn resolve(corpus: &str, cache_root: &Path, base_dir: &Path) -> Result<PathBuf, CorpusError> {
    let (path, hint) = if BUILTIN_CORPORA.contains(&corpus) {
        let hint = format!(
            " (a built-in corpus not fetched yet): run `just corpus {corpus}` \
             (scripts/fetch-corpus.sh {corpus})"
        );
        (cache_root.join("corpora").join(corpus), hint)
    } else {
        let hint = format!(
            " (a path; built-in corpora are {})",
            BUILTIN_CORPORA.join(", ")
        );
        (base_dir.join(corpus), hint)
    };
    if path.exists() || pattern_folder(&path).is_some_and(Path::is_dir) {
        Ok(path)
    } else {
        Err(CorpusError::NotFound {
            corpus: corpus.into(),
            path,
            hint,
        })
    }
}

/// The files of `source` (a file, or a folder read recursively and sorted by relative
/// path), with their sizes and modification times. Hidden entries and metadata files
/// are left out; a file of no known format is an error unless `skip_unknown`.
pub fn list(source: &Path, skip_unknown: bool) -> Result<Listing, CorpusError> {
    let mut found = Vec::new();
    if source.is_dir() {
        refuse_dataset_dict(source)?;
        collect_files(source, source, &mut found)?;
        found.sort();
    } else if let (false, Some(folder)) = (source.exists(), pattern_folder(source)) {
        found = pattern_files(source, folder)?;
    } else {
        let name = source
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        found.push((name.unwrap_or_default(), source.to_path_buf()));
    }
    let mut files = Vec::with_capacity(found.len());
    let mut skipped = Vec::new();
    for (relative, path) in found {
        let Some(format) = format_of(&relative) else {
            if skip_unknown {
                skipped.push(path);
                continue;
            }
            return Err(CorpusError::UnknownFormat { path });
        };
        let metadata = fs::metadata(&path).map_err(io_error(&path))?;
        let modified_ns = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_nanos() as u64);
        files.push(SourceFile {
            relative,
            path,
            format,
            bytes: metadata.len(),
            modified_ns,
        });
    }
    Ok(Listing {
        source: source.to_path_buf(),
        files,
        skipped,
    })
}

/// The folder of a corpus given as a pattern of file names (`shards/*.parquet`: `*`
/// any run of characters, `?` one), when the last part of `path` is one.
fn pattern_folder(path: &Path) -> Option<&Path> {
    let name = path.file_name()?.to_str()?;
    name.contains(['*', '?']).then(|| path.parent()).flatten()
}

/// The files of `folder` (not its subfolders) whose names match `pattern`'s last part,
/// sorted by name: a list of files as one corpus. An error when none does.
fn pattern_files(pattern: &Path, folder: &Path) -> Result<Vec<(String, PathBuf)>, CorpusError> {
    let wanted = pattern
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut found: Vec<(String, PathBuf)> = entries(folder)?
        .into_iter()
        .filter(|(name, path)| {
            path.is_file() && !name.starts_with('.') && wildcard_match(&wanted, name)
        })
        .collect();
    if found.is_empty() {
        return Err(CorpusError::Damaged {
            path: pattern.to_path_buf(),
            message: format!("no file in {} matches `{wanted}`", folder.display()),
        });
    }
    found.sort();
    Ok(found)
}

/// The entries of `folder` as (file name, path), in the order the system lists them.
fn entries(folder: &Path) -> Result<Vec<(String, PathBuf)>, CorpusError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(folder).map_err(io_error(folder))? {
        let path = entry.map_err(io_error(folder))?.path();
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        found.push((name, path));
    }
    Ok(found)
}

/// Whether `name` matches `pattern` (`*`: any run of characters, `?`: one character;
/// everything else literally).
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (pattern, name): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), name.chars().collect());
    // The classic two-pointer match with backtracking to the last `*`.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((star_p, star_n)) => {
                    p = star_p + 1;
                    n = star_n + 1;
                    star = Some((star_p, star_n + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// A `datasets` DatasetDict saved to disk (`dataset_dict.json` naming its splits, one
/// folder each) holds train and test splits side by side: an error naming them, so
/// that no held-out split is trained on by reading the folder whole.
fn refuse_dataset_dict(folder: &Path) -> Result<(), CorpusError> {
    let file = folder.join("dataset_dict.json");
    let Ok(text) = fs::read_to_string(&file) else {
        return Ok(());
    };
    let splits: Vec<String> = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|value| {
            let list = value.get("splits")?.as_array()?.clone();
            Some(
                list.iter()
                    .filter_map(|split| split.as_str().map(str::to_owned))
                    .collect(),
            )
        })
        .unwrap_or_default();
    Err(CorpusError::DatasetDict {
        path: folder.to_path_buf(),
        first: splits.first().cloned().unwrap_or_else(|| "train".into()),
        splits: if splits.is_empty() {
            "(unreadable)".into()
        } else {
            splits.join(", ")
        },
    })
}

/// Files under `folder` as (path relative to `root` with `/` separators, path); hidden
/// entries (the fetch script's stamps and staging folders) and metadata files skipped.
fn collect_files(
    root: &Path,
    folder: &Path,
    files: &mut Vec<(String, PathBuf)>,
) -> Result<(), CorpusError> {
    for (name, path) in entries(folder)? {
        // `*.lock`: the lock files `datasets` keeps beside its cached Arrow files.
        if name.starts_with('.')
            || METADATA_FILES.contains(&name.as_str())
            || name.ends_with(".lock")
        {
            continue;
        }
        if path.is_dir() {
            collect_files(root, &path, files)?;
        } else {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let parts: Vec<_> = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy())
                .collect();
            files.push((parts.join("/"), path));
        }
    }
    Ok(())
}

/// The corpus' content hash: blake3 over every file's relative path and bytes (each
/// length-prefixed, in reading order) and the text field. Streams the files (one read
/// of the corpus); callers keep it in a manifest keyed by names, sizes and times.
pub fn content_hash(listing: &Listing, text_field: &str) -> Result<String, CorpusError> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"corpus-v1\0");
    let mut buffer = vec![0u8; 1 << 20];
    for file in &listing.files {
        hash_field(&mut hasher, file.relative.as_bytes());
        hasher.update(&file.bytes.to_le_bytes());
        let mut reader = File::open(&file.path).map_err(io_error(&file.path))?;
        let mut read = 0u64;
        loop {
            let n = reader.read(&mut buffer).map_err(io_error(&file.path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            read += n as u64;
        }
        if read != file.bytes {
            return Err(CorpusError::Changed {
                path: file.path.clone(),
            });
        }
    }
    hash_field(&mut hasher, text_field.as_bytes());
    Ok(hasher.finalize().to_hex().to_string())
}

/// Length-prefixed, so that no two different file lists hash alike.
fn hash_field(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// Records without the text field, counted across a read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    pub records: u64,
    /// Where the first one was (`path:line` or `path:row`).
    pub first: Option<String>,
}

impl Missing {
    fn note(&mut self, at: impl FnOnce() -> String) {
        if self.records == 0 {
            self.first = Some(at());
        }
        self.records += 1;
    }

    pub fn add(&mut self, other: &Missing) {
        if self.records == 0 {
            self.first.clone_from(&other.first);
        }
        self.records += other.records;
    }
}

/// Stream the non-empty documents of `file` to `each`, in file order, with bounded
/// memory (one record at a time; a text file is one document). Records without
/// `text_field` are counted in `missing`.
pub fn for_each_document(
    file: &SourceFile,
    text_field: &str,
    missing: &mut Missing,
    each: &mut dyn FnMut(String) -> Result<(), CorpusError>,
) -> Result<(), CorpusError> {
    let path = &file.path;
    let open = || File::open(path).map_err(io_error(path));
    match file.format {
        Format::Text => {
            let bytes = fs::read(path).map_err(io_error(path))?;
            let text = String::from_utf8(bytes).map_err(|error| CorpusError::NotUtf8 {
                path: path.clone(),
                valid_up_to: error.utf8_error().valid_up_to(),
            })?;
            if !text.is_empty() {
                each(text)?;
            }
            Ok(())
        }
        Format::Jsonl => json_lines(path, BufReader::new(open()?), text_field, missing, each),
        Format::JsonlGz => {
            let decoder = flate2::read::MultiGzDecoder::new(BufReader::new(open()?));
            json_lines(path, BufReader::new(decoder), text_field, missing, each)
        }
        Format::JsonlZst => {
            let decoder = zstd::stream::read::Decoder::new(open()?).map_err(|error| {
                CorpusError::Damaged {
                    path: path.clone(),
                    message: format!("not a zstd stream ({error})"),
                }
            })?;
            json_lines(path, BufReader::new(decoder), text_field, missing, each)
        }
        Format::Parquet => {
            let reader = crate::columnar::parquet_batches(path, text_field, open()?)?;
            columns(path, reader, text_field, missing, each)
        }
        Format::Arrow => {
            let reader = crate::columnar::arrow_batches(path, open()?)?;
            columns(path, reader, text_field, missing, each)
        }
    }
}

/// One JSON record a line; blank lines skipped. A line that is not JSON is an error
/// naming the file and line (the file is damaged); so is a stream that ends early.
fn json_lines(
    path: &Path,
    mut reader: impl BufRead,
    field: &str,
    missing: &mut Missing,
    each: &mut dyn FnMut(String) -> Result<(), CorpusError>,
) -> Result<(), CorpusError> {
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|error| damaged(path, number + 1, &error))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record: serde_json::Value =
            serde_json::from_slice(&line).map_err(|error| CorpusError::JsonLine {
                path: path.to_path_buf(),
                line: number,
                message: error.to_string(),
            })?;
        // Moved out of the record, not copied: this runs once per document.
        let text = match record {
            serde_json::Value::Object(mut fields) => fields.remove(field),
            _ => None,
        };
        match text {
            Some(serde_json::Value::String(text)) => {
                if !text.is_empty() {
                    each(text)?;
                }
            }
            _ => missing.note(|| format!("{}:{number}", path.display())),
        }
    }
}

/// A decompression or read failure while at `line`: the file is truncated or corrupt.
fn damaged(path: &Path, line: usize, error: &std::io::Error) -> CorpusError {
    CorpusError::Damaged {
        path: path.to_path_buf(),
        message: format!(
            "reading line {line} failed ({error}); the file is truncated or corrupt, \
             fetch it again"
        ),
    }
}

/// The text column of each record batch, row by row; a null is a missing text.
fn columns(
    path: &Path,
    batches: impl Iterator<Item = Result<RecordBatch, CorpusError>>,
    field: &str,
    missing: &mut Missing,
    each: &mut dyn FnMut(String) -> Result<(), CorpusError>,
) -> Result<(), CorpusError> {
    let mut row = 0u64;
    for batch in batches {
        let batch = batch?;
        let Some(column) = batch.column_by_name(field) else {
            return Err(CorpusError::NoColumn {
                path: path.to_path_buf(),
                field: field.into(),
                columns: batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|column| column.name().clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let textual = matches!(
            column.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        );
        if !textual {
            return Err(CorpusError::ColumnType {
                path: path.to_path_buf(),
                field: field.into(),
                found: column.data_type().to_string(),
            });
        }
        let text_at = |index: usize| -> Option<&str> {
            if column.is_null(index) {
                None
            } else if let Some(strings) = column.as_string_opt::<i32>() {
                Some(strings.value(index))
            } else if let Some(strings) = column.as_string_opt::<i64>() {
                Some(strings.value(index))
            } else {
                column
                    .as_string_view_opt()
                    .map(|strings| strings.value(index))
            }
        };
        for index in 0..batch.num_rows() {
            match text_at(index) {
                Some(text) if !text.is_empty() => each(text.to_owned())?,
                Some(_) => {}
                None => missing.note(|| format!("{}:row {}", path.display(), row)),
            }
            row += 1;
        }
    }
    Ok(())
}

/// Read every document of a listing into memory (small corpora; the BPE trainer).
pub fn read_all(listing: &Listing, text_field: &str, hash: String) -> Result<Corpus, CorpusError> {
    let mut documents = Vec::new();
    let mut missing = Missing::default();
    for file in &listing.files {
        for_each_document(file, text_field, &mut missing, &mut |text| {
            documents.push(text);
            Ok(())
        })?;
    }
    if documents.is_empty() {
        return Err(CorpusError::Empty {
            path: listing.source.clone(),
            missing: missing_note(&missing, text_field),
        });
    }
    Ok(Corpus {
        source: listing.source.clone(),
        documents,
        hash,
    })
}

/// ` (N records had no field ...)` for an error or report, empty when none.
pub fn missing_note(missing: &Missing, text_field: &str) -> String {
    match &missing.first {
        Some(first) if missing.records > 0 => format!(
            "; {} records had no string field `{text_field}` (the first at {first}): \
             set data.text_field",
            missing.records
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_shells_do() {
        let cases = [
            ("*.parquet", "train-00001.parquet", true),
            ("*.parquet", "train-00001.parquet.tmp", false),
            ("train-*.jsonl.zst", "train-7.jsonl.zst", true),
            ("train-*.jsonl.zst", "test-7.jsonl.zst", false),
            ("part?.jsonl", "part1.jsonl", true),
            ("part?.jsonl", "part12.jsonl", false),
            ("*", "anything", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("**.txt", "x.txt", true),
            ("", "", true),
            ("exact.txt", "exact.txt", true),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(wildcard_match(pattern, name), expected, "{pattern} {name}");
        }
    }

    /// A corpus given as a pattern is the list of matching files in its folder, in
    /// name order (other files and subfolders left out); no match is an error naming
    /// the pattern.
    #[test]
    fn a_pattern_lists_the_matching_files_of_its_folder() {
        let folder = tempfile::tempdir().expect("temp dir");
        write(folder.path(), "b.jsonl", "{\"text\": \"b\"}");
        write(folder.path(), "a.jsonl", "{\"text\": \"a\"}");
        write(folder.path(), "c.txt", "c");
        write(folder.path(), "sub/d.jsonl", "{\"text\": \"d\"}");
        let pattern = folder.path().join("*.jsonl");
        let resolved = resolve("*.jsonl", Path::new("/unused"), folder.path()).expect("resolves");
        assert_eq!(resolved, pattern);
        let (texts, _) = documents(&pattern, "text").expect("reads");
        assert_eq!(texts, ["a", "b"]);
        let none = folder.path().join("*.parquet");
        let error = list(&none, false).expect_err("no match").to_string();
        assert!(
            error.contains("no file in") && error.contains("`*.parquet`"),
            "{error}"
        );
        assert!(resolve("nowhere/*.jsonl", Path::new("/unused"), folder.path()).is_err());
    }

    fn write(folder: &Path, relative: &str, text: &str) -> PathBuf {
        let path = folder.join(relative);
        fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs::write(&path, text).expect("write");
        path
    }

    fn documents(source: &Path, field: &str) -> Result<(Vec<String>, Missing), CorpusError> {
        let listing = list(source, false)?;
        let mut documents = Vec::new();
        let mut missing = Missing::default();
        for file in &listing.files {
            for_each_document(file, field, &mut missing, &mut |text| {
                documents.push(text);
                Ok(())
            })?;
        }
        Ok((documents, missing))
    }

    #[test]
    fn formats_by_name() {
        for (name, format) in [
            ("a.txt", Some(Format::Text)),
            ("a.MD", Some(Format::Text)),
            ("a.jsonl", Some(Format::Jsonl)),
            ("a.json", Some(Format::Jsonl)),
            ("a.jsonl.gz", Some(Format::JsonlGz)),
            ("dolma-0001.json.gz", Some(Format::JsonlGz)),
            ("a.jsonl.zst", Some(Format::JsonlZst)),
            ("000_00000.parquet", Some(Format::Parquet)),
            ("data-00000-of-00001.arrow", Some(Format::Arrow)),
            ("notes.csv", None),
            ("a.gz", None),
            ("a.txt.gz", None),
        ] {
            assert_eq!(format_of(name), format, "{name}");
        }
    }

    #[test]
    fn folder_is_read_recursively_in_path_order() {
        let folder = tempfile::tempdir().expect("tempdir");
        write(folder.path(), "b.txt", "bee");
        write(folder.path(), "a/z.md", "zed");
        write(
            folder.path(),
            "a/records.jsonl",
            "{\"body\": \"one\"}\n\n{\"body\": \"two\"}\n",
        );
        write(folder.path(), "SOURCE.txt", "metadata");
        write(folder.path(), ".complete", "");
        write(folder.path(), "empty.txt", "");
        let (documents, _) = documents(folder.path(), "body").expect("read");
        assert_eq!(documents, ["one", "two", "zed", "bee"]);
        let hash = |folder: &Path| {
            content_hash(&list(folder, false).expect("list"), "body").expect("hash")
        };
        let before = hash(folder.path());
        assert_eq!(before, hash(folder.path()));
        write(folder.path(), "b.txt", "bee!");
        assert_ne!(before, hash(folder.path()));
    }

    #[test]
    fn unknown_files_are_errors_or_skipped_when_asked() {
        let folder = tempfile::tempdir().expect("tempdir");
        write(folder.path(), "a.txt", "text");
        let csv = write(folder.path(), "notes.csv", "skipped");
        let error = list(folder.path(), false)
            .expect_err("an error")
            .to_string();
        assert!(
            error.contains(&csv.display().to_string()) && error.contains("data.skip_unknown"),
            "{error}"
        );
        let listing = list(folder.path(), true).expect("list");
        assert_eq!(listing.files.len(), 1);
        assert_eq!(listing.skipped, [csv]);
    }

    #[test]
    fn corrupt_jsonl_line_names_file_and_line() {
        let folder = tempfile::tempdir().expect("tempdir");
        let path = write(
            folder.path(),
            "data.jsonl",
            "{\"text\": \"fine\"}\n{\"text\": oops}\n",
        );
        let error = documents(&path, "text").expect_err("an error").to_string();
        assert!(error.contains("data.jsonl:2:"), "{error}");
    }

    #[test]
    fn records_without_the_field_are_counted_not_fatal() {
        let folder = tempfile::tempdir().expect("tempdir");
        let path = write(
            folder.path(),
            "data.jsonl",
            "{\"text\": \"fine\"}\n\n{\"body\": \"x\"}\n{\"text\": 3}\n",
        );
        let (documents, missing) = documents(&path, "text").expect("read");
        assert_eq!(documents, ["fine"]);
        assert_eq!(missing.records, 2);
        let first = missing.first.expect("where");
        assert!(first.ends_with("data.jsonl:3"), "{first}");
        let listing = list(&path, false).expect("list");
        let error = read_all(&listing, "body2", String::new())
            .expect_err("nothing to read")
            .to_string();
        assert!(
            error.contains("3 records had no string field `body2`")
                && error.contains("data.jsonl:1"),
            "{error}"
        );
    }

    #[test]
    fn missing_builtin_says_how_to_fetch_it() {
        let cache = tempfile::tempdir().expect("tempdir");
        let error = resolve("sotu", cache.path(), Path::new("."))
            .expect_err("an error")
            .to_string();
        assert!(error.contains("just corpus sotu"), "{error}");
        let error = resolve("no/such/file.txt", cache.path(), Path::new("/base"))
            .expect_err("an error")
            .to_string();
        assert!(error.contains("/base/no/such/file.txt"), "{error}");
    }
}
