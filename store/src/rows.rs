//! Row structs and batch builders for the tables stages write most: importers fill
//! [`FrameRow`]s and [`SceneRow`]s and turn them into schema-exact batches here.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, FixedSizeListBuilder, Float64Builder, Int32Array, Int64Array,
    ListBuilder, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow::datatypes::{DataType, Field};
use spatialsv_schemas::{
    SourceKind, Split, clips_schema, frames_schema, quarantine_schema, scenes_schema,
};

use crate::error::Result;

/// One frame, as importers produce it.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameRow {
    /// Scene id.
    pub scene_id: String,
    /// Index in capture order.
    pub frame_idx: i64,
    /// Time since the start of the scene.
    pub timestamp_ns: i64,
    /// Scan or video.
    pub source: SourceKind,
    /// Split of the scene.
    pub split: Split,
    /// Encoded image bytes.
    pub image: Vec<u8>,
    /// `jpeg` or `png`.
    pub image_codec: String,
    /// Image size in pixels.
    pub width: i32,
    /// Image size in pixels.
    pub height: i32,
    /// Depth map with its encoding and camera, when there is one.
    pub depth: Option<DepthMap>,
    /// Intrinsics of the colour image: fx, fy, cx, cy in pixels; `None` when unknown (video).
    pub intrinsics: Option<[f64; 4]>,
    /// `pinhole`, `simple_radial`, `radial`, `opencv`.
    pub camera_model: String,
    /// Distortion coefficients in COLMAP order.
    pub distortion: Vec<f64>,
    /// Camera-to-world, row-major.
    pub world_from_camera: Option<[f64; 16]>,
    /// `groundtruth`, `sfm`, `synthetic`.
    pub pose_source: Option<String>,
    /// Where the frame came from.
    pub source_uri: String,
}

/// A stored depth map.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthMap {
    /// 16-bit grayscale PNG bytes, 0 = invalid.
    pub png16: Vec<u8>,
    /// Metres per stored unit.
    pub scale_m: f64,
    /// Size of the depth map in pixels.
    pub width: i32,
    /// Size of the depth map in pixels.
    pub height: i32,
    /// Intrinsics of the depth map: fx, fy, cx, cy in its own pixels.
    pub intrinsics: [f64; 4],
}

/// The identity of a frame: BLAKE3 over its scene id, timestamp, image, depth and pose bytes.
/// The scene and time are included so that identical images at different moments (a frozen
/// or black stretch of video) stay distinct frames.
pub fn content_hash(
    scene_id: &str,
    timestamp_ns: i64,
    image: &[u8],
    depth: Option<&[u8]>,
    pose: Option<&[f64; 16]>,
) -> String {
    let mut h = blake3::Hasher::new();
    h.update(&(scene_id.len() as u64).to_le_bytes());
    h.update(scene_id.as_bytes());
    h.update(&timestamp_ns.to_le_bytes());
    h.update(&(image.len() as u64).to_le_bytes());
    h.update(image);
    match depth {
        Some(d) => {
            h.update(&(d.len() as u64).to_le_bytes());
            h.update(d);
        }
        None => {
            h.update(&u64::MAX.to_le_bytes());
        }
    }
    if let Some(p) = pose {
        for v in p {
            h.update(&v.to_le_bytes());
        }
    }
    h.finalize().to_hex().to_string()
}

impl FrameRow {
    /// This frame's content hash.
    pub fn content_hash(&self) -> String {
        content_hash(
            &self.scene_id,
            self.timestamp_ns,
            &self.image,
            self.depth.as_ref().map(|d| d.png16.as_slice()),
            self.world_from_camera.as_ref(),
        )
    }
}

pub(crate) fn strings<'a>(it: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(it))
}

fn opt_strings<'a>(it: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(it.collect::<StringArray>())
}

