//! `study spatialsv`: the paper's tables in miniature. Per seed, one synthetic world (split
//! by room), its spatial questions, a 3D teacher and its pseudo-labels of the unlabeled
//! videos, and one multimodal run per row (equal steps, batch and learning rate), each scored
//! on the held-out rooms' questions; then means and spreads over seeds and paired differences
//! with a bootstrap interval over the test questions. The rows are [`rows`]'; the written
//! document is [`document`]'s.

mod document;
mod rows;

pub use rows::{Budget, PAIRS, Row, base_config, rows, select_rows};

use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use spatialsv_ingest::ScanFormat;
use spatialsv_ingest::synth::{ScanSet, SynthOptions};
use spatialsv_labeler::LabelConfig;
use spatialsv_labeler::config::Fusion;
use spatialsv_labeler::job::Shard;
use spatialsv_qa::QaOptions;
use spatialsv_schemas::Split;
use spatialsv_trainer::TrainConfig;
use spatialsv_trainer::mllm::MllmConfig;
use spatialsv_trainer::mllm::eval::{QaEvalReport, evaluate_qa};

use crate::error::{LabError, Result};
use crate::jobs::{Env, Ingest, Label, Qa, Source, Synth, Train, quote, write_json};
use crate::stats::{bootstrap_mean, mean_sd};
use crate::{Markers, WorldLayout};

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

/// Prepares one seed's world, dataset, questions, teacher and pseudo-labels in `dir`
/// (each step skipped when its output is there).
fn prepare(env: &Env, dir: &Path, seed: u64, b: &Budget) -> Result<()> {
    let world_dir = dir.join("world");
    let world = WorldLayout::new(&world_dir);
    let ds = dir.join("ds");
    let markers = Markers::new(dir);
    let step = |name: &str, command: String, job: &dyn Fn() -> Result<()>| -> Result<()> {
        if markers.done(name) {
            return Ok(());
        }
        env.say(&format!("   $ {command}"))?;
        job()?;
        markers.mark(name)
    };
    let synth = Synth {
        out: world_dir.clone(),
        options: SynthOptions {
            seed,
            scenes: b.train_rooms + 6,
            test_scenes: 6,
            videos: 12,
            test_videos: 0,
            frames: b.frames,
            video_frames: 24,
            width: 160,
            height: 120,
            ..SynthOptions::default()
        },
    };
    step("synth", synth.command_line(), &|| {
        synth.run(env).map(|_| ())
    })?;
    if !markers.done("ingest") {
        let scans = Source::Scans(ScanFormat::Scannet);
        for job in [
            Ingest::new(scans, world.scans(ScanSet::Train), &ds, Split::Train),
            Ingest::new(scans, world.scans(ScanSet::Test), &ds, Split::Test),
            Ingest::new(Source::Video, world.videos(), &ds, Split::Train),
        ] {
            env.say(&format!("   $ {}", job.command_line()))?;
            job.run(env)?;
        }
        markers.mark("ingest")?;
    }
    let qa = Qa {
        dataset: ds.clone(),
        options: QaOptions {
            per_clip: b.per_clip,
            seed,
            views: 4,
            ..QaOptions::default()
        },
    };
    step("qa", qa.command_line(), &|| qa.run(env))?;
    let teacher = dir.join("runs/teacher");
    if !markers.done("teacher") {
        let cfg = TrainConfig {
            steps: b.teacher_steps,
            checkpoint_every: b.teacher_steps,
            seed,
            ema_decay: 0.99,
            ..TrainConfig::default()
        };
        let path = dir.join("teacher.toml");
        crate::write_toml(&path, &cfg)?;
        let job = Train::continuing(&ds, path, teacher.clone());
        step("teacher", job.command_line(), &|| job.run(env))?;
    }
    // Fused labels: whole video segments in one frame, so clips of 4 views exist (a single
    // pass labels windows of the teacher's clip length, 3).
    if !markers.done("label_fused") {
        let cfg = LabelConfig::default();
        let cfg = LabelConfig {
            fusion: Fusion {
                enabled: true,
                ..cfg.fusion.clone()
            },
            ..cfg
        };
        let path = dir.join("label_fused.toml");
        crate::write_toml(&path, &cfg)?;
        let job = Label {
            dataset: ds.clone(),
            teachers: vec![teacher],
            config: Some(path),
            shard: Shard::ALL,
            process_res: None,
        };
        step("label_fused", job.command_line(), &|| job.run(env))?;
    }
    Ok(())
}

