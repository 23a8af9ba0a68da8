//! Depth Anything 3 as a teacher ([`spatialsv_da3`]): a checkpoint folder (`config.json` +
//! `model.safetensors`) behind the same inference seam as our own runs, so `spatialsv label
//! --teacher DIR` windows, fuses, filters, shards and resumes exactly as with a trained run.
//!
//! - Images are prepared as the reference does ([`spatialsv_da3::preprocess`], process
//!   resolution 504 by default), and the label grid is that size.
//! - Cameras are the reference's own (the camera decoder, as its `inference` gives them):
//!   each view's ray map is built from them (origin at its centre, directions through its
//!   pixel centres, in the first view's frame), from which the labeller reads the cameras
//!   back as for every teacher.
//! - `teacher predict` writes the raw predictions in the `.npz` layout `label import` reads
//!   ([`Da3Teacher::npz_arrays`]).

use std::path::Path;

use image::RgbImage;
use spatialsv_da3::preprocess::{Batch, ResizeMethod};
use spatialsv_da3::{Checkpoint, Da3Error, Prediction, RefViewStrategy};
use spatialsv_store::{FrameRef, FrameStore};
use spatialsv_trainer::infer::{Predicted, Preparer, Shape, SpatialModel};
use spatialsv_trainer::{Backend, TrainConfig, TrainError, default_device};

use crate::error::{LabelError, Result};
use crate::job::Teacher;

impl From<Da3Error> for LabelError {
    fn from(e: Da3Error) -> Self {
        if e.is_user_error() {
            LabelError::User(e.to_string())
        } else {
            LabelError::Internal(e.to_string())
        }
    }
}

fn train_err(e: Da3Error) -> TrainError {
    if e.is_user_error() {
        TrainError::User(e.to_string())
    } else {
        TrainError::Internal(e.to_string())
    }
}

/// A named f32 array: name, shape, values (row-major).
pub type NamedArray = (String, Vec<usize>, Vec<f32>);

/// The most views one DA3 window may have in `label` (global attention is quadratic in
/// them).
pub const MAX_VIEWS: usize = 64;

/// A loaded DA3 checkpoint and how it is run.
pub struct Da3Teacher {
    /// The checkpoint.
    pub checkpoint: Checkpoint<Backend>,
    /// Processing resolution (the reference's `process_res`).
    pub process_res: u32,
    /// The reference's `process_res_method`.
    pub method: ResizeMethod,
    /// Reference-view selection for three or more views.
    pub strategy: RefViewStrategy,
}

impl std::fmt::Debug for Da3Teacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Da3Teacher")
            .field("dir", &self.checkpoint.dir)
            .field("process_res", &self.process_res)
            .finish_non_exhaustive()
    }
}

/// What one run on a list of images gives: the prediction and where each view's input sits
/// on its image.
#[derive(Debug, Clone)]
pub struct Run {
    /// The network's maps and cameras.
    pub prediction: Prediction,
    /// The prepared batch's placements.
    pub placements: Vec<spatialsv_da3::Placement>,
}

impl Da3Teacher {
    /// Loads the checkpoint folder `dir`.
    pub fn load(dir: &Path, process_res: u32) -> Result<Da3Teacher> {
        if !(spatialsv_da3::preprocess::PATCH..=4096).contains(&process_res) {
            return Err(LabelError::User(format!(
                "--process-res {process_res} is out of range (14..=4096)"
            )));
        }
        let checkpoint = spatialsv_da3::load::<Backend>(dir, &default_device())?;
        Ok(Da3Teacher {
            checkpoint,
            process_res,
            method: ResizeMethod::default(),
            strategy: RefViewStrategy::SaddleBalanced,
        })
    }

    /// `model_name (licence)`, printed where the checkpoint is loaded.
    pub fn describe(&self) -> String {
        let name = &self.checkpoint.config.model_name;
        format!(
            "Depth Anything 3 '{name}' from {} (licence: {})",
            self.checkpoint.dir.display(),
            spatialsv_da3::licence(name)
        )
    }

    /// Runs on one clip of images, prepared as the reference does.
    pub fn run(&self, images: &[RgbImage]) -> Result<Run> {
        let b: Batch = spatialsv_da3::prepare_batch(images, self.process_res, self.method)?;
        let prediction = self.checkpoint.net.predict(
            b.images,
            b.views,
            b.height,
            b.width,
            self.strategy,
            &default_device(),
        )?;
        Ok(Run {
            prediction,
            placements: b.placements,
        })
    }

