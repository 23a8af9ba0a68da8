//! `spatialsv eval`: evaluate a checkpoint.

use super::Context;
use std::path::PathBuf;

use spatialsv_labeler::quality::{LabelComparison, LabelQuality};
use spatialsv_schemas::Split;
use spatialsv_trainer::eval::{EvalReport, Scores, evaluate};
use spatialsv_trainer::mllm::eval::{FamilyScore, QaEvalReport};

use super::{CliError, CliResult, write_json};
use spatialsv_lab::report::maybe;

/// Evaluate a checkpoint on held-out scenes: depth AbsRel / delta1 / RMSE (median-scaled and
/// least-squares scale-and-shift), camera RRA@15, RTA@15 and AUC@30 over frame pairs (cameras
/// recovered from the predicted ray maps), point-map Chamfer after Umeyama Sim(3) alignment;
/// overall and per scene, beside two trivial baselines (the training median depth everywhere;
/// identity motion). Prints a table and writes DIR/eval.json.
///
/// With --pseudo-labels instead of --checkpoint: score the dataset's pseudo-labels against
/// the hidden ground truth `spatialsv synth` wrote aside (--groundtruth WORLD/groundtruth):
/// AbsRel and delta1 of all pixels versus the kept pixels of accepted frames, acceptance
/// rate, and camera error of accepted versus rejected frames. Writes DIR/pseudo_labels.json.
///
/// Example:
///   spatialsv eval --dataset ds --checkpoint runs/teacher --split test --out eval/teacher
///   spatialsv eval --dataset ds --pseudo-labels --groundtruth world/groundtruth --out eval/labels
///   spatialsv eval --dataset ds --pseudo-labels --groundtruth world/groundtruth --against 765c7f --out eval/go
///   spatialsv eval --qa --dataset ds --checkpoint runs/mllm --out eval/qa
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Dataset: a directory, or s3://bucket/prefix on S3-compatible object storage.
    #[arg(long)]
    dataset: PathBuf,
    /// Run directory of the checkpoint (its newest checkpoint is used).
    #[arg(long, required_unless_present = "pseudo_labels")]
    checkpoint: Option<PathBuf>,
    /// Score pseudo-labels against synthetic ground truth instead of a checkpoint.
    #[arg(long, conflicts_with = "checkpoint", requires = "groundtruth")]
    pseudo_labels: bool,
    /// Ground-truth directory written by `spatialsv synth` (WORLD/groundtruth).
    #[arg(long)]
    groundtruth: Option<PathBuf>,
    /// Teacher hash (or a prefix) of the pseudo-labels to score; the newest when omitted.
    #[arg(long)]
    teacher_hash: Option<String>,
    /// With --pseudo-labels: also compare the scored labelling, fused, with the same
    /// teacher's labelling whose config hash starts with this prefix, one pass per frame (the
    /// go/no-go table; writes DIR/single_vs_fused.json).
    #[arg(long, requires = "pseudo_labels")]
    against: Option<String>,
    /// With --checkpoint of a multimodal run: answer the split's spatial questions (`qa`
    /// table) and score them per family beside chance, the most frequent training answer and
    /// the same model blind (images zeroed), with the 3D probe of its taps and accuracy by
    /// depth quality. Writes DIR/qa_eval.json.
    #[arg(long, requires = "checkpoint", conflicts_with = "pseudo_labels")]
    qa: bool,
    /// Split to evaluate on.
    #[arg(long, default_value = "test")]
    split: String,
    /// Output directory for eval.json.
    #[arg(long)]
    out: PathBuf,
}

fn row(name: &str, s: &Scores) -> String {
    format!(
        "{name:<24} {:>5} {:>8.4} {:>7.3} {:>7.4} {:>8.4} {:>7} {:>7} {:>7} {:>7.3} {:>8.4} | {:>8.4} {:>7}",
        s.clips,
        s.abs_rel,
        s.delta1,
        s.rmse,
        s.abs_rel_lsq,
        maybe(s.rra15, 3),
        maybe(s.rta15, 3),
        maybe(s.auc30, 3),
        s.accuracy,
        s.chamfer,
        s.baseline_abs_rel,
        maybe(s.baseline_auc30, 3)
    )
}

