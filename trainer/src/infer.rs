//! The inference seam: a trained 3D run loaded for prediction, the images it takes, what it
//! predicts, and the cameras its ray maps imply. Evaluation, export and the labeller go
//! through here only. A new teacher family (another model behind the same outputs: depth,
//! confidence, ray maps) implements [`SpatialModel`]; the labeller runs any of them.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::{Tensor, TensorData};
use nalgebra::{Matrix3, Vector3};
use spatialsv_store::geometry::Rigid;
use spatialsv_store::{FrameRef, FrameStore};

use crate::backend::{Backend as Inner, default_device};
use crate::config::TrainConfig;
use crate::data::Augment;
use crate::error::{Result, TrainError};
use crate::model::{SpatialSv, SpatialSvConfig};
use crate::run::{Checkpoint, RunDir, RunKind, load_inference_model_at, spatial_checkpoint};

pub use crate::data::flip_rows;

/// A model that predicts, for clips of views, depth with its confidence and ray maps (and
/// point maps): what the labeller runs as a teacher.
pub trait SpatialModel {
    /// Runs on `images` (`[n, v, 3, h, w]`, flattened, as [`SpatialModel::prepare`] makes
    /// them).
    fn predict(&self, images: Vec<f32>, shape: Shape, points: bool) -> Result<Predicted>;

    /// How the model's input is made from stored frames: ours by default
    /// ([`prepare_images`]); a ported model prepares images as its reference does.
    fn preparer(&self) -> Preparer {
        Preparer::ours()
    }

    /// The input size (w, h) the model works at for stored images of `stored` (w, h), when
    /// it follows the image (a ported model's processing resolution); `None`: the size it
    /// was trained at.
    fn input_size(&self, stored: (u32, u32)) -> Option<(usize, usize)> {
        let _ = stored;
        None
    }
}

impl SpatialModel for SpatialSv<Inner> {
    fn predict(&self, images: Vec<f32>, shape: Shape, points: bool) -> Result<Predicted> {
        predict(self, images, shape, points)
    }
}

/// Makes a model's input for the frames of a clip at `w` x `h` (`[v, 3, h, w]` flattened);
/// shareable across the threads that decode ahead of the model.
#[derive(Clone)]
pub struct Preparer(Arc<PrepareFn>);

type PrepareFn = dyn Fn(&FrameStore, &[FrameRef], usize, usize) -> Result<Vec<f32>> + Send + Sync;

impl Preparer {
    /// Ours: [`prepare_images`].
    pub fn ours() -> Preparer {
        Preparer(Arc::new(prepare_images))
    }

    /// Another model's preparation.
    pub fn new(
        f: impl Fn(&FrameStore, &[FrameRef], usize, usize) -> Result<Vec<f32>> + Send + Sync + 'static,
    ) -> Preparer {
        Preparer(Arc::new(f))
    }

    /// The input for `clip`.
    pub fn prepare(
        &self,
        store: &FrameStore,
        clip: &[FrameRef],
        w: usize,
        h: usize,
    ) -> Result<Vec<f32>> {
        (self.0)(store, clip, w, h)
    }
}

impl std::fmt::Debug for Preparer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Preparer")
    }
}

/// A 3D run's newest checkpoint loaded for inference, with what it was trained as.
pub struct SpatialRun {
    /// Its run directory.
    pub dir: RunDir,
    /// The checkpoint loaded.
    pub checkpoint: Checkpoint,
    /// The model on the inference backend.
    pub model: SpatialSv<Inner>,
    /// Its sizes.
    pub sizes: SpatialSvConfig,
    /// The config it was trained with (image size, clip length).
    pub config: TrainConfig,
}

impl std::fmt::Debug for SpatialRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpatialRun")
            .field("dir", &self.dir)
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

