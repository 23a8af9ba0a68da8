//! One function per table returning its schema. The column lists here are the contract
//! between stages; `docs/schemas.md` is generated from them and a test keeps it in step.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::{
    CONVENTIONS, META_CONVENTIONS, META_DESCRIPTION, META_DOC, META_SCHEMA_VERSION, META_TABLE,
    META_UNIT, SCHEMA_VERSION,
};

/// Timestamp type used for wall-clock times (when something was ingested, refused, ...).
fn utc_ns() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// A fixed-length list of `n` non-null `f64`.
fn f64s(n: i32) -> DataType {
    DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float64, false)), n)
}

/// The 4x4 pose type: 16 `f64`, row-major.
fn pose16() -> DataType {
    f64s(16)
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, false)))
}

/// A column with its unit (empty when unitless) and meaning in the field metadata.
fn col(name: &str, dt: DataType, nullable: bool, unit: &str, doc: &str) -> Field {
    let mut meta = HashMap::from([(META_DOC.to_string(), doc.to_string())]);
    if !unit.is_empty() {
        meta.insert(META_UNIT.to_string(), unit.to_string());
    }
    Field::new(name, dt, nullable).with_metadata(meta)
}

fn schema(table: &str, description: &str, fields: Vec<Field>) -> SchemaRef {
    let meta = HashMap::from([
        (META_TABLE.to_string(), table.to_string()),
        (META_SCHEMA_VERSION.to_string(), SCHEMA_VERSION.to_string()),
        (META_CONVENTIONS.to_string(), CONVENTIONS.to_string()),
        (META_DESCRIPTION.to_string(), description.to_string()),
    ]);
    Arc::new(Schema::new_with_metadata(fields, meta))
}

const SPLIT_DOC: &str = "`train`, `val` or `test`; assigned per scene, never per frame";

/// `scenes`: one row per scan scene or video.
pub fn scenes_schema() -> SchemaRef {
    use DataType::*;
    schema(
        "scenes",
        "One row per scan scene or video file.",
        vec![
            col(
                "scene_id",
                Utf8,
                false,
                "",
                "Unique scene identifier within the dataset",
            ),
            col(
                "source",
                Utf8,
                false,
                "",
                "`scan` (labeled 3D scan) or `video` (raw video)",
            ),
            col(
                "source_uri",
                Utf8,
                false,
                "",
                "Where the scene was read from (path or URL)",
            ),
            col(
                "dataset_format",
                Utf8,
                false,
                "",
                "Layout it was read from: `scannet`, `tum`, `sevenscenes`, `colmap`, `nerfstudio`, `video`, `synthetic`",
            ),
            col("split", Utf8, false, "", SPLIT_DOC),
            col(
                "num_frames",
                Int64,
                false,
                "frames",
                "Frames committed for this scene",
            ),
            col(
                "num_quarantined",
                Int64,
                false,
                "frames",
                "Frames of this scene refused and written to `quarantine`",
            ),
            col(
                "ingested_at",
                utc_ns(),
                false,
                "ns",
                "When the scene was committed (UTC)",
            ),
        ],
    )
}

