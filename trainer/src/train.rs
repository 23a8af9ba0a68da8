//! The training loop behind `spatialsv train`.
//!
//! A run directory holds everything about a run:
//!
//! ```text
//! runs/NAME/config.toml                 the resolved training config
//! runs/NAME/model.json                  the resolved model config
//! runs/NAME/checkpoints/step-NNNNNNNN/  model.mpk, optim.mpk, state.json (written to a
//!                                       temporary directory, then renamed: atomic)
//! runs/NAME/latest                      name of the newest complete checkpoint
//! runs/NAME/_spatialsv, data/           a spatialsv dataset with the `metrics` (one row per
//!                                       step and loss term) and `runs` tables:
//!                                       `spatialsv sql --dataset runs/NAME "SELECT ..."`
//! ```
//!
//! AdamW with linear warm-up then cosine decay, gradient-norm clipping, a seed that makes
//! runs repeatable, and `--resume` that continues exactly (model, optimiser moments, data
//! sampler state and step are all restored). Repeatability holds for one training per process
//! (the CLI): the backend's random generator, used for initialisation, is process-global.

use std::path::{Path, PathBuf};

use burn::config::Config as _;
use burn::grad_clipping::GradientClippingConfig;
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset as _;
use burn::module::Module;
use burn::optim::{AdamWConfig, Optimizer};
use burn::record::{DefaultRecorder, Recorder};
use burn::tensor::backend::Backend as _;
use serde::{Deserialize, Serialize};
use spatialsv_pipeline::datagen::SplitMix64;
use spatialsv_pipeline::rows::now_ns;
use spatialsv_pipeline::{CODE_VERSION, Dataset};
use spatialsv_schemas::{Split, Table};

use crate::backend::{BACKEND_NAME, TrainBackend as B, default_device};
use crate::data::{
    Augment, ClipBatch, ClipBatcher, ClipDataset, ClipSample, FrameStore, sample_clips,
};
use crate::error::{Result, TrainError};
use crate::loss::LossConfig;
use crate::model::{SpatialSv, SpatialSvConfig};
use crate::pseudo::{cutmix, load_pseudo_clip, load_pseudo_set};
use crate::training::train_step;

/// Largest image side a config may ask for: beyond this the activations of even the tiny
/// model do not fit any machine (and a typo such as 80000 must not try to allocate them).
pub const MAX_IMAGE_SIDE: usize = 4096;

/// Model size preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Trains on a 2-core CPU.
    Tiny,
    /// A small GPU model.
    Small,
    /// A base GPU model.
    Base,
}

/// What pseudo-labels supervise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PseudoTargets {
    /// Depth and its gradients only.
    Depth,
    /// Also the point and ray maps built from the teacher's cameras.
    All,
}

/// Training options (`configs/train.toml`); every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Model size preset: `tiny` (CPU), `small` or `base` (GPU).
    pub preset: Preset,
    /// Training image height (overrides the preset; a multiple of its patch size).
    pub image_height: usize,
    /// Training image width.
    pub image_width: usize,
    /// Frames per clip.
    pub clip_len: usize,
    /// Largest frame gap between consecutive clip frames.
    pub max_gap: usize,
    /// Clips per batch.
    pub batch_size: usize,
    /// Optimiser steps.
    pub steps: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Gradient norm clipping.
    pub grad_clip_norm: f32,
    /// Seed of initialisation, sampling and augmentation.
    pub seed: u64,
    /// Write a checkpoint (and the metrics) every N steps.
    pub checkpoint_every: usize,
    /// Relative colour jitter of the augmentation.
    pub augment_colour: f32,
    /// Probability of blurring a frame.
    pub augment_blur: f64,
    /// Decoded row groups kept in memory by the loader.
    pub cache_row_groups: usize,
    /// Semi-supervised training: the pseudo-labels to mix in, `latest` or a teacher-hash
    /// prefix; absent trains on labeled scans only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pseudo_labels: Option<String>,
    /// Pseudo-labelled clips per labeled clip in a batch (1:2 by default).
    pub pseudo_ratio: f64,
    /// Strong perturbation of pseudo-labelled inputs: colour jitter.
    pub strong_colour: f32,
    /// Strong perturbation: probability of a blur.
    pub strong_blur: f64,
    /// Strong perturbation: probability of CutMix with another pseudo clip of the batch.
    pub cutmix: f64,
    /// Share of each pseudo clip's pixels with the largest depth loss left out.
    pub pseudo_trim: f64,
    /// What pseudo-labels supervise: `depth` (depth and its gradients only) or `all` (also
    /// the point and ray maps built from the teacher's cameras).
    pub pseudo_targets: PseudoTargets,
    /// Run directory whose newest checkpoint initialises the model (a student fine-tuned
    /// from its teacher); absent = random initialisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            preset: Preset::Tiny,
            image_height: 64,
            image_width: 80,
            clip_len: 3,
            max_gap: 3,
            batch_size: 2,
            steps: 300,
            lr: 1e-3,
            warmup_steps: 30,
            weight_decay: 1e-4,
            grad_clip_norm: 1.0,
            seed: 0,
            checkpoint_every: 100,
            augment_colour: 0.1,
            augment_blur: 0.1,
            cache_row_groups: 8,
            pseudo_labels: None,
            pseudo_ratio: 2.0,
            strong_colour: 0.4,
            strong_blur: 0.5,
            cutmix: 0.5,
            pseudo_trim: 0.1,
            pseudo_targets: PseudoTargets::Depth,
            init_from: None,
        }
    }
}

