//! The versioned dataset store.
//!
//! A dataset is a directory (or object-store prefix) of Hive-partitioned Parquet files per
//! table plus numbered manifests (see [`crate::manifest`]). A commit:
//!
//! 1. validates each appended batch against its table's schema and drops rows whose key
//!    (e.g. `frames.content_hash`) is already in the dataset or earlier in the commit;
//! 2. streams the rest into new data files under unique names, each written to a temporary
//!    name and moved into place when complete;
//! 3. publishes manifest `v(n+1)` with put-if-absent, the single atomic commit point.
//!
//! Readers only follow manifests, so a writer killed at any point leaves the dataset at its
//! last committed version: half-written files are temporary files, finished but unpublished
//! files are listed by no manifest. Two writers racing for the same version cannot both win.
//!
//! Layout choices, for fast scans:
//! - rows are sorted by [`Table::sort_columns`] (scene, frame) within each row group, and
//!   ingestion appends scene by scene, so min/max statistics on `scene_id` and `frame_idx`
//!   let a query for one scene skip every other row group;
//! - row groups are cut at ~64 MiB of buffered data (a few hundred frames with images,
//!   ~100k rows of metadata), large enough for efficient sequential reads, small enough to
//!   bound writer memory and give pruning something to prune;
//! - page-level statistics and the page index on scalar columns, a bloom filter on key
//!   columns (fast "is this frame already here?" probes);
//! - blob columns (`image`, `depth`) are already compressed (JPEG, PNG): no dictionary, no
//!   statistics, no second compression; other columns use zstd.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{
    SortColumn, concat_batches, filter_record_batch, lexsort_to_indices, take_record_batch,
};
use arrow::row::{RowConverter, SortField};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::{ChunkReader, Length};
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use spatialsv_schemas::{CHANGED_SINCE, SCHEMA_VERSION, Table};

use crate::error::{Error, Result};
use crate::manifest::{
    AddedStats, DataFile, MANIFEST_DIR, MANIFEST_FORMAT, Manifest, manifest_path,
    parse_manifest_name,
};
use crate::storage::{LocalStorage, ObjectWriter, Storage};

/// Version of spatialsv recorded in manifests and provenance.
pub const CODE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Environment variable naming a point at which a committing process aborts itself, for
/// crash tests: `mid-data-file` or `before-manifest`. Honoured only by builds with the
/// `failpoints` feature (test builds); release binaries ignore it.
pub const CRASH_ENV: &str = "SPATIALSV_CRASH_AT";

/// Aborts the process when `SPATIALSV_CRASH_AT` names this point (crash tests; compiled in
/// only with the `failpoints` feature).
#[cfg(feature = "failpoints")]
pub fn crash_point(name: &str) {
    if std::env::var(CRASH_ENV).is_ok_and(|v| v == name) {
        eprintln!("spatialsv: {CRASH_ENV}={name}: aborting on purpose");
        std::process::abort();
    }
}

/// Without the `failpoints` feature a crash point is nothing at all.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn crash_point(_name: &str) {}

/// How many times [`Dataset::commit_retrying`] tries to publish before giving up.
pub const COMMIT_TRIES: u64 = 50;

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

/// A versioned dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    storage: Arc<dyn Storage>,
}

