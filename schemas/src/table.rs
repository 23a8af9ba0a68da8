//! The set of tables and the enumerated values their columns take.

use std::fmt;
use std::str::FromStr;

use arrow::datatypes::SchemaRef;

use crate::tables;

/// Every table a spatialsv dataset can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// One row per scene or video.
    Scenes,
    /// One row per frame (image, optional depth, intrinsics, optional pose).
    Frames,
    /// Ordered groups of frames of one scene, for multi-view processing.
    Clips,
    /// Every input that was refused, with the reason.
    Quarantine,
    /// Teacher predictions and filter outcomes per frame.
    PseudoLabels,
    /// One row per training or labelling run.
    Runs,
    /// Per-step and per-evaluation metrics of runs.
    Metrics,
    /// Annotated objects of scenes, with world-frame boxes.
    Objects,
    /// Which objects each frame sees (from instance images).
    ObjectViews,
    /// Spatial questions and answers generated from geometry.
    Qa,
}

impl Table {
    /// All tables, in a stable order.
    pub const ALL: [Table; 10] = [
        Table::Scenes,
        Table::Frames,
        Table::Clips,
        Table::Quarantine,
        Table::PseudoLabels,
        Table::Runs,
        Table::Metrics,
        Table::Objects,
        Table::ObjectViews,
        Table::Qa,
    ];

    /// The table's name as used in manifests, directories and SQL.
    pub fn name(self) -> &'static str {
        match self {
            Table::Scenes => "scenes",
            Table::Frames => "frames",
            Table::Clips => "clips",
            Table::Quarantine => "quarantine",
            Table::PseudoLabels => "pseudo_labels",
            Table::Runs => "runs",
            Table::Metrics => "metrics",
            Table::Objects => "objects",
            Table::ObjectViews => "object_views",
            Table::Qa => "qa",
        }
    }

    /// The canonical schema of the table.
    pub fn schema(self) -> SchemaRef {
        // Built once per table: readers ask for it per batch and per frame.
        static SCHEMAS: std::sync::OnceLock<[SchemaRef; 10]> = std::sync::OnceLock::new();
        let all = SCHEMAS.get_or_init(|| Table::ALL.map(Table::build_schema));
        all[Table::ALL.iter().position(|t| *t == self).unwrap_or(0)].clone()
    }

    fn build_schema(self) -> SchemaRef {
        match self {
            Table::Scenes => tables::scenes_schema(),
            Table::Frames => tables::frames_schema(),
            Table::Clips => tables::clips_schema(),
            Table::Quarantine => tables::quarantine_schema(),
            Table::PseudoLabels => tables::pseudo_labels_schema(),
            Table::Runs => tables::runs_schema(),
            Table::Metrics => tables::metrics_schema(),
            Table::Objects => tables::objects_schema(),
            Table::ObjectViews => tables::object_views_schema(),
            Table::Qa => tables::qa_schema(),
        }
    }

    /// Columns whose values identify a row: committing a row whose key already exists in the
    /// dataset adds nothing. For frames this is the content hash of the frame's bytes.
    pub fn key_columns(self) -> &'static [&'static str] {
        match self {
            Table::Scenes => &["scene_id"],
            Table::Frames => &["content_hash"],
            Table::Clips => &["clip_id"],
            Table::Quarantine => &["source_uri", "stage", "reason"],
            Table::PseudoLabels => &["scene_id", "frame_idx", "teacher_hash", "config_hash"],
            Table::Runs => &["run_id"],
            Table::Metrics => &["run_id", "step", "split", "scene_id", "name"],
            Table::Objects => &["scene_id", "object_id"],
            Table::ObjectViews => &["scene_id", "frame_idx", "object_id"],
            Table::Qa => &["qa_id"],
        }
    }

    /// String columns used as Hive partition directories (`split=train/`), chosen so that the
    /// most common filters prune whole files. Values stay inside the files as well, so any
    /// Parquet reader sees every column without knowing the directory layout.
    pub fn partition_columns(self) -> &'static [&'static str] {
        match self {
            Table::Frames
            | Table::Clips
            | Table::Scenes
            | Table::Objects
            | Table::ObjectViews
            | Table::Qa => &["split"],
            Table::Quarantine => &["stage"],
            Table::PseudoLabels => &["teacher_hash"],
            Table::Runs | Table::Metrics => &[],
        }
    }

    /// Columns each data file is sorted by, so that row-group statistics on them are tight and
    /// a filter on a scene or a run skips the rest.
    pub fn sort_columns(self) -> &'static [&'static str] {
        match self {
            Table::Scenes => &["scene_id"],
            Table::Frames => &["scene_id", "frame_idx"],
            Table::Clips => &["scene_id", "clip_id"],
            Table::Quarantine => &["source_uri"],
            Table::PseudoLabels => &["scene_id", "frame_idx"],
            Table::Runs => &["run_id"],
            Table::Metrics => &["run_id", "step"],
            Table::Objects => &["scene_id", "object_id"],
            Table::ObjectViews => &["scene_id", "frame_idx", "object_id"],
            Table::Qa => &["scene_id", "family", "qa_id"],
        }
    }

    /// Columns holding large encoded blobs (images, depth maps): stored without dictionary,
    /// statistics or extra compression.
    pub fn blob_columns(self) -> &'static [&'static str] {
        match self {
            Table::Frames => &["image", "depth"],
            Table::PseudoLabels => &["depth_normalised", "confidence", "keep_mask"],
            _ => &[],
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Table {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Table::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Table::ALL.iter().map(|t| t.name()).collect();
                format!("unknown table '{s}' (tables: {})", names.join(", "))
            })
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as stored in the table.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "'{s}' is not one of {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// Dataset split, assigned per scene (never per frame) so that evaluation never sees a
    /// training scene.
    Split {
        /// Used for training.
        Train => "train",
        /// Used for model selection.
        Val => "val",
        /// Held out for evaluation.
        Test => "test",
    }
);

string_enum!(
    /// Why a pseudo-labelled frame was rejected (`pseudo_labels.reject_kind`).
    RejectKind {
        /// The pose cycles through the frame do not close.
        Camera => "camera",
        /// Too few of its pixels survive the confidence and geometric filters.
        Pixels => "pixels",
        /// A window of one frame: no other view to check it against.
        SingleView => "single_view",
    }
);

string_enum!(
    /// Where a scene's frames come from.
    SourceKind {
        /// A labeled 3D scan (depth and poses available).
        Scan => "scan",
        /// Raw video (no depth, no poses).
        Video => "video",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_round_trip() {
        for t in Table::ALL {
            assert_eq!(t.name().parse::<Table>(), Ok(t));
        }
        let err = "frame".parse::<Table>().unwrap_err();
        assert!(err.contains("unknown table 'frame'"), "{err}");
    }

    #[test]
    fn key_sort_and_partition_columns_exist_in_schema() {
        for t in Table::ALL {
            let schema = t.schema();
            let cols = t
                .key_columns()
                .iter()
                .chain(t.partition_columns())
                .chain(t.sort_columns())
                .chain(t.blob_columns());
            for c in cols {
                assert!(schema.field_with_name(c).is_ok(), "{t}: no column {c}");
            }
        }
    }

    #[test]
    fn split_parses_only_known_values() {
        assert_eq!("val".parse::<Split>(), Ok(Split::Val));
        assert!("validation".parse::<Split>().is_err());
        assert_eq!("video".parse::<SourceKind>(), Ok(SourceKind::Video));
    }
}