/// Trains and evaluates one row of one seed (a finished one is only read back).
fn run_row(env: &Env, dir: &Path, row: &Row, cfg: &MllmConfig) -> Result<QaEvalReport> {
    let eval_path = dir.join("eval").join(row.name).join("qa_eval.json");
    let run = dir.join("runs").join(row.name);
    let ds = env.open(dir.join("ds"))?;
    if !spatialsv_trainer::RunDir::new(&run).finished(cfg.steps) {
        let path = dir.join(format!("{}.toml", row.name));
        crate::write_toml(&path, cfg)?;
        let job = Train::continuing(&dir.join("ds"), path, run.clone());
        env.say(&format!("   $ {}", job.command_line()))?;
        job.run(env)?;
    }
    if let Ok(text) = std::fs::read_to_string(&eval_path)
        && let Ok(r) = serde_json::from_str::<QaEvalReport>(&text)
    {
        return Ok(r);
    }
    env.say(&format!(
        "   $ spatialsv eval --qa --dataset {} --checkpoint {} --out {}",
        quote(dir.join("ds")),
        quote(&run),
        eval_path.parent().map(quote).unwrap_or_default()
    ))?;
    let rep = evaluate_qa(&ds, &run, Split::Test, env.progress())?;
    if let Some(parent) = eval_path.parent() {
        write_json(parent, "qa_eval.json", &rep)?;
    }
    Ok(rep)
}

/// What `study spatialsv` is asked to run.
#[derive(Debug, Clone)]
pub struct SpatialsvStudy {
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

/// Runs the study (or, with `plan.pilot`, the pilot) and writes `study_spatialsv.{md,html,json}`
/// into `plan.out`.
pub fn run(plan: &SpatialsvStudy, env: &Env) -> Result<()> {
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
        return Err(LabError::User("--batch: must be at least 1".into()));
    }
    b.batch = plan.batch;
    let rows = select_rows(plan.all_rows, &plan.rows)?;
    std::fs::create_dir_all(out).map_err(LabError::output("creating --out", out))?;
    if !plan.pilot.is_empty() {
        return run_pilot(env, seeds[0], &b, out, &plan.pilot);
    }
    let mut reports: Vec<Vec<QaEvalReport>> = Vec::new();
    let mut minutes = Vec::new();
    let mut train_questions = 0;
    for (i, seed) in seeds.iter().enumerate() {
        let t = Instant::now();
        let dir = out.join(format!("seed-{seed}"));
        env.say(&format!(
            "== study spatialsv seed {seed} ({}/{}): world, questions, teacher, labels",
            i + 1,
            seeds.len()
        ))?;
        prepare(env, &dir, *seed, &b)?;
        let teacher = dir.join("runs/teacher");
        let mut per_row = Vec::new();
        for row in &rows {
            env.say(&format!("== seed {seed}: {} ({})", row.name, row.what))?;
            let cfg = row.config(&base_config(*seed, &b, max_questions), &teacher);
            per_row.push(run_row(env, &dir, row, &cfg)?);
        }
        if i == 0 {
            let ds = env.open(dir.join("ds"))?;
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
    let doc = document::document(&s, &reports, &rows, out);
    crate::report::write_document(out, "study_spatialsv", &doc)?;
    env.say(&format!(
        "wrote {0}/study_spatialsv.md, {0}/study_spatialsv.html and {0}/study_spatialsv.json",
        out.display()
    ))?;
    Ok(())
}

/// The QA set size pilot: text only and text + 3D at each size on one seed's world.
fn run_pilot(env: &Env, seed: u64, b: &Budget, out: &Path, sizes: &[usize]) -> Result<()> {
    let dir = out.join(format!("seed-{seed}"));
    env.say(&format!(
        "== pilot on seed {seed}: world, questions, teacher, labels"
    ))?;
    prepare(env, &dir, seed, b)?;
    let all = rows(false);
    let mut table = Vec::new();
    for &n in sizes {
        for name in ["text_only", "text_3d"] {
            let Some(row) = all.iter().find(|r| r.name == name) else {
                continue;
            };
            let cfg = row.config(&base_config(seed, b, n), &dir.join("runs/teacher"));
            let pilot_row = row.renamed(Box::leak(format!("pilot_{name}_{n}").into_boxed_str()));
            env.say(&format!("== pilot: {} with at most {n} questions", name))?;
            let r = run_row(env, &dir, &pilot_row, &cfg)?;
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
    let pilot = out.join("pilot.md");
    std::fs::write(&pilot, &md).map_err(LabError::output("writing", &pilot))?;
    env.say(&md)?;
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
