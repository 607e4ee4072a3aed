//! Reading a corpus: a built-in name, a text or jsonl file, or a folder of them, into
//! documents in a deterministic order, with a content hash that keys every cache.

use crate::error::{CorpusError, io_error};
use std::fs;
use std::path::{Path, PathBuf};

/// Built-in corpora, fetched into `<cache_root>/corpora/<name>/` by
/// `scripts/fetch-corpus.sh` (`just corpus NAME`).
pub const BUILTIN_CORPORA: [&str; 4] = ["sotu", "moby", "wiki", "demo"];

/// Files in a corpus folder that describe it rather than belong to it.
const METADATA_FILES: [&str; 2] = ["SOURCE.txt", "LICENSE.txt"];

/// The documents of a corpus in reading order.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// Where the corpus was read from (a file or a folder).
    pub source: PathBuf,
    pub documents: Vec<String>,
    /// blake3 (hex) over every file's relative path and bytes, plus the text field.
    pub hash: String,
}

enum Format {
    Text,
    Jsonl,
}

fn format_of(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()? {
        "txt" | "text" | "md" => Some(Format::Text),
        "jsonl" => Some(Format::Jsonl),
        _ => None,
    }
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
    if path.exists() {
        Ok(path)
    } else {
        Err(CorpusError::NotFound {
            corpus: corpus.into(),
            path,
            hint,
        })
    }
}

/// Read every document of `source` (a file or a folder, recursively, sorted by path).
/// A text file is one document; each non-blank jsonl line is one, its `text_field`.
/// Empty documents are dropped.
pub fn read(source: &Path, text_field: &str) -> Result<Corpus, CorpusError> {
    let mut files = Vec::new();
    if source.is_dir() {
        collect_files(source, source, &mut files)?;
        files.sort();
    } else {
        let name = source
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        files.push((name.unwrap_or_default(), source.to_path_buf()));
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"corpus-v1\0");
    let mut documents = Vec::new();
    for (relative, path) in &files {
        let Some(format) = format_of(path) else {
            continue;
        };
        let bytes = fs::read(path).map_err(io_error(path))?;
        hash_field(&mut hasher, relative.as_bytes());
        hash_field(&mut hasher, &bytes);
        let text = String::from_utf8(bytes).map_err(|error| CorpusError::NotUtf8 {
            path: path.clone(),
            valid_up_to: error.utf8_error().valid_up_to(),
        })?;
        match format {
            Format::Text => documents.push(text),
            Format::Jsonl => read_jsonl(path, &text, text_field, &mut documents)?,
        }
    }
    documents.retain(|document| !document.is_empty());
    if documents.is_empty() {
        return Err(CorpusError::Empty {
            path: source.to_path_buf(),
        });
    }
    hash_field(&mut hasher, text_field.as_bytes());
    Ok(Corpus {
        source: source.to_path_buf(),
        documents,
        hash: hasher.finalize().to_hex().to_string(),
    })
}

/// Length-prefixed, so that no two different file lists hash alike.
fn hash_field(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// Files under `folder` as (path relative to `root` with `/` separators, path); hidden
/// entries (the fetch script's stamps and staging folders) and metadata files skipped.
fn collect_files(
    root: &Path,
    folder: &Path,
    files: &mut Vec<(String, PathBuf)>,
) -> Result<(), CorpusError> {
    for entry in fs::read_dir(folder).map_err(io_error(folder))? {
        let path = entry.map_err(io_error(folder))?.path();
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') || METADATA_FILES.contains(&name.as_str()) {
            continue;
        }
        if path.is_dir() {
            collect_files(root, &path, files)?;
        } else if format_of(&path).is_some() {
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

fn read_jsonl(
    path: &Path,
    text: &str,
    field: &str,
    documents: &mut Vec<String>,
) -> Result<(), CorpusError> {
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line_number = index + 1;
        let record: serde_json::Value =
            serde_json::from_str(line).map_err(|error| CorpusError::JsonLine {
                path: path.to_path_buf(),
                line: line_number,
                message: error.to_string(),
            })?;
        match record.get(field).and_then(|value| value.as_str()) {
            Some(document) => documents.push(document.to_owned()),
            None => {
                return Err(CorpusError::MissingField {
                    path: path.to_path_buf(),
                    line: line_number,
                    field: field.to_owned(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(folder: &Path, relative: &str, text: &str) -> PathBuf {
        let path = folder.join(relative);
        fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs::write(&path, text).expect("write");
        path
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
        write(folder.path(), "notes.csv", "skipped");
        write(folder.path(), "empty.txt", "");
        let corpus = read(folder.path(), "body").expect("read");
        assert_eq!(corpus.documents, ["one", "two", "zed", "bee"]);
        assert_eq!(corpus.hash, read(folder.path(), "body").expect("read").hash);
        write(folder.path(), "b.txt", "bee!");
        assert_ne!(corpus.hash, read(folder.path(), "body").expect("read").hash);
    }

    #[test]
    fn corrupt_jsonl_line_names_file_and_line() {
        let folder = tempfile::tempdir().expect("tempdir");
        let path = write(
            folder.path(),
            "data.jsonl",
            "{\"text\": \"fine\"}\n{\"text\": oops}\n",
        );
        let error = read(&path, "text").expect_err("an error").to_string();
        assert!(error.contains("data.jsonl:2:"), "{error}");
    }

    #[test]
    fn missing_field_names_the_field() {
        let folder = tempfile::tempdir().expect("tempdir");
        let path = write(
            folder.path(),
            "data.jsonl",
            "{\"text\": \"fine\"}\n\n{\"body\": \"x\"}\n",
        );
        let error = read(&path, "text").expect_err("an error").to_string();
        assert!(
            error.contains("data.jsonl:3:") && error.contains("`text`"),
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
