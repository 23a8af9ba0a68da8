//! `study spatialsv`'s rows: the paper's tables in miniature, each a multimodal run whose
//! config differs from one base (targets, text share, text-free sources, controls), with the
//! budget and world of a study. The demo runs the semi-supervised rows of this table.

use std::path::Path;

use spatialsv_trainer::mllm::{MllmConfig, SpatialOnly, Target3d};

use crate::error::{LabError, Result};

/// One row of the table: name, what it is, how its config differs from the base.
pub struct Row {
    /// Run name.
    pub name: &'static str,
    /// The paper's row it mirrors.
    pub what: &'static str,
    modify: fn(&mut MllmConfig, &Path),
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Row")
            .field("name", &self.name)
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

impl Row {
    /// The same row under another run name (the QA-size pilot's runs).
    pub fn renamed(&self, name: &'static str) -> Row {
        Row {
            name,
            what: self.what,
            modify: self.modify,
        }
    }

    /// This row's config: `base` with the row's targets, shares and sources (`teacher`:
    /// the 3D run distillation rows distil from).
    pub fn config(&self, base: &MllmConfig, teacher: &Path) -> MllmConfig {
        let mut c = base.clone();
        (self.modify)(&mut c, teacher);
        c
    }
}

const ALL3: [Target3d; 3] = [Target3d::Depth, Target3d::Points, Target3d::Rays];

/// The rows: the quick set (the ordering the paper claims and its controls), then the rest
/// of the full table.
pub fn rows(full: bool) -> Vec<Row> {
    let mut r = vec![
        Row {
            name: "text_only",
            what: "text only (100% of the QA rooms)",
            modify: |c, _| c.targets = vec![],
        },
        Row {
            name: "text_3d",
            what: "+ depth + points + rays",
            modify: |c, _| c.targets = ALL3.to_vec(),
        },
        Row {
            name: "shuffled_3d",
            what: "control: 3D targets of another sample",
            modify: |c, _| {
                c.targets = ALL3.to_vec();
                c.shuffle_targets = true;
            },
        },
        Row {
            name: "half_text",
            what: "semi-supervised: 50% of the rooms, text only",
            modify: |c, _| {
                c.targets = vec![];
                c.qa_share = 0.5;
            },
        },
        Row {
            name: "half_text_3d",
            what: "50% text + 3D losses",
            modify: |c, _| {
                c.targets = ALL3.to_vec();
                c.qa_share = 0.5;
            },
        },
        Row {
            name: "half_text_3d_videos",
            what: "50% text + 3D, plus unlabeled videos with 3D losses only (pseudo-labels, no text)",
            modify: |c, _| {
                c.targets = ALL3.to_vec();
                c.qa_share = 0.5;
                c.spatial_only = SpatialOnly::Videos;
            },
        },
    ];
    if full {
        r.extend([
            Row {
                name: "text_distill",
                what: "+ feature distillation",
                modify: |c, t| {
                    c.targets = vec![];
                    c.distill = true;
                    c.distill_from = Some(t.to_path_buf());
                },
            },
            Row {
                name: "text_depth",
                what: "+ depth only",
                modify: |c, _| c.targets = vec![Target3d::Depth],
            },
            Row {
                name: "text_points",
                what: "+ points only",
                modify: |c, _| c.targets = vec![Target3d::Points],
            },
            Row {
                name: "text_rays",
                what: "+ rays only",
                modify: |c, _| c.targets = vec![Target3d::Rays],
            },
            Row {
                name: "text_3d_distill",
                what: "+ depth + points + rays + distillation",
                modify: |c, t| {
                    c.targets = ALL3.to_vec();
                    c.distill = true;
                    c.distill_from = Some(t.to_path_buf());
                },
            },
        ]);
    }
    r
}

/// The pairs compared: (row, against, what the difference would mean).
pub const PAIRS: [(&str, &str, &str); 6] = [
    ("text_3d", "text_only", "3D supervision helps answers"),
    (
        "shuffled_3d",
        "text_only",
        "3D-shaped gradient without the geometry",
    ),
    (
        "text_3d",
        "shuffled_3d",
        "the geometry, not the extra gradient",
    ),
    (
        "half_text_3d",
        "half_text",
        "3D supervision with half the questions",
    ),
    (
        "half_text_3d_videos",
        "half_text_3d",
        "text-free videos with pseudo-labels help",
    ),
    (
        "text_only",
        "half_text",
        "twice the questions (data starvation)",
    ),
];

/// Budget and world of a study.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Steps of every multimodal run.
    pub steps: usize,
    /// Steps of the 3D teacher.
    pub teacher_steps: usize,
    /// Questions per clip and family.
    pub per_clip: usize,
    /// Training rooms (test rooms: 6).
    pub train_rooms: usize,
    /// Frames per room.
    pub frames: usize,
    /// Samples per step of every multimodal run.
    pub batch: usize,
}

impl Budget {
    /// The quick or full budget.
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                steps: 500,
                teacher_steps: 200,
                per_clip: 6,
                train_rooms: 8,
                frames: 32,
                batch: 8,
            }
        } else {
            Self {
                steps: 1500,
                teacher_steps: 400,
                per_clip: 8,
                train_rooms: 12,
                frames: 48,
                batch: 8,
            }
        }
    }
}

/// The base multimodal config of every row.
pub fn base_config(seed: u64, b: &Budget, max_questions: usize) -> MllmConfig {
    MllmConfig {
        seed,
        steps: b.steps,
        batch_size: b.batch,
        checkpoint_every: b.steps,
        warmup_steps: 20,
        image_height: 32,
        image_width: 48,
        head_width: 16,
        max_questions,
        ..MllmConfig::default()
    }
}

/// The rows a plan runs, in table order; an unknown name is a one-line error naming the
/// known ones.
pub fn select_rows(all_rows: bool, names: &[String]) -> Result<Vec<Row>> {
    if names.is_empty() {
        return Ok(rows(all_rows));
    }
    let every = rows(true);
    let unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !every.iter().any(|r| r.name == *n))
        .collect();
    if !unknown.is_empty() {
        return Err(LabError::User(format!(
            "--rows: unknown row(s) {}; the rows are {}",
            unknown.join(", "),
            every.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(every
        .into_iter()
        .filter(|r| names.iter().any(|n| n == r.name))
        .collect())
}
