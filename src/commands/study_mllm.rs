//! `spatialsv study spatialsv`: the paper's tables in miniature. Per seed, one synthetic
//! world (split by room), its spatial questions, a 3D teacher and its pseudo-labels of the
//! unlabeled videos, and one multimodal run per row (equal steps, batch and learning rate),
//! each scored on the held-out rooms' questions; then means and spreads over seeds and paired
//! differences with a bootstrap interval over the test questions.

use super::Context;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use spatialsv_schemas::Split;
use spatialsv_trainer::TrainConfig;
use spatialsv_trainer::mllm::MllmConfig;
use spatialsv_trainer::mllm::eval::{QaEvalReport, evaluate_qa};

use super::ingest::{self, Format};
use super::{CliError, CliResult, CommandLine, label, qa, synth, train, write_json};
use spatialsv_ingest::synth::ScanSet;
use spatialsv_lab::report::document::Document;
use spatialsv_lab::report::plot::{Axes, COLOURS, Series, curve, plot, smooth};
use spatialsv_lab::spatialsv::{Budget, PAIRS, Row, base_config, rows, select_rows};
use spatialsv_lab::stats::{bootstrap_mean, mean_sd};
use spatialsv_lab::{Markers, WorldLayout};

#[derive(Debug, Serialize)]
struct RowStat {
    row: String,
    what: String,
    per_seed_mc: Vec<f64>,
    per_seed_numeric: Vec<f64>,
    per_seed_blind_mc: Vec<f64>,
    per_seed_probe_abs_rel: Vec<f64>,
    mc: (f64, f64),
    numeric: (f64, f64),
    blind_mc: (f64, f64),
    probe_abs_rel: (f64, f64),
}

#[derive(Debug, Serialize)]
struct PairStat {
    row: String,
    against: String,
    meaning: String,
    /// Mean over seeds of the per-question difference (multiple choice accuracy).
    mc_diff: f64,
    mc_interval: (f64, f64),
    per_seed_mc_diff: Vec<f64>,
    numeric_diff: f64,
    numeric_interval: (f64, f64),
}

#[derive(Debug, Serialize)]
struct StudyOut {
    seeds: Vec<u64>,
    quick: bool,
    max_questions: usize,
    steps: usize,
    batch: usize,
    rows: Vec<RowStat>,
    pairs: Vec<PairStat>,
    test_questions_per_family: std::collections::BTreeMap<String, usize>,
    train_questions: usize,
    minutes_per_seed: Vec<f64>,
}

/// Mean per-question difference of `a - b` over the questions both scored, averaged over
/// seeds, with a 95% percentile bootstrap interval (questions resampled within each seed).
fn paired(
    a: &[&QaEvalReport],
    b: &[&QaEvalReport],
    numeric: bool,
    seed: u64,
) -> (f64, (f64, f64), Vec<f64>) {
    let is_numeric = |family: &spatialsv_qa::Family| family.numeric();
    let diffs: Vec<Vec<f64>> = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let other: std::collections::HashMap<&str, f64> = y
                .per_question
                .iter()
                .map(|(id, _, s)| (id.as_str(), *s))
                .collect();
            x.per_question
                .iter()
                .filter(|(_, f, _)| is_numeric(f) == numeric)
                .filter_map(|(id, _, s)| other.get(id.as_str()).map(|o| s - o))
                .collect()
        })
        .collect();
    bootstrap_mean(&diffs, seed)
}

fn io(e: impl std::fmt::Display) -> CliError {
    CliError::Other(anyhow::anyhow!("{e}"))
}