impl SpatialRun {
    /// Loads the newest checkpoint of the 3D run in `dir` (a multimodal run, or a directory
    /// without a checkpoint, is the user's mistake).
    pub fn load(dir: &Path) -> Result<SpatialRun> {
        let dir = RunDir::new(dir);
        // One checkpoint for the weights and the fingerprint, even while training goes on.
        let checkpoint = spatial_checkpoint(&dir)?;
        let (model, sizes) = load_inference_model_at(&dir, &checkpoint)?;
        let config: TrainConfig = dir.load_config()?;
        Ok(SpatialRun {
            dir,
            checkpoint,
            model,
            sizes,
            config,
        })
    }

    /// BLAKE3 (hex) of what decides the run's predictions: its sizes file and the weights it
    /// is used with, each preceded by its length, read streamed.
    pub fn fingerprint(&self) -> Result<String> {
        let mut h = blake3::Hasher::new();
        for path in [
            self.dir.sizes_path(RunKind::Spatial),
            self.checkpoint.weights_path(),
        ] {
            let io = |e: std::io::Error| TrainError::Io {
                action: "reading the model",
                path: path.clone(),
                source: e.into(),
            };
            let len = std::fs::metadata(&path).map_err(io)?.len();
            h.update(&len.to_le_bytes());
            let file = std::fs::File::open(&path).map_err(io)?;
            h.update_reader(file).map_err(io)?;
        }
        Ok(h.finalize().to_hex().to_string())
    }
}

/// The shape of a batch of clips: `n` clips of `v` views of `h` x `w` pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Clips.
    pub n: usize,
    /// Views per clip.
    pub v: usize,
    /// Image height.
    pub h: usize,
    /// Image width.
    pub w: usize,
}

/// A model's outputs for a batch, flattened row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicted {
    /// Depth `[n, v, h, w]` (the model's units).
    pub depth: Vec<f32>,
    /// Depth confidence `[n, v, h, w]`.
    pub conf: Vec<f32>,
    /// Ray maps `[n, v, 6, h, w]`: origin and direction in the first view's camera frame.
    pub rays: Vec<f32>,
    /// Point maps `[n, v, 3, h, w]` in the first view's camera frame (when asked for).
    pub points: Option<Vec<f32>>,
}

/// Runs `model` on `images` (`[n, v, 3, h, w]`, flattened, as [`prepare_images`] makes them).
pub fn predict(
    model: &SpatialSv<Inner>,
    images: Vec<f32>,
    shape: Shape,
    points: bool,
) -> Result<Predicted> {
    let Shape { n, v, h, w } = shape;
    let device = default_device();
    let x = Tensor::<Inner, 5>::from_data(TensorData::new(images, [n, v, 3, h, w]), &device);
    let p = model.forward(x);
    let vec = |d: TensorData| {
        d.to_vec::<f32>()
            .map_err(|e| TrainError::Internal(format!("model output: {e:?}")))
    };
    Ok(Predicted {
        depth: vec(p.depth.into_data())?,
        conf: vec(p.depth_conf.into_data())?,
        rays: vec(p.rays.into_data())?,
        points: if points {
            Some(vec(p.points.into_data())?)
        } else {
            None
        },
    })
}

/// The model's input for the frames of `clip`: each decoded, resized to `w` x `h` and
/// normalised, `[v, 3, h, w]` flattened, without perturbation.
pub fn prepare_images(
    store: &FrameStore,
    clip: &[FrameRef],
    w: usize,
    h: usize,
) -> Result<Vec<f32>> {
    crate::data::load_images(store, clip, w, h, Augment::NONE, 0)
}

