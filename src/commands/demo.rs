//! `spatialsv demo`: the whole method end to end on the synthetic world.
//!
//! Every step is the command a user would type (run in-process), so the demo exercises the
//! same code paths and prints the same summaries. Steps leave a marker in `OUT/.done/` and a
//! rerun skips finished ones (training resumes from its last checkpoint, labelling skips
//! labelled clips), so an interrupted demo continues where it stopped.

use super::Context;
use std::path::{Path, PathBuf};
use std::time::Instant;

use spatialsv_ingest::synth::{ScanSet, SynthOptions};
use spatialsv_lab::recipe::{ARMS, Recipe, budget};
use spatialsv_lab::report::{Report, write_report};
use spatialsv_lab::{Runner, WorldLayout};
use spatialsv_labeler::LabelConfig;
use spatialsv_labeler::quality::{LabelComparison, LabelQuality, compare, score};
use spatialsv_schemas::Split;
use spatialsv_store::{Digest, Labelling, Selector};
use spatialsv_trainer::eval::{EvalReport, evaluate};
use spatialsv_trainer::mllm::eval::evaluate_qa;

use super::ingest::Format;
use super::{
    CliError, CliResult, CommandLine, export, ingest, label, qa, quote, synth, train, write_json,
};

/// Run the whole method on the embedded synthetic world, with no download: synth (4 labeled
/// scan rooms, 24 short unlabeled videos of other rooms, and two held-out test sets: A, 6 scan
/// rooms; B, 6 video rooms decoded from H.264 with their true depth and poses) -> ingest ->
/// train a teacher on the labeled scans -> pseudo-label the videos twice, one teacher pass
/// per frame and fused from many passes (configs/label.toml [fusion]) -> fine-tune, with the
/// same steps, schedule and start, a semi-supervised student (labeled + accepted fused
/// pseudo-labels, 1:2) and three supervised-only controls (the student's batch size; the
/// student's labeled clips alone; the student's batch size with its strong perturbations) ->
/// evaluate them all on test sets A and B -> score both labellings against the hidden ground
/// truth (the go/no-go) -> spatial questions (`qa`) and the small multimodal model's
/// semi-supervised rows (quick: three at 150 steps; full: the whole table), scored by
/// `eval --qa` -> write OUT/report.md and a self-contained OUT/report.html beside PLY
/// point clouds. Reruns skip finished steps. --quick takes about 10 minutes on a 2-core CPU
/// (release build); the full run about 25. The multi-seed comparison is `spatialsv study`.
///
/// Example (from a checkout: cargo run --release -- demo ...):
///   spatialsv demo --quick --seed 1 --out out/demo
///   spatialsv demo --label-config my-label.toml --out out/demo-strict
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The short budget (under 10 minutes on a 2-core CPU, release build).
    #[arg(long)]
    quick: bool,
    /// Seed of the initialisations and the sampling (and of the world, unless --world-seed).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seed of the synthetic world (default: --seed); `study` holds it fixed across seeds.
    #[arg(long)]
    world_seed: Option<u64>,
    /// Output directory.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    /// Labelling config (keys of configs/label.toml); the defaults when omitted.
    #[arg(long)]
    label_config: Option<PathBuf>,
    /// Model preset of every run: tiny (CPU), or small / base at 224x224 (GPU builds; far too
    /// slow on a CPU).
    #[arg(long, default_value = "tiny")]
    preset: spatialsv_trainer::Preset,
    /// Training steps of every model, overriding the budget (smoke tests).
    #[arg(long, hide = true)]
    steps: Option<usize>,
    /// World size as scenes,videos,frames,WIDTHxHEIGHT[,test_scenes,test_videos,video_frames],
    /// overriding the default (smoke tests).
    #[arg(long, hide = true)]
    world: Option<String>,
}