impl TrainConfig {
    /// The model config this training config resolves to.
    pub fn model(&self) -> Result<SpatialSvConfig> {
        self.validate()?;
        let base = match self.preset {
            Preset::Tiny => SpatialSvConfig::tiny(),
            Preset::Small => SpatialSvConfig::small(),
            Preset::Base => SpatialSvConfig::base(),
        };
        let m = base
            .with_image_height(self.image_height)
            .with_image_width(self.image_width);
        if self.clip_len == 0 || self.clip_len > m.max_frames {
            return Err(TrainError::User(format!(
                "clip_len {} is outside 1..={} frames",
                self.clip_len, m.max_frames
            )));
        }
        if !self.image_height.is_multiple_of(m.patch)
            || !self.image_width.is_multiple_of(m.patch)
            || self.image_height == 0
        {
            return Err(TrainError::User(format!(
                "image size {}x{} is not a multiple of the patch size {}",
                self.image_width, self.image_height, m.patch
            )));
        }
        Ok(m)
    }

    /// Checks every size, count, probability and rate against a clear bound, so a bad value
    /// is one line naming the key instead of a panic (or an allocation of terabytes) deep in
    /// the backend.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, v: &dyn std::fmt::Display, want: &str| {
            Err(TrainError::User(format!(
                "training config: {key} = {v} is invalid ({want})"
            )))
        };
        for (key, v, lo, hi) in [
            ("image_height", self.image_height, 1, MAX_IMAGE_SIDE),
            ("image_width", self.image_width, 1, MAX_IMAGE_SIDE),
            ("clip_len", self.clip_len, 1, 1024),
            ("max_gap", self.max_gap, 1, 1 << 20),
            ("batch_size", self.batch_size, 1, 4096),
            ("steps", self.steps, 1, 1 << 32),
            ("checkpoint_every", self.checkpoint_every, 1, usize::MAX),
            ("cache_row_groups", self.cache_row_groups, 1, 1 << 16),
        ] {
            if !(lo..=hi).contains(&v) {
                return bad(key, &v, &format!("must be in {lo}..={hi}"));
            }
        }
        let rate = |v: f64| v.is_finite() && v > 0.0 && v <= 10.0;
        if !rate(self.lr) {
            return bad("lr", &self.lr, "a finite rate in (0, 10]");
        }
        for (key, v) in [
            ("weight_decay", f64::from(self.weight_decay)),
            ("augment_colour", f64::from(self.augment_colour)),
            ("strong_colour", f64::from(self.strong_colour)),
        ] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return bad(key, &v, "must be in [0, 1]");
            }
        }
        if !(self.grad_clip_norm.is_finite() && self.grad_clip_norm > 0.0) {
            return bad("grad_clip_norm", &self.grad_clip_norm, "a finite norm > 0");
        }
        for (key, v) in [
            ("augment_blur", self.augment_blur),
            ("strong_blur", self.strong_blur),
            ("cutmix", self.cutmix),
        ] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return bad(key, &v, "a probability in [0, 1]");
            }
        }
        if !(self.pseudo_trim.is_finite() && (0.0..1.0).contains(&self.pseudo_trim)) {
            return bad("pseudo_trim", &self.pseudo_trim, "a share in [0, 1)");
        }
        if !(self.pseudo_ratio.is_finite() && self.pseudo_ratio > 0.0 && self.pseudo_ratio <= 64.0)
        {
            return bad("pseudo_ratio", &self.pseudo_ratio, "in (0, 64]");
        }
        if self.pseudo_labels.as_deref() == Some("") {
            return bad(
                "pseudo_labels",
                &"\"\"",
                "`latest` or a teacher-hash prefix; leave the key out to train on scans only",
            );
        }
        if self.init_from.as_deref() == Some(Path::new("")) {
            return bad(
                "init_from",
                &"\"\"",
                "a run directory; leave the key out for a random start",
            );
        }
        Ok(())
    }

    /// Whether pseudo-labels supervise the point and ray maps too.
    pub fn pseudo_geometry(&self) -> bool {
        self.pseudo_targets == PseudoTargets::All
    }

    /// Whether pseudo-labels are mixed in.
    pub fn semi_supervised(&self) -> bool {
        self.pseudo_labels.is_some()
    }

    /// Labeled and pseudo-labelled clips per batch.
    pub fn batch_split(&self) -> Result<(usize, usize)> {
        if !self.semi_supervised() {
            return Ok((self.batch_size, 0));
        }
        let labeled =
            ((self.batch_size as f64 / (1.0 + self.pseudo_ratio.max(0.0))).round() as usize).max(1);
        if labeled >= self.batch_size {
            return Err(TrainError::User(format!(
                "batch_size {} leaves no room for pseudo-labelled clips at pseudo_ratio {}; use batch_size >= 2",
                self.batch_size, self.pseudo_ratio
            )));
        }
        Ok((labeled, self.batch_size - labeled))
    }

    /// Learning rate at `step`: linear warm-up, then cosine decay to a tenth.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = self.steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let t = ((step - self.warmup_steps) as f64 / span).min(1.0);
        self.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
    }
}

