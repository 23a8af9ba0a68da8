//! The training config (`configs/train.toml`): typed presets and targets, every size,
//! count, probability and rate validated with a clear bound, the model it resolves to and
//! the learning-rate schedule.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::model::SpatialSvConfig;

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

impl Preset {
    /// The preset's model config at its own image size.
    pub fn model(self) -> SpatialSvConfig {
        match self {
            Preset::Tiny => SpatialSvConfig::tiny(),
            Preset::Small => SpatialSvConfig::small(),
            Preset::Base => SpatialSvConfig::base(),
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = String;

    /// The preset's name as in configs and on the command line (`tiny`, `small`, `base`).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "tiny" => Ok(Preset::Tiny),
            "small" => Ok(Preset::Small),
            "base" => Ok(Preset::Base),
            _ => Err(format!("unknown preset '{s}' (tiny, small or base)")),
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Preset::Tiny => "tiny",
            Preset::Small => "small",
            Preset::Base => "base",
        })
    }
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
    /// Semi-supervised training: the pseudo-labels to mix in, `latest`, a teacher-hash
    /// prefix, or `TEACHER:CONFIG` hash prefixes; absent trains on labeled scans only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pseudo_labels: Option<String>,
    /// Pseudo-labelled clips per labeled clip in a batch (1:2 by default).
    pub pseudo_ratio: f64,
    /// Use the pseudo-labels of the first N labelled scenes (by id) only; 0 = all (the
    /// "fewer unlabeled videos" ablation).
    pub pseudo_max_scenes: usize,
    /// Strong perturbation of pseudo-labelled inputs: colour jitter.
    pub strong_colour: f32,
    /// Strong perturbation: probability of a blur.
    pub strong_blur: f64,
    /// Strong perturbation: probability of CutMix with another pseudo clip of the batch.
    pub cutmix: f64,
    /// Share of each pseudo clip's pixels with the largest depth loss left out.
    pub pseudo_trim: f64,
    /// Perturb labeled clips like pseudo-labelled ones (strong colour and blur, CutMix
    /// between the batch's labeled clips): the supervised-only control that tells a
    /// semi-supervised gain from an augmentation gain.
    pub strong_labeled: bool,
    /// Probability of mirroring a strongly perturbed clip left-right (images, depth, and the
    /// point and ray maps' x axis), as one more perturbation of pseudo-labelled clips (and of
    /// labeled ones with `strong_labeled`).
    pub strong_flip: f64,
    /// Exponential moving average of the weights after every step (0 = off); checkpoints
    /// keep it as `ema.mpk`, and evaluation, labelling, export and `init_from` use it.
    pub ema_decay: f64,
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
            pseudo_max_scenes: 0,
            strong_colour: 0.4,
            strong_blur: 0.5,
            cutmix: 0.5,
            pseudo_trim: 0.1,
            strong_labeled: false,
            strong_flip: 0.0,
            ema_decay: 0.0,
            pseudo_targets: PseudoTargets::Depth,
            init_from: None,
        }
    }
}

impl TrainConfig {
    /// The model config this training config resolves to.
    pub fn model(&self) -> Result<SpatialSvConfig> {
        self.validate()?;
        let m = self
            .preset
            .model()
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
            ("strong_flip", self.strong_flip),
        ] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return bad(key, &v, "a probability in [0, 1]");
            }
        }
        if !(self.ema_decay.is_finite() && (0.0..1.0).contains(&self.ema_decay)) {
            return bad("ema_decay", &self.ema_decay, "in [0, 1); 0 = off");
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

    /// The labelling `pseudo_labels` names (the newest one when unset).
    pub fn pseudo_label_selector(&self) -> spatialsv_store::Selector {
        self.pseudo_labels
            .as_deref()
            .unwrap_or("latest")
            .parse()
            .unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let preset = spatialsv_store::parse_toml::<TrainConfig>("preset = \"huge\"", "t.toml")
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
        let parsed: TrainConfig = spatialsv_store::load_toml(&path).unwrap();
        assert_eq!(parsed, TrainConfig::default());
    }
}
