//! `spatialsv demo`: the whole method end to end on the synthetic world.
//!
//! Every step is the command a user would type (run in-process), so the demo exercises the
//! same code paths and prints the same summaries. Steps leave a marker in `OUT/.done/` and a
//! rerun skips finished ones (training resumes from its last checkpoint, labelling skips
//! labelled clips), so an interrupted demo continues where it stopped.

use std::path::{Path, PathBuf};
use std::time::Instant;

use spatialsv_labeler::quality::{LabelQuality, score};
use spatialsv_pipeline::Dataset;
use spatialsv_pipeline::synth::SynthOptions;
use spatialsv_schemas::Split;
use spatialsv_trainer::TrainConfig;
use spatialsv_trainer::eval::{EvalReport, evaluate};
use spatialsv_trainer::experiment::{Recipe, budget};

use super::ingest::Format;
use super::{
    CliError, CliResult, CommandLine, export, ingest, label, quote, synth, train, write_json,
};
use crate::report::{Report, Step, write_report};

/// Run the whole method on the embedded synthetic world, with no download: synth -> ingest
/// scans and videos -> train a teacher on the labeled scans -> pseudo-label the videos ->
/// fine-tune a semi-supervised student (labeled + accepted pseudo-labels, 1:2) and, with the
/// same steps and start, two supervised-only baselines (the student's batch size, all
/// labeled; and the student's labeled clips alone) -> evaluate them all on the held-out scenes -> score the pseudo-labels against the hidden ground truth -> write
/// OUT/report.md and a self-contained OUT/report.html (metrics, pseudo-label quality, loss
/// curves, depth/confidence images) beside PLY point clouds of both students and the truth.
/// Reruns skip finished steps. --quick takes under 10 minutes on a 2-core CPU (release
/// build); the full run about 25.
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
    /// Seed of the world, the initialisations and the sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
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
    /// World size as scenes,videos,frames,WIDTHxHEIGHT, overriding the default (smoke tests).
    #[arg(long, hide = true)]
    world: Option<String>,
}

fn write_config(path: &Path, config: &TrainConfig) -> CliResult {
    let text = spatialsv_pipeline::to_toml(config)?;
    std::fs::write(path, text)
        .map_err(|e| CliError::User(format!("cannot write ({e}): {}", path.display())))
}

struct Runner {
    out: PathBuf,
    steps: Vec<Step>,
    total: usize,
}

impl Runner {
    /// Runs `f` as step `name` (always: its results feed the report); records its time.
    fn always<T>(
        &mut self,
        name: &str,
        command: String,
        f: impl FnOnce() -> Result<T, CliError>,
    ) -> Result<T, CliError> {
        out!(
            "== demo step {}/{}: {name}",
            self.steps.len() + 1,
            self.total
        );
        out!("   $ {command}");
        let t = Instant::now();
        let value = f()?;
        self.steps.push(Step {
            name: name.to_string(),
            command,
            seconds: t.elapsed().as_secs_f64(),
            skipped: false,
        });
        Ok(value)
    }