fn print(r: &EvalReport) -> CliResult {
    out!(
        "{:<24} {:>5} {:>8} {:>7} {:>7} {:>8} {:>7} {:>7} {:>7} {:>7} {:>8} | {:>8} {:>7}",
        "scene",
        "clips",
        "AbsRel",
        "d1",
        "RMSE",
        "AbsRel*",
        "RRA15",
        "RTA15",
        "AUC30",
        "acc",
        "chamfer",
        "base_AR",
        "base_AUC"
    );
    for (scene, s) in &r.scenes {
        out!("{}", row(scene, s));
    }
    out!("{}", row("overall", &r.overall));
    let single: Vec<&str> = r
        .scenes
        .iter()
        .filter(|(_, s)| s.camera_clips == 0)
        .map(|(n, _)| n.as_str())
        .collect();
    if !single.is_empty() {
        out!(
            "n/a: not measured; camera metrics need two views and these scenes have one: {}",
            single.join(", ")
        );
    }
    for (scene, why) in &r.skipped {
        out!("not evaluated: {scene} ({why})");
    }
    out!(
        "AbsRel/d1/RMSE median-scaled; AbsRel* least-squares scale and shift; acc and chamfer in metres after Sim(3); base_*: trivial baselines"
    );
    Ok(())
}

/// Prints a multimodal evaluation as a table.
pub fn print_qa(r: &QaEvalReport) -> CliResult {
    out!(
        "{:<20} {:>9} {:>8} {:>7} {:>7} {:>9} {:>7}",
        "family",
        "questions",
        "measure",
        "model",
        "blind",
        "frequent",
        "chance"
    );
    let row = |name: &str, s: &FamilyScore| {
        format!(
            "{name:<20} {:>9} {:>8} {:>7.3} {:>7.3} {:>9.3} {:>7}",
            s.questions,
            s.measure,
            s.model,
            s.blind,
            s.most_frequent,
            maybe(s.chance, 3)
        )
    };
    for (f, s) in &r.families {
        out!("{}", row(f, s));
    }
    out!("{}", row("all multiple choice", &r.multiple_choice));
    out!("{}", row("all numeric", &r.numeric));
    out!(
        "3D probe of the taps over {} clips: depth AbsRel {:.4}, pose AUC@30 {}, Chamfer {:.4} m",
        r.probe.clips,
        r.probe.abs_rel,
        maybe(r.probe.auc30, 3),
        r.probe.chamfer
    );
    for b in &r.by_depth_quality {
        out!(
            "clips with depth AbsRel {:.3}-{:.3}: {} multiple-choice questions, accuracy {:.3}",
            b.abs_rel[0],
            b.abs_rel[1],
            b.questions,
            b.accuracy
        );
    }
    if r.skipped > 0 {
        out!(
            "{} questions skipped (their views are not the model's count or not labeled)",
            r.skipped
        );
    }
    out!(
        "accuracy: exact match of the option; mra: VSI-Bench mean relative accuracy; frequent: the most frequent training answer (numbers: the training median)"
    );
    Ok(())
}

/// Prints a single-pass against fused comparison as a table.
pub fn print_comparison(c: &LabelComparison) -> CliResult {
    for line in c.lines() {
        out!("{line}");
    }
    Ok(())
}

/// Prints pseudo-label quality as a table.
pub fn print_quality(q: &LabelQuality) -> CliResult {
    for line in q.lines() {
        out!("{line}");
    }
    Ok(())
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    let ds = ctx.open(&args.dataset)?;
    if args.pseudo_labels {
        let gt = args.groundtruth.as_deref().ok_or_else(|| {
            CliError::User("--pseudo-labels needs --groundtruth WORLD/groundtruth".into())
        })?;
        let q = spatialsv_labeler::quality::score(
            &ds,
            gt,
            &args
                .teacher_hash
                .as_deref()
                .unwrap_or("latest")
                .parse()
                .unwrap_or_default(),
        )?;
        print_quality(&q)?;
        let path = write_json(&args.out, "pseudo_labels.json", &q)?;
        out!("wrote {}", path.display());
        if let Some(prefix) = &args.against {
            let single =
                spatialsv_labeler::quality::labelling_by_config(&ds, &q.teacher_hash, prefix)?;
            let c = spatialsv_labeler::quality::compare(&ds, gt, &single, &q.labelling())?;
            print_comparison(&c)?;
            let path = write_json(&args.out, "single_vs_fused.json", &c)?;
            out!("wrote {}", path.display());
        }
        return Ok(());
    }
    let split: Split = args
        .split
        .parse()
        .map_err(|e| CliError::User(format!("--split: {e}")))?;
    let checkpoint = args
        .checkpoint
        .as_deref()
        .ok_or_else(|| CliError::User("--checkpoint RUN_DIR is required".into()))?;
    if args.qa {
        let report = spatialsv_trainer::mllm::eval::evaluate_qa(
            &ds,
            checkpoint,
            split,
            &crate::progress::Bar::new(),
        )?;
        print_qa(&report)?;
        let path = write_json(&args.out, "qa_eval.json", &report)?;
        out!("wrote {}", path.display());
        return Ok(());
    }
    let report = evaluate(&ds, checkpoint, split)?;
    print(&report)?;
    let path = write_json(&args.out, "eval.json", &report)?;
    out!("wrote {}", path.display());
    Ok(())
}
