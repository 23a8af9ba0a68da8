//! The demo: the whole method end to end on the synthetic world, as resumable steps.
//!
//! Every step is a [`crate::jobs`] value (the job a user would run, printed as its command
//! line) or an evaluation whose results feed the report. Steps leave a marker in `OUT/.done/`
//! and a rerun skips finished ones (training resumes from its last checkpoint, labelling
//! skips labelled clips), so an interrupted demo continues where it stopped.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use spatialsv_ingest::ScanFormat;
use spatialsv_ingest::synth::{ScanSet, SynthOptions};
use spatialsv_labeler::LabelConfig;
use spatialsv_labeler::job::Shard;
use spatialsv_labeler::quality::{LabelComparison, LabelQuality, compare, score};
use spatialsv_qa::QaOptions;
use spatialsv_schemas::Split;
use spatialsv_store::{Digest, Labelling, Selector};
use spatialsv_trainer::Preset;
use spatialsv_trainer::eval::{EvalReport, evaluate};
use spatialsv_trainer::mllm::eval::evaluate_qa;

use crate::error::{LabError, Result};
use crate::jobs::{Env, Export, Ingest, Label, Qa, Source, Synth, Train, quote, write_json};
use crate::recipe::{ARMS, Recipe, budget};
use crate::report::{Report, write_report};
use crate::runner::{Job, Lanes};
use crate::spatialsv::{Budget, base_config, rows, select_rows};
use crate::{Runner, WorldLayout};

/// What the demo is asked to run.
#[derive(Debug, Clone)]
pub struct Demo {
    /// The short budget.
    pub quick: bool,
    /// Seed of the initialisations and the sampling (and of the world, unless `world_seed`).
    pub seed: u64,
    /// Seed of the synthetic world.
    pub world_seed: Option<u64>,
    /// Output directory.
    pub out: PathBuf,
    /// Labelling config (the defaults when omitted).
    pub label_config: Option<PathBuf>,
    /// Model preset of every 3D run.
    pub preset: Preset,
    /// Training steps of every model, overriding the budget (smoke tests).
    pub steps: Option<usize>,
    /// World size, overriding the default (smoke tests).
    pub world: Option<WorldSize>,
}

impl Demo {
    /// The demo `study semi` runs for one seed.
    pub fn for_study(quick: bool, seed: u64, world_seed: u64, out: PathBuf) -> Demo {
        Demo {
            quick,
            seed,
            world_seed: Some(world_seed),
            out,
            label_config: None,
            preset: Preset::Tiny,
            steps: None,
            world: None,
        }
    }
}

/// A smaller world for smoke tests: `scenes,videos,frames,WIDTHxHEIGHT` and optionally
/// `,test_scenes,test_videos,video_frames` (else all three 0: a third of the scenes, no test
/// videos, `frames` per video).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorldSize {
    scenes: usize,
    videos: usize,
    frames: usize,
    width: u32,
    height: u32,
    test_scenes: usize,
    test_videos: usize,
    video_frames: usize,
}

impl FromStr for WorldSize {
    type Err = String;

    fn from_str(spec: &str) -> std::result::Result<Self, String> {
        let bad = || {
            format!(
                "--world '{spec}': expected scenes,videos,frames,WxH[,test_scenes,test_videos,video_frames]"
            )
        };
        let parts: Vec<&str> = spec.split(',').collect();
        if parts.len() != 4 && parts.len() != 7 {
            return Err(bad());
        }
        let n = |i: usize| parts[i].parse::<usize>().map_err(|_| bad());
        let (width, height) = parts[3]
            .split_once('x')
            .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
            .ok_or_else(bad)?;
        let (test_scenes, test_videos, video_frames) = if parts.len() == 7 {
            (n(4)?, n(5)?, n(6)?)
        } else {
            (0, 0, 0)
        };
        Ok(WorldSize {
            scenes: n(0)?,
            videos: n(1)?,
            frames: n(2)?,
            width,
            height,
            test_scenes,
            test_videos,
            video_frames,
        })
    }
}

/// The demo world: 4 labeled scan rooms; test set A, 6 held-out scan rooms; 24 unlabeled
/// videos of 24 frames; test set B, 6 held-out video rooms. Frames of scans and test videos:
/// 48, at 160x120.
pub fn demo_world(out: &Path, seed: u64) -> Synth {
    Synth {
        out: out.to_path_buf(),
        options: SynthOptions {
            seed,
            scenes: 10,
            test_scenes: 6,
            videos: 24,
            test_videos: 6,
            video_frames: 24,
            ..SynthOptions::default()
        },
    }
}