    /// Runs `f` as step `name` unless its marker says it finished; records its time.
    fn step(&mut self, name: &str, command: String, f: impl FnOnce() -> CliResult) -> CliResult {
        let n = self.steps.len() + 1;
        let marker = self.out.join(".done").join(name.replace(' ', "_"));
        out!("== demo step {n}/{}: {name}", self.total);
        out!("   $ {command}");
        let t = Instant::now();
        let skipped = marker.exists();
        if skipped {
            out!("   (done in an earlier run; skipped)");
        } else {
            f()?;
            std::fs::create_dir_all(self.out.join(".done")).map_err(anyhow::Error::from)?;
            std::fs::write(&marker, "").map_err(anyhow::Error::from)?;
        }
        self.steps.push(Step {
            name: name.to_string(),
            command,
            seconds: t.elapsed().as_secs_f64(),
            skipped,
        });
        Ok(())
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

pub fn run(args: Args) -> CliResult {
    let t0 = Instant::now();
    let out = args.out.clone();
    std::fs::create_dir_all(&out)
        .map_err(|e| CliError::User(format!("cannot create --out ({e}): {}", out.display())))?;
    let (world, ds_dir, runs) = (out.join("world"), out.join("ds"), out.join("runs"));
    let configs = out.join("configs");
    std::fs::create_dir_all(&configs).map_err(anyhow::Error::from)?;
    let (teacher_steps, student_steps) = match args.steps {
        Some(n) => (n, n),
        None => budget(args.quick),
    };
    let (teacher_dir, student_dir, baseline_dir, labeled_dir) = (
        runs.join("teacher"),
        runs.join("student"),
        runs.join("baseline"),
        runs.join("baseline_labeled"),
    );
    let recipe = Recipe::new(args.seed, teacher_steps, student_steps, &teacher_dir)?
        .with_preset(args.preset);
    let config_of = |name: &str| configs.join(format!("{name}.toml"));
    for (name, config) in recipe.runs() {
        write_config(&config_of(name), config)?;
    }

    let mut r = Runner {
        out: out.clone(),
        steps: Vec::new(),
        total: 10,
    };
    let defaults = SynthOptions::default();
    let mut synth = synth::Args {
        out: world.clone(),
        seed: args.seed,
        scenes: defaults.scenes,
        videos: defaults.videos,
        frames: defaults.frames,
        resolution: format!("{}x{}", defaults.width, defaults.height),
    };
    if let Some(spec) = &args.world {
        let parts: Vec<&str> = spec.split(',').collect();
        let bad = || {
            CliError::User(format!(
                "--world '{spec}': expected scenes,videos,frames,WxH"
            ))
        };
        let [scenes, videos, frames, resolution] = parts[..] else {
            return Err(bad());
        };
        synth.scenes = scenes.parse().map_err(|_| bad())?;
        synth.videos = videos.parse().map_err(|_| bad())?;
        synth.frames = frames.parse().map_err(|_| bad())?;
        synth.resolution = resolution.to_string();
    }
    r.step("synth", synth.command_line(), || synth::run(synth.clone()))?;
    let ingests = [
        ingest::Args::new(
            Format::Scannet,
            world.join("scans/train"),
            ds_dir.clone(),
            "train",
        ),
        ingest::Args::new(
            Format::Scannet,
            world.join("scans/test"),
            ds_dir.clone(),
            "test",
        ),
        ingest::Args::new(Format::Video, world.join("videos"), ds_dir.clone(), "train"),
    ];
    r.step(
        "ingest",
        ingests
            .iter()
            .map(CommandLine::command_line)
            .collect::<Vec<_>>()
            .join(" && "),
        || ingests.iter().try_for_each(|a| ingest::run(a.clone())),
    )?;
    let train_step = |r: &mut Runner, name: &str, dir: &Path| -> CliResult {
        let a = train::Args {
            dataset: ds_dir.clone(),
            config: Some(config_of(name)),
            out: dir.to_path_buf(),
            resume: spatialsv_trainer::latest_checkpoint(dir).is_some(),
        };
        r.step(&format!("train {name}"), a.command_line(), || {
            train::run(a.clone())
        })
    };
    train_step(&mut r, "teacher", &teacher_dir)?;
    let label = label::Args {
        dataset: ds_dir.clone(),
        teacher: teacher_dir.clone(),
        config: args.label_config.clone(),
        shard: "0/1".into(),
    };
    r.step("label", label.command_line(), || label::run(label.clone()))?;
    train_step(&mut r, "student", &student_dir)?;
    train_step(&mut r, "baseline", &baseline_dir)?;
    train_step(&mut r, "baseline_labeled", &labeled_dir)?;

    let ds = Dataset::open(&ds_dir)?;
    let evals: Vec<(String, EvalReport)> = r.always(
        "evaluate",
        format!(
            "spatialsv eval --dataset {} --checkpoint {}/NAME --split test --out {}/eval/NAME  (NAME = teacher, baseline, baseline_labeled, student)",
            quote(&ds_dir),
            quote(&runs),
            quote(&out)
        ),
        || {
            let mut evals = Vec::new();
            for (name, dir) in [
                ("teacher", &teacher_dir),
                ("baseline", &baseline_dir),
                ("baseline_labeled", &labeled_dir),
                ("student", &student_dir),
            ] {
                let rep = evaluate(&ds, dir, Split::Test)?;
                write_json(&out.join("eval").join(name), "eval.json", &rep)?;
                evals.push((name.to_string(), rep));
            }
            Ok(evals)
        },
    )?;
    let gt = world.join("groundtruth");
    let quality: LabelQuality = r.always(
        "score pseudo-labels",
        format!(
            "spatialsv eval --dataset {} --pseudo-labels --groundtruth {} --out {}/eval/labels",
            quote(&ds_dir),
            quote(&gt),
            quote(&out)
        ),
        || {
            let q = score(&ds, &gt, None)?;
            write_json(&out.join("eval").join("labels"), "pseudo_labels.json", &q)?;
            super::eval::print_quality(&q)?;
            Ok(q)
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
    let export_args = [
        (&baseline_dir, &exports[0].1),
        (&student_dir, &exports[1].1),
    ]
    .map(|(run, out)| export::Args {
        checkpoint: run.clone(),
        dataset: ds_dir.clone(),
        scene: scene.clone(),
        out: PathBuf::from(out),
    });
    r.step(
        "export",
        export_args
            .iter()
            .map(CommandLine::command_line)
            .collect::<Vec<_>>()
            .join(" && "),
        || export_args.iter().try_for_each(|a| export::run(a.clone())),
    )?;
    let report = Report {
        seed: args.seed,
        quick: args.quick,
        teacher_steps,
        student_steps,
        evals,
        quality: Some(quality),
        scene,
        runs: vec![
            ("teacher".into(), teacher_dir.clone()),
            ("baseline".into(), baseline_dir.clone()),
            ("baseline_labeled".into(), labeled_dir.clone()),
            ("student".into(), student_dir.clone()),
        ],
        exports: exports
            .iter()
            .map(|(n, p)| (n.clone(), PathBuf::from(p)))
            .collect(),
        steps: r.steps.clone(),
        seconds: t0.elapsed().as_secs_f64(),
    };
    write_report(&out, &report)?;
    out!(
        "demo finished in {:.1} min: {} and {}",
        t0.elapsed().as_secs_f64() / 60.0,
        out.join("report.md").display(),
        out.join("report.html").display()
    );
    Ok(())
}
