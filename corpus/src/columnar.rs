//! Columnar corpus files: parquet (FineWeb ships as parquet shards with a `text`
//! column) and Arrow IPC (what `datasets.save_to_disk` writes), read one record batch
//! at a time and only the text column, so memory stays at one batch whatever the file.

use crate::error::CorpusError;
use arrow_array::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Rows per record batch: about 2-8 MB of web text.
const BATCH_ROWS: usize = 1024;

/// The record batches of a parquet file, holding its `field` column only.
pub fn parquet_batches(
    path: &Path,
    field: &str,
    file: File,
) -> Result<impl Iterator<Item = Result<RecordBatch, CorpusError>>, CorpusError> {
    let damaged = |error: parquet::errors::ParquetError| CorpusError::Damaged {
        path: path.to_path_buf(),
        message: format!("not a readable parquet file ({error})"),
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(damaged)?;
    let names: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|column| column.name().clone())
        .collect();
    if !names.iter().any(|name| name == field) {
        return Err(CorpusError::NoColumn {
            path: path.to_path_buf(),
            field: field.into(),
            columns: names.join(", "),
        });
    }
    let mask = ProjectionMask::columns(builder.parquet_schema(), [field]);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(damaged)?;
    let path = path.to_path_buf();
    Ok(reader.map(move |batch| {
        batch.map_err(|error| CorpusError::Damaged {
            path: path.clone(),
            message: format!("a parquet row group did not decode ({error})"),
        })
    }))
}

/// The record batches of an Arrow IPC file, in the stream format `datasets` writes or
/// the random-access file format (told apart by the `ARROW1` magic).
pub fn arrow_batches(
    path: &Path,
    mut file: File,
) -> Result<Box<dyn Iterator<Item = Result<RecordBatch, CorpusError>>>, CorpusError> {
    let owned = path.to_path_buf();
    let damaged = move |error: arrow_schema::ArrowError| CorpusError::Damaged {
        path: owned.clone(),
        message: format!("not a readable Arrow IPC file ({error})"),
    };
    let mut magic = [0u8; 6];
    let is_file_format = file.read_exact(&mut magic).is_ok() && &magic == b"ARROW1";
    file.seek(SeekFrom::Start(0))
        .map_err(crate::error::io_error(path))?;
    if is_file_format {
        let reader = arrow_ipc::reader::FileReader::try_new(BufReader::new(file), None)
            .map_err(damaged.clone())?;
        Ok(Box::new(reader.map(move |batch| batch.map_err(&damaged))))
    } else {
        let reader = arrow_ipc::reader::StreamReader::try_new(BufReader::new(file), None)
            .map_err(damaged.clone())?;
        Ok(Box::new(reader.map(move |batch| batch.map_err(&damaged))))
    }
}