/// `frames`: one row per frame, with encoded image, optional depth, intrinsics and pose.
pub fn frames_schema() -> SchemaRef {
    use DataType::*;
    schema(
        "frames",
        "One row per frame: encoded colour image, optional lossless depth, intrinsics and optional pose.",
        vec![
            col(
                "scene_id",
                Utf8,
                false,
                "",
                "Scene the frame belongs to (`scenes.scene_id`)",
            ),
            col(
                "frame_idx",
                Int64,
                false,
                "",
                "Index of the frame within its scene, in capture order",
            ),
            col(
                "timestamp_ns",
                Int64,
                false,
                "ns",
                "Capture or presentation time relative to the start of the scene",
            ),
            col("source", Utf8, false, "", "`scan` or `video`"),
            col("split", Utf8, false, "", SPLIT_DOC),
            col(
                "image",
                Binary,
                false,
                "",
                "Encoded colour image, bytes as found in the source or as sampled from video",
            ),
            col(
                "image_codec",
                Utf8,
                false,
                "",
                "Codec of `image`: `jpeg` or `png`",
            ),
            col("width", Int32, false, "px", "Width of the colour image"),
            col("height", Int32, false, "px", "Height of the colour image"),
            col(
                "depth",
                Binary,
                true,
                "",
                "Depth map as a 16-bit grayscale PNG; stored value times `depth_scale_m` = z-depth in metres; 0 = invalid. Null for video",
            ),
            col(
                "depth_codec",
                Utf8,
                true,
                "",
                "Codec of `depth`: `png16`. Null when there is no depth",
            ),
            col(
                "depth_scale_m",
                Float64,
                true,
                "m",
                "Metres per depth unit (0.001 for millimetres, 0.0002 for TUM)",
            ),
            col(
                "depth_width",
                Int32,
                true,
                "px",
                "Width of the depth map (may differ from the colour image)",
            ),
            col("depth_height", Int32, true, "px", "Height of the depth map"),
            col(
                "depth_fx",
                Float64,
                true,
                "px",
                "Focal length x of the depth camera, pixels of the depth map",
            ),
            col(
                "depth_fy",
                Float64,
                true,
                "px",
                "Focal length y of the depth camera, pixels of the depth map",
            ),
            col(
                "depth_cx",
                Float64,
                true,
                "px",
                "Principal point x of the depth camera, pixels of the depth map",
            ),
            col(
                "depth_cy",
                Float64,
                true,
                "px",
                "Principal point y of the depth camera, pixels of the depth map",
            ),
            col(
                "fx",
                Float64,
                true,
                "px",
                "Focal length x of the colour camera, pixels of the stored image; null when unknown (video)",
            ),
            col(
                "fy",
                Float64,
                true,
                "px",
                "Focal length y of the colour camera, pixels of the stored image; null when unknown (video)",
            ),
            col(
                "cx",
                Float64,
                true,
                "px",
                "Principal point x, pixels of the stored image (pixel centres at +0.5); null when unknown (video)",
            ),
            col(
                "cy",
                Float64,
                true,
                "px",
                "Principal point y, pixels of the stored image; null when unknown (video)",
            ),
            col(
                "camera_model",
                Utf8,
                false,
                "",
                "`pinhole`, `simple_radial`, `radial` or `opencv` (COLMAP naming); `unknown` for video",
            ),
            col(
                "distortion",
                list_of(Float64),
                false,
                "",
                "Distortion coefficients of `camera_model` in COLMAP order (k1 [k2 p1 p2]); empty for pinhole",
            ),
            col(
                "world_from_camera",
                pose16(),
                true,
                "m",
                "Camera-to-world 4x4 transform, 16 f64 row-major, OpenCV camera axes, translation in metres. Null when unknown (video)",
            ),
            col(
                "pose_source",
                Utf8,
                true,
                "",
                "Where the pose came from: `groundtruth`, `sfm`, `synthetic`; null when there is no pose",
            ),
            col(
                "content_hash",
                Utf8,
                false,
                "",
                "BLAKE3 (hex) of scene id, timestamp, image bytes, depth bytes and pose: the frame's identity for de-duplication",
            ),
            col(
                "source_uri",
                Utf8,
                false,
                "",
                "File (or file and timestamp) the frame was read from",
            ),
        ],
    )
}

/// `clips`: ordered groups of frames for multi-view processing.
pub fn clips_schema() -> SchemaRef {
    use DataType::*;
    schema(
        "clips",
        "One row per clip: an ordered group of frames of one scene, processed together by multi-view models.",
        vec![
            col(
                "clip_id",
                Utf8,
                false,
                "",
                "Unique clip identifier (`{scene_id}/{first frame_idx}`)",
            ),
            col(
                "scene_id",
                Utf8,
                false,
                "",
                "Scene of every frame in the clip",
            ),
            col("split", Utf8, false, "", SPLIT_DOC),
            col(
                "frame_indices",
                list_of(Int64),
                false,
                "",
                "`frames.frame_idx` of the clip's frames, in order",
            ),
            col(
                "start_timestamp_ns",
                Int64,
                false,
                "ns",
                "`timestamp_ns` of the first frame",
            ),
            col(
                "end_timestamp_ns",
                Int64,
                false,
                "ns",
                "`timestamp_ns` of the last frame",
            ),
        ],
    )
}

/// `quarantine`: every input that was refused, with the stage and the reason.
pub fn quarantine_schema() -> SchemaRef {
    use DataType::*;
    schema(
        "quarantine",
        "One row per refused input (frame, file or clip), with the stage that refused it and why.",
        vec![
            col(
                "source_uri",
                Utf8,
                false,
                "",
                "The refused file (and frame, where one file holds many)",
            ),
            col(
                "scene_id",
                Utf8,
                true,
                "",
                "Scene it would have belonged to, when known",
            ),
            col(
                "frame_idx",
                Int64,
                true,
                "",
                "Frame index it would have had, when known",
            ),
            col(
                "stage",
                Utf8,
                false,
                "",
                "Stage that refused it: `ingest`, `validate`, `decode`, `label`",
            ),
            col(
                "reason",
                Utf8,
                false,
                "",
                "Short machine-readable reason, e.g. `non_finite_pose`, `truncated_image`, `missing_depth`",
            ),
            col("detail", Utf8, false, "", "Human-readable explanation"),
            col(
                "quarantined_at",
                utc_ns(),
                false,
                "ns",
                "When it was refused (UTC)",
            ),
        ],
    )
}

