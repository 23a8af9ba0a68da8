//! The read side of the store: data files as a manifest lists them, each checked for
//! existence and size against the manifest and every batch against its table's schema, read
//! through [`Storage`] ranged GETs.

use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{ChunkReader, Length};
use rayon::prelude::*;
use spatialsv_schemas::Table;

use super::Dataset;
use crate::error::{Error, Result};
use crate::manifest::{DataFile, Manifest};
use crate::storage::Storage;

impl Dataset {
    /// Reads `columns` (all when `None`) of `table` as of `manifest`, file by file.
    pub fn read_table(
        &self,
        manifest: &Manifest,
        table: Table,
        columns: Option<&[&str]>,
    ) -> Result<Vec<RecordBatch>> {
        let Some(files) = manifest.tables.get(table.name()) else {
            return Ok(Vec::new());
        };
        let per_file: Vec<Vec<RecordBatch>> = files
            .files
            .par_iter()
            .map(|f| {
                self.check_file(f)?;
                self.read_file(table, &f.path, columns)
            })
            .collect::<Result<_>>()?;
        Ok(per_file.into_iter().flatten().collect())
    }

    /// Checks that a data file the manifest lists is there with the size the manifest
    /// recorded: a missing or truncated file is a `Corrupt` error naming it, never fewer rows.
    pub fn check_file(&self, f: &DataFile) -> Result<()> {
        let full = format!("{}/{}", self.location(), f.path);
        match self.storage.size(&f.path)? {
            None => Err(Error::corrupt(
                &full,
                format!(
                    "data file listed in the manifest is missing ({} rows lost)",
                    f.rows
                ),
            )),
            Some(n) if n != f.bytes && f.bytes != 0 => Err(Error::corrupt(
                &full,
                format!(
                    "data file is {n} bytes but the manifest recorded {} (truncated or replaced)",
                    f.bytes
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Checks every data file `manifest` lists ([`Dataset::check_file`]).
    pub fn check_files(&self, manifest: &Manifest) -> Result<()> {
        manifest
            .tables
            .values()
            .flat_map(|t| &t.files)
            .collect::<Vec<_>>()
            .par_iter()
            .try_for_each(|f| self.check_file(f))
    }

    pub(crate) fn read_file(
        &self,
        table: Table,
        path: &str,
        columns: Option<&[&str]>,
    ) -> Result<Vec<RecordBatch>> {
        self.read_row_groups(table, path, None, columns)
    }

    fn chunks(&self, path: &str) -> Result<StorageChunks> {
        let full = format!("{}/{path}", self.location());
        let len = self
            .storage
            .size(path)?
            .ok_or_else(|| Error::corrupt(&full, "data file listed in the manifest is missing"))?;
        Ok(StorageChunks {
            storage: self.storage.clone(),
            path: path.to_string(),
            len,
        })
    }

    /// Rows of each row group of a data file (from its footer only), for random access.
    pub fn row_group_rows(&self, path: &str) -> Result<Vec<usize>> {
        let full = format!("{}/{path}", self.location());
        let builder = ParquetRecordBatchReaderBuilder::try_new(self.chunks(path)?)
            .map_err(|e| Error::corrupt(&full, format!("not a readable Parquet file ({e})")))?;
        Ok(builder
            .metadata()
            .row_groups()
            .iter()
            .map(|rg| rg.num_rows() as usize)
            .collect())
    }

    /// Reads some row groups (all when `None`) and columns (all when `None`) of a data file
    /// of `table` listed in a manifest. Every batch is checked against the table's schema
    /// (names, types, nulls): a foreign or damaged file is a `Corrupt` error naming it.
    pub fn read_row_groups(
        &self,
        table: Table,
        path: &str,
        row_groups: Option<Vec<usize>>,
        columns: Option<&[&str]>,
    ) -> Result<Vec<RecordBatch>> {
        self.read_parquet(Some(table), path, row_groups, columns)
    }

    /// Every row of a data file as stored, without the schema check (for migrations, which
    /// read the layouts of older versions).
    pub(crate) fn read_file_unchecked(&self, path: &str) -> Result<Vec<RecordBatch>> {
        self.read_parquet(None, path, None, None)
    }

    fn read_parquet(
        &self,
        table: Option<Table>,
        path: &str,
        row_groups: Option<Vec<usize>>,
        columns: Option<&[&str]>,
    ) -> Result<Vec<RecordBatch>> {
        let full = format!("{}/{path}", self.location());
        let builder = ParquetRecordBatchReaderBuilder::try_new(self.chunks(path)?)
            .map_err(|e| Error::corrupt(&full, format!("not a readable Parquet file ({e})")))?;
        let builder = match row_groups {
            Some(rg) => builder.with_row_groups(rg),
            None => builder,
        };
        let builder = match columns {
            Some(cols) => {
                let schema = builder.parquet_schema();
                let mut idx = Vec::new();
                for c in cols {
                    let i = (0..schema.num_columns())
                        .find(|&i| {
                            schema.column(i).path().parts().first().map(String::as_str) == Some(*c)
                        })
                        .ok_or_else(|| {
                            Error::corrupt(&full, format!("file has no column '{c}'"))
                        })?;
                    idx.push(i);
                }
                let mask = parquet::arrow::ProjectionMask::leaves(schema, idx);
                builder.with_projection(mask)
            }
            None => builder,
        };
        let reader = builder
            .build()
            .map_err(|e| Error::corrupt(&full, format!("not a readable Parquet file ({e})")))?;
        reader
            .map(|b| {
                let b =
                    b.map_err(|e| Error::corrupt(&full, format!("unreadable row group ({e})")))?;
                if let Some(table) = table {
                    spatialsv_schemas::Columns::new(table, &b).map_err(|e| {
                        Error::corrupt(&full, format!("not a {table} file of this schema ({e})"))
                    })?;
                }
                Ok(b)
            })
            .collect()
    }
}

/// Parquet reads through [`Storage`] ranged GETs.
struct StorageChunks {
    storage: Arc<dyn Storage>,
    path: String,
    len: u64,
}

impl Length for StorageChunks {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for StorageChunks {
    type T = std::io::Cursor<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let n = self.len.saturating_sub(start) as usize;
        Ok(std::io::Cursor::new(self.get_bytes(start, n)?))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.storage
            .get_range(&self.path, start, length)
            .map(Bytes::from)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
    }
}