/// What is saved with each checkpoint besides the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TrainState {
    step: usize,
    sampler_state: u64,
    dataset_version: u64,
}

/// Progress reports of a running loop.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// Steps done.
    pub step: usize,
    /// Total loss of the step.
    pub loss: f32,
}

fn io_err(action: &'static str, path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io {
        action,
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn checkpoint_dir(out: &Path, step: usize) -> PathBuf {
    out.join("checkpoints").join(format!("step-{step:08}"))
}

/// The newest complete checkpoint of a run, if any.
pub fn latest_checkpoint(out: &Path) -> Option<PathBuf> {
    let name = std::fs::read_to_string(out.join("latest")).ok()?;
    let dir = out.join("checkpoints").join(name.trim());
    dir.join("state.json").exists().then_some(dir)
}

/// The checkpoints a run directory holds (complete ones: with their `state.json`), oldest
/// first.
fn checkpoints(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out.join("checkpoints"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("state.json").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("step-"))
        .collect();
    names.sort();
    names
}

/// The newest checkpoint of a run, or a user error that says what the run directory holds
/// instead (nothing, or a `latest` pointer to a step that is gone).
pub fn require_checkpoint(out: &Path) -> Result<PathBuf> {
    if let Some(dir) = latest_checkpoint(out) {
        return Ok(dir);
    }
    let present = checkpoints(out);
    let pointer = std::fs::read_to_string(out.join("latest")).ok();
    Err(TrainError::User(match (pointer, present.is_empty()) {
        (_, true) => format!("no checkpoint in run directory {}", out.display()),
        (Some(p), false) => format!(
            "run {}: `latest` names {} but that checkpoint is missing or incomplete; present: {} \
             (write one of them into {})",
            out.display(),
            p.trim(),
            present.join(", "),
            out.join("latest").display()
        ),
        (None, false) => format!(
            "run {}: no `latest` pointer, but checkpoints {} are present (write the newest \
             into {})",
            out.display(),
            present.join(", "),
            out.join("latest").display()
        ),
    }))
}

/// Loads the model of a run's newest checkpoint (for evaluation and labelling).
pub fn load_model(out: &Path) -> Result<(SpatialSv<B>, SpatialSvConfig)> {
    let dir = require_checkpoint(out)?;
    let cfg_path = out.join("model.json");
    let cfg = SpatialSvConfig::load(&cfg_path)
        .map_err(|e| TrainError::corrupt(&cfg_path, "unreadable model config", e))?;
    let device = default_device();
    let model = cfg
        .init::<B>(&device)
        .load_file(dir.join("model"), &DefaultRecorder::new(), &device)
        .map_err(|e| {
            TrainError::corrupt(
                dir.join("model.mpk"),
                "checkpoint does not load into this run's model (damaged, or written for another model config)",
                e,
            )
        })?;
    Ok((model, cfg))
}

/// Trains on the train split of `dataset` into `out`, continuing from the newest checkpoint
/// when `resume` is set. Calls `on_step` after every step.
pub fn train(
    dataset: &Dataset,
    config: &TrainConfig,
    out: &Path,
    resume: bool,
    mut on_step: impl FnMut(&StepReport),
) -> Result<SpatialSv<B>> {
    let model_cfg = config.model()?;
    let device = default_device();
    std::fs::create_dir_all(out.join("checkpoints"))
        .map_err(|e| io_err("creating the run directory", out, e))?;
    let config_path = out.join("config.toml");
    let resolved = spatialsv_pipeline::to_toml(config)?;
    if resume {
        let saved = std::fs::read_to_string(&config_path)
            .map_err(|e| io_err("--resume: reading the run's config", &config_path, e))?;
        if saved != resolved {
            return Err(TrainError::User(format!(
                "--resume: the config differs from the one the run started with; use the run's own: {}",
                config_path.display()
            )));
        }
    } else if latest_checkpoint(out).is_some() {
        return Err(TrainError::User(format!(
            "{} already holds a run; pass --resume to continue it or choose another --out",
            out.display()
        )));
    }
    std::fs::write(&config_path, &resolved).map_err(|e| io_err("writing", &config_path, e))?;
    model_cfg
        .save(out.join("model.json"))
        .map_err(|e| io_err("writing", &out.join("model.json"), e))?;

    let manifest = dataset.latest()?;
    let store = Arc::new(FrameStore::new(
        dataset.clone(),
        &manifest,
        config.cache_row_groups,
    ));
    let batcher = ClipBatcher {
        frames: config.clip_len,
        height: config.image_height,
        width: config.image_width,
    };
    let scenes = store.labeled_scenes(&manifest, Split::Train)?;
    if scenes.values().all(|f| f.len() < config.clip_len) {
        return Err(TrainError::User(format!(
            "the train split of {} has no scene with {} labeled frames (depth and pose)",
            dataset.location(),
            config.clip_len
        )));
    }

    let (n_labeled, n_pseudo) = config.batch_split()?;
    let pseudo_geometry = config.pseudo_geometry();
    let pseudo = if config.semi_supervised() {
        Some(load_pseudo_set(
            dataset,
            &manifest,
            &store,
            config.pseudo_labels.as_deref().unwrap_or("latest"),
            config.clip_len,
            config.image_width,
            config.image_height,
        )?)
    } else {
        None
    };
    let strong = Augment {
        colour: config.strong_colour,
        blur: config.strong_blur,
    };

    B::seed(&device, config.seed);
    let mut model = model_cfg.init::<B>(&device);
    if let Some(init_from) = &config.init_from {
        let (init, init_cfg) = load_model(init_from)?;
        if init_cfg != model_cfg {
            return Err(TrainError::User(format!(
                "init_from {}: its model config differs from this run's (preset or image size)",
                init_from.display()
            )));
        }
        model = init;
    }
    let mut optim = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(config.grad_clip_norm)))
        .init::<B, SpatialSv<B>>();
    let mut sampler = SplitMix64::new(config.seed ^ 0x5A3B_1E5D);
    let mut start = 0;
    let recorder = DefaultRecorder::new();
    if resume && let Some(dir) = latest_checkpoint(out) {
        let state: TrainState = serde_json::from_str(
            &std::fs::read_to_string(dir.join("state.json"))
                .map_err(|e| io_err("reading checkpoint state", &dir, e))?,
        )
        .map_err(|e| {
            TrainError::corrupt(dir.join("state.json"), "unreadable checkpoint state", e)
        })?;
        model = model
            .load_file(dir.join("model"), &recorder, &device)
            .map_err(|e| TrainError::corrupt(dir.join("model.mpk"), "unloadable checkpoint", e))?;
        let record = recorder.load(dir.join("optim"), &device).map_err(|e| {
            TrainError::corrupt(dir.join("optim.mpk"), "unloadable optimiser state", e)
        })?;
        optim = optim.load_record(record);
        sampler = SplitMix64::new(state.sampler_state);
        start = state.step;
    }

    let run_id = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let metrics_ds = Dataset::open_or_create(out)?;
    let mut pending: Vec<(usize, &'static str, f64)> = Vec::new();
    let loss_cfg = LossConfig::new().with_trim_fraction(if pseudo.is_some() {
        config.pseudo_trim
    } else {
        0.0
    });
    let aug = Augment {
        colour: config.augment_colour,
        blur: config.augment_blur,
    };
    let (v, h, w) = (config.clip_len, config.image_height, config.image_width);
    for step in start..config.steps {
        let clips = sample_clips(&scenes, n_labeled, v, config.max_gap, &mut sampler);
        let step_seed = config.seed ^ ((step as u64) << 20);
        let data = ClipDataset::new(store.clone(), clips, w, h, aug, step_seed);
        let mut samples: Vec<ClipSample> = (0..data.len())
            .map(|i| data.try_get(i))
            .collect::<Result<_>>()?;
        if let Some(set) = &pseudo {
            let picks: Vec<usize> = (0..n_pseudo)
                .map(|_| (sampler.next_u64() % set.clips.len() as u64) as usize)
                .collect();
            let mut extra: Vec<ClipSample> = picks
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    let clip = &set.clips[*c];
                    let mut s = load_pseudo_clip(
                        &store,
                        &clip.frames,
                        w,
                        h,
                        strong,
                        step_seed ^ (0xC0FFEE + k as u64),
                    )?;
                    if !pseudo_geometry || !clip.cameras_ok {
                        s.geometry.iter_mut().for_each(|g| *g = 0.0);
                    }
                    Ok(s)
                })
                .collect::<Result<_>>()?;
            for k in 0..extra.len() {
                if extra.len() > 1 && sampler.next_f64() < config.cutmix {
                    let other = (k + 1 + (sampler.next_u64() % (extra.len() - 1) as u64) as usize)
                        % extra.len();
                    // Borrow the destination and the source apart instead of cloning.
                    let (dst, src) = if k < other {
                        let (lo, hi) = extra.split_at_mut(other);
                        (&mut lo[k], &hi[0])
                    } else {
                        let (lo, hi) = extra.split_at_mut(k);
                        (&mut hi[0], &lo[other])
                    };
                    cutmix(dst, src, v, w, h, &mut sampler);
                }
            }
            samples.extend(extra);
        }
        let ClipBatch { images, targets } = batcher.batch(samples, &device);
        let lr = config.lr_at(step);
        let (m, losses) = train_step(model, &mut optim, images, &targets, &loss_cfg, lr, step)?;
        model = m;
        for (name, value) in &losses.terms {
            pending.push((step, name, f64::from(*value)));
        }
        pending.push((step, "lr", lr));
        let total = losses
            .terms
            .iter()
            .find(|t| t.0 == "loss/total")
            .map_or(f32::NAN, |t| t.1);
        on_step(&StepReport {
            step: step + 1,
            loss: total,
        });
        let done = step + 1;
        if done % config.checkpoint_every.max(1) == 0 || done == config.steps {
            // Weights, optimiser state and sampler state, atomically.
            let tmp = out.join("checkpoints").join(format!(".tmp-step-{done:08}"));
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).map_err(|e| io_err("writing a checkpoint", &tmp, e))?;
            model
                .clone()
                .save_file(tmp.join("model"), &recorder)
                .map_err(|e| io_err("saving a checkpoint", &tmp, e))?;
            recorder
                .record(optim.to_record(), tmp.join("optim"))
                .map_err(|e| io_err("saving a checkpoint", &tmp, e))?;
            let state = TrainState {
                step: done,
                sampler_state: sampler.state(),
                dataset_version: manifest.version,
            };
            let json = serde_json::to_string_pretty(&state)
                .map_err(|e| TrainError::Internal(e.to_string()))?;
            std::fs::write(tmp.join("state.json"), json).map_err(|e| io_err("writing", &tmp, e))?;
            let dir = checkpoint_dir(out, done);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::rename(&tmp, &dir).map_err(|e| io_err("publishing a checkpoint", &dir, e))?;
            let latest_tmp = out.join(".latest.tmp");
            std::fs::write(&latest_tmp, format!("step-{done:08}\n"))
                .map_err(|e| io_err("writing", &latest_tmp, e))?;
            std::fs::rename(&latest_tmp, out.join("latest"))
                .map_err(|e| io_err("writing", out, e))?;
            commit_metrics(&metrics_ds, &run_id, std::mem::take(&mut pending))?;
        }
    }
    commit_run(
        &metrics_ds,
        &run_id,
        if pseudo.is_some() {
            "student"
        } else {
            "teacher"
        },
        dataset,
        manifest.version,
        &resolved,
        config.seed,
        out,
    )?;
    Ok(model)
}