/// Prepares one seed's world, dataset, questions, teacher and pseudo-labels in `dir`
/// (each step skipped when its output is there).
fn prepare(ctx: &Context, dir: &Path, seed: u64, b: &Budget) -> CliResult {
    let world_dir = dir.join("world");
    let world = WorldLayout::new(&world_dir);
    let ds = dir.join("ds");
    let markers = Markers::new(dir);
    let done = |name: &str| markers.done(name);
    let mark = |name: &str| -> CliResult { Ok(markers.mark(name)?) };
    if !done("synth") {
        let a = synth::Args {
            out: world_dir.clone(),
            seed,
            scenes: b.train_rooms + 6,
            test_scenes: 6,
            videos: 12,
            test_videos: 0,
            frames: b.frames,
            video_frames: 24,
            codec_check: false,
            resolution: "160x120".into(),
        };
        out!("   $ {}", a.command_line());
        synth::run(a, ctx)?;
        mark("synth")?;
    }
    if !done("ingest") {
        for a in [
            ingest::Args::new(
                Format::Scannet,
                world.scans(ScanSet::Train),
                ds.clone(),
                "train",
            ),
            ingest::Args::new(
                Format::Scannet,
                world.scans(ScanSet::Test),
                ds.clone(),
                "test",
            ),
            ingest::Args::new(Format::Video, world.videos(), ds.clone(), "train"),
        ] {
            out!("   $ {}", a.command_line());
            ingest::run(a, ctx)?;
        }
        mark("ingest")?;
    }
    if !done("qa") {
        let a = qa::Args {
            dataset: ds.clone(),
            per_clip: b.per_clip,
            families: vec![],
            seed,
            views: 4,
        };
        out!("   $ {}", a.command_line());
        qa::run(a, ctx)?;
        mark("qa")?;
    }
    let teacher = dir.join("runs/teacher");
    if !done("teacher") {
        let cfg = TrainConfig {
            steps: b.teacher_steps,
            checkpoint_every: b.teacher_steps,
            seed,
            ema_decay: 0.99,
            ..TrainConfig::default()
        };
        let path = dir.join("teacher.toml");
        spatialsv_lab::write_toml(&path, &cfg)?;
        let a = train::Args {
            dataset: ds.clone(),
            config: Some(path),
            out: teacher.clone(),
            resume: spatialsv_trainer::RunDir::new(&teacher).latest().is_some(),
        };
        out!("   $ {}", a.command_line());
        train::run(a, ctx)?;
        mark("teacher")?;
    }
    // Fused labels: whole video segments in one frame, so clips of 4 views exist (a single
    // pass labels windows of the teacher's clip length, 3).
    if !done("label_fused") {
        let cfg = spatialsv_labeler::config::LabelConfig::default();
        let cfg = spatialsv_labeler::config::LabelConfig {
            fusion: spatialsv_labeler::config::Fusion {
                enabled: true,
                ..cfg.fusion.clone()
            },
            ..cfg
        };
        let path = dir.join("label_fused.toml");
        std::fs::write(&path, spatialsv_store::to_toml(&cfg)?).map_err(io)?;
        let a = label::Args {
            external: None,
            dataset: Some(ds.clone()),
            teacher: vec![teacher],
            config: Some(path),
            shard: "0/1".into(),
        };
        out!("   $ {}", a.command_line());
        label::run(a, ctx)?;
        mark("label_fused")?;
    }
    Ok(())
}

/// Trains and evaluates one row of one seed (a finished one is only read back).
fn run_row(
    ctx: &Context,
    dir: &Path,
    row: &Row,
    cfg: &MllmConfig,
) -> Result<QaEvalReport, CliError> {
    let eval_path = dir.join("eval").join(row.name).join("qa_eval.json");
    let run = dir.join("runs").join(row.name);
    let ds = ctx.open(dir.join("ds"))?;
    if !spatialsv_trainer::RunDir::new(&run).finished(cfg.steps) {
        let path = dir.join(format!("{}.toml", row.name));
        std::fs::write(&path, spatialsv_store::to_toml(cfg)?).map_err(io)?;
        let a = train::Args {
            dataset: dir.join("ds"),
            config: Some(path),
            out: run.clone(),
            resume: spatialsv_trainer::RunDir::new(&run).latest().is_some(),
        };
        out!("   $ {}", a.command_line());
        train::run(a, ctx)?;
    }
    if let Ok(text) = std::fs::read_to_string(&eval_path)
        && let Ok(r) = serde_json::from_str::<QaEvalReport>(&text)
    {
        return Ok(r);
    }
    out!(
        "   $ spatialsv eval --qa --dataset {} --checkpoint {} --out {}",
        dir.join("ds").display(),
        run.display(),
        eval_path
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    let rep = evaluate_qa(&ds, &run, Split::Test, &crate::progress::Bar::new())?;
    if let Some(parent) = eval_path.parent() {
        write_json(parent, "qa_eval.json", &rep)?;
    }
    Ok(rep)
}

/// What `study spatialsv` is asked to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Seeds (one world each).
    pub seeds: Vec<u64>,
    /// The quick budget.
    pub quick: bool,
    /// Every row of the full table.
    pub all_rows: bool,
    /// Only these rows (empty: the budget's rows).
    pub rows: Vec<String>,
    /// Output directory.
    pub out: std::path::PathBuf,
    /// Cap on the training questions (0 = all).
    pub max_questions: usize,
    /// Steps of every run, overriding the budget.
    pub steps: Option<usize>,
    /// Samples per step of the multimodal runs.
    pub batch: usize,
    /// QA set sizes of the pilot (empty: the study).
    pub pilot: Vec<usize>,
}

