//! A frame as a CSV and as a Parquet file, written without Polars' `csv` and
//! `parquet` features: each of them turns on Polars' streaming engine, which builds
//! an object-store client with an HTTP and TLS stack (tokio, hyper, reqwest, rustls,
//! ring) that a local analysis never uses (BENCHMARKS.md, "Build"). CSV is written
//! byte for byte as Polars' `CsvWriter` wrote it (shortest round-trip floats, quotes
//! only where needed); Parquet goes through arrow-rs, which the corpus reader already
//! builds.

use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType as ArrowType, Field, Schema};
use polars::prelude::{Column, DataFrame, DataType};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One column's values in the few types the tidy tables use.
enum Values<'a> {
    Text(Vec<Option<&'a str>>),
    U64(Vec<Option<u64>>),
    U32(Vec<Option<u32>>),
    I64(Vec<Option<i64>>),
    I32(Vec<Option<i32>>),
    F64(Vec<Option<f64>>),
    F32(Vec<Option<f32>>),
    Bool(Vec<Option<bool>>),
}

impl<'a> Values<'a> {
    fn of(column: &'a Column) -> Result<Self, String> {
        let series = column.as_materialized_series();
        let wrong = |error: polars::error::PolarsError| error.to_string();
        Ok(match column.dtype() {
            DataType::String => Values::Text(series.str().map_err(wrong)?.iter().collect()),
            DataType::UInt64 => Values::U64(series.u64().map_err(wrong)?.iter().collect()),
            DataType::UInt32 => Values::U32(series.u32().map_err(wrong)?.iter().collect()),
            DataType::Int64 => Values::I64(series.i64().map_err(wrong)?.iter().collect()),
            DataType::Int32 => Values::I32(series.i32().map_err(wrong)?.iter().collect()),
            DataType::Float64 => Values::F64(series.f64().map_err(wrong)?.iter().collect()),
            DataType::Float32 => Values::F32(series.f32().map_err(wrong)?.iter().collect()),
            DataType::Boolean => Values::Bool(series.bool().map_err(wrong)?.iter().collect()),
            other => {
                return Err(format!(
                    "column `{}` has type {other}, which the table writer does not write (a bug: add it to report/table_files.rs)",
                    column.name()
                ));
            }
        })
    }

    /// Append value `row` as CSV text (nothing for a missing value).
    fn write_csv(&self, row: usize, out: &mut Vec<u8>) {
        fn shortest<T: zmij::Float>(value: Option<T>, out: &mut Vec<u8>) {
            if let Some(value) = value {
                out.extend_from_slice(zmij::Buffer::new().format(value).as_bytes());
            }
        }
        fn decimal<T: itoa::Integer>(value: Option<T>, out: &mut Vec<u8>) {
            if let Some(value) = value {
                out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
            }
        }
        match self {
            Values::Text(values) => {
                if let Some(text) = values[row] {
                    csv_text(text, out);
                }
            }
            Values::U64(values) => decimal(values[row], out),
            Values::U32(values) => decimal(values[row], out),
            Values::I64(values) => decimal(values[row], out),
            Values::I32(values) => decimal(values[row], out),
            Values::F64(values) => shortest(values[row], out),
            Values::F32(values) => shortest(values[row], out),
            Values::Bool(values) => {
                if let Some(flag) = values[row] {
                    out.extend_from_slice(if flag { b"true" } else { b"false" });
                }
            }
        }
    }

    fn arrow(&self) -> (ArrowType, ArrayRef) {
        match self {
            Values::Text(v) => (ArrowType::Utf8, Arc::new(StringArray::from(v.clone()))),
            Values::U64(v) => (ArrowType::UInt64, Arc::new(UInt64Array::from(v.clone()))),
            Values::U32(v) => (ArrowType::UInt32, Arc::new(UInt32Array::from(v.clone()))),
            Values::I64(v) => (ArrowType::Int64, Arc::new(Int64Array::from(v.clone()))),
            Values::I32(v) => (ArrowType::Int32, Arc::new(Int32Array::from(v.clone()))),
            Values::F64(v) => (ArrowType::Float64, Arc::new(Float64Array::from(v.clone()))),
            Values::F32(v) => (ArrowType::Float32, Arc::new(Float32Array::from(v.clone()))),
            Values::Bool(v) => (ArrowType::Boolean, Arc::new(BooleanArray::from(v.clone()))),
        }
    }
}