/// Camera of one view from its ray map: the centre is the mean ray origin; rotation and focal
/// length (principal point at the image centre, square pixels) are fitted so that
/// `R [u - cx, v - cy, f] / norm` matches the ray directions (Kabsch for R, a 1-D search
/// for f). Returns (camera-to-first-camera pose, focal length in pixels).
pub fn pose_from_rays(
    origins: &[Vector3<f64>],
    dirs: &[Vector3<f64>],
    pixels: &[(f64, f64)],
    w: usize,
    h: usize,
) -> (Rigid, f64) {
    let n = origins.len().max(1) as f64;
    let centre = origins.iter().sum::<Vector3<f64>>() / n;
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let fit = |f: f64| -> (Matrix3<f64>, f64) {
        let mut cov = Matrix3::zeros();
        let qs: Vec<Vector3<f64>> = pixels
            .iter()
            .map(|(u, v)| Vector3::new(u - cx, v - cy, f).normalize())
            .collect();
        for (q, d) in qs.iter().zip(dirs) {
            cov += d * q.transpose();
        }
        let svd = cov.svd(true, true);
        let (Some(u), Some(vt)) = (svd.u, svd.v_t) else {
            return (Matrix3::identity(), f64::INFINITY);
        };
        let mut s = Matrix3::identity();
        if (u * vt).determinant() < 0.0 {
            s[(2, 2)] = -1.0;
        }
        let r = u * s * vt;
        let err: f64 = qs
            .iter()
            .zip(dirs)
            .map(|(q, d)| (r * q - d).norm_squared())
            .sum();
        (r, err)
    };
    // Golden-section search of the focal length between 0.2 and 5 image widths.
    let (mut a, mut b) = ((0.2 * w as f64).ln(), (5.0 * w as f64).ln());
    let g = 0.618_033_988_75;
    for _ in 0..40 {
        let (x1, x2) = (b - g * (b - a), a + g * (b - a));
        if fit(x1.exp()).1 < fit(x2.exp()).1 {
            b = x2;
        } else {
            a = x1;
        }
    }
    let f = (0.5 * (a + b)).exp();
    (
        Rigid {
            rotation: fit(f).0,
            translation: centre,
        },
        f,
    )
}

/// The camera of view `k` of a predicted ray map `rays` (`[v, 6, h, w]`, flattened), fitted
/// on every `step`-th pixel in x and y (see [`pose_from_rays`]).
pub fn camera_of_view(rays: &[f32], k: usize, h: usize, w: usize, step: usize) -> (Rigid, f64) {
    let hw = h * w;
    let (mut origins, mut dirs, mut pixels) = (Vec::new(), Vec::new(), Vec::new());
    for y in (0..h).step_by(step.max(1)) {
        for x in (0..w).step_by(step.max(1)) {
            let i = y * w + x;
            let at = |c: usize| f64::from(rays[(k * 6 + c) * hw + i]);
            origins.push(Vector3::new(at(0), at(1), at(2)));
            dirs.push(Vector3::new(at(3), at(4), at(5)).normalize());
            pixels.push((x as f64 + 0.5, y as f64 + 0.5));
        }
    }
    pose_from_rays(&origins, &dirs, &pixels, w, h)
}

#[cfg(test)]
mod tests {
    use nalgebra::Rotation3;

    use super::*;

    #[test]
    fn cameras_come_back_from_ray_maps() {
        let (w, h, f) = (40usize, 30usize, 35.0);
        let r = Rotation3::from_euler_angles(0.1, -0.3, 0.2).into_inner();
        let c = Vector3::new(0.5, -0.2, 1.0);
        let (mut origins, mut dirs, mut pixels) = (Vec::new(), Vec::new(), Vec::new());
        for y in (0..h).step_by(3) {
            for x in (0..w).step_by(3) {
                let (u, v) = (x as f64 + 0.5, y as f64 + 0.5);
                pixels.push((u, v));
                origins.push(c);
                dirs.push(r * Vector3::new(u - 20.0, v - 15.0, f).normalize());
            }
        }
        let (cam, ff) = pose_from_rays(&origins, &dirs, &pixels, w, h);
        let (rr, cc) = (cam.rotation, cam.translation);
        assert!((rr - r).norm() < 1e-6, "{rr}");
        assert!((cc - c).norm() < 1e-12);
        assert!((ff - f).abs() < 1e-3, "{ff}");
    }
}
