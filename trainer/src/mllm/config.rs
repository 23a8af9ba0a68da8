//! The multimodal model's training config (`configs/mllm.toml`): every field has a default,
//! unknown keys are errors, and the resolved config is saved with the run.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// Which 3D targets supervise the taps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target3d {
    /// Depth maps (and their gradients).
    Depth,
    /// Point maps (and normals from them).
    Points,
    /// Camera ray maps.
    Rays,
}

/// Where text-free (3D-only) samples come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpatialOnly {
    /// None: every sample has a question.
    None,
    /// The teacher's pseudo-labels of the dataset's unlabeled videos (`pseudo_labels`).
    Videos,
    /// The training rooms left out of the QA share (`1 - qa_share`), with their true 3D (no
    /// text): the semi-supervised control with perfect labels.
    Rooms,
}

/// Options of a multimodal run; `kind = "mllm"` tells `spatialsv train` it is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MllmConfig {
    /// Always `mllm`.
    pub kind: String,
    /// Seed of initialisation and sampling.
    pub seed: u64,
    /// Optimiser steps.
    pub steps: usize,
    /// Samples per step (QA and text-free together).
    pub batch_size: usize,
    /// Peak learning rate (AdamW, linear warm-up, cosine decay to a tenth).
    pub lr: f64,
    /// Warm-up steps.
    pub warmup_steps: usize,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Gradient norm clipping.
    pub grad_clip_norm: f32,
    /// Checkpoint (and commit metrics) every N steps.
    pub checkpoint_every: usize,
    /// Image height (a multiple of `patch`).
    pub image_height: usize,
    /// Image width.
    pub image_width: usize,
    /// Patch size of the vision tower.
    pub patch: usize,
    /// Views per sample (the `qa` table's clips must have this many).
    pub views: usize,
    /// Vision tower width.
    pub vision_width: usize,
    /// Vision tower layers (frame attention).
    pub vision_layers: usize,
    /// Language model width.
    pub width: usize,
    /// Language model layers (4 spread ones are tapped).
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Width of the taps' projectors and the dense heads.
    pub head_width: usize,
    /// Longest text (question and answer tokens).
    pub max_text: usize,
    /// Freeze the vision tower (patch embedding, its layers).
    pub freeze_vision: bool,
    /// 3D targets of the taps (empty: text loss only).
    pub targets: Vec<Target3d>,
    /// Weight of the 3D losses against the text loss.
    pub loss_3d: f64,
    /// Feature distillation from a 3D teacher's pooled features (`distill_from`).
    pub distill: bool,
    /// Weight of the distillation loss.
    pub distill_weight: f64,
    /// Run directory of the 3D teacher (a `spatialsv train` run) for distillation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distill_from: Option<PathBuf>,
    /// Control: each QA sample's 3D targets are another sample's (is it geometry, or just
    /// more gradient?).
    pub shuffle_targets: bool,
    /// Share of the training rooms whose questions are used (by scene id hash: the same rooms
    /// for every seed).
    pub qa_share: f64,
    /// Use at most this many training questions (0 = all): the QA set size.
    pub max_questions: usize,
    /// Text-free samples: `none`, `videos` (pseudo-labels) or `rooms`.
    pub spatial_only: SpatialOnly,
    /// Share of each batch that is text-free, when `spatial_only` is not `none`.
    pub spatial_share: f64,
    /// The pseudo-labels for `spatial_only = "videos"`: `latest`, a teacher-hash prefix or
    /// `TEACHER:CONFIG`.
    pub pseudo_labels: String,
    /// Decoded row groups kept in memory.
    pub cache_row_groups: usize,
}

impl Default for MllmConfig {
    fn default() -> Self {
        Self {
            kind: "mllm".into(),
            seed: 0,
            steps: 300,
            batch_size: 8,
            lr: 1e-3,
            warmup_steps: 30,
            weight_decay: 1e-4,
            grad_clip_norm: 1.0,
            checkpoint_every: 100,
            image_height: 48,
            image_width: 64,
            patch: 8,
            views: 4,
            vision_width: 64,
            vision_layers: 2,
            width: 96,
            layers: 4,
            heads: 4,
            head_width: 32,
            max_text: 48,
            freeze_vision: false,
            targets: vec![Target3d::Depth, Target3d::Points, Target3d::Rays],
            loss_3d: 1.0,
            distill: false,
            distill_weight: 1.0,
            distill_from: None,
            shuffle_targets: false,
            qa_share: 1.0,
            max_questions: 0,
            spatial_only: SpatialOnly::None,
            spatial_share: 0.5,
            pseudo_labels: "latest".into(),
            cache_row_groups: 16,
        }
    }
}

