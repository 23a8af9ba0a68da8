//! A seeded generator of small, plausible `scenes` and `frames` rows (lance-datagen style), for
//! tests, benchmarks and the committed fixture dataset. It is not the synthetic world (that
//! renders real geometry); it makes rows with the right shapes: PNG images, 16-bit PNG depth
//! with holes, rigid poses along a smooth path, consistent intrinsics.

use std::io::Cursor;

use image::{ImageBuffer, ImageFormat, Luma, Rgb};
use spatialsv_schemas::{SourceKind, Split};

use crate::error::{Error, Result};
use crate::rows::{DepthMap, FrameRow, SceneRow};

/// SplitMix64: tiny, fast, good enough for test data; identical output on every platform.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The generator's state: `SplitMix64::new(g.state())` continues exactly where `g` is.
    pub fn state(&self) -> u64 {
        self.0
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenSpec {
    /// Random seed.
    pub seed: u64,
    /// Number of scenes.
    pub scenes: usize,
    /// Frames per scene.
    pub frames_per_scene: usize,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
}

impl Default for GenSpec {
    fn default() -> Self {
        Self {
            seed: 0,
            scenes: 5,
            frames_per_scene: 4,
            width: 16,
            height: 12,
        }
    }
}

/// Split of the `k`-th scene: 3 of 5 train, 1 val, 1 test.
pub fn split_of(k: usize) -> Split {
    match k % 5 {
        3 => Split::Val,
        4 => Split::Test,
        _ => Split::Train,
    }
}

/// Camera-to-world of frame `i`: yaw `i * 5` degrees about the y axis, moving along x.
pub fn pose_of(i: usize, scene_offset: f64) -> [f64; 16] {
    let yaw = (i as f64 * 5.0).to_radians();
    let (s, c) = yaw.sin_cos();
    [
        c,
        0.0,
        s,
        0.1 * i as f64 + scene_offset, //
        0.0,
        1.0,
        0.0,
        0.0, //
        -s,
        0.0,
        c,
        0.0, //
        0.0,
        0.0,
        0.0,
        1.0,
    ]
}

fn encode(img: image::DynamicImage, what: &str) -> Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|e| Error::Internal(format!("encoding generated {what}: {e}")))?;
    Ok(out.into_inner())
}

/// Generates the scenes and frames of `spec`.
pub fn generate(spec: &GenSpec) -> Result<(Vec<SceneRow>, Vec<FrameRow>)> {
    let mut rng = SplitMix64::new(spec.seed);
    let (w, h) = (spec.width.max(1), spec.height.max(1));
    let mut scenes = Vec::new();
    let mut frames = Vec::new();
    for k in 0..spec.scenes {
        let scene_id = format!("gen{:04}", k);
        let split = split_of(k);
        for i in 0..spec.frames_per_scene {
            let base = rng.next_u64();
            let rgb = ImageBuffer::from_fn(w, h, |x, y| {
                let v = base.wrapping_add(u64::from(x * 7 + y * 13)).to_le_bytes();
                Rgb([v[0], v[1], v[2]])
            });
            let mut depth_img: ImageBuffer<Luma<u16>, Vec<u16>> = ImageBuffer::new(w, h);
            for p in depth_img.pixels_mut() {
                // ~10% holes, the rest 0.5 m to 4.5 m in millimetres.
                let r = rng.next_f64();
                p.0[0] = if r < 0.1 {
                    0
                } else {
                    500 + (r * 4000.0) as u16
                };
            }
            let f = f64::from(w) * 0.8;
            let intrinsics = [f, f, f64::from(w) / 2.0, f64::from(h) / 2.0];
            frames.push(FrameRow {
                scene_id: scene_id.clone(),
                frame_idx: i as i64,
                timestamp_ns: i as i64 * 33_333_333,
                source: SourceKind::Scan,
                split,
                image: encode(rgb.into(), "image")?,
                image_codec: "png".into(),
                width: w as i32,
                height: h as i32,
                depth: Some(DepthMap {
                    png16: encode(depth_img.into(), "depth")?,
                    scale_m: 0.001,
                    width: w as i32,
                    height: h as i32,
                    intrinsics,
                }),
                intrinsics: Some(intrinsics),
                camera_model: "pinhole".into(),
                distortion: Vec::new(),
                world_from_camera: Some(pose_of(i, k as f64)),
                pose_source: Some("synthetic".into()),
                source_uri: format!("datagen://seed{}/{scene_id}/{i}", spec.seed),
            });
        }
        scenes.push(SceneRow {
            scene_id: scene_id.clone(),
            source: SourceKind::Scan,
            source_uri: format!("datagen://seed{}/{scene_id}", spec.seed),
            dataset_format: "synthetic".into(),
            split,
            num_frames: spec.frames_per_scene as i64,
            num_quarantined: 0,
            ingested_at_ns: 1_700_000_000_000_000_000,
        });
    }
    Ok((scenes, frames))
}

/// Builds the small two-version dataset used by tests, docs and the committed fixture
/// (`tests/fixtures/tiny`): version 1 holds the first three scenes of
/// `GenSpec::default()`, version 2 adds the other two (offering the first three again, which
/// are skipped as duplicates).
pub fn build_fixture(path: &std::path::Path) -> Result<crate::Dataset> {
    use crate::rows::{frames_batch, scenes_batch};
    use spatialsv_schemas::Table;

    let ds = crate::Dataset::create(path)?;
    let (scenes, frames) = generate(&GenSpec::default())?;
    let first: Vec<_> = frames
        .iter()
        .filter(|f| f.scene_id.as_str() < "gen0003")
        .cloned()
        .collect();
    let mut tx = ds.begin("datagen fixture: scenes gen0000-gen0002")?;
    tx.append(Table::Scenes, scenes_batch(&scenes[..3])?)?;
    tx.append(Table::Frames, frames_batch(&first)?)?;
    tx.commit()?;
    let mut tx = ds.begin("datagen fixture: all scenes")?;
    tx.append(Table::Scenes, scenes_batch(&scenes)?)?;
    tx.append(Table::Frames, frames_batch(&frames)?)?;
    tx.commit()?;
    Ok(ds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic() {
        let spec = GenSpec::default();
        let (s1, f1) = generate(&spec).unwrap();
        let (s2, f2) = generate(&spec).unwrap();
        assert_eq!(s1, s2);
        assert_eq!(f1, f2);
        assert_eq!(f1.len(), 20);
        let other = generate(&GenSpec { seed: 1, ..spec }).unwrap().1;
        assert_ne!(f1[0].image, other[0].image);
    }
}
