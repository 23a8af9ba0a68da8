//! `spatialsv demo`: the whole method end to end on the synthetic world.
//!
//! Every step is the command a user would type (run in-process), so the demo exercises the
//! same code paths and prints the same summaries. Steps leave a marker in `OUT/.done/` and a
//! rerun skips finished ones (training resumes from its last checkpoint, labelling skips
//! labelled clips), so an interrupted demo continues where it stopped.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use spatialsv_labeler::quality::{LabelQuality, score};
use spatialsv_pipeline::Dataset;
use spatialsv_schemas::Split;
use spatialsv_trainer::TrainConfig;
use spatialsv_trainer::eval::{EvalReport, evaluate};

use super::{Cli, CliError, CliResult, write_json};
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
    /// Training steps of every model, overriding the budget (smoke tests).
    #[arg(long, hide = true)]
    steps: Option<usize>,
    /// World size as scenes,videos,frames,WIDTHxHEIGHT, overriding the default (smoke tests).
    #[arg(long, hide = true)]
    world: Option<String>,
}

/// Steps of each training at each budget: (teacher, students).
fn budget(quick: bool) -> (usize, usize) {
    if quick { (300, 200) } else { (900, 600) }
}

fn cli(args: &[&str]) -> CliResult {
    let mut argv = vec!["spatialsv"];
    argv.extend_from_slice(args);
    let parsed = Cli::try_parse_from(&argv)
        .map_err(|e| CliError::Other(anyhow::anyhow!("demo built a bad command line: {e}")))?;
    super::run(parsed)
}

