//! Training data from the store: clips sampled from scenes (frames come through the store's
//! read side, [`FrameStore`]), decoding and augmentation in parallel (rayon), resizing with
//! intrinsics kept consistent, and targets (depth, point map and ray map in the first
//! frame's camera coordinates).

use std::sync::Arc;

use image::imageops::FilterType;
use rayon::prelude::*;
use spatialsv_pipeline::datagen::SplitMix64;
use spatialsv_pipeline::geometry::{Intrinsics, Mat4, invert_rigid, mul, rotate, transform_point};
use spatialsv_pipeline::media::nearest_source;
pub use spatialsv_pipeline::{FrameRef, FrameStore, SceneFrames};

use crate::error::{Result, TrainError};

/// A frame decoded at the training size: image, depth (m), intrinsics, pose.
pub type Prepared = (Vec<f32>, Vec<f32>, [f64; 4], Mat4);

/// Chooses `n` clips of `len` frames: a random scene, a random start and a random gap of 1 to
/// `max_gap` frames, so views overlap but move.
pub fn sample_clips(
    scenes: &SceneFrames,
    n: usize,
    len: usize,
    max_gap: usize,
    rng: &mut SplitMix64,
) -> Vec<Vec<FrameRef>> {
    let usable: Vec<&Vec<FrameRef>> = scenes.values().filter(|f| f.len() >= len).collect();
    if usable.is_empty() {
        return Vec::new();
    }
    (0..n)
        .map(|_| {
            let frames = usable[(rng.next_u64() % usable.len() as u64) as usize];
            let most_gap = if len > 1 {
                ((frames.len() - 1) / (len - 1)).clamp(1, max_gap.max(1))
            } else {
                1
            };
            let gap = 1 + (rng.next_u64() % most_gap as u64) as usize;
            let span = (len - 1) * gap;
            let start = (rng.next_u64() % (frames.len() - span) as u64) as usize;
            (0..len).map(|k| frames[start + k * gap]).collect()
        })
        .collect()
}

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

/// Colour and blur perturbations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    /// Max relative change of brightness, contrast and saturation.
    pub colour: f32,
    /// Probability of a 3x3 box blur.
    pub blur: f64,
}

impl Augment {
    /// No perturbation (evaluation).
    pub const NONE: Augment = Augment {
        colour: 0.0,
        blur: 0.0,
    };
}

fn decode_rgb(bytes: &[u8], w: usize, h: usize) -> Result<(Vec<f32>, u32, u32)> {
    let img = image::load_from_memory(bytes)
        .map_err(|e| TrainError::User(format!("undecodable image ({e})")))?;
    let (iw, ih) = (img.width(), img.height());
    let rgb = image::imageops::resize(&img.to_rgb8(), w as u32, h as u32, FilterType::Triangle);
    let mut out = vec![0.0f32; 3 * w * h];
    for (i, p) in rgb.pixels().enumerate() {
        for c in 0..3 {
            out[c * w * h + i] = f32::from(p.0[c]) / 255.0;
        }
    }
    Ok((out, iw, ih))
}

fn augment(img: &mut [f32], hw: usize, a: Augment, rng: &mut SplitMix64) {
    if a.colour > 0.0 {
        let j = |rng: &mut SplitMix64| 1.0 + a.colour * (2.0 * rng.next_f64() as f32 - 1.0);
        let (bright, contrast, sat) = (j(rng), j(rng), j(rng));
        let mean: f32 = img.iter().sum::<f32>() / img.len() as f32;
        for i in 0..hw {
            let grey = (img[i] + img[hw + i] + img[2 * hw + i]) / 3.0;
            for c in 0..3 {
                let v = &mut img[c * hw + i];
                *v = grey + (*v - grey) * sat;
                *v = mean + (*v - mean) * contrast;
                *v = (*v * bright).clamp(0.0, 1.0);
            }
        }
    }
}

fn box_blur(img: &mut [f32], w: usize, h: usize) {
    for c in 0..3 {
        let plane = &mut img[c * w * h..(c + 1) * w * h];
        let src = plane.to_vec();
        for y in 0..h {
            for x in 0..w {
                let (mut s, mut n) = (0.0, 0.0);
                for dy in -1i64..=1 {
                    for dx in -1i64..=1 {
                        let (yy, xx) = (y as i64 + dy, x as i64 + dx);
                        if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                            s += src[yy as usize * w + xx as usize];
                            n += 1.0;
                        }
                    }
                }
                plane[y * w + x] = s / n;
            }
        }
    }
}

