//! Files written whole or not at all: a temp file in the same folder, fsynced, then
//! renamed into place, so a reader (or a resumed prepare) never sees half a file.

use crate::error::{CorpusError, io_error};
use std::fs;
use std::io::Write;
use std::path::Path;

/// Write `bytes` to `path` through a temp file in the same folder, fsync and a rename,
/// so a reader sees either nothing or the whole file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CorpusError> {
    let folder = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(folder).map_err(io_error(folder))?;
    let mut file = tempfile::NamedTempFile::new_in(folder).map_err(io_error(folder))?;
    file.write_all(bytes).map_err(io_error(file.path()))?;
    persist(file, path)
}

/// fsync a finished temp file and rename it to `path`.
pub fn persist(file: tempfile::NamedTempFile, path: &Path) -> Result<(), CorpusError> {
    file.as_file().sync_all().map_err(io_error(file.path()))?;
    file.persist(path).map_err(|error| CorpusError::Io {
        path: path.to_path_buf(),
        source: error.error,
    })?;
    Ok(())
}