/// The two labellings: `base` (the given or default config) one teacher pass per frame, and
/// the same config fused from many passes.
fn labellings(base: LabelConfig) -> (LabelConfig, LabelConfig) {
    let single = LabelConfig {
        fusion: spatialsv_labeler::config::Fusion {
            enabled: false,
            ..base.fusion.clone()
        },
        ..base
    };
    let fused = LabelConfig {
        fusion: spatialsv_labeler::config::Fusion {
            enabled: true,
            ..single.fusion.clone()
        },
        ..single.clone()
    };
    (single, fused)
}

/// A training as a step of [`Runner::parallel`]: it runs in its own thread with its output
/// kept until the step's turn to say it.
fn train_job<'s>(name: String, job: Train, env: &Env<'s>) -> Job<'s, LabError> {
    let storage = env.storage();
    Job {
        name,
        command: job.command_line(),
        work: Box::new(move || Env::buffered(storage, |e| job.run(e)).map(|((), out)| out)),
    }
}

/// Runs the demo into `d.out` and returns what its report shows (also written as
/// `report.md` and `report.html`).
pub fn run(d: &Demo, env: &Env) -> Result<Report> {
    let t0 = Instant::now();
    let out = d.out.clone();
    std::fs::create_dir_all(&out).map_err(LabError::output("creating --out", &out))?;
    let (world_dir, ds_dir, runs) = (out.join("world"), out.join("ds"), out.join("runs"));
    let world = WorldLayout::new(&world_dir);
    let configs = out.join("configs");
    std::fs::create_dir_all(&configs).map_err(LabError::output("creating", &configs))?;
    let (teacher_steps, student_steps) = match d.steps {
        Some(n) => (n, n),
        None => budget(d.quick),
    };
    let run_dir = |name: &str| runs.join(name);
    let teacher_dir = run_dir("teacher");
    let recipe =
        Recipe::new(d.seed, teacher_steps, student_steps, &teacher_dir)?.with_preset(d.preset);
    let config_of = |name: &str| configs.join(format!("{name}.toml"));
    for (name, config) in recipe.runs() {
        crate::write_toml(&config_of(name), config)?;
    }
    let base: LabelConfig = match &d.label_config {
        Some(p) => spatialsv_store::load_toml(p)?,
        None => LabelConfig::default(),
    };
    let (single_cfg, fused_cfg) = labellings(base);
    let (single_path, fused_path) = (config_of("label_single"), config_of("label_fused"));
    crate::write_toml(&single_path, &single_cfg)?;
    crate::write_toml(&fused_path, &fused_cfg)?;

    // The SpatialSV regime's rows: the multimodal model's semi-supervised rows (quick) or
    // the whole table (full), each scored on the test rooms.
    let sv_rows = if d.quick {
        select_rows(
            false,
            &["half_text", "half_text_3d", "half_text_3d_videos"].map(String::from),
        )?
    } else {
        rows(true)
    };
    let mut say = |line: &str| env.say(line);
    // synth, ingest, 5 trainings, 2 labellings, evaluate, score, export; qa, the rows and
    // their evaluation.
    let mut r = Runner::new("demo", &out, 12 + 2 + sv_rows.len(), &mut say);
    let mut synth = demo_world(&world_dir, d.world_seed.unwrap_or(d.seed));
    if let Some(w) = d.world {
        let o = &mut synth.options;
        (o.scenes, o.videos, o.frames, o.width, o.height) =
            (w.scenes, w.videos, w.frames, w.width, w.height);
        (o.test_scenes, o.test_videos, o.video_frames) =
            (w.test_scenes, w.test_videos, w.video_frames);
    }
    r.step("synth", synth.command_line(), || synth.run(env).map(|_| ()))?;
    let scans = Source::Scans(ScanFormat::Scannet);
    let mut ingests = vec![
        Ingest::new(scans, world.scans(ScanSet::Train), &ds_dir, Split::Train),
        Ingest::new(scans, world.scans(ScanSet::Test), &ds_dir, Split::Test),
        Ingest::new(Source::Video, world.videos(), &ds_dir, Split::Train),
    ];
    if synth.options.test_videos > 0 {
        ingests.push(Ingest::new(
            scans,
            world.scans(ScanSet::TestVideo),
            &ds_dir,
            Split::Test,
        ));
    }
    r.step(
        "ingest",
        ingests
            .iter()
            .map(Ingest::command_line)
            .collect::<Vec<_>>()
            .join(" && "),
        || ingests.iter().try_for_each(|a| a.run(env).map(|_| ())),
    )?;
    let train_step = |r: &mut Runner<LabError>, name: &str| -> Result<()> {
        let job = Train::continuing(&ds_dir, config_of(name), run_dir(name));
        r.step(&format!("train {name}"), job.command_line(), || {
            job.run(env)
        })
    };
    train_step(&mut r, "teacher")?;
    for (step, path) in [
        ("label single pass", &single_path),
        ("label fused", &fused_path),
    ] {
        let job = Label {
            dataset: ds_dir.clone(),
            teachers: vec![teacher_dir.clone()],
            config: Some(path.clone()),
            shard: Shard::ALL,
            process_res: None,
        };
        r.step(step, job.command_line(), || job.run(env))?;
    }
    // The four fine-tuned arms are independent of one another: two at a time on a CPU.
    let warn = |w: &str| env.warn(w);
    let lanes = Lanes::for_machine(&warn);
    let arms = ["student", "baseline", "baseline_labeled", "baseline_strong"]
        .iter()
        .map(|name| {
            let job = Train::continuing(&ds_dir, config_of(name), run_dir(name));
            train_job(format!("train {name}"), job, env)
        })
        .collect();
    r.parallel(arms, lanes)?;

    let ds = env.open(&ds_dir)?;
    let evals: Vec<(String, EvalReport)> = r.always(
        "evaluate",
        format!(
            "spatialsv eval --dataset {} --checkpoint {}/NAME --split test --out {}/eval/NAME  (NAME = {})",
            quote(&ds_dir),
            quote(&runs),
            quote(&out),
            ARMS.join(", ")
        ),
        || {
            let mut evals = Vec::new();
            for name in ARMS {
                let rep = evaluate(&ds, &run_dir(name), Split::Test)?;
                write_json(&out.join("eval").join(name), "eval.json", &rep)?;
                evals.push((name.to_string(), rep));
            }
            Ok(evals)
        },
    )?;
    let gt = world.groundtruth();
    let teacher = spatialsv_labeler::job::load_teacher(&teacher_dir)?;
    let identity = |cfg: &LabelConfig| -> Result<Labelling> {
        let (_, _, h) = spatialsv_labeler::job::resolve_config(cfg, &teacher)?;
        Ok(Labelling {
            teacher: Digest::from_stored(teacher.hash.clone()),
            config: Digest::from_stored(h),
        })
    };
    let (single_id, fused_id) = (identity(&single_cfg)?, identity(&fused_cfg)?);
    let (quality, comparison): (LabelQuality, LabelComparison) = r.always(
        "score pseudo-labels",
        format!(
            "spatialsv eval --dataset {} --pseudo-labels --groundtruth {} --against {} --out {}/eval/labels",
            quote(&ds_dir),
            quote(&gt),
            single_id.config.short(),
            quote(&out)
        ),
        || {
            let q = score(
                &ds,
                &gt,
                &Selector::Prefix {
                    teacher: Some(fused_id.teacher.to_string()),
                    config: None,
                },
            )?;
            write_json(&out.join("eval").join("labels"), "pseudo_labels.json", &q)?;
            for line in q.lines() {
                env.say(&line)?;
            }
            let c = compare(&ds, &gt, &single_id, &fused_id)?;
            write_json(&out.join("eval").join("labels"), "single_vs_fused.json", &c)?;
            for line in c.lines() {
                env.say(&line)?;
            }
            Ok((q, c))
        },
    )?;
    let scene = evals
        .first()
        .and_then(|(_, e)| e.scenes.keys().next().cloned())
        .ok_or_else(|| LabError::User("no test scene was evaluated".into()))?;
    let export_dir = out.join("export");
    let exported = ["baseline", "student"];
    let exports: Vec<Export> = exported
        .iter()
        .map(|name| Export {
            checkpoint: run_dir(name),
            dataset: ds_dir.clone(),
            scene: scene.clone(),
            out: export_dir.join(name),
        })
        .collect();
    r.step(
        "export",
        exports
            .iter()
            .map(Export::command_line)
            .collect::<Vec<_>>()
            .join(" && "),
        || exports.iter().try_for_each(|e| e.run(env)),
    )?;
    // The SpatialSV regime: questions from the scans' geometry, then the multimodal rows.
    let qa = Qa {
        dataset: ds_dir.clone(),
        options: QaOptions {
            per_clip: if d.quick { 1 } else { 4 },
            seed: d.seed,
            views: 4,
            ..QaOptions::default()
        },
    };
    r.step("qa", qa.command_line(), || qa.run(env))?;
    let sv_base = base_config(
        d.seed,
        &Budget {
            steps: d.steps.unwrap_or(if d.quick { 150 } else { 1500 }),
            ..Budget::new(d.quick)
        },
        0,
    );
    let mut row_jobs = Vec::new();
    for row in &sv_rows {
        let path = config_of(&format!("mllm_{}", row.name));
        crate::write_toml(&path, &row.config(&sv_base, &teacher_dir))?;
        let job = Train::continuing(&ds_dir, path, run_dir(row.name));
        row_jobs.push(train_job(format!("train {}", row.name), job, env));
    }
    r.parallel(row_jobs, lanes)?;
    let spatialsv = r.always(
        "evaluate the multimodal rows",
        format!(
            "spatialsv eval --qa --dataset {} --checkpoint {}/ROW --split test --out {}/eval/ROW  (ROW = {})",
            quote(&ds_dir),
            quote(&runs),
            quote(&out),
            sv_rows.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
        ),
        || {
            let mut evals = Vec::new();
            for row in &sv_rows {
                let rep = evaluate_qa(&ds, &run_dir(row.name), Split::Test, env.progress())?;
                write_json(&out.join("eval").join(row.name), "qa_eval.json", &rep)?;
                evals.push((row.name.to_string(), row.what.to_string(), rep));
            }
            Ok(evals)
        },
    )?;
    let report = Report {
        seed: d.seed,
        quick: d.quick,
        teacher_steps,
        student_steps,
        world_seed: synth.options.seed,
        world: world.read_manifest()?,
        evals,
        quality: Some(quality),
        comparison: Some(comparison),
        scene,
        runs: ARMS.iter().map(|n| (n.to_string(), run_dir(n))).collect(),
        exports: exported
            .iter()
            .zip(&exports)
            .map(|(name, e)| (name.to_string(), e.out.clone()))
            .collect(),
        spatialsv,
        spatialsv_steps: sv_base.steps,
        spatialsv_batch: sv_base.batch_size,
        steps: r.into_steps(),
        seconds: t0.elapsed().as_secs_f64(),
    };
    write_report(&out, &report)?;
    env.say(&format!(
        "demo finished in {:.1} min: {} and {}",
        t0.elapsed().as_secs_f64() / 60.0,
        out.join("report.md").display(),
        out.join("report.html").display()
    ))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_sizes_parse_with_and_without_the_test_sets() {
        let w: WorldSize = "3,2,9,64x48,1,1,9".parse().unwrap();
        assert_eq!(
            (w.scenes, w.videos, w.frames, w.width, w.height),
            (3, 2, 9, 64, 48)
        );
        assert_eq!((w.test_scenes, w.test_videos, w.video_frames), (1, 1, 9));
        let w: WorldSize = "3,2,9,64x48".parse().unwrap();
        assert_eq!((w.test_scenes, w.test_videos, w.video_frames), (0, 0, 0));
        for bad in ["3,2,9", "3,2,9,64", "3,2,9,64x48,1", "a,2,9,64x48"] {
            let e = bad.parse::<WorldSize>().unwrap_err();
            assert!(e.starts_with(&format!("--world '{bad}'")), "{e}");
        }
    }

    #[test]
    fn the_two_labellings_differ_only_in_fusion() {
        let (single, fused) = labellings(LabelConfig::default());
        assert!(!single.fusion.enabled && fused.fusion.enabled);
        let back = LabelConfig {
            fusion: single.fusion.clone(),
            ..fused.clone()
        };
        assert_eq!(
            spatialsv_store::to_toml(&back).unwrap(),
            spatialsv_store::to_toml(&single).unwrap()
        );
    }
}