/// `pseudo_labels`: teacher predictions per frame, with every filter's outcome.
pub fn pseudo_labels_schema() -> SchemaRef {
    use DataType::*;
    schema(
        "pseudo_labels",
        "One row per labelled frame: teacher depth and confidence, recovered camera, statistics, filter outcomes and provenance.",
        vec![
            col("scene_id", Utf8, false, "", "Scene of the frame"),
            col(
                "frame_idx",
                Int64,
                false,
                "",
                "`frames.frame_idx` of the labelled frame",
            ),
            col(
                "clip_id",
                Utf8,
                false,
                "",
                "`clips.clip_id` of the ingested clip the frame was labelled in (the unit of sharding and resumption)",
            ),
            col(
                "reference_frame_idx",
                Int64,
                false,
                "",
                "First frame of the teacher's input window: poses are relative to its camera",
            ),
            col("split", Utf8, false, "", SPLIT_DOC),
            col("width", Int32, false, "px", "Width of the predicted maps"),
            col("height", Int32, false, "px", "Height of the predicted maps"),
            col(
                "depth_normalised",
                Binary,
                false,
                "",
                "Predicted z-depth, little-endian f16 per pixel, row-major, every pixel (filtered ones too); in the teacher's normalised units (the window's mean point distance is about 1), not metres: multiply by `metres_per_unit` where it is known",
            ),
            col(
                "confidence",
                Binary,
                false,
                "",
                "Predicted confidence, one u8 per pixel: c = 1 + q * `confidence_scale`",
            ),
            col(
                "confidence_scale",
                Float32,
                false,
                "",
                "Dequantisation step of `confidence`",
            ),
            col(
                "keep_mask",
                Binary,
                false,
                "",
                "Pixels that survive the confidence and geometric filters: one bit per pixel, row-major, least significant bit first",
            ),
            col(
                "fx",
                Float64,
                false,
                "px",
                "Focal length x recovered from the predicted rays",
            ),
            col(
                "fy",
                Float64,
                false,
                "px",
                "Focal length y recovered from the predicted rays",
            ),
            col(
                "cx",
                Float64,
                false,
                "px",
                "Principal point x recovered from the predicted rays",
            ),
            col(
                "cy",
                Float64,
                false,
                "px",
                "Principal point y recovered from the predicted rays",
            ),
            col(
                "reference_from_camera",
                pose16(),
                false,
                "",
                "4x4 camera-to-reference-camera transform (16 f64, row-major, OpenCV axes) recovered from the predicted rays; the reference is the camera of `reference_frame_idx` in the same scene, not the world of `frames.world_from_camera`; translation in the teacher's normalised units",
            ),
            col(
                "depth_median_normalised",
                Float64,
                false,
                "",
                "Median predicted depth, in the teacher's normalised units (as `depth_normalised`)",
            ),
            col(
                "metres_per_unit",
                Float64,
                true,
                "m",
                "Metres per normalised unit of this frame's window, where the teacher knows it (a metric teacher); null when the scale is unknown, as for the built-in teacher on video",
            ),
            col(
                "confidence_mean",
                Float64,
                false,
                "",
                "Mean predicted confidence",
            ),
            col("px_total", Int64, false, "px", "Pixels in the frame"),
            col(
                "px_removed_confidence",
                Int64,
                false,
                "px",
                "Pixels removed by the confidence filter",
            ),
            col(
                "px_removed_geometric",
                Int64,
                false,
                "px",
                "Further pixels removed by multi-view consistency",
            ),
            col(
                "px_kept",
                Int64,
                false,
                "px",
                "Pixels that survive every filter",
            ),
            col(
                "camera_rotation_error_deg",
                Float64,
                false,
                "deg",
                "Worst rotation closure error of the pose cycles through the frame",
            ),
            col(
                "camera_direction_error_deg",
                Float64,
                false,
                "deg",
                "Worst translation-direction closure error of the pose cycles through the frame",
            ),
            col(
                "camera_consistent",
                Boolean,
                false,
                "",
                "Whether the frame's poses close around frame triplets",
            ),
            col(
                "accepted",
                Boolean,
                false,
                "",
                "Whether the frame is used for training",
            ),
            col(
                "reject_kind",
                Utf8,
                true,
                "",
                "Why the frame was rejected, as a category: `camera` (pose cycles do not close), `pixels` (too few pixels survive the filters) or `single_view` (a window of one frame); null when accepted",
            ),
            col(
                "reject_reason",
                Utf8,
                true,
                "",
                "Why the frame was rejected, in words with the numbers; null when accepted",
            ),
            col(
                "teacher_hash",
                Utf8,
                false,
                "",
                "BLAKE3 (hex) of the teacher checkpoint",
            ),
            col(
                "config_hash",
                Utf8,
                false,
                "",
                "BLAKE3 (hex) of the resolved labelling config",
            ),
            col(
                "config_toml",
                Utf8,
                false,
                "",
                "The resolved labelling config, thresholds included",
            ),
            col(
                "code_version",
                Utf8,
                false,
                "",
                "spatialsv version that produced the label",
            ),
            col(
                "labeled_at",
                utc_ns(),
                false,
                "ns",
                "When the label was committed (UTC)",
            ),
        ],
    )
}

