//! The demo's report: `report.md` (images beside it) and a self-contained `report.html`
//! (images inlined as data URIs), with the metrics table, pseudo-label quality, loss curves
//! drawn here as PNG, depth/confidence images and links to the PLY point clouds.
//!
//! Rooms: [`document`] is the report as blocks, built once here; [`markdown`] and [`html`]
//! render it; [`plot`] draws the loss curves.

pub mod document;
mod html;
mod markdown;
pub mod plot;

use std::path::{Path, PathBuf};

use spatialsv_labeler::quality::{DepthScore, LabelComparison, LabelQuality, PoseScore};
use spatialsv_trainer::eval::{EvalReport, Scores};
use spatialsv_trainer::mllm::eval::QaEvalReport;

use spatialsv_ingest::synth::{SynthManifest, TestSet};

use crate::error::{LabError, Result};
pub use crate::runner::Step;
use document::Document;
use plot::{Axes, COLOURS, Series, curve, plot, smooth};

/// Everything the report shows.
#[derive(Debug)]
pub struct Report {
    /// Seed of the run.
    pub seed: u64,
    /// Seed of the world.
    pub world_seed: u64,
    /// `--quick`.
    pub quick: bool,
    /// The world's manifest: which test rooms are test set A and B.
    pub world: SynthManifest,
    /// Teacher training steps.
    pub teacher_steps: usize,
    /// Student and baseline training steps.
    pub student_steps: usize,
    /// Evaluation of each model on the test split.
    pub evals: Vec<(String, EvalReport)>,
    /// Pseudo-label quality (of the labelling the student trained on).
    pub quality: Option<LabelQuality>,
    /// Single pass against fused labels.
    pub comparison: Option<LabelComparison>,
    /// Scene exported.
    pub scene: String,
    /// Run directories by model.
    pub runs: Vec<(String, PathBuf)>,
    /// Export directories by model.
    pub exports: Vec<(String, PathBuf)>,
    /// The multimodal rows (name, what, evaluation on the test rooms' questions).
    pub spatialsv: Vec<(String, String, QaEvalReport)>,
    /// Steps of each multimodal row.
    pub spatialsv_steps: usize,
    /// Batch size of each multimodal row.
    pub spatialsv_batch: usize,
    /// Steps with timings.
    pub steps: Vec<Step>,
    /// Total wall time.
    pub seconds: f64,
}

fn f(v: f64) -> String {
    format!("{v:.4}")
}

/// A metric that may not have been measured (camera metrics of single-view clips): its value
/// to `digits` places, or "n/a", never a zero.
pub fn maybe(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.digits$}"))
}

/// Table rows of named depth scores: name, pixels, AbsRel, delta1.
fn depth_rows(rows: &[(&str, &DepthScore)]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|(name, s)| {
            vec![
                name.to_string(),
                s.pixels.to_string(),
                f(s.abs_rel),
                format!("{:.3}", s.delta1),
            ]
        })
        .collect()
}

/// Table rows of named camera scores: name, count, rotation and direction error.
fn pose_rows(rows: &[(&str, &PoseScore)]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|(name, p)| {
            vec![
                name.to_string(),
                p.frames.to_string(),
                format!("{:.2}", p.rotation_deg),
                format!("{:.2}", p.direction_deg),
            ]
        })
        .collect()
}

/// Writes `report.md`, `report.html` and the images they show into `out`.
pub fn write_report(out: &Path, r: &Report) -> Result<()> {
    write_document(out, "report", &build(r)?)
}

/// Writes a document as `STEM.md` and self-contained `STEM.html` into `out`, its images under
/// `out/report_images/`.
pub fn write_document(out: &Path, stem: &str, doc: &Document) -> Result<()> {
    let img_dir = out.join("report_images");
    std::fs::create_dir_all(&img_dir).map_err(LabError::output("creating", &img_dir))?;
    let write = |p: PathBuf, bytes: &[u8]| -> Result<()> {
        std::fs::write(&p, bytes).map_err(LabError::output("writing", &p))
    };
    for (file, png) in doc.images() {
        write(img_dir.join(file), png)?;
    }
    write(
        out.join(format!("{stem}.md")),
        markdown::render(doc).as_bytes(),
    )?;
    write(
        out.join(format!("{stem}.html")),
        html::render(doc).as_bytes(),
    )?;
    Ok(())
}

/// Loss curves (smoothed) of every run, one image per metric.
fn curves(r: &Report) -> Vec<(String, String, Vec<u8>)> {
    let mut images = Vec::new();
    // Curves in COLOURS order: teacher, baseline, baseline_labeled, baseline_strong, student.
    for (metric, file, title, y) in [
        (
            "loss/total",
            "loss_total.png",
            "Total training loss",
            "loss (moving average of 10 steps)",
        ),
        (
            "loss/depth",
            "loss_depth.png",
            "Confidence-weighted depth loss",
            "depth loss (moving average of 10 steps)",
        ),
    ] {
        let series: Vec<Series> = r
            .runs
            .iter()
            .zip(COLOURS)
            .map(|((name, dir), c)| (name.clone(), smooth(&curve(dir, metric), 10), c))
            .filter(|(_, s, _)| !s.is_empty())
            .collect();
        let axes = Axes {
            title,
            x: "step (each run from its own start)",
            y,
        };
        if let Ok((png, _)) = plot(&series, axes, 720, 340) {
            images.push((
                file.to_string(),
                format!("{title} (moving average of 10 steps): the teacher trains for {} steps; baseline, baseline_labeled, baseline_strong and the semi-supervised student are fine-tuned from it for {} steps, each counted from its own start. The student's loss includes its pseudo-labelled clips.", r.teacher_steps, r.student_steps),
                png,
            ));
        }
    }
    images
}

