//! Numbered manifests: the single source of truth of what a dataset version contains.
//!
//! Version `n` is the file `_spatialsv/manifests/v{n:010}.json`. It lists every data file of
//! every table in that version (a full snapshot, so a reader needs one file), plus what the
//! commit that made it added. A version exists once its manifest exists; manifests are created
//! with put-if-absent and never modified.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Value of [`Manifest::format`].
pub const MANIFEST_FORMAT: &str = "spatialsv-dataset/1";
/// Directory of the manifests, relative to the dataset root.
pub const MANIFEST_DIR: &str = "_spatialsv/manifests";

/// Relative path of the manifest of `version`.
pub fn manifest_path(version: u64) -> String {
    format!("{MANIFEST_DIR}/v{version:010}.json")
}

/// Parses a manifest file name back to its version (`None` for anything else, such as
/// temporary files).
pub fn parse_manifest_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix('v')?.strip_suffix(".json")?;
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One dataset version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// This version's number (0 = the empty dataset made at creation).
    pub version: u64,
    /// The version this one was committed on top of.
    pub parent: Option<u64>,
    /// Commit time, RFC 3339 UTC.
    pub created_at: String,
    /// What made the commit, e.g. `ingest scannet /data/scannet`.
    pub operation: String,
    /// spatialsv version that wrote it.
    pub code_version: String,
    /// Table schema version ([`spatialsv_schemas::SCHEMA_VERSION`]) of every file listed.
    pub schema_version: String,
    /// Every table with at least one file, by name.
    pub tables: BTreeMap<String, TableFiles>,
    /// What this commit added, by table name.
    pub added: BTreeMap<String, AddedStats>,
    /// A random id per commit attempt. On object storage a create that landed and was
    /// retried reads as "already exists"; reading the manifest back and finding this id
    /// tells the writer the version is its own. Absent in manifests written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_id: Option<String>,
}

/// A fresh random commit id (128 bits, hex).
pub fn new_commit_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: a hash of what differs between attempts still separates them.
        let seed = format!(
            "{}-{:?}-{:?}",
            std::process::id(),
            std::time::SystemTime::now(),
            std::thread::current().id()
        );
        b = crate::hash::prefix_16(seed.as_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The files of one table in one version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableFiles {
    /// Data files, in the order they were committed.
    pub files: Vec<DataFile>,
}

impl TableFiles {
    /// Total rows over all files.
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// Total bytes over all files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// One Parquet data file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataFile {
    /// Path relative to the dataset root.
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// Version that added the file.
    pub added_in: u64,
    /// Hive partition values of the file (`split` -> `train`).
    pub partition: BTreeMap<String, String>,
}

/// What one commit did to one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddedStats {
    /// Rows added.
    pub rows: u64,
    /// Rows offered but already present (same key): not added again.
    pub duplicates: u64,
    /// Files added.
    pub files: u64,
    /// Bytes added.
    pub bytes: u64,
}

impl Manifest {
    /// The tables this version holds in a layout older than
    /// [`spatialsv_schemas::SCHEMA_VERSION`] (empty when it reads as it is), or `None` when its
    /// schema version is one this build does not know.
    pub fn stale_tables(&self) -> Option<Vec<spatialsv_schemas::Table>> {
        if self.schema_version == spatialsv_schemas::SCHEMA_VERSION {
            return Some(Vec::new());
        }
        let (_, changed) = spatialsv_schemas::CHANGED_SINCE
            .iter()
            .find(|(old, _)| *old == self.schema_version)?;
        Some(
            changed
                .iter()
                .copied()
                .filter(|t| self.tables.contains_key(t.name()))
                .collect(),
        )
    }

    /// Rows of `table` in this version (0 when the table has no files).
    pub fn rows(&self, table: &str) -> u64 {
        self.tables.get(table).map(TableFiles::rows).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_names_round_trip() {
        assert_eq!(manifest_path(7), "_spatialsv/manifests/v0000000007.json");
        assert_eq!(parse_manifest_name("v0000000007.json"), Some(7));
        assert_eq!(parse_manifest_name(".v0000000007.json.123.tmp"), None);
        assert_eq!(parse_manifest_name("v7.json"), None);
    }
}