/// Runs the study.
pub fn run(ctx: &Context, plan: &Plan) -> CliResult {
    let (seeds, quick, out, max_questions) = (
        &plan.seeds,
        plan.quick,
        plan.out.as_path(),
        plan.max_questions,
    );
    let mut b = Budget::new(quick);
    if let Some(s) = plan.steps {
        b.steps = s;
        b.teacher_steps = b.teacher_steps.min(s);
    }
    if plan.batch == 0 {
        return Err(CliError::User("--batch: must be at least 1".into()));
    }
    b.batch = plan.batch;
    let rows = select_rows(plan.all_rows, &plan.rows)?;
    std::fs::create_dir_all(out)
        .map_err(spatialsv_lab::LabError::output("creating --out", &out))?;
    if !plan.pilot.is_empty() {
        return run_pilot(ctx, seeds[0], &b, out, &plan.pilot);
    }
    let mut reports: Vec<Vec<QaEvalReport>> = Vec::new();
    let mut minutes = Vec::new();
    let mut train_questions = 0;
    for (i, seed) in seeds.iter().enumerate() {
        let t = Instant::now();
        let dir = out.join(format!("seed-{seed}"));
        out!(
            "== study spatialsv seed {seed} ({}/{}): world, questions, teacher, labels",
            i + 1,
            seeds.len()
        );
        prepare(ctx, &dir, *seed, &b)?;
        let teacher = dir.join("runs/teacher");
        let mut per_row = Vec::new();
        for row in &rows {
            out!("== seed {seed}: {} ({})", row.name, row.what);
            let cfg = row.config(&base_config(*seed, &b, max_questions), &teacher);
            per_row.push(run_row(ctx, &dir, row, &cfg)?);
        }
        if i == 0 {
            let ds = ctx.open(dir.join("ds"))?;
            let m = ds.latest()?;
            train_questions =
                spatialsv_trainer::mllm::data::read_qa(&ds, &m, Some(Split::Train))?.len();
        }
        reports.push(per_row);
        minutes.push(t.elapsed().as_secs_f64() / 60.0);
    }
    let stat = |k: usize| -> RowStat {
        let col: Vec<&QaEvalReport> = reports.iter().map(|r| &r[k]).collect();
        let v = |f: &dyn Fn(&QaEvalReport) -> f64| col.iter().map(|r| f(r)).collect::<Vec<f64>>();
        let (mc, num, blind, probe) = (
            v(&|r| r.multiple_choice.model),
            v(&|r| r.numeric.model),
            v(&|r| r.multiple_choice.blind),
            v(&|r| r.probe.abs_rel),
        );
        RowStat {
            row: rows[k].name.into(),
            what: rows[k].what.into(),
            mc: mean_sd(&mc),
            numeric: mean_sd(&num),
            blind_mc: mean_sd(&blind),
            probe_abs_rel: mean_sd(&probe),
            per_seed_mc: mc,
            per_seed_numeric: num,
            per_seed_blind_mc: blind,
            per_seed_probe_abs_rel: probe,
        }
    };
    let row_stats: Vec<RowStat> = (0..rows.len()).map(stat).collect();
    let index = |name: &str| rows.iter().position(|r| r.name == name);
    let mut pairs = Vec::new();
    for (k, (a, bname, meaning)) in PAIRS.iter().enumerate() {
        let (Some(ia), Some(ib)) = (index(a), index(bname)) else {
            continue;
        };
        let ra: Vec<&QaEvalReport> = reports.iter().map(|r| &r[ia]).collect();
        let rb: Vec<&QaEvalReport> = reports.iter().map(|r| &r[ib]).collect();
        let (mc, mci, per) = paired(&ra, &rb, false, 7 + k as u64);
        let (nu, nui, _) = paired(&ra, &rb, true, 70 + k as u64);
        pairs.push(PairStat {
            row: a.to_string(),
            against: bname.to_string(),
            meaning: meaning.to_string(),
            mc_diff: mc,
            mc_interval: mci,
            per_seed_mc_diff: per,
            numeric_diff: nu,
            numeric_interval: nui,
        });
    }
    let test_questions_per_family = reports[0][0]
        .families
        .iter()
        .map(|(f, s)| (f.clone(), s.questions))
        .collect();
    let s = StudyOut {
        seeds: seeds.to_vec(),
        quick,
        max_questions,
        steps: b.steps,
        batch: b.batch,
        rows: row_stats,
        pairs,
        test_questions_per_family,
        train_questions,
        minutes_per_seed: minutes,
    };
    write_json(out, "study_spatialsv.json", &s)?;
    let doc = document(&s, &reports, &rows, out);
    spatialsv_lab::report::write_document(out, "study_spatialsv", &doc)?;
    out!(
        "wrote {0}/study_spatialsv.md, {0}/study_spatialsv.html and {0}/study_spatialsv.json",
        out.display()
    );
    Ok(())
}

