//! Training data from the store: clips sampled from scenes (frames come through the store's
//! read side, [`FrameStore`]), decoding and augmentation in parallel (rayon), resizing with
//! intrinsics kept consistent, and targets (depth, point map and ray map in the first
//! frame's camera coordinates).
//!
//! Rooms: [`image`](self) decodes, perturbs and normalises images; `targets` builds a clip's
//! targets; `batch` samples clips and is burn's `Dataset` and `Batcher` over them.

mod batch;
mod image;
mod targets;

pub use batch::{ClipBatch, ClipBatcher, ClipDataset, draw_window, sample_clips};
pub use image::{Augment, flip_rows, load_images};
pub use spatialsv_store::{FrameRef, FrameStore, SceneFrames};
pub use targets::{ClipSample, Prepared, clip_targets, load_clip};

#[cfg(test)]
pub(crate) mod tests {
    use spatialsv_ingest::synth::{SynthOptions, scan_geometry, synthesize};
    use spatialsv_ingest::{IngestOptions, ScanFormat, SplitChoice, ingest_scans, list_scenes};
    use spatialsv_store::Dataset;
    use std::sync::Arc;

    use spatialsv_schemas::Split;
    use spatialsv_store::datagen::SplitMix64;
    use spatialsv_store::geometry::transform_point;

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
        synthesize(&dir.join("world"), &opts, &spatialsv_store::Silent).unwrap();
        let ds = Dataset::create(dir.join("ds")).unwrap();
        for split in [Split::Train, Split::Test] {
            let iopts = IngestOptions {
                split: SplitChoice::Fixed(split),
                ..IngestOptions::default()
            };
            let src = dir.join("world/scans").join(split.as_str());
            let scenes = list_scenes(Some(ScanFormat::Scannet), &[src], &iopts).unwrap();
            ingest_scans(&ds, &scenes, &iopts, "test", &spatialsv_store::Silent).unwrap();
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
