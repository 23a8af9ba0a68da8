//! Rows of the `pseudo_labels` table and their compact per-pixel encodings: depth as
//! little-endian f16, confidence quantised to one byte, the keep mask as one bit per pixel.
//! The labeler writes these rows; the trainer and `spatialsv eval` read them back.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, FixedSizeListBuilder, Float32Array, Float64Array,
    Float64Builder, Int32Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow::datatypes::{DataType, Field};
use spatialsv_schemas::{Columns, RejectKind, Split, Table};

use crate::error::{Error, Result};
use crate::hash::{Digest, Labelling, Selector};

/// Depth as little-endian IEEE half floats (2 bytes per pixel). Values beyond f16's range
/// saturate; non-finite or negative depth is stored as 0 (invalid).
pub fn encode_f16(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 2);
    for v in values {
        let v = if v.is_finite() && *v > 0.0 { *v } else { 0.0 };
        out.extend_from_slice(&half::f16::from_f32(v).to_le_bytes());
    }
    out
}

/// Inverse of [`encode_f16`]; `None` when the byte count is odd.
pub fn decode_f16(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
    )
}

/// Confidence (>= 1) quantised to one byte: `c = 1 + q * scale`, with the step chosen so the
/// frame's largest confidence maps to 255. Returns (bytes, scale).
pub fn quantise_confidence(conf: &[f32]) -> (Vec<u8>, f32) {
    let top = conf
        .iter()
        .copied()
        .filter(|c| c.is_finite())
        .fold(1.0f32, f32::max);
    let scale = ((top - 1.0) / 255.0).max(1e-6);
    let q = conf
        .iter()
        .map(|c| {
            let c = if c.is_finite() { *c } else { 1.0 };
            ((c - 1.0) / scale).round().clamp(0.0, 255.0) as u8
        })
        .collect();
    (q, scale)
}

/// Inverse of [`quantise_confidence`].
pub fn dequantise_confidence(q: &[u8], scale: f32) -> Vec<f32> {
    q.iter().map(|v| 1.0 + f32::from(*v) * scale).collect()
}

/// One bit per pixel, least significant bit first.
pub fn pack_mask(mask: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; mask.len().div_ceil(8)];
    for (i, m) in mask.iter().enumerate() {
        if *m {
            out[i / 8] |= 1 << (i % 8);
        }
    }
    out
}

/// Inverse of [`pack_mask`] for `n` pixels; `None` when `bytes` is too short.
pub fn unpack_mask(bytes: &[u8], n: usize) -> Option<Vec<bool>> {
    if bytes.len() < n.div_ceil(8) {
        return None;
    }
    Some((0..n).map(|i| bytes[i / 8] & (1 << (i % 8)) != 0).collect())
}

/// One row of `pseudo_labels` (see `docs/schemas.md` for every column).
#[derive(Debug, Clone, PartialEq)]
pub struct PseudoLabelRow {
    /// Scene of the frame.
    pub scene_id: String,
    /// `frames.frame_idx`.
    pub frame_idx: i64,
    /// Ingested clip the frame was labelled in.
    pub clip_id: String,
    /// First frame of the teacher's window (the pose reference).
    pub reference_frame_idx: i64,
    /// Split of the scene.
    pub split: Split,
    /// Map width.
    pub width: i32,
    /// Map height.
    pub height: i32,
    /// Depth per pixel in the teacher's normalised units (not metres), row-major.
    pub depth: Vec<f32>,
    /// Confidence per pixel (>= 1).
    pub confidence: Vec<f32>,
    /// Pixels that survive the pixel filters.
    pub keep: Vec<bool>,
    /// fx, fy, cx, cy at the map size.
    pub intrinsics: [f64; 4],
    /// Camera-to-reference-camera (the camera of `reference_frame_idx`), row-major,
    /// translation in the teacher's normalised units.
    pub reference_from_camera: [f64; 16],
    /// Median predicted depth, normalised units.
    pub depth_median: f64,
    /// Metres per normalised unit, where the teacher knows it.
    pub metres_per_unit: Option<f64>,
    /// Mean confidence.
    pub confidence_mean: f64,
    /// Pixels removed by the confidence filter.
    pub px_removed_confidence: i64,
    /// Further pixels removed by the geometric filter.
    pub px_removed_geometric: i64,
    /// Worst rotation closure error (degrees).
    pub camera_rotation_error_deg: f64,
    /// Worst translation-direction closure error (degrees).
    pub camera_direction_error_deg: f64,
    /// Whether the pose cycles through the frame close.
    pub camera_consistent: bool,
    /// Whether the frame is used for training.
    pub accepted: bool,
    /// Why it is not, as a category.
    pub reject_kind: Option<RejectKind>,
    /// Why it is not, in words.
    pub reject_reason: Option<String>,
    /// BLAKE3 of the teacher checkpoint.
    pub teacher_hash: String,
    /// BLAKE3 of `config_toml`.
    pub config_hash: String,
    /// The resolved labelling config.
    pub config_toml: String,
    /// spatialsv version.
    pub code_version: String,
    /// Commit time, ns since the epoch (UTC).
    pub labeled_at: i64,
}