impl Dataset {
    /// Creates a new, empty dataset at `path` (version 0). Fails if one is already there.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let ds = Self::with_storage(Arc::new(LocalStorage::new(path.as_ref())?));
        if !ds.versions()?.is_empty() {
            return Err(Error::User(format!(
                "a dataset already exists at {}",
                ds.storage.display_root()
            )));
        }
        ds.publish_empty()?;
        Ok(ds)
    }

    /// Opens an existing dataset at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let ds = Self::with_storage(Arc::new(LocalStorage::new(path)?));
        if ds.versions()?.is_empty() {
            let why = if path.exists() {
                "it has no manifests (_spatialsv/manifests)"
            } else {
                "the directory does not exist"
            };
            return Err(Error::User(format!(
                "no spatialsv dataset at {} ({why})",
                path.display()
            )));
        }
        Ok(ds)
    }

    /// Opens the dataset at `path`, creating an empty one if there is none.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self> {
        let ds = Self::with_storage(Arc::new(LocalStorage::new(path.as_ref())?));
        if ds.versions()?.is_empty() {
            ds.publish_empty()?;
        }
        Ok(ds)
    }

    /// A dataset over any [`Storage`] (for object stores).
    pub fn with_storage(storage: Arc<dyn Storage>) -> Self {
        Self { storage }
    }

    /// The storage the dataset lives in.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Where the dataset is, for messages.
    pub fn location(&self) -> String {
        self.storage.display_root()
    }

    fn publish_empty(&self) -> Result<()> {
        let m = Manifest {
            format: MANIFEST_FORMAT.into(),
            version: 0,
            parent: None,
            created_at: now_rfc3339(),
            operation: "create".into(),
            code_version: CODE_VERSION.into(),
            schema_version: SCHEMA_VERSION.into(),
            tables: BTreeMap::new(),
            added: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec_pretty(&m).map_err(|e| Error::Internal(e.to_string()))?;
        // Losing this race is fine: someone else created the same empty dataset.
        self.storage.put_if_absent(&manifest_path(0), &bytes)?;
        Ok(())
    }

    /// Every committed version, ascending.
    pub fn versions(&self) -> Result<Vec<u64>> {
        let mut v: Vec<u64> = self
            .storage
            .list(MANIFEST_DIR)?
            .iter()
            .filter_map(|n| parse_manifest_name(n))
            .collect();
        v.sort_unstable();
        Ok(v)
    }

    /// The newest committed version.
    pub fn latest_version(&self) -> Result<u64> {
        self.versions()?
            .last()
            .copied()
            .ok_or_else(|| Error::User(format!("no spatialsv dataset at {}", self.location())))
    }

    /// The manifest of `version`, checked to be readable by this build: written at
    /// [`SCHEMA_VERSION`], or at an older version that is compatible for the tables it has
    /// (otherwise a user error that says to run `spatialsv migrate`).
    pub fn manifest(&self, version: u64) -> Result<Manifest> {
        let m = self.manifest_unchecked(version)?;
        self.check_schema_version(&m)?;
        Ok(m)
    }

    /// Whether this build can read `m` without a migration.
    fn check_schema_version(&self, m: &Manifest) -> Result<()> {
        if m.schema_version == SCHEMA_VERSION {
            return Ok(());
        }
        let Some((_, changed)) = CHANGED_SINCE
            .iter()
            .find(|(old, _)| *old == m.schema_version)
        else {
            return Err(Error::User(format!(
                "dataset {} version {} has table schema version {}, which this spatialsv \
                 ({CODE_VERSION}, schema {SCHEMA_VERSION}) cannot read; use the spatialsv \
                 that wrote it",
                self.location(),
                m.version,
                m.schema_version
            )));
        };
        let stale: Vec<&str> = changed
            .iter()
            .filter(|t| m.tables.contains_key(t.name()))
            .map(|t| t.name())
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        Err(Error::User(format!(
            "dataset {} version {} has {} in table schema version {} (this spatialsv reads \
             version {SCHEMA_VERSION}): run `spatialsv migrate --dataset {}` to upgrade it",
            self.location(),
            m.version,
            stale.join(", "),
            m.schema_version,
            self.location()
        )))
    }

    /// The manifest of `version` as stored, without the schema-version check (for `log` and
    /// `migrate`).
    pub fn manifest_unchecked(&self, version: u64) -> Result<Manifest> {
        let path = manifest_path(version);
        let bytes = self.storage.get(&path)?.ok_or_else(|| {
            Error::User(format!(
                "dataset {} has no version {version} (latest is {})",
                self.location(),
                self.latest_version()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|_| "none".into())
            ))
        })?;
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            Error::corrupt(
                format!("{}/{path}", self.location()),
                format!("manifest does not parse ({e})"),
            )
        })?;
        if m.format != MANIFEST_FORMAT || m.version != version {
            return Err(Error::corrupt(
                format!("{}/{path}", self.location()),
                format!("manifest says format {} version {}", m.format, m.version),
            ));
        }
        Ok(m)
    }

    /// The manifest of the newest version.
    pub fn latest(&self) -> Result<Manifest> {
        self.manifest(self.latest_version()?)
    }

    /// Every manifest, oldest first, as stored (older schema versions included).
    pub fn history(&self) -> Result<Vec<Manifest>> {
        self.versions()?
            .into_iter()
            .map(|v| self.manifest_unchecked(v))
            .collect()
    }

    /// Starts a commit on top of the newest version.
    pub fn begin(&self, operation: impl Into<String>) -> Result<Transaction<'_>> {
        self.begin_with(operation, WriteOptions::default())
    }

    /// Starts a commit with explicit file-layout options.
    pub fn begin_with(
        &self,
        operation: impl Into<String>,
        options: WriteOptions,
    ) -> Result<Transaction<'_>> {
        Ok(Transaction {
            ds: self,
            base: self.latest()?,
            operation: operation.into(),
            options,
            open: BTreeMap::new(),
            finished: Vec::new(),
            keys: HashMap::new(),
            added: BTreeMap::new(),
        })
    }

    /// Stages rows with `stage` in a fresh transaction and commits them. When another writer
    /// publishes the version first ([`Error::Conflict`]), stages again on top of the new
    /// version and retries, with a growing pause, up to [`COMMIT_TRIES`] times: safe because
    /// rows are keyed, so a retry adds only what the winner did not. `stage` must be
    /// repeatable (it is called once per try).
    pub fn commit_retrying<T>(
        &self,
        operation: &str,
        options: &WriteOptions,
        mut stage: impl FnMut(&mut Transaction<'_>) -> Result<T>,
    ) -> Result<(T, CommitOutcome)> {
        let _span = tracing::info_span!("commit", operation).entered();
        let mut tries = 0u64;
        loop {
            let mut tx = self.begin_with(operation, options.clone())?;
            let staged = stage(&mut tx)?;
            match tx.commit() {
                Ok(outcome) => {
                    tracing::info!(
                        version = outcome.version,
                        published = outcome.published,
                        "committed"
                    );
                    return Ok((staged, outcome));
                }
                Err(Error::Conflict { version }) if tries + 1 < COMMIT_TRIES => {
                    tries += 1;
                    tracing::info!(version, tries, "lost a commit race; staging again");
                    std::thread::sleep(std::time::Duration::from_millis(20 * tries));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts a commit on `base` (which may be at an older schema version) that replaces
    /// every file of `replaced` with what it appends: the schema migration.
    pub(crate) fn begin_replacing(
        &self,
        operation: impl Into<String>,
        mut base: Manifest,
        replaced: &[Table],
    ) -> Transaction<'_> {
        for t in replaced {
            base.tables.remove(t.name());
        }
        Transaction {
            ds: self,
            base,
            operation: operation.into(),
            options: WriteOptions::default(),
            open: BTreeMap::new(),
            finished: Vec::new(),
            keys: HashMap::new(),
            added: BTreeMap::new(),
        }
    }

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

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A 128-bit identity per row from the row's key columns.
fn row_keys(batch: &RecordBatch, table: Table) -> Result<Vec<u128>> {
    let cols: Vec<ArrayRef> = table
        .key_columns()
        .iter()
        .map(|c| {
            batch
                .column_by_name(c)
                .cloned()
                .ok_or_else(|| Error::Internal(format!("{table} batch lacks key column {c}")))
        })
        .collect::<Result<_>>()?;
    let fields = cols
        .iter()
        .map(|c| SortField::new(c.data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let rows = converter.convert_columns(&cols)?;
    Ok(rows
        .iter()
        .map(|r| {
            let h = blake3::hash(r.as_ref());
            let mut b = [0u8; 16];
            b.copy_from_slice(&h.as_bytes()[..16]);
            u128::from_le_bytes(b)
        })
        .collect())
}

/// Escapes a partition value into a safe path segment (Hive style, `%XX`).
fn escape_segment(v: &str) -> String {
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

fn partition_value(batch: &RecordBatch, col: &str, row: usize) -> String {
    match batch.column_by_name(col) {
        Some(c) if !c.is_null(row) => c.as_string::<i32>().value(row).to_string(),
        _ => "__NULL__".to_string(),
    }
}

/// An open data file of one (table, partition).
struct PartWriter {
    path: String,
    partition: BTreeMap<String, String>,
    writer: ArrowWriter<Box<dyn ObjectWriter>>,
    buffer: Vec<RecordBatch>,
    buffered_bytes: usize,
    buffered_rows: usize,
    rows: u64,
}

impl PartWriter {
    /// Sorts the buffered rows and writes them as one row group.
    fn flush_row_group(&mut self, table: Table) -> Result<()> {
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
fn is_sorted(batches: &[RecordBatch], table: Table) -> Result<bool> {
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

fn writer_properties(table: Table, options: &WriteOptions) -> Result<WriterProperties> {
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

/// What a commit did.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitOutcome {
    /// The dataset's version after the commit.
    pub version: u64,
    /// Whether a new version was published (false when nothing new was offered).
    pub published: bool,
    /// What was added, by table.
    pub added: BTreeMap<String, AddedStats>,
}

/// One commit in progress. Nothing it writes is visible until [`Transaction::commit`]
/// returns; dropping it removes what it wrote.
pub struct Transaction<'a> {
    ds: &'a Dataset,
    base: Manifest,
    operation: String,
    options: WriteOptions,
    open: BTreeMap<(Table, Vec<String>), PartWriter>,
    finished: Vec<(Table, DataFile)>,
    keys: HashMap<Table, HashSet<u128>>,
    added: BTreeMap<Table, AddedStats>,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("dataset", &self.ds.location())
            .field("base_version", &self.base.version)
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}

impl Transaction<'_> {
    /// The version this commit builds on.
    pub fn base(&self) -> &Manifest {
        &self.base
    }

    /// The version this commit will publish.
    pub fn target_version(&self) -> u64 {
        self.base.version + 1
    }

    /// Whether a row with this key is already in the base version or this commit. Lets an
    /// ingester skip decoding a frame it has already stored.
    pub fn contains_key(&mut self, table: Table, batch: &RecordBatch) -> Result<Vec<bool>> {
        self.load_keys(table)?;
        let keys = row_keys(batch, table)?;
        let set = &self.keys[&table];
        Ok(keys.iter().map(|k| set.contains(k)).collect())
    }

    fn load_keys(&mut self, table: Table) -> Result<()> {
        if self.keys.contains_key(&table) {
            return Ok(());
        }
        let cols = table.key_columns();
        let batches = self.ds.read_table(&self.base, table, Some(cols))?;
        let mut set = HashSet::new();
        for b in &batches {
            set.extend(row_keys(b, table)?);
        }
        self.keys.insert(table, set);
        Ok(())
    }

    /// Validates `batch` against `table`'s schema and stages its new rows (rows whose key is
    /// already present are skipped). Returns the number of rows staged.
    pub fn append(&mut self, table: Table, batch: RecordBatch) -> Result<usize> {
        table.validate(&batch)?;
        let batch = batch.with_schema(table.schema())?;
        self.load_keys(table)?;
        let keys = row_keys(&batch, table)?;
        let set = self.keys.entry(table).or_default();
        let keep: BooleanArray = keys.iter().map(|k| Some(set.insert(*k))).collect();
        let kept = keep.true_count();
        let stats = self.added.entry(table).or_default();
        stats.duplicates += (batch.num_rows() - kept) as u64;
        if kept == 0 {
            return Ok(0);
        }
        let batch = if kept == batch.num_rows() {
            batch
        } else {
            filter_record_batch(&batch, &keep)?
        };
        self.stage(table, batch)?;
        Ok(kept)
    }

    /// Splits a batch by partition values and buffers each part in its file.
    fn stage(&mut self, table: Table, batch: RecordBatch) -> Result<()> {
        let pcols = table.partition_columns();
        let values: Vec<Vec<String>> = (0..batch.num_rows())
            .map(|r| {
                pcols
                    .iter()
                    .map(|c| partition_value(&batch, c, r))
                    .collect()
            })
            .collect();
        let distinct: Vec<Vec<String>> = {
            let mut d: Vec<Vec<String>> = values.clone();
            d.sort();
            d.dedup();
            d
        };
        for part in distinct {
            let sub = if values.iter().all(|v| *v == part) {
                batch.clone()
            } else {
                let mask: BooleanArray = values.iter().map(|v| Some(*v == part)).collect();
                filter_record_batch(&batch, &mask)?
            };
            self.stage_part(table, part, sub)?;
        }
        Ok(())
    }

    fn stage_part(&mut self, table: Table, part: Vec<String>, batch: RecordBatch) -> Result<()> {
        let key = (table, part);
        if !self.open.contains_key(&key) {
            let w = self.open_file(table, &key.1)?;
            self.open.insert(key.clone(), w);
        }
        let Some(w) = self.open.get_mut(&key) else {
            return Err(Error::Internal("open writer vanished".into()));
        };
        w.buffered_bytes += batch.get_array_memory_size();
        w.buffered_rows += batch.num_rows();
        w.buffer.push(batch);
        if w.buffered_bytes >= self.options.row_group_bytes
            || w.buffered_rows >= self.options.row_group_rows
        {
            w.flush_row_group(table)?;
            if w.writer.bytes_written() >= self.options.file_bytes
                && let Some(w) = self.open.remove(&key)
            {
                let f = self.close_file(table, w)?;
                self.finished.push((table, f));
            }
        }
        Ok(())
    }

    fn open_file(&self, table: Table, part: &[String]) -> Result<PartWriter> {
        let mut dir = format!("data/{}", table.name());
        let mut partition = BTreeMap::new();
        for (c, v) in table.partition_columns().iter().zip(part) {
            dir.push_str(&format!("/{c}={}", escape_segment(v)));
            partition.insert(c.to_string(), v.clone());
        }
        let unique = blake3::hash(
            format!(
                "{}-{:?}-{}",
                std::process::id(),
                std::time::SystemTime::now(),
                self.finished.len() + self.open.len()
            )
            .as_bytes(),
        )
        .to_hex();
        let path = format!(
            "{dir}/part-v{:010}-{}.parquet",
            self.target_version(),
            &unique[..16]
        );
        let sink = self.ds.storage.writer(&path)?;
        let props = writer_properties(table, &self.options)?;
        let writer = ArrowWriter::try_new(sink, table.schema(), Some(props))?;
        Ok(PartWriter {
            path,
            partition,
            writer,
            buffer: Vec::new(),
            buffered_bytes: 0,
            buffered_rows: 0,
            rows: 0,
        })
    }

    fn close_file(&self, table: Table, mut w: PartWriter) -> Result<DataFile> {
        w.flush_row_group(table)?;
        let sink = w.writer.into_inner()?;
        sink.finish()?;
        let bytes = self.ds.storage.size(&w.path)?.unwrap_or(0);
        Ok(DataFile {
            path: w.path,
            rows: w.rows,
            bytes,
            added_in: self.target_version(),
            partition: w.partition,
        })
    }

    /// Finishes every data file and publishes the new version. When every offered row was
    /// already present nothing is published and the outcome says so.
    pub fn commit(mut self) -> Result<CommitOutcome> {
        let open = std::mem::take(&mut self.open);
        for ((table, _), w) in open {
            let f = self.close_file(table, w)?;
            self.finished.push((table, f));
        }
        let mut added: BTreeMap<String, AddedStats> = self
            .added
            .iter()
            .map(|(t, s)| (t.name().to_string(), *s))
            .collect();
        for (table, f) in &self.finished {
            let s = added.entry(table.name().to_string()).or_default();
            s.rows += f.rows;
            s.files += 1;
            s.bytes += f.bytes;
        }
        if self.finished.is_empty() {
            return Ok(CommitOutcome {
                version: self.base.version,
                published: false,
                added,
            });
        }
        crash_point("before-manifest");
        let mut tables = self.base.tables.clone();
        for (table, f) in &self.finished {
            tables
                .entry(table.name().to_string())
                .or_default()
                .files
                .push(f.clone());
        }
        let version = self.target_version();
        let manifest = Manifest {
            format: MANIFEST_FORMAT.into(),
            version,
            parent: Some(self.base.version),
            created_at: now_rfc3339(),
            operation: self.operation.clone(),
            code_version: CODE_VERSION.into(),
            schema_version: SCHEMA_VERSION.into(),
            tables,
            added: added.clone(),
        };
        let bytes =
            serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
        if !self
            .ds
            .storage
            .put_if_absent(&manifest_path(version), &bytes)?
        {
            return Err(Error::Conflict { version });
        }
        self.finished.clear();
        Ok(CommitOutcome {
            version,
            published: true,
            added,
        })
    }
}

impl Drop for Transaction<'_> {
    /// An abandoned or failed commit removes the files it finished; open files vanish with
    /// their temporary names.
    fn drop(&mut self) {
        for (_, f) in self.finished.drain(..) {
            let _ = self.ds.storage.delete(&f.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;
    use crate::datagen::{GenSpec, generate};
    use crate::rows::{frames_batch, scenes_batch};

    #[test]
    fn configs_store_toml_lists_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/store.toml");
        let parsed: WriteOptions = crate::load_toml(&path).unwrap();
        assert_eq!(parsed, WriteOptions::default());
    }

    #[test]
    fn segments_are_escaped() {
        assert_eq!(escape_segment("train"), "train");
        assert_eq!(escape_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(escape_segment(".."), "%2E%2E");
        assert_eq!(escape_segment(""), "%00");
    }

    fn frames(seed: u64, scenes: usize) -> RecordBatch {
        let spec = GenSpec {
            seed,
            scenes,
            ..GenSpec::default()
        };
        frames_batch(&generate(&spec).unwrap().1).unwrap()
    }

    /// Every file under `data/` of the dataset, relative paths.
    fn data_files(root: &Path) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, root, out);
                } else {
                    out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        let mut out = Vec::new();
        walk(&root.join("data"), root, &mut out);
        out.sort();
        out
    }

    fn rows(ds: &Dataset, table: Table) -> usize {
        let m = ds.latest().unwrap();
        ds.read_table(&m, table, None)
            .unwrap()
            .iter()
            .map(RecordBatch::num_rows)
            .sum()
    }

    #[test]
    fn commit_publishes_partitioned_sorted_files() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Dataset::create(dir.path().join("ds")).unwrap();
        assert_eq!(ds.latest_version().unwrap(), 0);
        let mut tx = ds.begin("test").unwrap();
        assert_eq!(tx.append(Table::Frames, frames(0, 5)).unwrap(), 20);
        let out = tx.commit().unwrap();
        assert!(out.published);
        assert_eq!(out.version, 1);
        assert_eq!(out.added["frames"].rows, 20);
        let m = ds.latest().unwrap();
        assert_eq!(m.rows("frames"), 20);
        let files = &m.tables["frames"].files;
        // Scenes 0-2 train, 3 val, 4 test: one file per split directory.
        let mut parts: Vec<_> = files.iter().map(|f| f.partition["split"].clone()).collect();
        parts.sort();
        assert_eq!(parts, ["test", "train", "val"]);
        for f in files {
            assert!(
                f.path
                    .starts_with(&format!("data/frames/split={}/", f.partition["split"])),
                "{}",
                f.path
            );
        }
        // Rows come back sorted by (scene_id, frame_idx) within each file.
        for f in files {
            let batches = ds
                .read_file(Table::Frames, &f.path, Some(&["scene_id", "frame_idx"]))
                .unwrap();
            let b = concat_batches(&batches[0].schema(), &batches).unwrap();
            let c = spatialsv_schemas::Columns::new(Table::Frames, &b).unwrap();
            let (scene, frame) = (c.strings("scene_id").unwrap(), c.i64s("frame_idx").unwrap());
            let keys: Vec<(String, i64)> = (0..b.num_rows())
                .map(|r| (scene.value(r).to_string(), frame.value(r)))
                .collect();
            let mut sorted = keys.clone();
            sorted.sort();
            assert_eq!(keys, sorted);
        }
        assert_eq!(rows(&ds, Table::Frames), 20);
    }

    #[test]
    fn rows_offered_out_of_order_are_stored_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Dataset::create(dir.path()).unwrap();
        let b = frames(0, 3);
        let reversed: Vec<u32> = (0..b.num_rows() as u32).rev().collect();
        let b = take_record_batch(&b, &arrow::array::UInt32Array::from(reversed)).unwrap();
        let mut tx = ds.begin("reversed").unwrap();
        tx.append(Table::Frames, b).unwrap();
        tx.commit().unwrap();
        let m = ds.latest().unwrap();
        let f = &m.tables["frames"].files[0];
        let batches = ds
            .read_file(Table::Frames, &f.path, Some(&["scene_id", "frame_idx"]))
            .unwrap();
        assert!(is_sorted(&batches, Table::Frames).unwrap());
        assert!(
            !is_sorted(
                &[
                    take_record_batch(&batches[0], &arrow::array::UInt32Array::from(vec![1, 0]))
                        .unwrap()
                ],
                Table::Frames
            )
            .unwrap()
        );
    }

    #[test]
    fn committing_the_same_rows_twice_adds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Dataset::create(dir.path()).unwrap();
        let mut tx = ds.begin("first").unwrap();
        tx.append(Table::Frames, frames(0, 2)).unwrap();
        tx.commit().unwrap();
        let files_before = data_files(dir.path());

        let mut tx = ds.begin("again").unwrap();
        assert_eq!(tx.append(Table::Frames, frames(0, 2)).unwrap(), 0);
        let out = tx.commit().unwrap();
        assert!(!out.published);
        assert_eq!(out.version, 1);
        assert_eq!(out.added["frames"].duplicates, 8);
        assert_eq!(data_files(dir.path()), files_before);

        // A superset adds only the new rows; duplicates inside one append are dropped too.
        let mut tx = ds.begin("superset").unwrap();
        let both = concat_batches(&frames(0, 3).schema(), &[frames(0, 3), frames(0, 3)]).unwrap();
        assert_eq!(tx.append(Table::Frames, both).unwrap(), 4);
        let out = tx.commit().unwrap();
        assert_eq!(
            (
                out.version,
                out.added["frames"].rows,
                out.added["frames"].duplicates
            ),
            (2, 4, 20)
        );
        assert_eq!(rows(&ds, Table::Frames), 12);
    }

    #[test]
    fn invalid_batches_are_refused_with_column_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Dataset::create(dir.path()).unwrap();
        let (_, mut f) = generate(&GenSpec::default()).unwrap();
        f[3].world_from_camera.as_mut().unwrap()[3] = f64::NEG_INFINITY;
        let mut tx = ds.begin("bad").unwrap();
        let err = tx
            .append(Table::Frames, frames_batch(&f).unwrap())
            .unwrap_err();
        assert!(err.is_user_error());
        assert_eq!(
            err.to_string(),
            "table frames, column world_from_camera, row 3: pose is not finite (contains -inf)"
        );
        // A scenes batch offered as frames is refused too.
        let (s, _) = generate(&GenSpec::default()).unwrap();
        assert!(tx.append(Table::Frames, scenes_batch(&s).unwrap()).is_err());
    }

    #[test]
    fn a_foreign_file_in_place_of_a_data_file_is_corrupt_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Dataset::create(dir.path()).unwrap();
        let mut tx = ds.begin("frames").unwrap();
        tx.append(Table::Frames, frames(0, 1)).unwrap();
        tx.commit().unwrap();
        let m = ds.latest().unwrap();
        let f = &m.tables["frames"].files[0];
        // Same name, same size recorded: a file of another layout (scene ids as integers).
        let foreign = RecordBatch::try_new(
            Arc::new(arrow::datatypes::Schema::new(vec![
                arrow::datatypes::Field::new("scene_id", arrow::datatypes::DataType::Int64, false),
            ])),
            vec![Arc::new(arrow::array::Int64Array::from(vec![1, 2]))],
        )
        .unwrap();
        let path = dir.path().join(&f.path);
        let mut w = ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            foreign.schema(),
            None,
        )
        .unwrap();
        w.write(&foreign).unwrap();
        w.close().unwrap();
        let mut m = m.clone();
        m.tables.get_mut("frames").unwrap().files[0].bytes =
            std::fs::metadata(&path).unwrap().len();
        let err = ds
            .read_table(&m, Table::Frames, Some(&["scene_id"]))
            .unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("not a frames file of this schema") && msg.ends_with(&f.path),
            "{msg}"
        );
    }

    #[test]
    fn a_racing_writer_loses_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Dataset::create(dir.path()).unwrap();
        let mut a = ds.begin("a").unwrap();
        let mut b = ds.begin("b").unwrap();
        a.append(Table::Frames, frames(0, 1)).unwrap();
        b.append(Table::Frames, frames(1, 1)).unwrap();
        a.commit().unwrap();
        let err = b.commit().unwrap_err();
        assert!(matches!(err, Error::Conflict { version: 1 }), "{err}");
        // The loser's files are gone; the winner's are all that is left.
        let m = ds.latest().unwrap();
        let listed: Vec<String> = m.tables["frames"]
            .files
            .iter()
            .map(|f| f.path.clone())
            .collect();
        assert_eq!(data_files(dir.path()), listed);
    }

    #[test]
    fn an_abandoned_transaction_leaves_no_files() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Dataset::create(dir.path()).unwrap();
        let opts = WriteOptions {
            row_group_rows: 2,
            ..WriteOptions::default()
        };
        let mut tx = ds.begin_with("abandoned", opts).unwrap();
        tx.append(Table::Frames, frames(0, 5)).unwrap();
        drop(tx);
        assert!(
            data_files(dir.path()).is_empty(),
            "{:?}",
            data_files(dir.path())
        );
        assert_eq!(ds.latest_version().unwrap(), 0);
    }

    #[test]
    fn missing_and_corrupt_datasets_say_what_and_where() {
        let dir = tempfile::tempdir().unwrap();
        let err = Dataset::open(dir.path().join("nope")).unwrap_err();
        assert!(err.is_user_error());
        assert!(
            err.to_string().starts_with("no spatialsv dataset at "),
            "{err}"
        );
        let ds = Dataset::create(dir.path()).unwrap();
        std::fs::write(
            dir.path().join(crate::manifest::manifest_path(1)),
            b"{ not json",
        )
        .unwrap();
        let err = ds.latest().unwrap_err().to_string();
        assert!(err.contains("manifest does not parse"), "{err}");
        assert!(err.ends_with("v0000000001.json"), "{err}");
    }

    #[cfg(feature = "failpoints")]
    /// Child process of the crash tests: commits into `SPATIALSV_CRASH_DS` with small row
    /// groups, and is killed by the crash point named in `SPATIALSV_CRASH_AT`.
    #[test]
    #[ignore = "run only as the child process of the crash tests"]
    fn crash_child() {
        let path = std::env::var("SPATIALSV_CRASH_DS").expect("SPATIALSV_CRASH_DS");
        let ds = Dataset::open(path).unwrap();
        let opts = WriteOptions {
            row_group_rows: 3,
            ..WriteOptions::default()
        };
        let mut tx = ds.begin_with("doomed", opts).unwrap();
        tx.append(Table::Frames, frames(7, 5)).unwrap();
        tx.commit().unwrap();
    }

    #[cfg(feature = "failpoints")]
    fn crash_at(point: &str) {
        let dir = tempfile::tempdir().unwrap();
        let ds = Dataset::create(dir.path()).unwrap();
        let mut tx = ds.begin("committed").unwrap();
        tx.append(Table::Frames, frames(0, 2)).unwrap();
        tx.commit().unwrap();
        let before = ds.latest().unwrap();

        let status = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::tests::crash_child",
                "--include-ignored",
                "--nocapture",
            ])
            .env(CRASH_ENV, point)
            .env("SPATIALSV_CRASH_DS", dir.path())
            .status()
            .unwrap();
        assert!(!status.success(), "the child should have died at {point}");

        // Readers still see exactly the last committed version.
        assert_eq!(ds.latest().unwrap(), before);
        assert_eq!(rows(&ds, Table::Frames), 8);
        // Re-running the commit completes it, without duplicates.
        let mut tx = ds.begin("retry").unwrap();
        tx.append(Table::Frames, frames(7, 5)).unwrap();
        let out = tx.commit().unwrap();
        assert_eq!((out.version, out.added["frames"].rows), (2, 20));
        assert_eq!(rows(&ds, Table::Frames), 28);
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn a_writer_killed_mid_data_file_leaves_the_last_version() {
        crash_at("mid-data-file");
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn a_writer_killed_before_the_manifest_leaves_the_last_version() {
        crash_at("before-manifest");
    }
}