/// `runs`: one row per training, labelling or evaluation run.
pub fn runs_schema() -> SchemaRef {
    use DataType::*;
    schema(
        "runs",
        "One row per training, labelling or evaluation run.",
        vec![
            col("run_id", Utf8, false, "", "Unique run identifier"),
            col(
                "role",
                Utf8,
                false,
                "",
                "`teacher`, `student`, `baseline`, `label` or `eval`",
            ),
            col("dataset_uri", Utf8, false, "", "Dataset the run read"),
            col(
                "dataset_version",
                Int64,
                false,
                "",
                "Manifest version of the dataset the run read",
            ),
            col(
                "config_toml",
                Utf8,
                false,
                "",
                "The resolved config of the run",
            ),
            col(
                "config_hash",
                Utf8,
                false,
                "",
                "BLAKE3 (hex) of `config_toml`",
            ),
            col("code_version", Utf8, false, "", "spatialsv version"),
            col("seed", Int64, false, "", "Random seed"),
            col(
                "backend",
                Utf8,
                false,
                "",
                "Compute backend: `flex` (CPU) or `cuda`",
            ),
            col("started_at", utc_ns(), false, "ns", "Start time (UTC)"),
            col(
                "finished_at",
                utc_ns(),
                true,
                "ns",
                "End time (UTC); null while running",
            ),
            col(
                "status",
                Utf8,
                false,
                "",
                "`running`, `finished` or `failed`",
            ),
            col(
                "checkpoint_uri",
                Utf8,
                true,
                "",
                "Where the final checkpoint was written",
            ),
        ],
    )
}

/// `metrics`: per-step training losses and evaluation metrics.
pub fn metrics_schema() -> SchemaRef {
    use DataType::*;
    schema(
        "metrics",
        "One row per (run, step, split, metric name).",
        vec![
            col("run_id", Utf8, false, "", "`runs.run_id`"),
            col(
                "step",
                Int64,
                false,
                "",
                "Optimiser step the value belongs to",
            ),
            col(
                "split",
                Utf8,
                true,
                "",
                "Split the metric was computed on; null for training losses",
            ),
            col(
                "scene_id",
                Utf8,
                true,
                "",
                "Scene for per-scene evaluation metrics; null for aggregates",
            ),
            col(
                "name",
                Utf8,
                false,
                "",
                "Metric name, e.g. `loss/depth`, `depth/abs_rel`, `pose/auc30`",
            ),
            col(
                "value",
                Float64,
                false,
                "",
                "Metric value (unit given by the name)",
            ),
            col(
                "recorded_at",
                utc_ns(),
                false,
                "ns",
                "When it was recorded (UTC)",
            ),
        ],
    )
}

