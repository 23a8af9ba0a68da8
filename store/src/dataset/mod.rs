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
//!
//! Rooms: this file opens datasets and reads their manifests; [`read`](self) holds the read
//! side (data files checked against the manifest and the table schema), `transaction` the
//! commit, `writer` the Parquet layout of the files a commit writes, `failpoints` the crash
//! points of the crash tests.

mod failpoints;
mod read;
mod transaction;
mod writer;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use spatialsv_schemas::SCHEMA_VERSION;

pub use failpoints::{CRASH_ENV, crash_point};
pub(crate) use failpoints::{lose_response, part_bytes};
pub use transaction::{COMMIT_TRIES, CommitOutcome, Transaction};
pub use writer::WriteOptions;

use crate::error::{Error, Result};
use crate::manifest::{
    MANIFEST_DIR, MANIFEST_FORMAT, Manifest, manifest_path, new_commit_id, parse_manifest_name,
};
use crate::storage::{Storage, StorageOptions, is_object_store_url, open_location};

/// Version of spatialsv recorded in manifests and provenance.
pub const CODE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A versioned dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    storage: Arc<dyn Storage>,
}

impl Dataset {
    /// Creates a new, empty dataset at `path` (a directory, or `s3://bucket/prefix` with the
    /// environment's settings: see [`Dataset::create_with`]) as version 0. Fails if one is
    /// already there.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        Self::create_with(path, &StorageOptions::default())
    }

    /// [`Dataset::create`] with object-store `options` (see [`open_location`]).
    pub fn create_with(path: impl AsRef<Path>, options: &StorageOptions) -> Result<Self> {
        let ds = Self::with_storage(open_location(path.as_ref(), options)?);
        if !ds.versions()?.is_empty() {
            return Err(Error::User(format!(
                "a dataset already exists at {}",
                ds.storage.display_root()
            )));
        }
        ds.publish_empty()?;
        Ok(ds)
    }

    /// Opens an existing dataset at `path` (a directory, or `s3://bucket/prefix` with the
    /// environment's settings).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, &StorageOptions::default())
    }

    /// [`Dataset::open`] with object-store `options` (see [`open_location`]).
    pub fn open_with(path: impl AsRef<Path>, options: &StorageOptions) -> Result<Self> {
        let path = path.as_ref();
        let ds = Self::with_storage(open_location(path, options)?);
        if ds.versions()?.is_empty() {
            let why = if is_object_store_url(path) {
                "no objects under _spatialsv/manifests/ there"
            } else if path.exists() {
                "it has no manifests (_spatialsv/manifests)"
            } else {
                "the directory does not exist"
            };
            return Err(Error::User(format!(
                "no spatialsv dataset at {} ({why})",
                ds.location()
            )));
        }
        Ok(ds)
    }

    /// Opens the dataset at `path`, creating an empty one if there is none.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_or_create_with(path, &StorageOptions::default())
    }

    /// [`Dataset::open_or_create`] with object-store `options`.
    pub fn open_or_create_with(path: impl AsRef<Path>, options: &StorageOptions) -> Result<Self> {
        let ds = Self::with_storage(open_location(path.as_ref(), options)?);
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
            commit_id: Some(new_commit_id()),
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
        let Some(stale) = m.stale_tables() else {
            return Err(Error::User(format!(
                "dataset {} version {} has table schema version {}, which this spatialsv \
                 ({CODE_VERSION}, schema {SCHEMA_VERSION}) cannot read; use the spatialsv \
                 that wrote it",
                self.location(),
                m.version,
                m.schema_version
            )));
        };
        if stale.is_empty() {
            return Ok(());
        }
        let stale: Vec<&str> = stale.iter().map(|t| t.name()).collect();
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
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests;
