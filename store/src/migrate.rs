//! Upgrades a dataset written at an older table schema version to
//! [`SCHEMA_VERSION`](spatialsv_schemas::SCHEMA_VERSION).
//!
//! A migration is one ordinary commit: the tables whose layout changed are rewritten into new
//! files and the new manifest lists those instead of the old ones; every other table keeps its
//! files. A crash leaves the dataset at its last version (still at the old schema), and a
//! rerun starts over. Old versions stay on disk and in `spatialsv log`, but this build refuses
//! to read them (their layout is the old one).

use std::collections::BTreeMap;

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray, new_null_array};
use arrow::datatypes::DataType;
use spatialsv_schemas::{RejectKind, SCHEMA_VERSION, Table};

use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// What [`Dataset::migrate`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrateOutcome {
    /// Schema version the dataset was at.
    pub from: String,
    /// Schema version it is at now.
    pub to: String,
    /// The dataset's version after the migration.
    pub version: u64,
    /// Rows rewritten, by table (empty when nothing needed rewriting).
    pub rewritten: BTreeMap<String, u64>,
}

/// Version-1 column names of `pseudo_labels` that version 2 renamed (new -> old).
const PSEUDO_LABELS_V1_NAMES: &[(&str, &str)] = &[
    ("depth_normalised", "depth"),
    ("reference_from_camera", "world_from_camera"),
    ("depth_median_normalised", "depth_median_m"),
];

/// A version-1 `pseudo_labels` batch in the version-2 layout: columns renamed, the unknown
/// `metres_per_unit` null.
fn pseudo_labels_v1_to_v2(batch: &RecordBatch, file: &str) -> Result<RecordBatch> {
    let schema = Table::PseudoLabels.schema();
    let cols: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| {
            if f.name() == "metres_per_unit" {
                return Ok(new_null_array(&DataType::Float64, batch.num_rows()));
            }
            if f.name() == "reject_kind" {
                return reject_kinds_of_v1(batch, file);
            }
            let old = PSEUDO_LABELS_V1_NAMES
                .iter()
                .find(|(new, _)| new == f.name())
                .map_or(f.name().as_str(), |(_, old)| old);
            batch.column_by_name(old).cloned().ok_or_else(|| {
                Error::corrupt(
                    file,
                    format!("not a version-1 pseudo_labels file: no column '{old}'"),
                )
            })
        })
        .collect::<Result<_>>()?;
    RecordBatch::try_new(schema, cols)
        .map_err(|e| Error::corrupt(file, format!("not a version-1 pseudo_labels file ({e})")))
}

/// `reject_kind` from a version-1 `reject_reason`, whose text began with the category
/// (`camera: ...`, `pixels: ...`, `window of one frame: ...`).
fn reject_kinds_of_v1(batch: &RecordBatch, file: &str) -> Result<ArrayRef> {
    let reasons = batch
        .column_by_name("reject_reason")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| {
            Error::corrupt(
                file,
                "not a version-1 pseudo_labels file: no text column 'reject_reason'",
            )
        })?;
    let kinds: StringArray = reasons
        .iter()
        .map(|r| {
            r.map(|r| {
                if r.starts_with("camera") {
                    RejectKind::Camera
                } else if r.starts_with("window of one frame") {
                    RejectKind::SingleView
                } else {
                    RejectKind::Pixels
                }
                .as_str()
            })
        })
        .collect();
    Ok(Arc::new(kinds))
}