impl PseudoLabelRow {
    /// Whether this row belongs to labelling `l` (compares in place: no copies per row).
    pub fn is_of(&self, l: &Labelling) -> bool {
        self.teacher_hash == l.teacher.as_str() && self.config_hash == l.config.as_str()
    }

    /// The labelling this row belongs to.
    pub fn labelling(&self) -> Labelling {
        Labelling {
            teacher: Digest::from_stored(self.teacher_hash.clone()),
            config: Digest::from_stored(self.config_hash.clone()),
        }
    }

    /// Pixels that survive every filter.
    pub fn px_kept(&self) -> i64 {
        self.keep.iter().filter(|k| **k).count() as i64
    }
}

/// The `pseudo_labels` batch of `rows` (depth, confidence and mask encoded here).
pub fn pseudo_labels_batch(rows: &[PseudoLabelRow]) -> Result<RecordBatch> {
    let s = |f: fn(&PseudoLabelRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let i64s = |f: fn(&PseudoLabelRow) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(rows.iter().map(f)))
    };
    let f64s = |f: fn(&PseudoLabelRow) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(f)))
    };
    let bools = |f: fn(&PseudoLabelRow) -> bool| -> ArrayRef {
        Arc::new(BooleanArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let quantised: Vec<(Vec<u8>, f32)> = rows
        .iter()
        .map(|r| quantise_confidence(&r.confidence))
        .collect();
    let mut poses = FixedSizeListBuilder::new(Float64Builder::new(), 16)
        .with_field(Arc::new(Field::new("item", DataType::Float64, false)));
    for r in rows {
        poses.values().append_slice(&r.reference_from_camera);
        poses.append(true);
    }
    let depth: Vec<Vec<u8>> = rows.iter().map(|r| encode_f16(&r.depth)).collect();
    let masks: Vec<Vec<u8>> = rows.iter().map(|r| pack_mask(&r.keep)).collect();
    let cols: Vec<ArrayRef> = vec![
        s(|r| &r.scene_id),
        i64s(|r| r.frame_idx),
        s(|r| &r.clip_id),
        i64s(|r| r.reference_frame_idx),
        s(|r| r.split.as_str()),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.width))),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.height))),
        Arc::new(BinaryArray::from_iter_values(depth.iter())),
        Arc::new(BinaryArray::from_iter_values(
            quantised.iter().map(|q| q.0.as_slice()),
        )),
        Arc::new(Float32Array::from_iter_values(
            quantised.iter().map(|q| q.1),
        )),
        Arc::new(BinaryArray::from_iter_values(masks.iter())),
        f64s(|r| r.intrinsics[0]),
        f64s(|r| r.intrinsics[1]),
        f64s(|r| r.intrinsics[2]),
        f64s(|r| r.intrinsics[3]),
        Arc::new(poses.finish()),
        f64s(|r| r.depth_median),
        Arc::new(Float64Array::from(
            rows.iter().map(|r| r.metres_per_unit).collect::<Vec<_>>(),
        )),
        f64s(|r| r.confidence_mean),
        i64s(|r| i64::from(r.width) * i64::from(r.height)),
        i64s(|r| r.px_removed_confidence),
        i64s(|r| r.px_removed_geometric),
        i64s(PseudoLabelRow::px_kept),
        f64s(|r| r.camera_rotation_error_deg),
        f64s(|r| r.camera_direction_error_deg),
        bools(|r| r.camera_consistent),
        bools(|r| r.accepted),
        Arc::new(StringArray::from(
            rows.iter()
                .map(|r| r.reject_kind.map(RejectKind::as_str))
                .collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter()
                .map(|r| r.reject_reason.as_deref())
                .collect::<Vec<_>>(),
        )),
        s(|r| &r.teacher_hash),
        s(|r| &r.config_hash),
        s(|r| &r.config_toml),
        s(|r| &r.code_version),
        Arc::new(
            TimestampNanosecondArray::from_iter_values(rows.iter().map(|r| r.labeled_at))
                .with_timezone("UTC"),
        ),
    ];
    Ok(RecordBatch::try_new(Table::PseudoLabels.schema(), cols)?)
}