impl Args {
    /// The arguments `study` runs one seed with.
    pub(crate) fn for_study(quick: bool, seed: u64, world_seed: u64, out: PathBuf) -> Self {
        Self {
            quick,
            seed,
            world_seed: Some(world_seed),
            out,
            label_config: None,
            preset: spatialsv_trainer::Preset::Tiny,
            steps: None,
            world: None,
        }
    }
}

/// The demo world: 4 labeled scan rooms; test set A, 6 held-out scan rooms; 24 unlabeled
/// videos of 24 frames; test set B, 6 held-out video rooms. Frames of scans and test videos:
/// 48, at 160x120.
pub(crate) fn demo_world(out: &Path, seed: u64) -> synth::Args {
    let d = SynthOptions::default();
    synth::Args {
        out: out.to_path_buf(),
        seed,
        scenes: 10,
        test_scenes: 6,
        videos: 24,
        test_videos: 6,
        frames: d.frames,
        video_frames: 24,
        codec_check: false,
        resolution: format!("{}x{}", d.width, d.height),
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    run_report(args, ctx).map(|_| ())
}

/// Runs the demo and returns what its report shows.
pub(crate) fn run_report(args: Args, ctx: &Context) -> Result<Report, CliError> {
    let t0 = Instant::now();
    let out = args.out.clone();
    std::fs::create_dir_all(&out)
        .map_err(spatialsv_lab::LabError::output("creating --out", &out))?;
    let (world_dir, ds_dir, runs) = (out.join("world"), out.join("ds"), out.join("runs"));
    let world = WorldLayout::new(&world_dir);
    let configs = out.join("configs");
    std::fs::create_dir_all(&configs).map_err(anyhow::Error::from)?;
    let (teacher_steps, student_steps) = match args.steps {
        Some(n) => (n, n),
        None => budget(args.quick),
    };
    let run_dir = |name: &str| runs.join(name);
    let teacher_dir = run_dir("teacher");
    let recipe = Recipe::new(args.seed, teacher_steps, student_steps, &teacher_dir)?
        .with_preset(args.preset);
    let config_of = |name: &str| configs.join(format!("{name}.toml"));
    for (name, config) in recipe.runs() {
        spatialsv_lab::write_toml(&config_of(name), config)?;
    }
    // The two labellings: the given (or default) config, one teacher pass per frame; and the
    // same config fused from many passes.
    let single_cfg: LabelConfig = match &args.label_config {
        Some(p) => spatialsv_store::load_toml(p)?,
        None => LabelConfig::default(),
    };
    let single_cfg = LabelConfig {
        fusion: spatialsv_labeler::config::Fusion {
            enabled: false,
            ..single_cfg.fusion.clone()
        },
        ..single_cfg
    };
    let fused_cfg = LabelConfig {
        fusion: spatialsv_labeler::config::Fusion {
            enabled: true,
            ..single_cfg.fusion.clone()
        },
        ..single_cfg.clone()
    };
    let (single_path, fused_path) = (config_of("label_single"), config_of("label_fused"));
    for (path, cfg) in [(&single_path, &single_cfg), (&fused_path, &fused_cfg)] {
        std::fs::write(path, spatialsv_store::to_toml(cfg)?)
            .map_err(spatialsv_lab::LabError::output("writing", &path))?;
    }

    // The SpatialSV regime's rows: the multimodal model's semi-supervised rows (quick) or
    // the whole table (full), each scored on the test rooms.
    let sv_rows = if args.quick {
        spatialsv_lab::spatialsv::select_rows(
            false,
            &["half_text", "half_text_3d", "half_text_3d_videos"].map(String::from),
        )?
    } else {
        spatialsv_lab::spatialsv::rows(true)
    };
    let mut say = |line: &str| -> CliResult {
        out!("{line}");
        Ok(())
    };
    // synth, ingest, 5 trainings, 2 labellings, evaluate, score, export; qa, the rows and
    // their evaluation.
    let mut r = Runner::new("demo", &out, 12 + 2 + sv_rows.len(), &mut say);
    let mut synth = demo_world(&world_dir, args.world_seed.unwrap_or(args.seed));
    if let Some(spec) = &args.world {
        let parts: Vec<&str> = spec.split(',').collect();
        let bad = || {
            CliError::User(format!(
                "--world '{spec}': expected scenes,videos,frames,WxH[,test_scenes,test_videos,video_frames]"
            ))
        };
        let (base, extra) = match parts.len() {
            4 => (&parts[..], &[][..]),
            7 => parts.split_at(4),
            _ => return Err(bad()),
        };
        let [scenes, videos, frames, resolution] = base[..] else {
            return Err(bad());
        };
        synth.scenes = scenes.parse().map_err(|_| bad())?;
        synth.videos = videos.parse().map_err(|_| bad())?;
        synth.frames = frames.parse().map_err(|_| bad())?;
        synth.resolution = resolution.to_string();
        let extra: Vec<usize> = extra
            .iter()
            .map(|v| v.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        (synth.test_scenes, synth.test_videos, synth.video_frames) = match extra[..] {
            [a, b, c] => (a, b, c),
            _ => (0, 0, 0),
        };
    }
    r.step("synth", synth.command_line(), || {
        synth::run(synth.clone(), ctx)
    })?;
    let mut ingests = vec![
        ingest::Args::new(
            Format::Scannet,
            world.scans(ScanSet::Train),
            ds_dir.clone(),
            "train",
        ),
        ingest::Args::new(
            Format::Scannet,
            world.scans(ScanSet::Test),
            ds_dir.clone(),
            "test",
        ),
        ingest::Args::new(Format::Video, world.videos(), ds_dir.clone(), "train"),
    ];
    if synth.test_videos > 0 {
        ingests.push(ingest::Args::new(
            Format::Scannet,
            world.scans(ScanSet::TestVideo),
            ds_dir.clone(),
            "test",
        ));
    }
    r.step(
        "ingest",
        ingests
            .iter()
            .map(CommandLine::command_line)
            .collect::<Vec<_>>()
            .join(" && "),
        || ingests.iter().try_for_each(|a| ingest::run(a.clone(), ctx)),
    )?;
    let train_step = |r: &mut Runner<CliError>, name: &str| -> CliResult {
        let dir = run_dir(name);
        let a = train::Args {
            dataset: ds_dir.clone(),
            config: Some(config_of(name)),
            out: dir.clone(),
            resume: spatialsv_trainer::RunDir::new(&dir).latest().is_some(),
        };
        r.step(&format!("train {name}"), a.command_line(), || {
            train::run(a.clone(), ctx)
        })
    };
    train_step(&mut r, "teacher")?;
    for (step, path) in [
        ("label single pass", &single_path),
        ("label fused", &fused_path),
    ] {
        let a = label::Args {
            external: None,
            dataset: Some(ds_dir.clone()),
            teacher: vec![teacher_dir.clone()],
            config: Some(path.clone()),
            shard: "0/1".into(),
        };
        r.step(step, a.command_line(), || label::run(a.clone(), ctx))?;
    }
    for name in ["student", "baseline", "baseline_labeled", "baseline_strong"] {
        train_step(&mut r, name)?;
    }

    let ds = ctx.open(&ds_dir)?;
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
    let hashes = |cfg: &LabelConfig| -> Result<Labelling, CliError> {
        let (_, _, h) = spatialsv_labeler::job::resolve_config(cfg, &teacher)?;
        Ok(Labelling {
            teacher: Digest::from_stored(teacher.hash.clone()),
            config: Digest::from_stored(h),
        })
    };
    let (single_id, fused_id) = (hashes(&single_cfg)?, hashes(&fused_cfg)?);
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
            super::eval::print_quality(&q)?;
            let c = compare(&ds, &gt, &single_id, &fused_id)?;
            write_json(&out.join("eval").join("labels"), "single_vs_fused.json", &c)?;
            super::eval::print_comparison(&c)?;
            Ok((q, c))
        },
    )?;
    let scene = evals
        .first()
        .and_then(|(_, e)| e.scenes.keys().next().cloned())
        .ok_or_else(|| CliError::User("no test scene was evaluated".into()))?;
    let export_dir = out.join("export");
    let exports: Vec<(String, String)> = ["baseline", "student"]
        .iter()
        .map(|n| (n.to_string(), s(&export_dir.join(n))))
        .collect();
    let export_args = exports.iter().map(|(name, o)| export::Args {
        checkpoint: run_dir(name),
        dataset: ds_dir.clone(),
        scene: scene.clone(),
        out: PathBuf::from(o),
    });
    let export_args: Vec<export::Args> = export_args.collect();
    r.step(
        "export",
        export_args
            .iter()
            .map(CommandLine::command_line)
            .collect::<Vec<_>>()
            .join(" && "),
        || {
            export_args
                .iter()
                .try_for_each(|a| export::run(a.clone(), ctx))
        },
    )?;
    // The SpatialSV regime: questions from the scans' geometry, then the multimodal rows.
    let qa_args = qa::Args {
        dataset: ds_dir.clone(),
        per_clip: if args.quick { 1 } else { 4 },
        families: vec![],
        seed: args.seed,
        views: 4,
    };
    r.step("qa", qa_args.command_line(), || {
        qa::run(qa_args.clone(), ctx)
    })?;
    let sv_base = spatialsv_lab::spatialsv::base_config(
        args.seed,
        &spatialsv_lab::spatialsv::Budget {
            steps: args.steps.unwrap_or(if args.quick { 150 } else { 1500 }),
            ..spatialsv_lab::spatialsv::Budget::new(args.quick)
        },
        0,
    );
    for row in &sv_rows {
        let cfg = row.config(&sv_base, &teacher_dir);
        let path = config_of(&format!("mllm_{}", row.name));
        std::fs::write(&path, spatialsv_store::to_toml(&cfg)?)
            .map_err(spatialsv_lab::LabError::output("writing", &path))?;
        let dir = run_dir(row.name);
        let a = train::Args {
            dataset: ds_dir.clone(),
            config: Some(path),
            out: dir.clone(),
            resume: spatialsv_trainer::RunDir::new(&dir).latest().is_some(),
        };
        r.step(&format!("train {}", row.name), a.command_line(), || {
            train::run(a.clone(), ctx)
        })?;
    }
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
                let rep = evaluate_qa(&ds, &run_dir(row.name), Split::Test, &crate::progress::Bar::new())?;
                write_json(&out.join("eval").join(row.name), "qa_eval.json", &rep)?;
                evals.push((row.name.to_string(), row.what.to_string(), rep));
            }
            Ok(evals)
        },
    )?;
    let report = Report {
        seed: args.seed,
        quick: args.quick,
        teacher_steps,
        student_steps,
        world_seed: synth.seed,
        world: world.read_manifest()?,
        evals,
        quality: Some(quality),
        comparison: Some(comparison),
        scene,
        runs: ARMS.iter().map(|n| (n.to_string(), run_dir(n))).collect(),
        exports: exports
            .iter()
            .map(|(n, p)| (n.clone(), PathBuf::from(p)))
            .collect(),
        spatialsv,
        spatialsv_steps: sv_base.steps,
        spatialsv_batch: sv_base.batch_size,
        steps: r.into_steps(),
        seconds: t0.elapsed().as_secs_f64(),
    };
    write_report(&out, &report)?;
    out!(
        "demo finished in {:.1} min: {} and {}",
        t0.elapsed().as_secs_f64() / 60.0,
        out.join("report.md").display(),
        out.join("report.html").display()
    );
    Ok(report)
}