    /// The arrays of a run in the `.npz` layout `label import` reads: `depth` `[S,H,W]`,
    /// `depth_conf`, `extrinsic` `[S,3,4]` (camera from world), `intrinsic` `[S,3,3]`,
    /// `ray` `[S,h8,w8,6]` and `ray_conf`, `preprocess_resize` and `preprocess_offset`
    /// (`[2]`, or `[S,2]` when the views' placements differ).
    pub fn npz_arrays(run: &Run) -> Result<Vec<NamedArray>> {
        let p = &run.prediction;
        let (s, h, w) = (p.views, p.height, p.width);
        let (Some(ext), Some(k)) = (&p.extrinsics, &p.intrinsics) else {
            return Err(LabelError::User(
                "this checkpoint has no camera decoder: it predicts no cameras".into(),
            ));
        };
        let (rh, rw) = p.ray_size;
        let mut out = vec![
            ("depth".to_string(), vec![s, h, w], p.depth.clone()),
            ("depth_conf".to_string(), vec![s, h, w], p.conf.clone()),
            ("extrinsic".to_string(), vec![s, 3, 4], ext.clone()),
            ("intrinsic".to_string(), vec![s, 3, 3], k.clone()),
            ("ray".to_string(), vec![s, rh, rw, 6], p.rays.clone()),
            ("ray_conf".to_string(), vec![s, rh, rw], p.ray_conf.clone()),
        ];
        let first = run.placements[0];
        let resize = |pl: &spatialsv_da3::Placement| [pl.resize.0 as f32, pl.resize.1 as f32];
        let offset = |pl: &spatialsv_da3::Placement| [pl.offset.0 as f32, pl.offset.1 as f32];
        if run.placements.iter().all(|pl| *pl == first) {
            out.push(("preprocess_resize".into(), vec![2], resize(&first).to_vec()));
            out.push(("preprocess_offset".into(), vec![2], offset(&first).to_vec()));
        } else {
            out.push((
                "preprocess_resize".into(),
                vec![s, 2],
                run.placements.iter().flat_map(resize).collect(),
            ));
            out.push((
                "preprocess_offset".into(),
                vec![s, 2],
                run.placements.iter().flat_map(offset).collect(),
            ));
        }
        Ok(out)
    }

    /// As a labelling teacher: clips of up to [`MAX_VIEWS`] views, 8 by default; the hash is
    /// the checkpoint's (its config and weight bytes) with the processing settings.
    pub fn into_teacher(self) -> Result<Teacher> {
        if !self.checkpoint.net.has_cameras() {
            return Err(LabelError::User(format!(
                "{}: this DA3 checkpoint has no camera decoder; labelling needs the teacher's cameras",
                self.checkpoint.dir.display()
            )));
        }
        let hash = blake3::hash(
            format!(
                "da3 {} process_res {} {} {:?}",
                self.checkpoint.hash, self.process_res, self.method, self.strategy
            )
            .as_bytes(),
        )
        .to_hex()
        .to_string();
        let train_config = TrainConfig {
            clip_len: 8,
            ..TrainConfig::default()
        };
        Ok(Teacher {
            model: Box::new(self),
            ensemble: Vec::new(),
            max_frames: MAX_VIEWS,
            train_config,
            hash,
            about: None,
        })
    }
}

/// Decodes a stored frame's image.
fn decode(store: &FrameStore, f: &FrameRef) -> spatialsv_trainer::Result<RgbImage> {
    let img = store.with_image(f, |b| image::load_from_memory(b).map(|i| i.to_rgb8()))?;
    img.map_err(|e| TrainError::Corrupt {
        path: format!("frame {}", f.frame_idx).into(),
        message: format!("stored image does not decode ({e})"),
    })
}

