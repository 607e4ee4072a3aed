//! The one error type of the crate, carrying the file, line and field a user needs.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("corpus `{corpus}` not found at {path}{hint}")]
    NotFound {
        corpus: String,
        path: PathBuf,
        hint: String,
    },

    #[error(
        "corpus {path} holds no documents (text files, JSON lines, parquet or Arrow \
         records){missing}"
    )]
    Empty { path: PathBuf, missing: String },

    #[error(
        "{path}: not a corpus format this harness reads ({formats}); move it out of the \
         corpus folder, or set data.skip_unknown: true to skip such files with a warning",
        formats = crate::format::FORMATS
    )]
    UnknownFormat { path: PathBuf },

    #[error(
        "{path} is a Hugging Face DatasetDict (dataset_dict.json) with the splits {splits}: \
         reading it whole would mix them into one corpus; point data.corpus at the split to \
         train on, e.g. {path}/{first}"
    )]
    DatasetDict {
        path: PathBuf,
        splits: String,
        first: String,
    },
    #[error("{path}: changed while it was being read; run again once it is complete")]
    Changed { path: PathBuf },

    #[error("{path}: {message}")]
    Damaged { path: PathBuf, message: String },

    #[error("{path}: no column `{field}` (columns: {columns}); set data.text_field")]
    NoColumn {
        path: PathBuf,
        field: String,
        columns: String,
    },

    #[error("{path}: column `{field}` holds {found}, not text; set data.text_field")]
    ColumnType {
        path: PathBuf,
        field: String,
        found: String,
    },

    #[error("{path}: not valid UTF-8 text (byte {valid_up_to})")]
    NotUtf8 { path: PathBuf, valid_up_to: usize },

    #[error("{path}:{line}: not a JSON record: {message}")]
    JsonLine {
        path: PathBuf,
        line: usize,
        message: String,
    },

    #[error("tokenizer {tokenizer}: {message}")]
    Tokenizer { tokenizer: String, message: String },

    #[error(
        "val_tokens = {val_tokens} but the corpus has only {total_tokens} tokens in \
         {documents} documents; lower val_tokens or use a bigger corpus"
    )]
    ValidationTooLarge {
        val_tokens: u64,
        total_tokens: u64,
        documents: usize,
    },

    #[error(
        "holding out {val_tokens} tokens took all {documents} documents, leaving none to \
         train on; lower val_tokens or use a bigger corpus"
    )]
    NothingToTrain { val_tokens: u64, documents: usize },

    #[error(
        "unique_tokens = {asked} but the training stream has only {available} tokens (the \
         corpus minus {held_out} held-out tokens); lower unique_tokens or val_tokens, or use \
         a bigger corpus"
    )]
    BudgetTooLarge {
        asked: u64,
        available: u64,
        held_out: u64,
    },

    #[error(
        "{n_tokens} tokens make no training window of seq_len + 1 = {window} tokens; \
         raise unique_tokens or lower seq_len"
    )]
    TooFewTokens { n_tokens: usize, window: usize },
}

pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CorpusError {
    let path = path.into();
    move |source| CorpusError::Io { path, source }
}
