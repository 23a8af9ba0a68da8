//! Clips sampled from scenes, and burn's `Dataset` and `Batcher` over them.

use std::sync::Arc;

use spatialsv_store::datagen::SplitMix64;

use super::image::Augment;
use super::targets::{ClipSample, load_clip};
use super::{FrameRef, FrameStore, SceneFrames};
use crate::error::{Result, TrainError};

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
            draw_window(frames.len(), len, max_gap, rng)
                .into_iter()
                .map(|i| frames[i])
                .collect()
        })
        .collect()
}

/// Positions of a clip of `len` frames drawn from `n >= len` frames in order: a gap from 1 to
/// `max_gap` (at most what fits), then a start where the clip fits.
pub fn draw_window(n: usize, len: usize, max_gap: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let most_gap = if len > 1 {
        ((n - 1) / (len - 1)).clamp(1, max_gap.max(1))
    } else {
        1
    };
    let gap = 1 + (rng.next_u64() % most_gap as u64) as usize;
    let span = (len - 1) * gap;
    let start = (rng.next_u64() % (n - span) as u64) as usize;
    (0..len).map(|k| start + k * gap).collect()
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