/// A text field as Polars' CSV writer wrote it: quoted (quotes doubled) only when it
/// holds a comma or a line break; an empty text is `""` so that it differs from a
/// missing one.
fn csv_text(text: &str, out: &mut Vec<u8>) {
    if text.is_empty() {
        out.extend_from_slice(b"\"\"");
    } else if text.contains([',', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

fn columns(frame: &DataFrame) -> Result<Vec<(String, Values<'_>)>, String> {
    frame
        .columns()
        .iter()
        .map(|column| Ok((column.name().to_string(), Values::of(column)?)))
        .collect()
}

/// Write `frame` as `csv` and `parquet`, each through a temporary file in the same
/// folder renamed into place, so a reader never sees half a table.
pub fn write(
    frame: &DataFrame,
    csv_path: &Path,
    parquet_path: &Path,
) -> Result<(), (PathBuf, String)> {
    let columns = columns(frame).map_err(|message| (csv_path.to_owned(), message))?;
    // Both at once: at 1,000 runs about 1.1 s instead of 1.2-1.45 s one after the
    // other, for about 100 MiB more (BENCHMARKS.md, "Build").
    let (csv, parquet) = rayon::join(
        || atomically(csv_path, |out| write_csv(&columns, frame.height(), out)),
        || atomically(parquet_path, |out| write_parquet(&columns, out)),
    );
    csv.and(parquet)
}

/// Write one file through a temporary file renamed into place; an error names it.
fn atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&mut std::fs::File>) -> Result<(), String>,
) -> Result<(), (PathBuf, String)> {
    let attempt = || -> Result<(), String> {
        let folder = path.parent().unwrap_or(Path::new("."));
        let mut file = tempfile::NamedTempFile::new_in(folder).map_err(|e| e.to_string())?;
        {
            let mut out = BufWriter::with_capacity(1 << 20, file.as_file_mut());
            write(&mut out)?;
            out.flush().map_err(|e| e.to_string())?;
        }
        file.persist(path).map_err(|e| e.to_string())?;
        Ok(())
    };
    attempt().map_err(|message| (path.to_owned(), message))
}

/// The columns as CSV text: a header row, then one line per row.
fn write_csv(
    columns: &[(String, Values)],
    height: usize,
    out: &mut impl Write,
) -> Result<(), String> {
    let mut line = Vec::new();
    for (i, (name, _)) in columns.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        csv_text(name, &mut line);
    }
    line.push(b'\n');
    out.write_all(&line).map_err(|e| e.to_string())?;
    for row in 0..height {
        line.clear();
        for (i, (_, values)) in columns.iter().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            values.write_csv(row, &mut line);
        }
        line.push(b'\n');
        out.write_all(&line).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The columns as a Parquet file (zstd-compressed, one row group), every column
/// nullable.
fn write_parquet(
    columns: &[(String, Values)],
    out: &mut (impl Write + Send),
) -> Result<(), String> {
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns
        .iter()
        .map(|(name, values)| {
            let (kind, array) = values.arrow();
            (Field::new(name, kind, true), array)
        })
        .unzip();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| e.to_string())?;
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let mut writer = parquet::arrow::ArrowWriter::try_new(out, schema, Some(properties))
        .map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn frame() -> DataFrame {
        DataFrame::new(
            4,
            vec![
                Column::new("id".into(), ["a", "b,c", "", "say \"hi\"\nthere"]),
                Column::new("seed".into(), [0u64, 1, 2, u64::MAX]),
                Column::new("count".into(), [1u32, 2, 3, 4]),
                Column::new(
                    "loss".into(),
                    [Some(0.1f64), None, Some(1e-7), Some(1234.5)],
                ),
                Column::new("done".into(), [true, false, true, false]),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The frame written into a temporary folder: (CSV text, Parquet path, folder).
    fn written() -> (String, std::path::PathBuf, tempfile::TempDir) {
        let folder = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (csv, parquet) = (folder.path().join("t.csv"), folder.path().join("t.parquet"));
        write(&frame(), &csv, &parquet).unwrap_or_else(|e| panic!("{e:?}"));
        let text = std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("{e}"));
        (text, parquet, folder)
    }

    #[test]
    fn csv_quotes_only_where_needed_and_writes_shortest_floats() {
        let (text, _, _folder) = written();
        assert_eq!(
            text,
            "id,seed,count,loss,done\n\
             a,0,1,0.1,true\n\
             \"b,c\",1,2,,false\n\
             \"\",2,3,1e-7,true\n\
             \"say \"\"hi\"\"\nthere\",18446744073709551615,4,1234.5,false\n"
        );
    }

    #[test]
    fn parquet_reads_back_the_same_values() {
        let (_, parquet, _folder) = written();
        let file = std::fs::File::open(parquet).unwrap_or_else(|e| panic!("{e}"));
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .unwrap_or_else(|e| panic!("{e}"));
        let batches: Vec<RecordBatch> = reader
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        let names: Vec<&str> = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["id", "seed", "count", "loss", "done"]);
        let text = |i: usize| {
            batch
                .column(i)
                .as_any()
                .downcast_ref::<StringArray>()
                .map(|a| a.iter().map(|v| v.map(str::to_owned)).collect::<Vec<_>>())
        };
        assert_eq!(
            text(0),
            Some(vec![
                Some("a".to_owned()),
                Some("b,c".to_owned()),
                Some(String::new()),
                Some("say \"hi\"\nthere".to_owned())
            ])
        );
        let seeds = batch.column(1).as_any().downcast_ref::<UInt64Array>();
        assert_eq!(
            seeds.map(|a| a.values().to_vec()),
            Some(vec![0, 1, 2, u64::MAX])
        );
        let losses = batch.column(3).as_any().downcast_ref::<Float64Array>();
        assert_eq!(
            losses.map(|a| a.iter().collect::<Vec<_>>()),
            Some(vec![Some(0.1), None, Some(1e-7), Some(1234.5)])
        );
        let done = batch.column(4).as_any().downcast_ref::<BooleanArray>();
        assert_eq!(
            done.map(|a| a.iter().collect::<Vec<_>>()),
            Some(vec![Some(true), Some(false), Some(true), Some(false)])
        );
    }
}
