//! The Parquet layout of the files a commit writes: row groups sorted by the table's sort
//! columns, zstd for metadata, blobs stored as they are, page statistics and bloom filters
//! on key columns, Hive partition directories.

use std::collections::BTreeMap;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::row::{RowConverter, SortField};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use spatialsv_schemas::Table;

use super::{CODE_VERSION, crash_point};
use crate::error::{Error, Result};
use crate::storage::ObjectWriter;

/// Tuning of the files a commit writes. Defaults are chosen for frames with images;
/// `configs/store.toml` lists them (section `[store]` of stage configs).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WriteOptions {
    /// Buffered bytes at which a row group is cut.
    pub row_group_bytes: usize,
    /// Rows at which a row group is cut regardless of size.
    pub row_group_rows: usize,
    /// Size at which a data file is closed and a new one started.
    pub file_bytes: usize,
    /// zstd level of non-blob columns.
    pub zstd_level: i32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            row_group_bytes: 64 << 20,
            row_group_rows: 128 * 1024,
            file_bytes: 1 << 30,
            zstd_level: 3,
        }
    }
}

/// Escapes a partition value into a safe path segment (Hive style, `%XX`).
pub(super) fn escape_segment(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        return "%00".into();
    }
    if out.bytes().all(|b| b == b'.') {
        out = out.replace('.', "%2E");
    }
    out
}

pub(super) fn partition_value(batch: &RecordBatch, col: &str, row: usize) -> String {
    match batch.column_by_name(col) {
        Some(c) if !c.is_null(row) => c.as_string::<i32>().value(row).to_string(),
        _ => "__NULL__".to_string(),
    }
}

/// An open data file of one (table, partition).
pub(super) struct PartWriter {
    pub(super) path: String,
    pub(super) partition: BTreeMap<String, String>,
    pub(super) writer: ArrowWriter<Box<dyn ObjectWriter>>,
    pub(super) buffer: Vec<RecordBatch>,
    pub(super) buffered_bytes: usize,
    pub(super) buffered_rows: usize,
    pub(super) rows: u64,
}

impl PartWriter {
    /// Sorts the buffered rows and writes them as one row group.
    pub(super) fn flush_row_group(&mut self, table: Table) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let buffer = std::mem::take(&mut self.buffer);
        self.buffered_bytes = 0;
        self.buffered_rows = 0;
        if is_sorted(&buffer, table)? {
            // The common case (ingestion appends scene by scene, frame by frame): write the
            // batches as they are, without copying the blobs into a sorted batch.
            for b in &buffer {
                self.rows += b.num_rows() as u64;
                self.writer.write(b)?;
            }
        } else {
            let batch = concat_batches(&buffer[0].schema(), &buffer)?;
            drop(buffer);
            let indices = lexsort_to_indices(&sort_columns(&batch, table), None)?;
            let sorted = take_record_batch(&batch, &indices)?;
            self.rows += sorted.num_rows() as u64;
            self.writer.write(&sorted)?;
        }
        self.writer.flush()?;
        crash_point("mid-data-file");
        Ok(())
    }
}

fn sort_columns(batch: &RecordBatch, table: Table) -> Vec<SortColumn> {
    table
        .sort_columns()
        .iter()
        .filter_map(|c| batch.column_by_name(c))
        .map(|values| SortColumn {
            values: values.clone(),
            options: None,
        })
        .collect()
}

/// Whether the rows of `batches`, in order, are already sorted by the table's sort columns.
pub(super) fn is_sorted(batches: &[RecordBatch], table: Table) -> Result<bool> {
    let Some(first) = batches.first() else {
        return Ok(true);
    };
    let fields = sort_columns(first, table)
        .iter()
        .map(|c| SortField::new(c.values.data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let mut last: Option<Vec<u8>> = None;
    for b in batches {
        let cols: Vec<ArrayRef> = sort_columns(b, table)
            .into_iter()
            .map(|c| c.values)
            .collect();
        let rows = converter.convert_columns(&cols)?;
        for r in rows.iter() {
            let key = r.as_ref();
            if last.as_deref().is_some_and(|l| l > key) {
                return Ok(false);
            }
            last = Some(key.to_vec());
        }
    }
    Ok(true)
}

pub(super) fn writer_properties(table: Table, options: &WriteOptions) -> Result<WriterProperties> {
    let schema = table.schema();
    let zstd = ZstdLevel::try_new(options.zstd_level)
        .map_err(|e| Error::User(format!("bad zstd level {}: {e}", options.zstd_level)))?;
    let sorting: Vec<SortingColumn> = table
        .sort_columns()
        .iter()
        .filter_map(|c| schema.index_of(c).ok())
        .map(|i| SortingColumn {
            column_idx: i as i32,
            descending: false,
            nulls_first: false,
        })
        .collect();
    let mut b = WriterProperties::builder()
        .set_created_by(format!("spatialsv {CODE_VERSION}"))
        .set_compression(Compression::ZSTD(zstd))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(options.row_group_rows.max(1)))
        .set_sorting_columns(Some(sorting));
    for c in table.blob_columns() {
        let path = ColumnPath::from(*c);
        b = b
            .set_column_compression(path.clone(), Compression::UNCOMPRESSED)
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_statistics_enabled(path, EnabledStatistics::None);
    }
    for c in table.key_columns() {
        b = b.set_column_bloom_filter_enabled(ColumnPath::from(*c), true);
    }
    Ok(b.build())
}
