//! A clip's targets: depth resized by nearest neighbour (intrinsics kept consistent), point
//! and ray maps in the first camera's coordinates.

use rayon::prelude::*;
use spatialsv_store::geometry::{Intrinsics, Mat4, invert_rigid, mul, rotate, transform_point};
use spatialsv_store::media::nearest_source;

use super::image::{Augment, prepare_image};
use super::{FrameRef, FrameStore};
use crate::error::{Result, TrainError};

/// A frame decoded at the training size: image, depth (m), intrinsics, pose.
pub type Prepared = (Vec<f32>, Vec<f32>, [f64; 4], Mat4);

/// A training example: one clip, decoded, resized and with its targets.
#[derive(Debug, Clone)]
pub struct ClipSample {
    /// `[v, 3, h, w]`, normalised to about zero mean and unit variance.
    pub images: Vec<f32>,
    /// `[v, h, w]` metres, 0 = invalid.
    pub depth: Vec<f32>,
    /// `[v, 3, h, w]` first-camera coordinates, metres.
    pub points: Vec<f32>,
    /// `[v, 6, h, w]` origin and unit direction, first-camera coordinates.
    pub rays: Vec<f32>,
    /// `[v, h, w]` 1 where depth (and the point) is a target: depth > 0, and for
    /// pseudo-labels a pixel that survived the filters in an accepted frame.
    pub valid: Vec<f32>,
    /// `[v, h, w]` 1 where the point and ray targets belong to this clip's geometry (0 inside
    /// a CutMix box pasted from another clip).
    pub geometry: Vec<f32>,
    /// Whether the targets are pseudo-labels (their largest losses are trimmed).
    pub pseudo: bool,
}

/// Decodes a clip at `w` x `h` and builds its targets. `seed` drives the augmentation.
pub fn load_clip(
    store: &FrameStore,
    clip: &[FrameRef],
    w: usize,
    h: usize,
    aug: Augment,
    seed: u64,
) -> Result<ClipSample> {
    let frames: Vec<Result<Prepared>> = clip
        .par_iter()
        .enumerate()
        .map(|(k, f)| {
            let raw = store.load(f)?;
            let img = prepare_image(&raw.image, w, h, aug, seed, k)?;
            let (png, scale, dk) = raw
                .depth
                .ok_or_else(|| TrainError::User(format!("frame {} has no depth", f.frame_idx)))?;
            let d = spatialsv_store::frames::decode_stored_depth(
                &png,
                format!("frame {}", f.frame_idx),
            )?;
            // Nearest-neighbour resize keeps invalid (0) pixels from bleeding into valid ones.
            // Target pixel x takes source pixel u(x) = floor((x + 0.5) * sx), whose centre is
            // off the exact mapping by a constant for integer factors (half a source pixel
            // when even): the principal point absorbs the mean offset, so rays go through the
            // depth samples actually taken.
            let (sx, sy) = (d.width as f64 / w as f64, d.height as f64 / h as f64);
            let offset = |n: usize, s: f64, max: u32| {
                (0..n)
                    .map(|t| f64::from(nearest_source(t, s, max)) + 0.5 - (t as f64 + 0.5) * s)
                    .sum::<f64>()
                    / n as f64
            };
            let (ox, oy) = (offset(w, sx, d.width), offset(h, sy, d.height));
            let depth: Vec<f32> = d
                .resized_nearest(w, h)
                .into_iter()
                .map(|v| (f64::from(v) * scale) as f32)
                .collect();
            let k = [dk[0] / sx, dk[1] / sy, (dk[2] - ox) / sx, (dk[3] - oy) / sy];
            let pose = raw
                .pose
                .ok_or_else(|| TrainError::User(format!("frame {} has no pose", f.frame_idx)))?;
            Ok((img, depth, k, pose))
        })
        .collect();
    let frames: Vec<Prepared> = frames.into_iter().collect::<Result<_>>()?;
    Ok(clip_targets(&frames, None, w, h))
}

/// Builds a clip's targets from its views (image, depth, intrinsics, camera pose in any
/// common frame): poses are re-expressed relative to the first view, points lifted from
/// depth, rays from intrinsics and pose. `keep` (per view and pixel) narrows the valid
/// pixels below those with depth (pseudo-labels' filters).
pub fn clip_targets(
    frames: &[Prepared],
    keep: Option<&[Vec<bool>]>,
    w: usize,
    h: usize,
) -> ClipSample {
    let hw = w * h;
    let first_inv = invert_rigid(&frames[0].3);
    let mut s = ClipSample {
        images: Vec::with_capacity(frames.len() * 3 * hw),
        depth: Vec::with_capacity(frames.len() * hw),
        points: vec![0.0; frames.len() * 3 * hw],
        rays: vec![0.0; frames.len() * 6 * hw],
        valid: vec![0.0; frames.len() * hw],
        geometry: vec![1.0; frames.len() * hw],
        pseudo: keep.is_some(),
    };
    for (v, (img, depth, k, pose)) in frames.iter().enumerate() {
        let k = Intrinsics::from_k(*k);
        s.images.extend_from_slice(img);
        s.depth.extend_from_slice(depth);
        for i in 0..hw {
            let kept = keep.is_none_or(|k| k[v][i]);
            s.valid[v * hw + i] = if kept && depth[i] > 0.0 { 1.0 } else { 0.0 };
        }
        let rel = mul(&first_inv, pose); // camera i -> first camera
        let origin = [rel[3], rel[7], rel[11]];
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                // The pixel's ray at z = 1 in its camera, rotated into the first camera.
                let ray = k.unproject(x as f64 + 0.5, y as f64 + 0.5, 1.0);
                let dir = rotate(&rel, ray);
                let n = (dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]).sqrt();
                for c in 0..3 {
                    s.rays[(v * 6 + c) * hw + i] = origin[c] as f32;
                    s.rays[(v * 6 + 3 + c) * hw + i] = (dir[c] / n) as f32;
                }
                let z = f64::from(depth[i]);
                if z > 0.0 {
                    let p = transform_point(&rel, [ray[0] * z, ray[1] * z, z]);
                    for (c, pc) in p.iter().enumerate() {
                        s.points[(v * 3 + c) * hw + i] = *pc as f32;
                    }
                }
            }
        }
    }
    s
}
