//! The semi-supervised experiment recipe (what `spatialsv demo` runs): a teacher trained
//! from scratch on the labeled scans, then three models fine-tuned from it with the same
//! steps, schedule and seed:
//!
//! - `student`: labeled clips plus accepted pseudo-labels (1:2 per batch);
//! - `baseline`: the student's batch size, all labeled (the same compute, 3x the labeled
//!   clips per step);
//! - `baseline_labeled`: exactly the student's labeled clips per step and nothing else;
//! - `baseline_strong`: the student's batch size, all labeled, every clip perturbed as
//!   strongly as the student's pseudo-labelled clips (colour, blur, CutMix), so a student
//!   win is not just augmentation.

use std::path::Path;

use spatialsv_trainer::{Preset, TrainConfig};

use crate::error::Result;

/// Training steps of (the teacher, every fine-tuned model) at the quick or the full budget.
///
/// One third more than before the compute pass ((300, 200) and (900, 600)): turning on
/// burn-flex's SIMD and threads made a CPU training step about 1.3x faster, and the demo
/// spends that on steps within the same wall time (docs/performance.md).
pub fn budget(quick: bool) -> (usize, usize) {
    if quick { (400, 270) } else { (1200, 800) }
}

/// The arms the demo and `study semi` compare, in report order (the run directory names).
pub const ARMS: [&str; 5] = [
    "teacher",
    "baseline",
    "baseline_labeled",
    "baseline_strong",
    "student",
];

/// The student without one stage each (`study semi --ablations`).
pub const ABLATIONS: [&str; 3] = [
    "ablation_single_pass",
    "ablation_no_noise",
    "ablation_fewer_videos",
];

/// The arm every other is compared with.
pub const STUDENT: &str = "student";

/// Decay of the weight average of every run of the recipe (a horizon of about 100 steps).
pub const EMA_DECAY: f64 = 0.99;

/// The training configs of one experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// Trained from scratch on the labeled scans.
    pub teacher: TrainConfig,
    /// Fine-tuned on labeled clips and pseudo-labels.
    pub student: TrainConfig,
    /// Fine-tuned on labeled clips only, the student's batch size.
    pub baseline: TrainConfig,
    /// Fine-tuned on the student's labeled clips only.
    pub baseline_labeled: TrainConfig,
    /// Fine-tuned on labeled clips only, the student's batch size and strong perturbations.
    pub baseline_strong: TrainConfig,
}

impl Recipe {
    /// The recipe for `seed`, with the teacher's run directory as the others' start.
    pub fn new(
        seed: u64,
        teacher_steps: usize,
        student_steps: usize,
        teacher_dir: &Path,
    ) -> Result<Self> {
        // Every run keeps an EMA of its weights and is used through it (Noisy Student, Depth
        // Anything); mirrored clips join the strong perturbations of the student's pseudo
        // clips and of baseline_strong's labeled ones.
        let teacher = TrainConfig {
            steps: teacher_steps,
            seed,
            checkpoint_every: 100.min(teacher_steps.max(1)),
            ema_decay: EMA_DECAY,
            strong_flip: 0.5,
            ..TrainConfig::default()
        };
        let baseline = TrainConfig {
            steps: student_steps,
            batch_size: 3,
            warmup_steps: 10.min(student_steps),
            lr: 5e-4,
            checkpoint_every: 100.min(student_steps.max(1)),
            init_from: Some(teacher_dir.to_path_buf()),
            ..teacher.clone()
        };
        let student = TrainConfig {
            pseudo_labels: Some("latest".into()),
            ..baseline.clone()
        };
        let baseline_labeled = TrainConfig {
            batch_size: student.batch_split()?.0,
            ..baseline.clone()
        };
        let baseline_strong = TrainConfig {
            strong_labeled: true,
            ..baseline.clone()
        };
        Ok(Self {
            teacher,
            student,
            baseline,
            baseline_labeled,
            baseline_strong,
        })
    }

    /// The same recipe for another model preset, at the preset's own image size (the GPU
    /// presets `small` and `base`; `demo --preset`).
    pub fn with_preset(mut self, preset: Preset) -> Self {
        let m = preset.model();
        for c in [
            &mut self.teacher,
            &mut self.student,
            &mut self.baseline,
            &mut self.baseline_labeled,
            &mut self.baseline_strong,
        ] {
            c.preset = preset;
            c.image_height = m.image_height;
            c.image_width = m.image_width;
        }
        self
    }

    /// Every run by name ([`ARMS`]), in training order.
    pub fn runs(&self) -> [(&'static str, &TrainConfig); 5] {
        [
            (ARMS[0], &self.teacher),
            (STUDENT, &self.student),
            (ARMS[1], &self.baseline),
            (ARMS[2], &self.baseline_labeled),
            (ARMS[3], &self.baseline_strong),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fine_tuned_runs_differ_only_in_what_they_see() {
        let r = Recipe::new(3, 30, 20, Path::new("runs/teacher")).unwrap();
        assert_eq!((r.teacher.steps, r.teacher.seed), (30, 3));
        assert_eq!(r.teacher.init_from, None);
        assert!(r.baseline_strong.strong_labeled && !r.baseline.strong_labeled);
        assert!(!r.baseline_strong.semi_supervised());
        for c in [
            &r.student,
            &r.baseline,
            &r.baseline_labeled,
            &r.baseline_strong,
        ] {
            assert_eq!(c.steps, 20);
            assert_eq!(c.init_from.as_deref(), Some(Path::new("runs/teacher")));
            assert_eq!((c.lr, c.seed), (r.baseline.lr, 3));
        }
        assert!(r.student.semi_supervised() && !r.baseline.semi_supervised());
        // The labeled-only baseline sees exactly the student's labeled clips per batch.
        assert_eq!(
            r.baseline_labeled.batch_size,
            r.student.batch_split().unwrap().0
        );
        for (name, c) in r.runs() {
            assert!(ARMS.contains(&name));
            c.validate().unwrap();
        }
        let small = r.with_preset(Preset::Small);
        for (_, c) in small.runs() {
            assert_eq!(
                (c.preset, c.image_height, c.image_width),
                (Preset::Small, 224, 224)
            );
            c.model().unwrap();
        }
    }
}