/// Decodes the rows of a `pseudo_labels` batch read with all columns.
pub fn read_pseudo_labels(batch: &RecordBatch) -> Result<Vec<PseudoLabelRow>> {
    let bad = |what: String| Error::User(format!("pseudo_labels: {what}"));
    let c = Columns::new(Table::PseudoLabels, batch)?;
    let (scene, frame, clip, reference) = (
        c.strings("scene_id")?,
        c.i64s("frame_idx")?,
        c.strings("clip_id")?,
        c.i64s("reference_frame_idx")?,
    );
    let split = c.strings("split")?;
    let (width, height) = (c.i32s("width")?, c.i32s("height")?);
    let (depth, conf, mask) = (
        c.binaries("depth_normalised")?,
        c.binaries("confidence")?,
        c.binaries("keep_mask")?,
    );
    let scale = c.f32s("confidence_scale")?;
    let k = [c.f64s("fx")?, c.f64s("fy")?, c.f64s("cx")?, c.f64s("cy")?];
    let pose = c.poses("reference_from_camera")?;
    let (dmed, cmean) = (
        c.f64s("depth_median_normalised")?,
        c.f64s("confidence_mean")?,
    );
    let mpu = c.f64s("metres_per_unit")?;
    let (rc, rg) = (
        c.i64s("px_removed_confidence")?,
        c.i64s("px_removed_geometric")?,
    );
    let (rot, dir) = (
        c.f64s("camera_rotation_error_deg")?,
        c.f64s("camera_direction_error_deg")?,
    );
    let consistent = c.bools("camera_consistent")?;
    let accepted = c.bools("accepted")?;
    let (kind, reason) = (c.strings("reject_kind")?, c.strings("reject_reason")?);
    let (th, ch, ct, cv) = (
        c.strings("teacher_hash")?,
        c.strings("config_hash")?,
        c.strings("config_toml")?,
        c.strings("code_version")?,
    );
    let at = c.timestamps("labeled_at")?;
    let mut rows = Vec::with_capacity(batch.num_rows());
    for r in 0..batch.num_rows() {
        let key = || format!("{} frame {}", scene.value(r), frame.value(r));
        let (w, h) = (width.value(r), height.value(r));
        let n = (w.max(0) as usize) * (h.max(0) as usize);
        let d = decode_f16(depth.value(r))
            .filter(|d| d.len() == n)
            .ok_or_else(|| bad(format!("{}: depth is not {w}x{h} f16 values", key())))?;
        let c = dequantise_confidence(conf.value(r), scale.value(r));
        if c.len() != n {
            return Err(bad(format!("{}: confidence is not {w}x{h} bytes", key())));
        }
        let keep = unpack_mask(mask.value(r), n)
            .ok_or_else(|| bad(format!("{}: keep_mask is shorter than {w}x{h} bits", key())))?;
        let p = pose
            .get(r)
            .ok_or_else(|| bad(format!("{}: reference_from_camera is null", key())))?;
        rows.push(PseudoLabelRow {
            scene_id: scene.value(r).to_string(),
            frame_idx: frame.value(r),
            clip_id: clip.value(r).to_string(),
            reference_frame_idx: reference.value(r),
            split: split
                .value(r)
                .parse()
                .map_err(|e| bad(format!("{}: {e}", key())))?,
            width: w,
            height: h,
            depth: d,
            confidence: c,
            keep,
            intrinsics: k.map(|a| a.value(r)),
            reference_from_camera: p,
            depth_median: dmed.value(r),
            metres_per_unit: (!mpu.is_null(r)).then(|| mpu.value(r)),
            confidence_mean: cmean.value(r),
            px_removed_confidence: rc.value(r),
            px_removed_geometric: rg.value(r),
            camera_rotation_error_deg: rot.value(r),
            camera_direction_error_deg: dir.value(r),
            camera_consistent: consistent.value(r),
            accepted: accepted.value(r),
            reject_kind: if kind.is_null(r) {
                None
            } else {
                Some(
                    kind.value(r)
                        .parse()
                        .map_err(|e| bad(format!("{}: {e}", key())))?,
                )
            },
            reject_reason: (!reason.is_null(r)).then(|| reason.value(r).to_string()),
            teacher_hash: th.value(r).to_string(),
            config_hash: ch.value(r).to_string(),
            config_toml: ct.value(r).to_string(),
            code_version: cv.value(r).to_string(),
            labeled_at: at.value(r),
        });
    }
    Ok(rows)
}

