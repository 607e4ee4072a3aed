//! Reading records from a file: jsonl (optionally gzip-compressed), one JSON object a
//! line, or an Arrow IPC stream (Hugging Face `save_to_disk`), whose rows are turned
//! into the JSON objects the same dataset has in its jsonl form.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_ipc::reader::StreamReader;
use arrow_schema::DataType;
use serde_json::{Map, Value};

use crate::error::{BenchmarkError, FieldError, Location};

/// Calls `each` with every record of the file at `path` and its place in the file.
/// The file kind comes from its name: `.arrow`, `.gz` (gzip jsonl), else `.jsonl`.
pub(crate) fn for_each_record(
    path: &Path,
    each: impl FnMut(Location, Value) -> Result<(), BenchmarkError>,
) -> Result<(), BenchmarkError> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    let open = || File::open(path).map_err(|source| io_error(path, source));
    if name.ends_with(".arrow") {
        arrow_records(path, open()?, each)
    } else if name.ends_with(".gz") {
        jsonl_records(
            path,
            BufReader::new(flate2::read::MultiGzDecoder::new(open()?)),
            each,
        )
    } else if name.ends_with(".jsonl") || name.ends_with(".json") {
        jsonl_records(path, BufReader::new(open()?), each)
    } else {
        Err(BenchmarkError::UnsupportedFormat {
            path: path.to_owned(),
        })
    }
}

fn io_error(path: &Path, source: std::io::Error) -> BenchmarkError {
    BenchmarkError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One JSON object a line; blank lines are skipped; line numbers are 1-based.
fn jsonl_records(
    path: &Path,
    mut reader: impl BufRead,
    mut each: impl FnMut(Location, Value) -> Result<(), BenchmarkError>,
) -> Result<(), BenchmarkError> {
    let corrupt = |line, message: String| BenchmarkError::CorruptLine {
        path: path.to_owned(),
        location: Location::Line(line),
        message,
    };
    let mut text = String::new();
    for line in 1.. {
        text.clear();
        match reader.read_line(&mut text) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            // Bad UTF-8 or a damaged gzip stream: the line, not the disk, is at fault.
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::UnexpectedEof
                ) =>
            {
                return Err(corrupt(line, format!("cannot read: {error}")));
            }
            Err(error) => return Err(io_error(path, error)),
        }
        if text.trim().is_empty() {
            continue;
        }
        let record: Value =
            serde_json::from_str(&text).map_err(|error| corrupt(line, error.to_string()))?;
        if !record.is_object() {
            return Err(corrupt(line, "a JSON value of another kind".into()));
        }
        each(Location::Line(line), record)?;
    }
    Ok(())
}

/// Each row as a JSON object {column: value}; rows are 0-based across record batches.
fn arrow_records(
    path: &Path,
    file: impl Read,
    mut each: impl FnMut(Location, Value) -> Result<(), BenchmarkError>,
) -> Result<(), BenchmarkError> {
    let arrow = |error: arrow_schema::ArrowError| BenchmarkError::Arrow {
        path: path.to_owned(),
        message: error.to_string(),
    };
    let reader = StreamReader::try_new(BufReader::new(file), None).map_err(arrow)?;
    let mut row = 0;
    for batch in reader {
        let batch: RecordBatch = batch.map_err(arrow)?;
        let schema = batch.schema();
        for index in 0..batch.num_rows() {
            let mut record = Map::new();
            for (field, column) in schema.fields().iter().zip(batch.columns()) {
                let value = cell(column.as_ref(), index).map_err(|problem| {
                    FieldError::new(field.name(), problem).at(path, Location::Row(row))
                })?;
                record.insert(field.name().clone(), value);
            }
            each(Location::Row(row), Value::Object(record))?;
            row += 1;
        }
    }
    Ok(())
}

/// One Arrow value as JSON: strings, numbers, booleans, nulls, lists and structs (the
/// types `datasets` writes for these tasks; a ClassLabel is an int64).
fn cell(array: &dyn Array, row: usize) -> Result<Value, String> {
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    let wrong = || format!("cannot read Arrow type {}", array.data_type());
    let value = match array.data_type() {
        DataType::Null => Value::Null,
        DataType::Boolean => Value::Bool(array.as_boolean_opt().ok_or_else(wrong)?.value(row)),
        DataType::Int8 => number::<Int8Type>(array, row).ok_or_else(wrong)?,
        DataType::Int16 => number::<Int16Type>(array, row).ok_or_else(wrong)?,
        DataType::Int32 => number::<Int32Type>(array, row).ok_or_else(wrong)?,
        DataType::Int64 => number::<Int64Type>(array, row).ok_or_else(wrong)?,
        DataType::UInt8 => number::<UInt8Type>(array, row).ok_or_else(wrong)?,
        DataType::UInt16 => number::<UInt16Type>(array, row).ok_or_else(wrong)?,
        DataType::UInt32 => number::<UInt32Type>(array, row).ok_or_else(wrong)?,
        DataType::UInt64 => number::<UInt64Type>(array, row).ok_or_else(wrong)?,
        DataType::Float32 => f64::from(
            array
                .as_primitive_opt::<Float32Type>()
                .ok_or_else(wrong)?
                .value(row),
        )
        .into(),
        DataType::Float64 => number::<Float64Type>(array, row).ok_or_else(wrong)?,
        DataType::Utf8 => array
            .as_string_opt::<i32>()
            .ok_or_else(wrong)?
            .value(row)
            .into(),
        DataType::LargeUtf8 => array
            .as_string_opt::<i64>()
            .ok_or_else(wrong)?
            .value(row)
            .into(),
        DataType::Utf8View => array
            .as_string_view_opt()
            .ok_or_else(wrong)?
            .value(row)
            .into(),
        DataType::List(_) => list(
            array
                .as_list_opt::<i32>()
                .ok_or_else(wrong)?
                .value(row)
                .as_ref(),
        )?,
        DataType::LargeList(_) => list(
            array
                .as_list_opt::<i64>()
                .ok_or_else(wrong)?
                .value(row)
                .as_ref(),
        )?,
        DataType::FixedSizeList(..) => list(
            array
                .as_fixed_size_list_opt()
                .ok_or_else(wrong)?
                .value(row)
                .as_ref(),
        )?,
        DataType::Struct(_) => {
            let structure = array.as_struct_opt().ok_or_else(wrong)?;
            let mut object = Map::new();
            for (field, column) in structure.fields().iter().zip(structure.columns()) {
                object.insert(field.name().clone(), cell(column.as_ref(), row)?);
            }
            Value::Object(object)
        }
        _ => return Err(wrong()),
    };
    Ok(value)
}

/// A primitive Arrow value as a JSON number (None when `array` is not of type `T`).
fn number<T: ArrowPrimitiveType>(array: &dyn Array, row: usize) -> Option<Value>
where
    Value: From<T::Native>,
{
    array
        .as_primitive_opt::<T>()
        .map(|values| Value::from(values.value(row)))
}

fn list(values: &dyn Array) -> Result<Value, String> {
    (0..values.len())
        .map(|index| cell(values, index))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}