/// The command line a user would type for `args`.
fn line(args: &[&str]) -> String {
    format!("spatialsv {}", args.join(" "))
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
        println!(
            "== demo step {}/{}: {name}",
            self.steps.len() + 1,
            self.total
        );
        println!("   $ {command}");
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
        println!("== demo step {n}/{}: {name}", self.total);
        println!("   $ {command}");
        let t = Instant::now();
        let skipped = marker.exists();
        if skipped {
            println!("   (done in an earlier run; skipped)");
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
    // Teacher: the default recipe. Student and baselines: fine-tuned from the teacher with
    // the same steps, schedule and seed. Two supervised-only baselines: `baseline` has the
    // student's batch size, all labeled (the same compute, 3x the labeled clips per step);
    // `baseline_labeled` sees exactly the student's labeled clips per step and nothing else.
    let teacher_cfg = TrainConfig {
        steps: teacher_steps,
        seed: args.seed,
        checkpoint_every: 100.min(teacher_steps.max(1)),
        ..TrainConfig::default()
    };
    let baseline_cfg = TrainConfig {
        steps: student_steps,
        batch_size: 3,
        warmup_steps: 10.min(student_steps),
        lr: 5e-4,
        checkpoint_every: 100.min(student_steps.max(1)),
        init_from: Some(teacher_dir.clone()),
        ..teacher_cfg.clone()
    };
    let student_cfg = TrainConfig {
        pseudo_labels: Some("latest".into()),
        ..baseline_cfg.clone()
    };
    let labeled_cfg = TrainConfig {
        batch_size: student_cfg.batch_split()?.0,
        ..baseline_cfg.clone()
    };
    let paths = [
        (configs.join("teacher.toml"), &teacher_cfg),
        (configs.join("student.toml"), &student_cfg),
        (configs.join("baseline.toml"), &baseline_cfg),
        (configs.join("baseline_labeled.toml"), &labeled_cfg),
    ];
    for (p, c) in &paths {
        write_config(p, c)?;
    }
    let (teacher_toml, student_toml, baseline_toml, labeled_toml) = (
        s(&paths[0].0),
        s(&paths[1].0),
        s(&paths[2].0),
        s(&paths[3].0),
    );

    let mut r = Runner {
        out: out.clone(),
        steps: Vec::new(),
        total: 10,
    };
    let seed = args.seed.to_string();
    let (w, d) = (s(&world), s(&ds_dir));
    let mut synth_args = vec!["synth", "--out", &w, "--seed", &seed];
    let world_spec: Vec<String> = args
        .world
        .as_deref()
        .map(|x| x.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    if world_spec.len() == 4 {
        for (flag, value) in ["--scenes", "--videos", "--frames", "--resolution"]
            .iter()
            .zip(&world_spec)
        {
            synth_args.push(flag);
            synth_args.push(value);
        }
    }
    r.step("synth", line(&synth_args), || cli(&synth_args))?;
    let (scans_train, scans_test, videos) = (
        format!("{w}/scans/train"),
        format!("{w}/scans/test"),
        format!("{w}/videos"),
    );
    let ingest: [Vec<&str>; 3] = [
        vec![
            "ingest",
            "scannet",
            &scans_train,
            "--dataset",
            &d,
            "--split",
            "train",
        ],
        vec![
            "ingest",
            "scannet",
            &scans_test,
            "--dataset",
            &d,
            "--split",
            "test",
        ],
        vec![
            "ingest",
            "video",
            &videos,
            "--dataset",
            &d,
            "--split",
            "train",
        ],
    ];
    r.step(
        "ingest",
        ingest
            .iter()
            .map(|a| line(a))
            .collect::<Vec<_>>()
            .join(" && "),
        || ingest.iter().try_for_each(|a| cli(a)),
    )?;
    let train_step = |r: &mut Runner, name: &str, cfg: &str, dir: &Path| -> CliResult {
        let dir_s = s(dir);
        let mut a = vec!["train", "--dataset", &d, "--config", cfg, "--out", &dir_s];
        let resume = spatialsv_trainer::latest_checkpoint(dir).is_some();
        if resume {
            a.push("--resume");
        }
        r.step(name, line(&a), || cli(&a))
    };
    train_step(&mut r, "train teacher", &teacher_toml, &teacher_dir)?;
    let teacher_s = s(&teacher_dir);
    let label_cfg = args.label_config.as_deref().map(s);
    let mut label_args = vec!["label", "--dataset", &d, "--teacher", &teacher_s];
    if let Some(c) = &label_cfg {
        label_args.extend(["--config", c]);
    }
    r.step("label", line(&label_args), || cli(&label_args))?;
    train_step(&mut r, "train student", &student_toml, &student_dir)?;
    train_step(&mut r, "train baseline", &baseline_toml, &baseline_dir)?;
    train_step(
        &mut r,
        "train baseline_labeled",
        &labeled_toml,
        &labeled_dir,
    )?;

    let ds = Dataset::open(&ds_dir)?;
    let evals: Vec<(String, EvalReport)> = r.always(
        "evaluate",
        format!(
            "spatialsv eval --dataset {d} --checkpoint {}/NAME --split test --out {}/eval/NAME  (NAME = teacher, baseline, baseline_labeled, student)",
            s(&runs),
            s(&out)
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
            "spatialsv eval --dataset {d} --pseudo-labels --groundtruth {} --out {}/eval/labels",
            s(&gt),
            s(&out)
        ),
        || {
            let q = score(&ds, &gt, None)?;
            write_json(&out.join("eval").join("labels"), "pseudo_labels.json", &q)?;
            super::eval::print_quality(&q);
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
    let (base_run, stud_run) = (s(&baseline_dir), s(&student_dir));
    let export_args = [
        [
            "export",
            "--checkpoint",
            &base_run,
            "--dataset",
            &d,
            "--scene",
            &scene,
            "--out",
            &exports[0].1,
        ],
        [
            "export",
            "--checkpoint",
            &stud_run,
            "--dataset",
            &d,
            "--scene",
            &scene,
            "--out",
            &exports[1].1,
        ],
    ];
    r.step(
        "export",
        export_args
            .iter()
            .map(|a| line(a))
            .collect::<Vec<_>>()
            .join(" && "),
        || export_args.iter().try_for_each(|a| cli(a)),
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
    println!(
        "demo finished in {:.1} min: {} and {}",
        t0.elapsed().as_secs_f64() / 60.0,
        out.join("report.md").display(),
        out.join("report.html").display()
    );
    Ok(())
}