/// The newest labelling among `rows` that `selector` names ([`Selector`]).
pub fn select_labelling(rows: &[PseudoLabelRow], selector: &Selector) -> Result<Labelling> {
    rows.iter()
        .filter(|r| selector.matches_hashes(&r.teacher_hash, &r.config_hash))
        .max_by_key(|r| r.labeled_at)
        .map(PseudoLabelRow::labelling)
        .ok_or_else(|| {
            let (teacher, config) = match selector {
                Selector::Latest => (None, None),
                Selector::Prefix { teacher, config } => (teacher.as_deref(), config.as_deref()),
            };
            Error::User(match (teacher, config) {
                (Some(t), Some(c)) => format!(
                    "no pseudo-labels from a teacher whose hash starts with '{t}' and a config whose hash starts with '{c}'"
                ),
                (Some(p), None) => format!("no pseudo-labels from a teacher whose hash starts with '{p}'"),
                _ => "the dataset has no pseudo-labels; run `spatialsv label` first".into(),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// f16 depth round-trips within half precision (relative 2^-11, or one step
            /// of f16's smallest normals), and invalid depth becomes 0.
            #[test]
            fn f16_depth_round_trips(values in proptest::collection::vec(prop_oneof![
                1e-3f32..6e4f32,
                Just(0.0f32),
                Just(-1.0f32),
                Just(f32::NAN),
                Just(f32::INFINITY),
            ], 0..64)) {
                let back = decode_f16(&encode_f16(&values)).unwrap();
                prop_assert_eq!(back.len(), values.len());
                for (v, b) in values.iter().zip(&back) {
                    if v.is_finite() && *v > 0.0 {
                        prop_assert!((b - v).abs() <= v * 1.0 / 2048.0 + 6.2e-5, "{v} -> {b}");
                    } else {
                        prop_assert_eq!(*b, 0.0);
                    }
                }
            }

            /// The keep mask round-trips exactly, at any length.
            #[test]
            fn masks_round_trip(mask in proptest::collection::vec(any::<bool>(), 0..300)) {
                let packed = pack_mask(&mask);
                prop_assert_eq!(packed.len(), mask.len().div_ceil(8));
                prop_assert_eq!(unpack_mask(&packed, mask.len()).unwrap(), mask.clone());
                if !mask.is_empty() {
                    prop_assert!(unpack_mask(&packed[..packed.len() - 1], mask.len() + 8).is_none());
                }
            }

            /// Confidence quantised to a byte comes back within half a step, the largest
            /// exactly at the top of the range.
            #[test]
            fn confidence_round_trips_within_half_a_step(conf in proptest::collection::vec(1.0f32..500.0, 1..64)) {
                let (q, scale) = quantise_confidence(&conf);
                let back = dequantise_confidence(&q, scale);
                for (c, b) in conf.iter().zip(&back) {
                    prop_assert!((b - c).abs() <= scale * 0.5 + 1e-3 * c, "{c} -> {b} (step {scale})");
                }
            }
        }
    }

    #[test]
    fn encodings_round_trip() {
        let d = [0.5f32, 1.25, 3.0, -1.0, f32::NAN, 70000.0];
        let back = decode_f16(&encode_f16(&d)).unwrap();
        assert_eq!(&back[..3], &[0.5, 1.25, 3.0]);
        assert_eq!(back[3], 0.0);
        assert_eq!(back[4], 0.0);
        assert!(back[5].is_infinite() || back[5] >= 65504.0);
        assert!(decode_f16(&[1, 2, 3]).is_none());

        let c = [1.0f32, 2.0, 11.0, 6.0];
        let (q, scale) = quantise_confidence(&c);
        let back = dequantise_confidence(&q, scale);
        for (a, b) in c.iter().zip(&back) {
            assert!((a - b).abs() <= scale / 2.0 + 1e-6, "{a} {b}");
        }
        assert_eq!(q[2], 255);

        let m = [true, false, true, true, false, false, false, false, true];
        let packed = pack_mask(&m);
        assert_eq!(packed, vec![0b0000_1101, 0b0000_0001]);
        assert_eq!(unpack_mask(&packed, 9).unwrap(), m);
        assert!(unpack_mask(&packed, 17).is_none());
    }

    #[test]
    fn rows_round_trip_through_a_valid_batch() {
        let row = PseudoLabelRow {
            scene_id: "v".into(),
            frame_idx: 3,
            clip_id: "v/0".into(),
            reference_frame_idx: 1,
            split: Split::Train,
            width: 3,
            height: 2,
            depth: vec![1.0, 2.0, 0.0, 1.5, 1.25, 4.0],
            confidence: vec![1.0, 3.0, 2.0, 1.5, 9.0, 1.0],
            keep: vec![true, true, false, true, false, true],
            intrinsics: [2.0, 2.0, 1.5, 1.0],
            reference_from_camera: crate::geometry::IDENTITY,
            depth_median: 1.5,
            metres_per_unit: Some(2.0),
            confidence_mean: 3.0,
            px_removed_confidence: 1,
            px_removed_geometric: 1,
            camera_rotation_error_deg: 0.5,
            camera_direction_error_deg: 2.0,
            camera_consistent: true,
            accepted: false,
            reject_kind: Some(RejectKind::Pixels),
            reject_reason: Some("kept 4 of 6 pixels".into()),
            teacher_hash: "t".into(),
            config_hash: "c".into(),
            config_toml: "x = 1".into(),
            code_version: "0".into(),
            labeled_at: 7,
        };
        let batch = pseudo_labels_batch(std::slice::from_ref(&row)).unwrap();
        Table::PseudoLabels.validate(&batch).unwrap();
        let back = read_pseudo_labels(&batch).unwrap();
        assert_eq!(back.len(), 1);
        let b = &back[0];
        assert_eq!(b.depth, row.depth);
        assert_eq!(b.keep, row.keep);
        assert_eq!(b.px_kept(), 4);
        assert_eq!(b.reject_reason, row.reject_reason);
        assert_eq!(b.reject_kind, row.reject_kind);
        assert_eq!(b.reference_from_camera, row.reference_from_camera);
        assert!((b.confidence[4] - 9.0).abs() < 1e-4);

        // Selecting a labelling: newest, by teacher prefix, by teacher and config prefixes.
        let with = |t: &str, c: &str, at: i64| PseudoLabelRow {
            teacher_hash: t.into(),
            config_hash: c.into(),
            labeled_at: at,
            ..row.clone()
        };
        let rows = [
            with("aa1", "c1", 1),
            with("aa1", "c2", 3),
            with("bb2", "c1", 2),
        ];
        let pick = |s: &str| {
            select_labelling(&rows, &s.parse().unwrap())
                .map(|l| format!("{}/{}", l.teacher, l.config))
        };
        assert_eq!(pick("latest").unwrap(), "aa1/c2");
        assert_eq!(pick("bb").unwrap(), "bb2/c1");
        assert_eq!(pick("aa:c1").unwrap(), "aa1/c1");
        assert_eq!(pick(":c1").unwrap(), "bb2/c1");
        assert!(pick("aa:c9").unwrap_err().to_string().contains("'c9'"));
    }
}