/// Decodes, resizes, perturbs (seeded by `seed` and the view `k`) and normalises one image to
/// `[3, h, w]`.
fn prepare_image(
    bytes: &[u8],
    w: usize,
    h: usize,
    aug: Augment,
    seed: u64,
    k: usize,
) -> Result<Vec<f32>> {
    let (mut img, _, _) = decode_rgb(bytes, w, h)?;
    let mut rng = SplitMix64::new(seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    augment(&mut img, w * h, aug, &mut rng);
    if aug.blur > 0.0 && rng.next_f64() < aug.blur {
        box_blur(&mut img, w, h);
    }
    Ok(img.iter().map(|v| (v - 0.45) / 0.25).collect())
}

/// The images of `clip` only (no targets; frames need no depth, pose or intrinsics), as
/// `[v, 3, h, w]` normalised like [`load_clip`]'s: what the labeler feeds its teacher.
pub fn load_images(
    store: &FrameStore,
    clip: &[FrameRef],
    w: usize,
    h: usize,
    aug: Augment,
    seed: u64,
) -> Result<Vec<f32>> {
    let views: Vec<Result<Vec<f32>>> = clip
        .par_iter()
        .enumerate()
        .map(|(k, f)| {
            store
                .with_image(f, |bytes| prepare_image(bytes, w, h, aug, seed, k))?
                .map_err(|e| TrainError::User(format!("frame {}: {e}", f.frame_idx)))
        })
        .collect();
    Ok(views.into_iter().collect::<Result<Vec<_>>>()?.concat())
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
            let d = spatialsv_pipeline::media::decode_png16(&png)
                .map_err(|e| TrainError::User(format!("frame {}: {e}", f.frame_idx)))?;
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

/// A burn [`Dataset`](burn::data::dataset::Dataset) of clips over the store: item `i` is clip
/// `i` decoded (with its augmentation seed), so any burn data loader can drive training. A
/// clip that cannot be decoded yields `None` and a warning naming it.
pub struct ClipDataset {
    store: Arc<FrameStore>,
    clips: Vec<Vec<FrameRef>>,
    size: (usize, usize),
    augment: Augment,
    seed: u64,
}

impl std::fmt::Debug for ClipDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipDataset")
            .field("clips", &self.clips.len())
            .finish_non_exhaustive()
    }
}

impl ClipDataset {
    /// Clips `clips` of `store`, decoded at `w` x `h`.
    pub fn new(
        store: Arc<FrameStore>,
        clips: Vec<Vec<FrameRef>>,
        w: usize,
        h: usize,
        augment: Augment,
        seed: u64,
    ) -> Self {
        Self {
            store,
            clips,
            size: (w, h),
            augment,
            seed,
        }
    }

    /// Item `index`, with the error when it cannot be decoded.
    pub fn try_get(&self, index: usize) -> Result<ClipSample> {
        let clip = self
            .clips
            .get(index)
            .ok_or_else(|| TrainError::Internal(format!("no clip {index}")))?;
        load_clip(
            &self.store,
            clip,
            self.size.0,
            self.size.1,
            self.augment,
            self.seed ^ index as u64,
        )
    }
}

impl burn::data::dataset::Dataset<ClipSample> for ClipDataset {
    fn get(&self, index: usize) -> Option<ClipSample> {
        match self.try_get(index) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("clip {index} skipped: {e}");
                None
            }
        }
    }

    fn len(&self) -> usize {
        self.clips.len()
    }
}

/// A batch of clips: images `[b, v, 3, h, w]` and targets, normalised per clip.
#[derive(Debug, Clone)]
pub struct ClipBatch<B: burn::tensor::backend::Backend> {
    /// Normalised images.
    pub images: burn::tensor::Tensor<B, 5>,
    /// Targets (see [`crate::loss::normalize_targets`]).
    pub targets: crate::loss::Targets<B>,
}

/// The burn [`Batcher`](burn::data::dataloader::batcher::Batcher) stacking [`ClipSample`]s.
#[derive(Debug, Clone, Copy)]
pub struct ClipBatcher {
    /// Frames per clip.
    pub frames: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
}

