//! The teacher: a trained run's newest checkpoint, its hash (weights and model config), the
//! labelling config resolved against it, and inference on a batch of windows.

use std::path::Path;

use spatialsv_trainer::TrainConfig;
use spatialsv_trainer::infer::{Predicted, Shape, SpatialModel, SpatialRun};

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
}

impl std::fmt::Debug for Teacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teacher")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// Loads the newest checkpoint of the run in `run_dir`.
pub fn load_teacher(run_dir: &Path) -> Result<Teacher> {
    let run = SpatialRun::load(run_dir)?;
    let hash = run.fingerprint()?;
    Ok(Teacher {
        max_frames: run.sizes.max_frames,
        model: Box::new(run.model),
        ensemble: Vec::new(),
        train_config: run.config,
        hash,
    })
}

/// An ensemble of trained runs as one teacher: the first run's model, config and image size,
/// the others run beside it on every pass of a fused labelling. Its hash is the BLAKE3 of the
/// members' hashes in order (one run: that run's hash).
pub fn load_teachers(run_dirs: &[std::path::PathBuf]) -> Result<Teacher> {
    let Some((first, rest)) = run_dirs.split_first() else {
        return Err(LabelError::User("give at least one --teacher".into()));
    };
    let mut t = load_teacher(first)?;
    if rest.is_empty() {
        return Ok(t);
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