/// Rays `[v, 6, h, w]` of pinhole cameras: view `j`'s origin is its centre, its directions
/// (unit) pass through its pixel centres, all in view 0's camera frame.
fn rays_of_cameras(ext: &[f32], k: &[f32], v: usize, h: usize, w: usize) -> Vec<f32> {
    use nalgebra::{Matrix3, Matrix4, Vector3};
    let pose = |j: usize| {
        let e = &ext[j * 12..(j + 1) * 12];
        let mut m = Matrix4::<f64>::identity();
        for r in 0..3 {
            for c in 0..4 {
                m[(r, c)] = f64::from(e[r * 4 + c]);
            }
        }
        m
    };
    let world_to_first = pose(0);
    let hw = h * w;
    let mut out = vec![0f32; v * 6 * hw];
    for j in 0..v {
        let cam_to_world = pose(j).try_inverse().unwrap_or_else(Matrix4::identity);
        let first_from_cam = world_to_first * cam_to_world;
        let r: Matrix3<f64> = first_from_cam.fixed_view::<3, 3>(0, 0).into();
        let t = Vector3::new(
            first_from_cam[(0, 3)],
            first_from_cam[(1, 3)],
            first_from_cam[(2, 3)],
        );
        let kj = &k[j * 9..(j + 1) * 9];
        let (fx, fy, cx, cy) = (
            f64::from(kj[0]),
            f64::from(kj[4]),
            f64::from(kj[2]),
            f64::from(kj[5]),
        );
        let base = j * 6 * hw;
        for y in 0..h {
            for x in 0..w {
                let d =
                    r * Vector3::new((x as f64 + 0.5 - cx) / fx, (y as f64 + 0.5 - cy) / fy, 1.0);
                let d = d.normalize();
                let i = y * w + x;
                for c in 0..3 {
                    out[base + c * hw + i] = t[c] as f32;
                    out[base + (3 + c) * hw + i] = d[c] as f32;
                }
            }
        }
    }
    out
}

impl SpatialModel for Da3Teacher {
    fn predict(
        &self,
        images: Vec<f32>,
        shape: Shape,
        points: bool,
    ) -> spatialsv_trainer::Result<Predicted> {
        let Shape { n, v, h, w } = shape;
        let per = v * 3 * h * w;
        let mut out = Predicted {
            depth: Vec::with_capacity(n * v * h * w),
            conf: Vec::with_capacity(n * v * h * w),
            rays: Vec::with_capacity(n * v * 6 * h * w),
            points: None,
        };
        let mut pts = Vec::new();
        for c in 0..n {
            let p = self
                .checkpoint
                .net
                .predict(
                    images[c * per..(c + 1) * per].to_vec(),
                    v,
                    h,
                    w,
                    self.strategy,
                    &default_device(),
                )
                .map_err(train_err)?;
            let (Some(ext), Some(k)) = (&p.extrinsics, &p.intrinsics) else {
                return Err(TrainError::User(
                    "this DA3 checkpoint predicts no cameras".into(),
                ));
            };
            let rays = rays_of_cameras(ext, k, v, h, w);
            if points {
                let hw = h * w;
                for j in 0..v {
                    for ch in 0..3 {
                        for i in 0..hw {
                            let z = p.depth[j * hw + i];
                            let (o, d) = (
                                rays[j * 6 * hw + ch * hw + i],
                                rays[j * 6 * hw + (3 + ch) * hw + i],
                            );
                            // z-depth along the view's own axis: the point lies z / cos
                            // along the unit ray.
                            let cos = view_cos(k, j, i % w, i / w);
                            pts.push(o + d * z / cos as f32);
                        }
                    }
                }
            }
            out.depth.extend(p.depth);
            out.conf.extend(p.conf);
            out.rays.extend(rays);
        }
        if points {
            out.points = Some(pts);
        }
        Ok(out)
    }

    fn preparer(&self) -> Preparer {
        let (res, method) = (self.process_res, self.method);
        Preparer::new(move |store, clip, w, h| {
            let mut all = Vec::with_capacity(clip.len() * 3 * h * w);
            for f in clip {
                let img = decode(store, f)?;
                let mut p =
                    spatialsv_da3::preprocess::prepare(&img, res, method).map_err(train_err)?;
                if p.image.dimensions() != (w as u32, h as u32) {
                    // A frame of another size than the clip's first: to the grid.
                    p.image = spatialsv_da3::preprocess::resize_to(&p.image, w as u32, h as u32);
                }
                all.extend(spatialsv_da3::preprocess::normalise(&p.image));
            }
            Ok(all)
        })
    }

    fn input_size(&self, stored: (u32, u32)) -> Option<(usize, usize)> {
        let (w, h) = spatialsv_da3::preprocess::output_size(stored, self.process_res, self.method)?;
        Some((w as usize, h as usize))
    }
}

/// Cosine between pixel (x, y)'s ray and view `j`'s optical axis.
fn view_cos(k: &[f32], j: usize, x: usize, y: usize) -> f64 {
    let kj = &k[j * 9..(j + 1) * 9];
    let u = (x as f64 + 0.5 - f64::from(kj[2])) / f64::from(kj[0]);
    let v = (y as f64 + 0.5 - f64::from(kj[5])) / f64::from(kj[4]);
    1.0 / (1.0 + u * u + v * v).sqrt()
}
