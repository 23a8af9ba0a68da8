//! A commit: validated batches staged into new files, published by one manifest written
//! with put-if-absent (the single atomic commit point), retried on a lost race.

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow::array::{ArrayRef, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::row::{RowConverter, SortField};
use parquet::arrow::ArrowWriter;
use spatialsv_schemas::{SCHEMA_VERSION, Table};

use super::writer::{PartWriter, WriteOptions, escape_segment, partition_value, writer_properties};
use super::{CODE_VERSION, Dataset, crash_point, now_rfc3339};
use crate::error::{Error, Result};
use crate::manifest::{
    AddedStats, DataFile, MANIFEST_FORMAT, Manifest, manifest_path, new_commit_id,
};

/// How many times [`Dataset::commit_retrying`] tries to publish before giving up.
pub const COMMIT_TRIES: u64 = 50;

impl Dataset {
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
            staged: HashMap::new(),
            replacing: false,
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
            tx.close_files()?;
            loop {
                match tx.publish() {
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
                        std::thread::sleep(backoff(tries));
                        // The winners' rows do not overlap ours: the same files go on top of
                        // the new version (a manifest read, the winners' keys, one create).
                        if tx.rebase()? {
                            tracing::info!(version, tries, "lost a commit race; rebased");
                            continue;
                        }
                        tracing::info!(version, tries, "lost a commit race; staging again");
                        break;
                    }
                    Err(e) => return Err(e),
                }
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
            staged: HashMap::new(),
            replacing: true,
            added: BTreeMap::new(),
        }
    }
}

/// The pause before commit try `tries + 1`: growing with the tries (capped at 2 s) and
/// jittered, so that many shards that lost the same race do not collide again in lockstep.
fn backoff(tries: u64) -> std::time::Duration {
    let base = (20 * tries).min(2_000);
    let mut b = [0u8; 8];
    let jitter = if getrandom::fill(&mut b).is_ok() {
        u64::from_le_bytes(b) % (base + 1)
    } else {
        0
    };
    std::time::Duration::from_millis(base + jitter)
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
        .map(|r| u128::from_le_bytes(crate::hash::prefix_16(r.as_ref())))
        .collect())
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
    /// Keys of the rows this commit staged, by table (to rebase onto a winner's version).
    staged: HashMap<Table, HashSet<u128>>,
    /// A migration's commit (replaces files): never rebased.
    replacing: bool,
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
        let staged = self.staged.entry(table).or_default();
        let keep: BooleanArray = keys
            .iter()
            .map(|k| {
                let new = set.insert(*k);
                if new {
                    staged.insert(*k);
                }
                Some(new)
            })
            .collect();
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
        let unique = crate::hash::hex_prefix(
            format!(
                "{}-{:?}-{}",
                std::process::id(),
                std::time::SystemTime::now(),
                self.finished.len() + self.open.len()
            )
            .as_bytes(),
            16,
        );
        let path = format!("{dir}/part-v{:010}-{unique}.parquet", self.target_version(),);
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
        self.close_files()?;
        self.publish()
    }

    /// Finishes every open data file.
    pub(super) fn close_files(&mut self) -> Result<()> {
        let open = std::mem::take(&mut self.open);
        for ((table, _), w) in open {
            let f = self.close_file(table, w)?;
            self.finished.push((table, f));
        }
        Ok(())
    }

    /// Publishes the finished files as the version after the base: [`Error::Conflict`] when
    /// another writer took that version (the files stay, for [`Transaction::rebase`]).
    pub(super) fn publish(&mut self) -> Result<CommitOutcome> {
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
            commit_id: Some(new_commit_id()),
        };
        let bytes =
            serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
        match self
            .ds
            .storage
            .put_if_absent(&manifest_path(version), &bytes)
        {
            Ok(true) => {}
            // Another writer's manifest is there (read back and compared by the storage):
            // no manifest lists this commit's files, whose names are its own, so dropping
            // the transaction deletes them.
            Ok(false) => return Err(Error::Conflict { version }),
            // The outcome is unknown (the store kept failing): the manifest may yet be
            // there and list these files, so they are kept (at worst unlisted orphans).
            Err(e) => {
                self.finished.clear();
                return Err(e);
            }
        }
        self.finished.clear();
        Ok(CommitOutcome {
            version,
            published: true,
            added,
        })
    }

    /// After a lost race: moves this commit's finished files on top of the newest version,
    /// if the versions committed since its base only added files and none of their rows has
    /// a key this commit staged. Returns false (nothing changed) otherwise, and then the
    /// rows must be staged again.
    pub(super) fn rebase(&mut self) -> Result<bool> {
        if self.replacing || self.finished.is_empty() {
            return Ok(false);
        }
        let latest = self.ds.latest()?;
        let base_files: HashSet<&str> = self
            .base
            .tables
            .values()
            .flat_map(|t| t.files.iter().map(|f| f.path.as_str()))
            .collect();
        let latest_files: HashSet<&str> = latest
            .tables
            .values()
            .flat_map(|t| t.files.iter().map(|f| f.path.as_str()))
            .collect();
        if !base_files.is_subset(&latest_files) {
            return Ok(false);
        }
        for (table, ours) in &self.staged {
            if ours.is_empty() {
                continue;
            }
            let Some(files) = latest.tables.get(table.name()) else {
                continue;
            };
            let new: Vec<DataFile> = files
                .files
                .iter()
                .filter(|f| !base_files.contains(f.path.as_str()))
                .cloned()
                .collect();
            if new.is_empty() {
                continue;
            }
            let mut only_new = latest.clone();
            only_new.tables = BTreeMap::from([(
                table.name().to_string(),
                crate::manifest::TableFiles { files: new },
            )]);
            for b in self
                .ds
                .read_table(&only_new, *table, Some(table.key_columns()))?
            {
                if row_keys(&b, *table)?.iter().any(|k| ours.contains(k)) {
                    return Ok(false);
                }
            }
        }
        let target = latest.version + 1;
        for (_, f) in &mut self.finished {
            f.added_in = target;
        }
        self.base = latest;
        Ok(true)
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
