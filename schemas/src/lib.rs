//! Canonical Arrow schemas of every spatialsv table.
//!
//! Every stage of spatialsv (ingestion, labelling, training) exchanges data through the tables
//! defined here, never through each other's internals. Each table has:
//!
//! - one function returning its [`SchemaRef`] ([`frames_schema`], [`scenes_schema`], ...), with
//!   the schema version, units and coordinate conventions in the schema and field metadata;
//! - a validated wrapper ([`FramesBatch`], [`ScenesBatch`], ...) built with
//!   `TryFrom<RecordBatch>`, so code further down never re-checks columns;
//! - the typed read side, [`Columns`]: columns of a read batch (or projection) by name, with
//!   the array type the table declares, never by position.
//!
//! Conventions, shared by every table: `world_from_camera` is the 4x4 camera-to-world
//! transform stored as 16 `f64` in row-major order; camera axes follow OpenCV (x right, y down,
//! z forward); lengths are metres; pinhole intrinsics are in pixels of the stored image.
//!
//! This crate depends on `arrow` only.

mod columns;
mod doc;
mod invalid;
mod table;
mod tables;
mod validate;

pub use columns::{Columns, Poses, Vectors};
pub use doc::{render_markdown, render_snapshot};
pub use invalid::Invalid;
pub use table::{RejectKind, SourceKind, Split, Table};
pub use tables::{
    clips_schema, frames_schema, metrics_schema, object_views_schema, objects_schema,
    pseudo_labels_schema, qa_schema, quarantine_schema, runs_schema, scenes_schema,
};
pub use validate::{
    ClipsBatch, FramesBatch, MAX_TRANSLATION_M, MetricsBatch, ObjectViewsBatch, ObjectsBatch,
    PseudoLabelsBatch, QaBatch, QuarantineBatch, RunsBatch, ScenesBatch, SchemaError, check_pose,
};

pub use arrow::datatypes::SchemaRef;

/// Version of the table layouts defined here. Bumped on any change to a column's name, type,
/// nullability or meaning; stored in every schema's metadata and in every dataset manifest.
///
/// History (what a reader of an older dataset must know):
/// - `1`: the first layout.
/// - `2`: `pseudo_labels` says what it stores: `world_from_camera` became
///   `reference_from_camera` (the pose is relative to the window's reference camera, in the
///   teacher's units), `depth` became `depth_normalised` and `depth_median_m` became
///   `depth_median_normalised` (neither is metres), and `metres_per_unit` (nullable) was
///   added, and `reject_kind` (`camera`, `pixels`, `single_view`) says why a frame was
///   rejected without parsing `reject_reason`. Every other table is unchanged, so a version-1 dataset without `pseudo_labels` is
///   read as it is; one with them is upgraded by `spatialsv migrate`.
/// - `3`: three new tables, `objects`, `object_views` and `qa` (spatial questions); no
///   existing table changed, so a version-2 dataset is read as it is.
pub const SCHEMA_VERSION: &str = "3";

/// The older schema versions this build still reads, each with the tables whose layout
/// changed since: a dataset at such a version is read as it is when it has no files of those
/// tables, and is upgraded by `spatialsv migrate` otherwise.
pub const CHANGED_SINCE: &[(&str, &[Table])] = &[("1", &[Table::PseudoLabels]), ("2", &[])];

/// Schema metadata key: the table's name.
pub const META_TABLE: &str = "spatialsv.table";
/// Schema metadata key: [`SCHEMA_VERSION`].
pub const META_SCHEMA_VERSION: &str = "spatialsv.schema_version";
/// Schema metadata key: the coordinate conventions, in words.
pub const META_CONVENTIONS: &str = "spatialsv.conventions";
/// Schema metadata key: what one row is.
pub const META_DESCRIPTION: &str = "spatialsv.description";
/// Field metadata key: the unit of a column (`m`, `px`, `ns`, ...), absent when unitless.
pub const META_UNIT: &str = "spatialsv.unit";
/// Field metadata key: what the column means.
pub const META_DOC: &str = "spatialsv.doc";

/// The conventions every table follows, as stored in [`META_CONVENTIONS`].
pub const CONVENTIONS: &str = "world_from_camera: 4x4 camera-to-world, 16 f64 row-major \
(reference_from_camera likewise, relative to a reference camera); \
camera axes OpenCV (x right, y down, z forward); lengths in metres except columns named *_normalised; \
pinhole intrinsics fx fy cx cy in pixels of the stored image; timestamps in nanoseconds";
