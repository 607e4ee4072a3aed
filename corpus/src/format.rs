//! Corpus file formats, known by file name.

use serde::{Deserialize, Serialize};

/// The formats this reader knows, for error messages.
pub const FORMATS: &str = ".txt/.text/.md, .jsonl/.json, .jsonl.gz/.json.gz, \
                           .jsonl.zst/.json.zst, .parquet, .arrow";

/// How a file holds its documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Text,
    Jsonl,
    JsonlGz,
    JsonlZst,
    Parquet,
    Arrow,
}

/// The format of a file, from its name.
pub fn format_of(name: &str) -> Option<Format> {
    let name = name.to_ascii_lowercase();
    let ends = |suffixes: &[&str]| suffixes.iter().any(|suffix| name.ends_with(suffix));
    if ends(&[".jsonl.gz", ".json.gz"]) {
        Some(Format::JsonlGz)
    } else if ends(&[".jsonl.zst", ".json.zst", ".jsonl.zstd"]) {
        Some(Format::JsonlZst)
    } else if ends(&[".jsonl", ".json"]) {
        Some(Format::Jsonl)
    } else if ends(&[".txt", ".text", ".md"]) {
        Some(Format::Text)
    } else if ends(&[".parquet"]) {
        Some(Format::Parquet)
    } else if ends(&[".arrow"]) {
        Some(Format::Arrow)
    } else {
        None
    }
}
