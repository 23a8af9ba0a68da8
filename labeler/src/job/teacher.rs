//! The teacher: a trained run's newest checkpoint, its hash (weights and model config), the
//! labelling config resolved against it, and inference on a batch of windows.

use std::path::Path;

use spatialsv_trainer::TrainConfig;
use spatialsv_trainer::infer::{Predicted, Shape, SpatialModel, SpatialRun};

use spatialsv_store::FrameStore;

use super::plan::Work;
use crate::config::LabelConfig;
use crate::error::{LabelError, Result};

/// A trained teacher, ready for inference.
pub struct Teacher {
    /// The model, behind the inference seam.
    pub model: Box<dyn SpatialModel>,
    /// More members of an ensemble (same size and training image size), run beside `model`
    /// on every pass of a fused labelling.
    pub ensemble: Vec<Box<dyn SpatialModel>>,
    /// The most views one clip may have.
    pub max_frames: usize,
    /// The config it was trained with (image size, clip length).
    pub train_config: TrainConfig,
    /// BLAKE3 (hex) of the checkpoint weights and model config.
    pub hash: String,
    /// What was loaded, said where it is loaded (a published checkpoint's name and licence).
    pub about: Option<String>,
}

impl std::fmt::Debug for Teacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teacher")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl Teacher {
    /// The label grid (h, w): the size the model works at for this work's stored images
    /// (a ported model's processing resolution, from the first frame), else the size it was
    /// trained at.
    pub(crate) fn grid(&self, store: &FrameStore, work: &[Work]) -> Result<(usize, usize)> {
        let trained = (
            self.train_config.image_height,
            self.train_config.image_width,
        );
        let Some(first) = work.iter().flat_map(|w| w.frames.first()).next() else {
            return Ok(trained);
        };
        let stored = store.with_image(first, |b| {
            image::ImageReader::new(std::io::Cursor::new(b))
                .with_guessed_format()
                .ok()
                .and_then(|r| r.into_dimensions().ok())
        })?;
        Ok(match stored.and_then(|s| self.model.input_size(s)) {
            Some((w, h)) => (h, w),
            None => trained,
        })
    }
}

/// Loads the newest checkpoint of the run in `run_dir`.
/// A Depth Anything 3 checkpoint folder (`config.json` + `model.safetensors`, read from the
/// folder, not guessed from its name) is loaded as that teacher at its reference's default
/// processing resolution.
pub fn load_teacher(run_dir: &Path) -> Result<Teacher> {
    load_teacher_at(run_dir, None)
}

/// [`load_teacher`], a DA3 checkpoint at `process_res` (its default when `None`; given for
/// a trained run, an error).
pub fn load_teacher_at(run_dir: &Path, process_res: Option<u32>) -> Result<Teacher> {
    if spatialsv_da3::is_checkpoint_dir(run_dir) {
        let res = process_res.unwrap_or(spatialsv_da3::preprocess::DEFAULT_PROCESS_RES);
        let t = crate::da3::Da3Teacher::load(run_dir, res)?;
        let about = t.describe();
        let mut teacher = t.into_teacher()?;
        teacher.about = Some(about);
        return Ok(teacher);
    }
    if process_res.is_some() {
        return Err(LabelError::User(format!(
            "{}: --process-res is for a Depth Anything 3 checkpoint; this is a spatialsv run (it labels at its training size)",
            run_dir.display()
        )));
    }
    let run = SpatialRun::load(run_dir)?;
    let hash = run.fingerprint()?;
    Ok(Teacher {
        max_frames: run.sizes.max_frames,
        model: Box::new(run.model),
        ensemble: Vec::new(),
        train_config: run.config,
        hash,
        about: None,
    })
}

/// An ensemble of trained runs as one teacher: the first run's model, config and image size,
/// the others run beside it on every pass of a fused labelling. Its hash is the BLAKE3 of the
/// members' hashes in order (one run: that run's hash).
pub fn load_teachers(run_dirs: &[std::path::PathBuf]) -> Result<Teacher> {
    load_teachers_at(run_dirs, None)
}

/// [`load_teachers`] with a DA3 processing resolution ([`load_teacher_at`]).
pub fn load_teachers_at(
    run_dirs: &[std::path::PathBuf],
    process_res: Option<u32>,
) -> Result<Teacher> {
    let Some((first, rest)) = run_dirs.split_first() else {
        return Err(LabelError::User("give at least one --teacher".into()));
    };
    let mut t = load_teacher_at(first, process_res)?;
    if rest.is_empty() {
        return Ok(t);
    }
    if let Some(d) = run_dirs
        .iter()
        .find(|d| spatialsv_da3::is_checkpoint_dir(d))
    {
        return Err(LabelError::User(format!(
            "{}: a Depth Anything 3 checkpoint labels alone, not in an ensemble",
            d.display()
        )));
    }
    let mut h = blake3::Hasher::new();
    h.update(b"ensemble");
    h.update(t.hash.as_bytes());
    for dir in rest {
        let m = load_teacher(dir)?;
        let size = |t: &Teacher| {
            (
                t.train_config.image_height,
                t.train_config.image_width,
                t.train_config.clip_len,
            )
        };
        if size(&m) != size(&t) || m.max_frames != t.max_frames {
            return Err(LabelError::User(format!(
                "teacher {} was trained at another image size or clip length than {}; an ensemble needs the same",
                dir.display(),
                first.display()
            )));
        }
        h.update(m.hash.as_bytes());
        t.ensemble.push(m.model);
    }
    t.hash = h.finalize().to_hex().to_string();
    Ok(t)
}

/// The labelling config with `clip_len` resolved against the teacher, and its TOML and hash.
pub fn resolve_config(
    cfg: &LabelConfig,
    teacher: &Teacher,
) -> Result<(LabelConfig, String, String)> {
    cfg.validate().map_err(|e| LabelError::User(e.0))?;
    if !teacher.ensemble.is_empty() && !cfg.fusion.enabled {
        return Err(LabelError::User(format!(
            "an ensemble of {} teachers labels only with [fusion] enabled = true (its passes are fused)",
            teacher.ensemble.len() + 1
        )));
    }
    let mut resolved = cfg.clone();
    if resolved.clip_len == 0 {
        resolved.clip_len = teacher.train_config.clip_len;
    }
    if resolved.clip_len > teacher.max_frames {
        return Err(LabelError::User(format!(
            "clip_len {} exceeds the teacher's {} frames",
            resolved.clip_len, teacher.max_frames
        )));
    }
    let toml = spatialsv_store::to_toml(&resolved)?;
    let hash = blake3::hash(toml.as_bytes()).to_hex().to_string();
    Ok((resolved, toml, hash))
}

/// Order of the frames of a `v`-frame window in the run with frame `r` as reference: `r`
/// first, the others in capture order.
pub(super) fn run_order(v: usize, r: usize) -> Vec<usize> {
    std::iter::once(r)
        .chain((0..v).filter(|j| *j != r))
        .collect()
}

/// Runs the teacher on `images` (`[n, v, 3, h, w]`).
pub(super) fn infer(
    model: &dyn SpatialModel,
    images: Vec<f32>,
    n: usize,
    v: usize,
    h: usize,
    w: usize,
) -> Result<Predicted> {
    Ok(model.predict(images, Shape { n, v, h, w }, false)?)
}