fn document(s: &StudyOut, reports: &[Vec<QaEvalReport>], rows: &[Row], out: &Path) -> Document {
    let mut d = Document::default();
    d.heading(
        1,
        format!(
            "spatialsv study: the SpatialSV regime in miniature, seeds {:?}, {} budget",
            s.seeds,
            if s.quick { "quick" } else { "full" }
        ),
    );
    d.paragraph(format!(
        "One synthetic world per seed, split by room (6 held-out test rooms); questions from `spatialsv qa`; every row trains the same small multimodal model for {} steps (batch {}, lr 1e-3, 48x32 images, 4 views) and is scored on the test rooms' questions: multiple choice by exact match, numbers by mean relative accuracy (MRA). {} training questions in all (rows use {}). Test questions per family: {}.",
        s.steps,
        s.batch,
        s.train_questions,
        if s.max_questions == 0 { "all of their rooms'".to_string() } else { format!("at most {}", s.max_questions) },
        s.test_questions_per_family
            .iter()
            .map(|(f, n)| format!("{f} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    d.heading(2, "Rows (mean and sd over seeds)");
    let pm = |m: (f64, f64)| format!("{:.3} ± {:.3}", m.0, m.1);
    d.table(
        &[
            "row",
            "what",
            "MC accuracy",
            "numeric MRA",
            "blind MC",
            "3D probe AbsRel",
            "MC per seed",
        ],
        s.rows
            .iter()
            .map(|r| {
                vec![
                    format!("`{}`", r.row),
                    r.what.clone(),
                    pm(r.mc),
                    pm(r.numeric),
                    pm(r.blind_mc),
                    pm(r.probe_abs_rel),
                    r.per_seed_mc
                        .iter()
                        .map(|v| format!("{v:.3}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                ]
            })
            .collect(),
    );
    d.heading(2, "Paired differences (row - against, same test questions)");
    d.table(
        &[
            "row",
            "against",
            "would mean",
            "MC diff",
            "95% bootstrap",
            "per seed",
            "numeric MRA diff",
            "95% bootstrap",
        ],
        s.pairs
            .iter()
            .map(|p| {
                vec![
                    format!("`{}`", p.row),
                    format!("`{}`", p.against),
                    p.meaning.clone(),
                    format!("{:+.3}", p.mc_diff),
                    format!("[{:+.3}, {:+.3}]", p.mc_interval.0, p.mc_interval.1),
                    p.per_seed_mc_diff
                        .iter()
                        .map(|v| format!("{v:+.3}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    format!("{:+.3}", p.numeric_diff),
                    format!(
                        "[{:+.3}, {:+.3}]",
                        p.numeric_interval.0, p.numeric_interval.1
                    ),
                ]
            })
            .collect(),
    );
    d.paragraph("Bootstrap: test questions resampled with replacement within each seed (1000 draws), the statistic the mean over seeds of the mean paired difference; an interval that spans 0 is a tie.");
    d.heading(2, "Per family, first seed");
    let mut fam_rows = Vec::new();
    if let Some(first) = reports.first() {
        let families: Vec<String> = first[0].families.keys().cloned().collect();
        for f in families {
            let mut row = vec![f.clone()];
            if let Some(s0) = first[0].families.get(&f) {
                row.push(s0.measure.clone());
                row.push(format!("{:.3}", s0.most_frequent));
                row.push(spatialsv_lab::report::maybe(s0.chance, 3));
            }
            for r in first {
                row.push(
                    r.families
                        .get(&f)
                        .map_or(String::new(), |x| format!("{:.3}", x.model)),
                );
            }
            fam_rows.push(row);
        }
    }
    let mut header: Vec<&str> = vec!["family", "measure", "most frequent", "chance"];
    header.extend(rows.iter().map(|r| r.name));
    d.table(&header, fam_rows);
    // Text-loss curves of the first seed's rows.
    let series: Vec<Series> = rows
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let c = curve(
                &out.join(format!("seed-{}", s.seeds[0]))
                    .join("runs")
                    .join(r.name),
                "loss/text",
            );
            (
                r.name.to_string(),
                smooth(&c, 10),
                COLOURS[k % COLOURS.len()],
            )
        })
        .collect();
    let axes = Axes {
        title: "Text loss on answer tokens (first seed)",
        x: "step",
        y: "cross-entropy (moving average of 10 steps)",
    };
    if let Ok((png, _)) = plot(&series, axes, 720, 360) {
        d.image(
            "study_text_loss.png",
            "Text loss (answer tokens, moving average of 10 steps) of every row, first seed.",
            png,
        );
    }
    d
}

/// The QA set size pilot: text only and text + 3D at each size on one seed's world.
fn run_pilot(ctx: &Context, seed: u64, b: &Budget, out: &Path, sizes: &[usize]) -> CliResult {
    let dir = out.join(format!("seed-{seed}"));
    out!("== pilot on seed {seed}: world, questions, teacher, labels");
    prepare(ctx, &dir, seed, b)?;
    let all = rows(false);
    let mut table = Vec::new();
    for &n in sizes {
        for name in ["text_only", "text_3d"] {
            let Some(row) = all.iter().find(|r| r.name == name) else {
                continue;
            };
            let cfg = row.config(&base_config(seed, b, n), &dir.join("runs/teacher"));
            let pilot_row = row.renamed(Box::leak(format!("pilot_{name}_{n}").into_boxed_str()));
            out!("== pilot: {} with at most {n} questions", name);
            let r = run_row(ctx, &dir, &pilot_row, &cfg)?;
            table.push((
                n,
                name,
                r.multiple_choice.model,
                r.numeric.model,
                r.multiple_choice.most_frequent,
            ));
        }
    }
    let mut md = String::from(
        "# QA set size pilot\n\n| questions (cap) | row | MC accuracy | numeric MRA | most frequent (MC) |\n|---|---|---|---|---|\n",
    );
    for (n, name, mc, nu, mf) in &table {
        md.push_str(&format!("| {n} | {name} | {mc:.3} | {nu:.3} | {mf:.3} |\n"));
    }
    std::fs::write(out.join("pilot.md"), &md).map_err(io)?;
    out!("{md}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use spatialsv_trainer::mllm::eval::QaEvalReport;

    #[test]
    fn paired_differences_by_hand() {
        let rep = |scores: &[f64]| QaEvalReport {
            per_question: scores
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("q{i}"), spatialsv_qa::Family::CameraTurn, *s))
                .collect(),
            ..QaEvalReport::default()
        };
        let (a, b) = (rep(&[1.0, 1.0, 0.0, 1.0]), rep(&[0.0, 1.0, 0.0, 0.0]));
        let (m, (lo, hi), per) = paired(&[&a], &[&b], false, 1);
        assert!((m - 0.5).abs() < 1e-12);
        assert_eq!(per, vec![0.5]);
        assert!(lo <= m && m <= hi && lo >= 0.0 && hi <= 1.0);
        // The same runs: zero, with a zero-width interval.
        let (m, (lo, hi), _) = paired(&[&a], &[&a], false, 1);
        assert_eq!((m, lo, hi), (0.0, 0.0, 0.0));
    }
}