fn f64s(it: impl Iterator<Item = Option<f64>>) -> ArrayRef {
    let mut b = Float64Builder::new();
    for v in it {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

/// Builds a `frames` batch (schema-exact; validated on commit).
pub fn frames_batch(rows: &[FrameRow]) -> Result<RecordBatch> {
    let d = |f: fn(&DepthMap) -> f64| f64s(rows.iter().map(move |r| r.depth.as_ref().map(f)));
    let mut image = BinaryBuilder::new();
    let mut depth = BinaryBuilder::new();
    for r in rows {
        image.append_value(&r.image);
        depth.append_option(r.depth.as_ref().map(|d| &d.png16));
    }
    let mut dist = ListBuilder::new(Float64Builder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Float64,
        false,
    )));
    for r in rows {
        dist.values().append_slice(&r.distortion);
        dist.append(true);
    }
    let mut pose = FixedSizeListBuilder::new(Float64Builder::new(), 16)
        .with_field(Arc::new(Field::new("item", DataType::Float64, false)));
    for r in rows {
        match &r.world_from_camera {
            Some(p) => {
                pose.values().append_slice(p);
                pose.append(true);
            }
            None => {
                pose.values().append_slice(&[0.0; 16]);
                pose.append(false);
            }
        }
    }
    let hashes: Vec<String> = rows.iter().map(FrameRow::content_hash).collect();
    let cols: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| r.scene_id.as_str())),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.frame_idx),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.timestamp_ns),
        )),
        strings(rows.iter().map(|r| r.source.as_str())),
        strings(rows.iter().map(|r| r.split.as_str())),
        Arc::new(image.finish()),
        strings(rows.iter().map(|r| r.image_codec.as_str())),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.width))),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.height))),
        Arc::new(depth.finish()),
        opt_strings(rows.iter().map(|r| r.depth.as_ref().map(|_| "png16"))),
        d(|d| d.scale_m),
        Arc::new(
            rows.iter()
                .map(|r| r.depth.as_ref().map(|d| d.width))
                .collect::<Int32Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.depth.as_ref().map(|d| d.height))
                .collect::<Int32Array>(),
        ),
        d(|d| d.intrinsics[0]),
        d(|d| d.intrinsics[1]),
        d(|d| d.intrinsics[2]),
        d(|d| d.intrinsics[3]),
        f64s(rows.iter().map(|r| r.intrinsics.map(|k| k[0]))),
        f64s(rows.iter().map(|r| r.intrinsics.map(|k| k[1]))),
        f64s(rows.iter().map(|r| r.intrinsics.map(|k| k[2]))),
        f64s(rows.iter().map(|r| r.intrinsics.map(|k| k[3]))),
        strings(rows.iter().map(|r| r.camera_model.as_str())),
        Arc::new(dist.finish()),
        Arc::new(pose.finish()),
        opt_strings(rows.iter().map(|r| r.pose_source.as_deref())),
        strings(hashes.iter().map(String::as_str)),
        strings(rows.iter().map(|r| r.source_uri.as_str())),
    ];
    Ok(RecordBatch::try_new(frames_schema(), cols)?)
}

/// One scene, as importers produce it.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneRow {
    /// Scene id.
    pub scene_id: String,
    /// Scan or video.
    pub source: SourceKind,
    /// Where it was read from.
    pub source_uri: String,
    /// Layout it was read from.
    pub dataset_format: String,
    /// Split.
    pub split: Split,
    /// Frames committed.
    pub num_frames: i64,
    /// Frames refused.
    pub num_quarantined: i64,
    /// Commit time, ns since the Unix epoch.
    pub ingested_at_ns: i64,
}

/// Builds a `scenes` batch.
pub fn scenes_batch(rows: &[SceneRow]) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| r.scene_id.as_str())),
        strings(rows.iter().map(|r| r.source.as_str())),
        strings(rows.iter().map(|r| r.source_uri.as_str())),
        strings(rows.iter().map(|r| r.dataset_format.as_str())),
        strings(rows.iter().map(|r| r.split.as_str())),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.num_frames),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.num_quarantined),
        )),
        Arc::new(
            TimestampNanosecondArray::from_iter_values(rows.iter().map(|r| r.ingested_at_ns))
                .with_timezone("UTC"),
        ),
    ];
    Ok(RecordBatch::try_new(scenes_schema(), cols)?)
}

/// One refused input.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineRow {
    /// The refused file.
    pub source_uri: String,
    /// Scene, when known.
    pub scene_id: Option<String>,
    /// Frame index, when known.
    pub frame_idx: Option<i64>,
    /// Stage that refused it.
    pub stage: String,
    /// Short reason code.
    pub reason: String,
    /// Explanation.
    pub detail: String,
    /// When, ns since the Unix epoch.
    pub quarantined_at_ns: i64,
}

/// Builds a `quarantine` batch.
pub fn quarantine_batch(rows: &[QuarantineRow]) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| r.source_uri.as_str())),
        opt_strings(rows.iter().map(|r| r.scene_id.as_deref())),
        Arc::new(rows.iter().map(|r| r.frame_idx).collect::<Int64Array>()),
        strings(rows.iter().map(|r| r.stage.as_str())),
        strings(rows.iter().map(|r| r.reason.as_str())),
        strings(rows.iter().map(|r| r.detail.as_str())),
        Arc::new(
            TimestampNanosecondArray::from_iter_values(rows.iter().map(|r| r.quarantined_at_ns))
                .with_timezone("UTC"),
        ),
    ];
    Ok(RecordBatch::try_new(quarantine_schema(), cols)?)
}

/// Now, in ns since the Unix epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// One clip: consecutive frames of a scene processed together.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipRow {
    /// `{scene_id}/{first frame_idx}`.
    pub clip_id: String,
    /// Scene.
    pub scene_id: String,
    /// Split of the scene.
    pub split: Split,
    /// Frame indices in order.
    pub frame_indices: Vec<i64>,
    /// Timestamp of the first frame.
    pub start_timestamp_ns: i64,
    /// Timestamp of the last frame.
    pub end_timestamp_ns: i64,
}

/// Builds a `clips` batch.
pub fn clips_batch(rows: &[ClipRow]) -> Result<RecordBatch> {
    let mut idx = ListBuilder::new(arrow::array::Int64Builder::new())
        .with_field(Arc::new(Field::new("item", DataType::Int64, false)));
    for r in rows {
        idx.values().append_slice(&r.frame_indices);
        idx.append(true);
    }
    let cols: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| r.clip_id.as_str())),
        strings(rows.iter().map(|r| r.scene_id.as_str())),
        strings(rows.iter().map(|r| r.split.as_str())),
        Arc::new(idx.finish()),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.start_timestamp_ns),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.end_timestamp_ns),
        )),
    ];
    Ok(RecordBatch::try_new(clips_schema(), cols)?)
}