impl MllmConfig {
    /// Checks values that would fail far from here.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::User(m));
        if self.kind != "mllm" {
            return bad(format!(
                "kind = \"{}\": a multimodal config has kind = \"mllm\"",
                self.kind
            ));
        }
        if self.patch == 0
            || !self.image_height.is_multiple_of(self.patch)
            || !self.image_width.is_multiple_of(self.patch)
            || self.image_height == 0
            || self.image_width == 0
        {
            return bad(format!(
                "image {}x{} is not a positive multiple of patch {}",
                self.image_width, self.image_height, self.patch
            ));
        }
        if self.views == 0 || self.views > 16 {
            return bad(format!("views {} is outside 1..=16", self.views));
        }
        if self.layers < 4 {
            return bad(format!(
                "layers {}: at least 4 (four are tapped)",
                self.layers
            ));
        }
        for (name, w) in [("width", self.width), ("vision_width", self.vision_width)] {
            if w == 0 || !w.is_multiple_of(self.heads.max(1)) {
                return bad(format!(
                    "{name} {w} is not a positive multiple of heads {}",
                    self.heads
                ));
            }
        }
        if self.batch_size == 0 || self.steps == 0 || self.max_text < 4 {
            return bad("batch_size and steps must be positive and max_text at least 4".into());
        }
        if !(0.0..=1.0).contains(&self.qa_share) || self.qa_share == 0.0 {
            return bad(format!("qa_share {} is outside (0, 1]", self.qa_share));
        }
        if !(0.0..1.0).contains(&self.spatial_share) {
            return bad(format!(
                "spatial_share {} is outside [0, 1)",
                self.spatial_share
            ));
        }
        if self.spatial_only == SpatialOnly::Rooms && self.qa_share >= 1.0 {
            return bad("spatial_only = \"rooms\" needs qa_share < 1 (the other rooms)".into());
        }
        if self.spatial_only != SpatialOnly::None && self.targets.is_empty() {
            return bad("text-free samples need 3D targets (targets is empty)".into());
        }
        if self.distill && self.distill_from.is_none() {
            return bad("distill = true needs distill_from = \"runs/TEACHER\"".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("lr {} must be positive", self.lr));
        }
        Ok(())
    }

    /// Text-free samples per batch.
    pub fn spatial_per_batch(&self) -> usize {
        if self.spatial_only == SpatialOnly::None {
            0
        } else {
            ((self.batch_size as f64 * self.spatial_share).round() as usize)
                .min(self.batch_size - 1)
        }
    }

    /// Learning rate at `step`: linear warm-up, then cosine decay to a tenth.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let t = (step - self.warmup_steps) as f64
            / (self.steps.saturating_sub(self.warmup_steps)).max(1) as f64;
        self.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos()))
    }

    /// Whether a TOML text is a multimodal config (`kind = "mllm"` at the top level).
    pub fn is_mllm_toml(text: &str) -> bool {
        text.parse::<toml::Table>()
            .ok()
            .and_then(|t| t.get("kind").and_then(|k| k.as_str().map(|s| s == "mllm")))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_is_the_defaults_and_bad_values_are_named() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/mllm.toml");
        let shipped: MllmConfig = spatialsv_store::load_toml(&path).unwrap();
        assert_eq!(shipped, MllmConfig::default());
        assert!(MllmConfig::is_mllm_toml(
            &std::fs::read_to_string(&path).unwrap()
        ));
        assert!(!MllmConfig::is_mllm_toml("steps = 3\n"));
        let c = MllmConfig {
            qa_share: 1.0,
            spatial_only: SpatialOnly::Rooms,
            ..MllmConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("qa_share < 1")
        );
        let c = MllmConfig {
            distill: true,
            ..MllmConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("distill_from")
        );
    }
}