fn commit_metrics(ds: &Dataset, run_id: &str, rows: Vec<(usize, &'static str, f64)>) -> Result<()> {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
    };
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len();
    let now = now_ns();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![run_id; n])),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.0 as i64),
        )),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
        Arc::new(TimestampNanosecondArray::from(vec![now; n]).with_timezone("UTC")),
    ];
    let batch = RecordBatch::try_new(Table::Metrics.schema(), cols)?;
    let mut tx = ds.begin(format!("train {run_id}: metrics"))?;
    tx.append(Table::Metrics, batch)?;
    tx.commit()?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn commit_run(
    ds: &Dataset,
    run_id: &str,
    role: &str,
    data: &Dataset,
    version: u64,
    config: &str,
    seed: u64,
    out: &Path,
) -> Result<()> {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
    let now = now_ns();
    let s = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v])) };
    let cols: Vec<ArrayRef> = vec![
        s(run_id),
        s(role),
        s(&data.location()),
        Arc::new(Int64Array::from(vec![version as i64])),
        s(config),
        s(&blake3::hash(config.as_bytes()).to_hex()),
        s(CODE_VERSION),
        Arc::new(Int64Array::from(vec![seed as i64])),
        s(BACKEND_NAME),
        Arc::new(TimestampNanosecondArray::from(vec![now]).with_timezone("UTC")),
        Arc::new(TimestampNanosecondArray::from(vec![Some(now)]).with_timezone("UTC")),
        s("finished"),
        s(&out.join("latest").display().to_string()),
    ];
    let batch = RecordBatch::try_new(Table::Runs.schema(), cols)?;
    let mut tx = ds.begin(format!("train {run_id}: run"))?;
    tx.append(Table::Runs, batch)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};

    use super::*;
    use crate::data::tests::synthetic_dataset;

    fn tiny_config() -> TrainConfig {
        TrainConfig {
            image_height: 16,
            image_width: 24,
            batch_size: 1,
            clip_len: 2,
            steps: 4,
            checkpoint_every: 2,
            warmup_steps: 1,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn clip_length_and_image_size_are_checked() {
        assert!(TrainConfig::default().model().is_ok());
        let long = TrainConfig {
            clip_len: 9,
            ..TrainConfig::default()
        };
        assert_eq!(
            long.model().unwrap_err().to_string(),
            "clip_len 9 is outside 1..=8 frames"
        );
        let odd = TrainConfig {
            image_width: 81,
            ..TrainConfig::default()
        };
        assert!(
            odd.model()
                .unwrap_err()
                .to_string()
                .contains("not a multiple of the patch size 8")
        );
        let preset = spatialsv_pipeline::parse_toml::<TrainConfig>("preset = \"huge\"", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(preset.contains("unknown variant `huge`"), "{preset}");
    }

    /// Values that used to panic inside burn or try to allocate terabytes are refused up
    /// front, naming the key.
    #[test]
    fn every_size_and_rate_is_bounded() {
        let cases: Vec<(TrainConfig, &str)> = vec![
            (
                TrainConfig {
                    image_width: 0,
                    ..TrainConfig::default()
                },
                "image_width = 0",
            ),
            (
                TrainConfig {
                    image_height: 80000,
                    ..TrainConfig::default()
                },
                "image_height = 80000",
            ),
            (
                TrainConfig {
                    batch_size: 0,
                    ..TrainConfig::default()
                },
                "batch_size = 0",
            ),
            (
                TrainConfig {
                    steps: 0,
                    ..TrainConfig::default()
                },
                "steps = 0",
            ),
            (
                TrainConfig {
                    checkpoint_every: 0,
                    ..TrainConfig::default()
                },
                "checkpoint_every = 0",
            ),
            (
                TrainConfig {
                    augment_blur: 2.0,
                    ..TrainConfig::default()
                },
                "augment_blur = 2",
            ),
            (
                TrainConfig {
                    lr: f64::NAN,
                    ..TrainConfig::default()
                },
                "lr = NaN",
            ),
            (
                TrainConfig {
                    cutmix: -0.1,
                    ..TrainConfig::default()
                },
                "cutmix = -0.1",
            ),
            (
                TrainConfig {
                    pseudo_trim: 1.0,
                    ..TrainConfig::default()
                },
                "pseudo_trim = 1",
            ),
            (
                TrainConfig {
                    pseudo_labels: Some(String::new()),
                    ..TrainConfig::default()
                },
                "pseudo_labels = \"\"",
            ),
        ];
        for (cfg, key) in cases {
            let err = cfg.model().unwrap_err();
            assert!(err.is_user_error(), "{key}: {err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("training config: {key} is invalid")),
                "{key}: {err}"
            );
        }
        TrainConfig::default().model().unwrap();
    }

    #[test]
    fn schedule_warms_up_then_decays() {
        let c = TrainConfig {
            steps: 100,
            warmup_steps: 10,
            lr: 1.0,
            ..TrainConfig::default()
        };
        assert!((c.lr_at(0) - 0.1).abs() < 1e-12);
        assert!((c.lr_at(9) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(10) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(55) - 0.55).abs() < 1e-9);
        assert!((c.lr_at(99) - 0.1).abs() < 1e-3);
    }

    #[test]
    fn configs_train_toml_lists_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/train.toml");
        let parsed: TrainConfig = spatialsv_pipeline::load_toml(&path).unwrap();
        assert_eq!(parsed, TrainConfig::default());
    }

    #[test]
    fn resume_continues_exactly_and_reload_predicts_the_same() {
        let _rng = crate::backend::RNG_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let (ds, _) = synthetic_dataset(dir.path());
        let cfg = tiny_config();
        // Straight through: 4 steps.
        let straight = train(&ds, &cfg, &dir.path().join("runs/a"), false, |_| {}).unwrap();
        // Interrupted after 2 steps, then resumed.
        let half = TrainConfig {
            steps: 2,
            ..cfg.clone()
        };
        train(&ds, &half, &dir.path().join("runs/b"), false, |_| {}).unwrap();
        // The config of a resumed run must be the run's own: rewrite it to the full length.
        std::fs::write(
            dir.path().join("runs/b/config.toml"),
            spatialsv_pipeline::to_toml(&cfg).unwrap(),
        )
        .unwrap();
        let mut steps = Vec::new();
        let resumed = train(&ds, &cfg, &dir.path().join("runs/b"), true, |r| {
            steps.push(r.step)
        })
        .unwrap();
        assert_eq!(steps, vec![3, 4]);
        let device = default_device();
        let images =
            Tensor::<B, 5>::random([1, 2, 3, 16, 24], Distribution::Normal(0.0, 1.0), &device);
        let a = straight.forward(images.clone()).depth;
        let b = resumed.forward(images.clone()).depth;
        let diff = (a.clone() - b).abs().max().into_scalar();
        assert!(diff < 1e-5, "resumed run differs by {diff}");
        let (reloaded, _) = load_model(&dir.path().join("runs/a")).unwrap();
        let c = reloaded.forward(images).depth;
        assert!((a - c).abs().max().into_scalar() < 1e-6);
        // The run directory is a dataset: metrics and the run row are queryable.
        let m = Dataset::open(dir.path().join("runs/a")).unwrap();
        let latest = m.latest().unwrap();
        assert_eq!(latest.rows("metrics"), 4 * 7);
        assert_eq!(latest.rows("runs"), 1);
        // Starting over an existing run without --resume is refused.
        let err = train(&ds, &cfg, &dir.path().join("runs/a"), false, |_| {}).unwrap_err();
        assert!(err.to_string().contains("already holds a run"), "{err}");
    }
}