/// The image | depth | prediction | confidence panel of the first exported frame of each
/// model, three times larger.
fn panels(r: &Report) -> Result<Vec<(String, String, Vec<u8>)>> {
    let mut panels = Vec::new();
    for (name, dir) in &r.exports {
        let frames = dir.join("frames");
        let mut pngs: Vec<PathBuf> = std::fs::read_dir(&frames)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        pngs.sort_by_key(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<i64>().ok())
                .unwrap_or(i64::MAX)
        });
        if let Some(p) = pngs.first()
            && let Ok(small) = image::open(p)
        {
            // Three times larger, nearest neighbour, so the maps are legible on a page.
            let big = small.resize(
                small.width() * 3,
                small.height() * 3,
                image::imageops::FilterType::Nearest,
            );
            let mut bytes = Vec::new();
            big.write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .map_err(|e| LabError::Internal(format!("encoding a panel: {e}")))?;
            panels.push((
                format!("frame_{name}.png"),
                format!("{name}, {} frame {}: image | true depth | predicted depth | predicted confidence", r.scene, p.file_stem().and_then(|s| s.to_str()).unwrap_or("?")),
                bytes,
            ));
        }
    }
    Ok(panels)
}

/// The report's content.
fn build(r: &Report) -> Result<Document> {
    let mut d = Document::default();
    d.heading(1, "spatialsv demo report");
    d.paragraph(format!(
        "Training seed {}, world seed {}, {} budget: teacher {} steps on the labeled scans; then, fine-tuned from the teacher for {} steps each with the same schedule and seed: `student`, 1 labeled + 2 pseudo-labelled clips per batch (fused labels); `baseline`, 3 labeled clips per batch (the same compute); `baseline_labeled`, the student's 1 labeled clip per batch alone; `baseline_strong`, 3 labeled clips per batch perturbed as strongly as the student's pseudo clips (colour, blur, CutMix, mirroring). Every run is evaluated (and the teacher labels) through an exponential moving average of its weights (decay 0.99). Total time {:.1} min. Test set A is held-out scan rooms, test set B held-out video rooms (frames decoded from H.264) scored against their true depth and poses through the same evaluation; no model trained on either, and the unlabeled videos are other rooms again. One seed decides nothing: `spatialsv study` repeats this over seeds with paired differences (docs/labeling.md).",
        r.seed,
        r.world_seed,
        if r.quick { "quick" } else { "full" },
        r.teacher_steps,
        r.student_steps,
        r.seconds / 60.0
    ));
    for (set, title) in [
        (TestSet::A, "Test set A: held-out scan rooms"),
        (TestSet::B, "Test set B: held-out video rooms"),
    ] {
        let scores: Vec<(String, Scores)> = r
            .evals
            .iter()
            .filter_map(|(name, e)| {
                e.subset(|s| r.world.test_set(s) == set)
                    .map(|sc| (name.clone(), sc))
            })
            .collect();
        if scores.is_empty() {
            continue;
        }
        let rooms = r.evals.first().map_or(0, |(_, e)| {
            e.scenes
                .keys()
                .filter(|s| r.world.test_set(s) == set)
                .count()
        });
        d.heading(2, format!("{title} ({rooms} rooms)"));
        let mut rows: Vec<Vec<String>> = scores
            .iter()
            .map(|(name, o)| {
                vec![
                    name.clone(),
                    f(o.abs_rel),
                    format!("{:.3}", o.delta1),
                    f(o.abs_rel_lsq),
                    maybe(o.rra15, 3),
                    maybe(o.rta15, 3),
                    maybe(o.auc30, 3),
                    f(o.chamfer),
                ]
            })
            .collect();
        if let Some((_, o)) = scores.first() {
            rows.push(vec![
                "trivial baselines".into(),
                format!("{} (training median depth)", f(o.baseline_abs_rel)),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                format!("{} (identity motion)", maybe(o.baseline_auc30, 3)),
                String::new(),
            ]);
        }
        d.table(
            &[
                "model",
                "AbsRel",
                "delta1",
                "AbsRel (scale+shift)",
                "RRA@15",
                "RTA@15",
                "AUC@30",
                "Chamfer (m)",
            ],
            rows,
        );
        if let Some((_, st)) = scores.iter().find(|(n, _)| n == "student") {
            for (name, b) in scores.iter().filter(|(n, _)| n.starts_with("baseline")) {
                let a = st;
                let wins = [
                    ("AbsRel", a.abs_rel < b.abs_rel),
                    ("delta1", a.delta1 > b.delta1),
                    ("AUC@30", a.auc30.zip(b.auc30).is_some_and(|(a, b)| a > b)),
                    ("Chamfer", a.chamfer < b.chamfer),
                ];
                let better: Vec<&str> = wins.iter().filter(|w| w.1).map(|w| w.0).collect();
                d.paragraph(format!(
                    "test set {set}, student against {name}: better on {} of 4 ({}); AbsRel {:+.1}% relative",
                    better.len(),
                    if better.is_empty() {
                        "none".to_string()
                    } else {
                        better.join(", ")
                    },
                    100.0 * (a.abs_rel - b.abs_rel) / b.abs_rel.max(1e-12)
                ));
            }
        }
    }
    d.paragraph(
        "Depth metrics are median-scaled (scale+shift: least squares); cameras come from the predicted ray maps; Chamfer after Umeyama Sim(3) alignment.",
    );
    if let Some(c) = &r.comparison {
        d.heading(2, "Go/no-go: fused labels against one teacher pass");
        d.paragraph(format!(
            "The same teacher labelled the unlabeled videos twice: one pass per frame (config {}) and fused from many passes (config {}: windows at every start and each gap, flipped copies, scale-aligned median, spread as confidence, pose-graph cameras). {} frames, median-scaled per frame against the hidden ground truth (transductive: these are the training videos). On the pixels the fused labels keep, fused AbsRel is {:.2}x the single pass's (the go/no-go asks for at most 0.85x).",
            c.single.config.short(),
            c.fused.config.short(),
            c.frames,
            c.kept_ratio()
        ));
        d.table(
            &["labels and pixels", "count", "AbsRel", "delta1"],
            depth_rows(&c.depth_rows()),
        );
        d.table(
            &[
                "cameras of frame pairs 2 apart",
                "pairs",
                "rotation error (deg)",
                "direction error (deg)",
            ],
            pose_rows(&[("single pass", &c.single_pairs), ("fused", &c.fused_pairs)]),
        );
    }
    if let Some(q) = &r.quality {
        d.heading(
            2,
            "The student's pseudo-labels against the hidden ground truth",
        );
        d.paragraph(format!("Pseudo-labels of {}.", q.summary()));
        d.table(
            &["pixels", "count", "AbsRel", "delta1"],
            depth_rows(&q.depth_rows()),
        );
        d.table(
            &[
                "frames",
                "count",
                "rotation error (deg)",
                "direction error (deg)",
            ],
            pose_rows(&q.pose_rows()),
        );
        for (reason, n) in &q.reject_reasons {
            d.paragraph(format!("Rejected by {reason}: {n} frames."));
        }
    }
    if let Some((_, _, first)) = r.spatialsv.first() {
        d.heading(2, "The SpatialSV regime: the small multimodal model");
        d.paragraph(format!(
            "Questions from the scans' geometry (`spatialsv qa`); each row trains the small multimodal model for {} steps (batch {}) with its text loss and, where it says so, the 3D losses on its visual tokens, and answers the questions of the {} split ({} multiple choice, {} numeric). The most frequent training answer scores {:.3} (multiple choice) and {:.3} (numeric MRA); chance is {:.3}. At the demo's budget this shows the regime running end to end, not its effect: the comparison over seeds is `spatialsv study spatialsv` (docs/mllm.md).",
            r.spatialsv_steps,
            r.spatialsv_batch,
            first.split,
            first.multiple_choice.questions,
            first.numeric.questions,
            first.multiple_choice.most_frequent,
            first.numeric.most_frequent,
            first.multiple_choice.chance.unwrap_or(f64::NAN),
        ));
        d.table(
            &[
                "row",
                "what",
                "MC accuracy",
                "numeric MRA",
                "blind MC",
                "3D probe AbsRel",
            ],
            r.spatialsv
                .iter()
                .map(|(name, what, e)| {
                    vec![
                        name.clone(),
                        what.clone(),
                        format!("{:.3}", e.multiple_choice.model),
                        format!("{:.3}", e.numeric.model),
                        format!("{:.3}", e.multiple_choice.blind),
                        format!("{:.3}", e.probe.abs_rel),
                    ]
                })
                .collect(),
        );
    }
    d.heading(2, "Training curves");
    for (file, caption, png) in curves(r) {
        d.image(file, caption, png);
    }
    d.heading(2, "What the students believe");
    for (file, caption, png) in panels(r)? {
        d.image(file, caption, png);
    }
    for (name, dir) in &r.exports {
        d.item(format!(
            "{name}: point clouds `{0}/pred.ply` (Sim(3)-aligned prediction) and `{0}/gt.ply` (truth); trajectories `{0}/trajectory_{{gt,pred}}.txt`",
            dir.display()
        ));
    }
    d.heading(2, "Steps");
    d.table(
        &["step", "time (s)", "command"],
        r.steps
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    if s.skipped {
                        "done earlier".to_string()
                    } else {
                        format!("{:.1}", s.seconds)
                    },
                    format!("`{}`", s.command),
                ]
            })
            .collect(),
    );
    Ok(d)
}