/// `objects`: the annotated objects of a scene, with their world-frame boxes.
pub fn objects_schema() -> SchemaRef {
    use DataType::*;
    schema(
        "objects",
        "One row per annotated object of a scene: its name, category and world-frame box.",
        vec![
            col("scene_id", Utf8, false, "", "Scene of the object"),
            col("split", Utf8, false, "", SPLIT_DOC),
            col(
                "object_id",
                Int64,
                false,
                "",
                "Id of the object within its scene, as in its instance images (`object_views`); 1-based for synthetic scenes, ScanNet's `objectId + 1` for ScanNet",
            ),
            col(
                "name",
                Utf8,
                false,
                "",
                "The shortest of `category`, `colour category`, `size colour category` that no other object of the scene shares (the full description when none is unique); questions name only objects whose name is unique",
            ),
            col(
                "category",
                Utf8,
                false,
                "",
                "Category word (synthetic: `cabinet`, `chest`, `crate`, `ball`, `column`; ScanNet: the annotation's label)",
            ),
            col(
                "colour",
                Utf8,
                true,
                "",
                "Colour word from the object's base colour (null when not annotated)",
            ),
            col(
                "size",
                Utf8,
                true,
                "",
                "`small`, `medium` or `large` within its category (null when not annotated)",
            ),
            col(
                "centre",
                f64s(3),
                false,
                "m",
                "Centre of the object's axis-aligned world-frame box, x y z",
            ),
            col(
                "extent",
                f64s(3),
                false,
                "m",
                "Full size of the axis-aligned world-frame box along x y z",
            ),
            col(
                "source",
                Utf8,
                false,
                "",
                "Where the annotation came from: `synthetic` (the generator's geometry) or `scannet_aggregation` (ScanNet's *.aggregation.json and segments over the mesh)",
            ),
        ],
    )
}

/// `object_views`: which objects each frame sees, from its instance (object-id) image.
pub fn object_views_schema() -> SchemaRef {
    use DataType::*;
    schema(
        "object_views",
        "One row per object visible in a frame, measured on the frame's instance (object-id) image.",
        vec![
            col("scene_id", Utf8, false, "", "Scene of the frame"),
            col("split", Utf8, false, "", SPLIT_DOC),
            col("frame_idx", Int64, false, "", "`frames.frame_idx`"),
            col("object_id", Int64, false, "", "`objects.object_id`"),
            col(
                "pixels",
                Int64,
                false,
                "px",
                "Pixels of the instance image showing the object",
            ),
            col(
                "fraction",
                Float64,
                false,
                "",
                "`pixels` over the instance image's pixel count",
            ),
            col(
                "bbox",
                f64s(4),
                false,
                "",
                "2D box x0 y0 x1 y1 as fractions of the image width and height (resolution-free)",
            ),
            col(
                "depth_median_m",
                Float64,
                true,
                "m",
                "Median true depth over the object's pixels with valid depth (null without depth)",
            ),
        ],
    )
}

/// `qa`: spatial questions generated from geometry, with their answers.
pub fn qa_schema() -> SchemaRef {
    use DataType::*;
    schema(
        "qa",
        "One row per spatial question about a set of views of one scene, answered from geometry (never by a model).",
        vec![
            col(
                "qa_id",
                Utf8,
                false,
                "",
                "Key: hash of the generator version, scene, views, family, template, objects and points",
            ),
            col("scene_id", Utf8, false, "", "Scene of the views"),
            col("split", Utf8, false, "", SPLIT_DOC),
            col(
                "frame_indices",
                list_of(Int64),
                false,
                "",
                "`frames.frame_idx` of the views shown, in order (view 1 is the first)",
            ),
            col(
                "family",
                Utf8,
                false,
                "",
                "Question family, e.g. `camera_motion`, `relative_depth`, `object_distance` (docs/qa.md)",
            ),
            col(
                "template_id",
                Int64,
                false,
                "",
                "Which of the family's templates phrased the question",
            ),
            col("question", Utf8, false, "", "The question text"),
            col(
                "options",
                list_of(Utf8),
                false,
                "",
                "Answer options of a multiple-choice question (empty for numeric ones)",
            ),
            col(
                "answer",
                Utf8,
                false,
                "",
                "The answer text: one of `options`, or the number as written",
            ),
            col(
                "answer_numeric",
                Float64,
                true,
                "",
                "The answer as a number for numeric questions (metres, counts); null for multiple choice",
            ),
            col(
                "object_ids",
                list_of(Int64),
                false,
                "",
                "`objects.object_id` of the objects the question names",
            ),
            col(
                "margin",
                Float64,
                false,
                "",
                "How far from ambiguous the answer is, in the family's own measure (relative depth difference, degrees from a boundary, ...; docs/qa.md)",
            ),
            col(
                "source",
                Utf8,
                false,
                "",
                "`gt` (true geometry) or `pseudo:{teacher_hash}` (a teacher's pseudo-labels)",
            ),
            col(
                "generator_version",
                Utf8,
                false,
                "",
                "Version of the question generator (templates and rules)",
            ),
        ],
    )
}