impl Dataset {
    /// Upgrades the newest version to [`SCHEMA_VERSION`]: rewrites the tables whose layout
    /// changed and publishes the result as a new version. Does nothing (and publishes
    /// nothing) when the dataset is already current or has none of the changed tables.
    pub fn migrate(&self) -> Result<MigrateOutcome> {
        let base = self.manifest_unchecked(self.latest_version()?)?;
        let from = base.schema_version.clone();
        let mut outcome = MigrateOutcome {
            from: from.clone(),
            to: SCHEMA_VERSION.to_string(),
            version: base.version,
            rewritten: BTreeMap::new(),
        };
        if from == SCHEMA_VERSION {
            return Ok(outcome);
        }
        let Some(stale) = base.stale_tables() else {
            return Err(Error::User(format!(
                "dataset {} has table schema version {from}, which this spatialsv (schema \
                 {SCHEMA_VERSION}) does not know how to migrate",
                self.location()
            )));
        };
        if stale.is_empty() {
            return Ok(outcome);
        }
        let files = base.tables.clone();
        let mut tx = self.begin_replacing(
            format!("migrate schema {from} -> {SCHEMA_VERSION}"),
            base,
            &stale,
        );
        for table in &stale {
            let Some(listed) = files.get(table.name()) else {
                continue;
            };
            let mut rows = 0u64;
            for f in &listed.files {
                let full = format!("{}/{}", self.location(), f.path);
                for batch in self.read_file_unchecked(&f.path)? {
                    let upgraded = match table {
                        Table::PseudoLabels => pseudo_labels_v1_to_v2(&batch, &full)?,
                        other => {
                            return Err(Error::Internal(format!(
                                "no migration of table {other} from schema {from}"
                            )));
                        }
                    };
                    rows += upgraded.num_rows() as u64;
                    tx.append(*table, upgraded)?;
                }
            }
            outcome.rewritten.insert(table.name().to_string(), rows);
        }
        let _span = tracing::info_span!("commit", operation = "migrate").entered();
        outcome.version = tx.commit()?.version;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{PseudoLabelRow, pseudo_labels_batch, read_pseudo_labels};
    use arrow::datatypes::{Field, Schema};
    use spatialsv_schemas::Split;

    /// Frame 0 accepted, frame 1 rejected by the pose cycles (its kind is derived from the
    /// version-1 reason text by the migration).
    fn row(frame: i64) -> PseudoLabelRow {
        let rejected = frame == 1;
        PseudoLabelRow {
            scene_id: "vid".into(),
            frame_idx: frame,
            clip_id: "vid/c0".into(),
            reference_frame_idx: 0,
            split: Split::Train,
            width: 2,
            height: 1,
            depth: vec![1.0, 2.0],
            confidence: vec![1.0, 3.0],
            keep: vec![true, false],
            intrinsics: [1.0, 1.0, 1.0, 0.5],
            reference_from_camera: [
                1., 0., 0., 0.5, 0., 1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1.,
            ],
            depth_median: 1.5,
            metres_per_unit: None,
            confidence_mean: 2.0,
            px_removed_confidence: 1,
            px_removed_geometric: 0,
            camera_rotation_error_deg: 0.1,
            camera_direction_error_deg: 0.2,
            camera_consistent: true,
            accepted: !rejected,
            reject_kind: rejected.then_some(RejectKind::Camera),
            reject_reason: rejected.then(|| "camera: pose cycles do not close".into()),
            teacher_hash: "t".into(),
            config_hash: "c".into(),
            config_toml: "".into(),
            code_version: "0".into(),
            labeled_at: 0,
        }
    }

    /// A version-2 batch relabelled with the version-1 names and without `metres_per_unit`.
    fn as_v1(batch: &RecordBatch) -> RecordBatch {
        let mut fields = Vec::new();
        let mut cols = Vec::new();
        for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
            if f.name() == "metres_per_unit" || f.name() == "reject_kind" {
                continue;
            }
            let name = PSEUDO_LABELS_V1_NAMES
                .iter()
                .find(|(new, _)| new == f.name())
                .map_or(f.name().as_str(), |(_, old)| old);
            fields.push(Field::new(name, f.data_type().clone(), f.is_nullable()));
            cols.push(c.clone());
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
    }

    /// Writes a version-1 dataset by hand: a v1 file of pseudo_labels and a v1 manifest.
    fn v1_dataset(dir: &std::path::Path) -> Dataset {
        let ds = Dataset::create(dir).unwrap();
        let mut tx = ds.begin("labels").unwrap();
        tx.append(
            Table::PseudoLabels,
            pseudo_labels_batch(&[row(0), row(1)]).unwrap(),
        )
        .unwrap();
        tx.commit().unwrap();
        // Rewrite the file in the v1 layout and mark the manifest as schema 1.
        let m = ds.latest().unwrap();
        let path = dir.join(&m.tables["pseudo_labels"].files[0].path);
        let v1 = as_v1(&pseudo_labels_batch(&[row(0), row(1)]).unwrap());
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            v1.schema(),
            None,
        )
        .unwrap();
        w.write(&v1).unwrap();
        w.close().unwrap();
        let mpath = dir.join(crate::manifest::manifest_path(1));
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
        json["schema_version"] = "1".into();
        let size = std::fs::metadata(&path).unwrap().len();
        json["tables"]["pseudo_labels"]["files"][0]["bytes"] = size.into();
        std::fs::write(&mpath, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        ds
    }

    #[test]
    fn a_v1_dataset_with_pseudo_labels_is_refused_with_the_command_that_migrates_it() {
        let dir = tempfile::tempdir().unwrap();
        let ds = v1_dataset(dir.path());
        let err = ds.latest().unwrap_err();
        assert!(err.is_user_error());
        let msg = err.to_string();
        assert!(
            msg.contains("has pseudo_labels in table schema version 1")
                && msg.contains("run `spatialsv migrate --dataset"),
            "{msg}"
        );
        // Writers are refused too: nothing is committed on top of the old layout.
        assert!(ds.begin("more").is_err());
        // The history still lists it.
        assert_eq!(ds.history().unwrap().len(), 2);
    }

    #[test]
    fn migrate_renames_the_columns_and_keeps_every_value() {
        let dir = tempfile::tempdir().unwrap();
        let ds = v1_dataset(dir.path());
        let out = ds.migrate().unwrap();
        assert_eq!((out.from.as_str(), out.to.as_str()), ("1", SCHEMA_VERSION));
        assert_eq!(out.version, 2);
        assert_eq!(out.rewritten["pseudo_labels"], 2);
        let m = ds.latest().unwrap();
        assert_eq!(m.schema_version, SCHEMA_VERSION);
        assert_eq!(m.tables["pseudo_labels"].files.len(), 1);
        let batches = ds.read_table(&m, Table::PseudoLabels, None).unwrap();
        let rows: Vec<PseudoLabelRow> = batches
            .iter()
            .flat_map(|b| read_pseudo_labels(b).unwrap())
            .collect();
        assert_eq!(rows, vec![row(0), row(1)]);
        // A second run has nothing to do.
        let again = ds.migrate().unwrap();
        assert_eq!((again.version, again.rewritten.len()), (2, 0));
    }

    #[test]
    fn a_v1_dataset_without_changed_tables_reads_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Dataset::create(dir.path()).unwrap();
        let mpath = dir.path().join(crate::manifest::manifest_path(0));
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
        json["schema_version"] = "1".into();
        std::fs::write(&mpath, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        assert_eq!(ds.latest().unwrap().schema_version, "1");
        let out = ds.migrate().unwrap();
        assert!(out.rewritten.is_empty());
        json["schema_version"] = "99".into();
        std::fs::write(&mpath, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        let err = ds.latest().unwrap_err().to_string();
        assert!(err.contains("schema version 99"), "{err}");
    }
}