impl<B: burn::tensor::backend::Backend>
    burn::data::dataloader::batcher::Batcher<B, ClipSample, ClipBatch<B>> for ClipBatcher
{
    fn batch(&self, items: Vec<ClipSample>, device: &B::Device) -> ClipBatch<B> {
        use burn::tensor::{Tensor, TensorData};
        let (b, v, h, w) = (items.len(), self.frames, self.height, self.width);
        let cat = |f: fn(&ClipSample) -> &Vec<f32>| {
            items
                .iter()
                .flat_map(|s| f(s).iter().copied())
                .collect::<Vec<f32>>()
        };
        let images =
            Tensor::from_data(TensorData::new(cat(|s| &s.images), [b, v, 3, h, w]), device);
        let depth: Tensor<B, 4> =
            Tensor::from_data(TensorData::new(cat(|s| &s.depth), [b, v, h, w]), device);
        let mask: Tensor<B, 4> =
            Tensor::from_data(TensorData::new(cat(|s| &s.valid), [b, v, h, w]), device);
        let geometry: Tensor<B, 4> =
            Tensor::from_data(TensorData::new(cat(|s| &s.geometry), [b, v, h, w]), device);
        let targets = crate::loss::Targets {
            depth,
            points: Tensor::from_data(TensorData::new(cat(|s| &s.points), [b, v, 3, h, w]), device),
            rays: Tensor::from_data(TensorData::new(cat(|s| &s.rays), [b, v, 6, h, w]), device),
            point_mask: mask.clone() * geometry.clone(),
            ray_mask: geometry,
            mask,
            pseudo: items.iter().map(|s| s.pseudo).collect(),
        };
        ClipBatch {
            images,
            targets: crate::loss::normalize_targets(targets).0,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use spatialsv_pipeline::Dataset;
    use spatialsv_pipeline::ingest::{
        IngestOptions, ScanFormat, SplitChoice, ingest_scans, list_scenes,
    };
    use spatialsv_pipeline::synth::{SynthOptions, scan_geometry, synthesize};
    use spatialsv_schemas::Split;

    use super::*;

    /// A dataset of two synthetic scan scenes (one train, one test).
    pub(crate) fn synthetic_dataset(dir: &std::path::Path) -> (Dataset, SynthOptions) {
        let opts = SynthOptions {
            scenes: 2,
            videos: 0,
            frames: 8,
            width: 48,
            height: 36,
            ..SynthOptions::default()
        };
        synthesize(&dir.join("world"), &opts).unwrap();
        let ds = Dataset::create(dir.join("ds")).unwrap();
        for split in [Split::Train, Split::Test] {
            let iopts = IngestOptions {
                split: SplitChoice::Fixed(split),
                ..IngestOptions::default()
            };
            let src = dir.join("world/scans").join(split.as_str());
            let scenes = list_scenes(Some(ScanFormat::Scannet), &[src], &iopts).unwrap();
            ingest_scans(&ds, &scenes, &iopts, "test").unwrap();
        }
        (ds, opts)
    }

    #[test]
    fn splits_come_from_scenes_and_targets_land_on_the_geometry() {
        let dir = tempfile::tempdir().unwrap();
        let (ds, opts) = synthetic_dataset(dir.path());
        let m = ds.latest().unwrap();
        let store = FrameStore::new(ds.clone(), &m, 2);
        let train = store.labeled_scenes(&m, Split::Train).unwrap();
        let test = store.labeled_scenes(&m, Split::Test).unwrap();
        assert_eq!(train.keys().collect::<Vec<_>>(), ["synth_scan_000"]);
        assert_eq!(test.keys().collect::<Vec<_>>(), ["synth_scan_001"]);
        assert_eq!(train["synth_scan_000"].len(), 8);

        let mut rng = SplitMix64::new(1);
        let clips = sample_clips(&train, 3, 3, 2, &mut rng);
        assert_eq!(clips.len(), 3);
        for c in &clips {
            assert!(c.windows(2).all(|w| w[1].frame_idx > w[0].frame_idx));
        }
        // Points of every view, moved back to the world with the first camera's pose, lie on
        // the rendered room (resizing to 24x18 keeps intrinsics consistent).
        let (room, poses) = scan_geometry(&opts, 0);
        let clip = &clips[0];
        let s = load_clip(&store, clip, 24, 18, Augment::NONE, 0).unwrap();
        let first = poses[clip[0].frame_idx as usize];
        let hw = 24 * 18;
        // Depth edges (a sample on one side of a silhouette) aside, every point must be on
        // the geometry within 1 cm.
        let (mut near, mut total) = (0usize, 0usize);
        for v in 0..clip.len() {
            for i in 0..hw {
                if s.depth[v * hw + i] <= 0.0 {
                    continue;
                }
                let p = [0, 1, 2].map(|c| f64::from(s.points[(v * 3 + c) * hw + i]));
                total += 1;
                if room.surface_distance(transform_point(&first, p)) < 0.01 {
                    near += 1;
                }
            }
        }
        assert!(
            total > 1000 && near as f64 > 0.95 * total as f64,
            "{near} of {total}"
        );
        // The first view's rays start at the origin; directions are unit length.
        assert!(s.rays[..3 * hw].iter().all(|v| v.abs() < 1e-6));
        let d = [s.rays[3 * hw], s.rays[4 * hw], s.rays[5 * hw]];
        assert!(((d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt() - 1.0).abs() < 1e-5);

        // The same clips through burn's Dataset and Batcher traits.
        use burn::data::dataloader::batcher::Batcher;
        use burn::data::dataset::Dataset as _;
        let data = ClipDataset::new(
            Arc::new(store),
            clips,
            24,
            16,
            Augment {
                colour: 0.2,
                blur: 0.5,
            },
            3,
        );
        assert_eq!(data.len(), 3);
        let items: Vec<ClipSample> = data.iter().collect();
        assert_eq!(items.len(), 3);
        let device = crate::backend::default_device();
        let batch: ClipBatch<crate::backend::Backend> = ClipBatcher {
            frames: 3,
            height: 16,
            width: 24,
        }
        .batch(items, &device);
        assert_eq!(batch.images.dims(), [3, 3, 3, 16, 24]);
        assert_eq!(batch.targets.rays.dims(), [3, 3, 6, 16, 24]);
        assert!(data.get(99).is_none());
    }
}
