//! `spatialsv study`: an experiment repeated over training seeds on one fixed world, with
//! paired differences and intervals.

use super::Context;
use std::path::PathBuf;

use spatialsv_lab::TestSet;
use spatialsv_lab::recipe::{ABLATIONS, ARMS};
use spatialsv_lab::semi::{SeedResults, SeedScores, aggregate};

use super::demo::run_report;
use super::{CliError, CliResult, write_json};

/// Repeat an experiment over training seeds on one fixed world and report paired
/// differences. `semi`: the demo's semi-supervised protocol (teacher, single-pass and fused
/// labels, the student and three supervised-only controls) once per seed into OUT/seed-N;
/// then, per test set (A: scan rooms, B: video rooms) and metric, each arm's mean and spread
/// over seeds, and the paired difference student - arm per seed with its mean and a 95%
/// t-interval. With --ablations, the student is also trained without one stage at a time and
/// compared the same way. Writes OUT/study.md and OUT/study.json. Reruns skip finished steps (each seed
/// is a resumable demo). A quick seed takes about 10 minutes on a 2-core CPU.
///
/// Example:
///   spatialsv study semi --seeds 0,1,2 --quick --out out/study
///   spatialsv study semi --seeds 0,1,2 --quick --ablations --out out/study
#[derive(Debug, Clone, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Which study: `semi` (pseudo-labels and the semi-supervised student).
    kind: Kind,
    /// Training seeds, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    /// Seed of the world every run shares.
    #[arg(long, default_value_t = 0)]
    world_seed: u64,
    /// The demo's short budget.
    #[arg(long)]
    quick: bool,
    /// Output directory.
    #[arg(long, default_value = "out/study")]
    out: PathBuf,
    /// `spatialsv` only: use at most this many training questions per run (0 = all).
    #[arg(long, default_value_t = 0)]
    max_questions: usize,
    /// `spatialsv` only: instead of the study, the QA set size pilot: text only and text +
    /// 3D on the first seed at each of these question caps.
    #[arg(long, value_delimiter = ',')]
    pilot: Vec<usize>,
    /// `spatialsv` only: every row of the full table, at the --quick budget.
    #[arg(long)]
    all_rows: bool,
    /// Steps of every run (and, for `spatialsv`, of its 3D teacher), overriding the budget:
    /// e.g. a longer `spatialsv` study on a GPU. Use a new --out for a new budget (finished
    /// runs of another budget would be continued, not restarted).
    #[arg(long)]
    steps: Option<usize>,
    /// `spatialsv` only: samples per step of every multimodal run (default 8).
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// `spatialsv` only: run only these rows (names as in docs/mllm.md, comma-separated;
    /// default: the budget's rows). Pairs are compared where both rows ran.
    #[arg(long, value_delimiter = ',')]
    rows: Vec<String>,
    /// Also train, per seed, the student without one of its stages, each compared with the
    /// student like the controls: `ablation_single_pass` (the single-pass labels instead of
    /// the fused ones), `ablation_no_noise` (no strong perturbation of its pseudo clips) and
    /// `ablation_fewer_videos` (the labels of 6 of the unlabeled videos only).
    #[arg(long)]
    ablations: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Kind {
    /// The semi-supervised protocol of `demo`.
    Semi,
    /// The SpatialSV regime: the small multimodal model with text and 3D losses, its controls
    /// and the semi-supervised rows (the paper's tables in miniature; docs/mllm.md).
    Spatialsv,
}

/// Trains and evaluates the ablated students of one finished seed in `dir` (resumable: a
/// finished run is only evaluated).
fn ablations(
    ctx: &Context,
    dir: &std::path::Path,
    report: &spatialsv_lab::report::Report,
) -> Result<Vec<(String, spatialsv_trainer::eval::EvalReport)>, CliError> {
    let ds_dir = dir.join("ds");
    let student: spatialsv_trainer::TrainConfig =
        spatialsv_store::load_toml(&dir.join("configs/student.toml"))?;
    let single = report
        .comparison
        .as_ref()
        .map(|c| c.single.config.clone())
        .ok_or_else(|| CliError::User("the seed has no single-pass labelling".into()))?;
    let variants = [
        (
            ABLATIONS[0],
            spatialsv_trainer::TrainConfig {
                pseudo_labels: Some(format!(":{}", single.prefix(16))),
                ..student.clone()
            },
        ),
        (
            ABLATIONS[1],
            spatialsv_trainer::TrainConfig {
                strong_colour: 0.0,
                strong_blur: 0.0,
                cutmix: 0.0,
                strong_flip: 0.0,
                ..student.clone()
            },
        ),
        (
            ABLATIONS[2],
            spatialsv_trainer::TrainConfig {
                pseudo_max_scenes: 6,
                ..student.clone()
            },
        ),
    ];
    let ds = ctx.open(&ds_dir)?;
    let mut out = Vec::new();
    for (name, cfg) in variants {
        let config = dir.join("configs").join(format!("{name}.toml"));
        spatialsv_lab::write_toml(&config, &cfg)?;
        let run = dir.join("runs").join(name);
        let finished = spatialsv_trainer::RunDir::new(&run).finished(cfg.steps);
        out!("== ablation {name}");
        if !finished {
            super::train::run(
                super::train::Args {
                    dataset: ds_dir.clone(),
                    config: Some(config),
                    out: run.clone(),
                    resume: spatialsv_trainer::RunDir::new(&run).latest().is_some(),
                },
                ctx,
            )?;
        }
        let e = spatialsv_trainer::eval::evaluate(&ds, &run, spatialsv_schemas::Split::Test)?;
        write_json(&dir.join("eval").join(name), "eval.json", &e)?;
        out.push((name.to_string(), e));
    }
    Ok(out)
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    if args.seeds.is_empty() {
        return Err(CliError::User("--seeds: give at least one seed".into()));
    }
    if let Kind::Spatialsv = args.kind {
        return super::study_mllm::run(
            ctx,
            &super::study_mllm::Plan {
                seeds: args.seeds.clone(),
                quick: args.quick,
                all_rows: args.all_rows || !args.quick,
                rows: args.rows.clone(),
                out: args.out.clone(),
                max_questions: args.max_questions,
                steps: args.steps,
                batch: args.batch,
                pilot: args.pilot.clone(),
            },
        );
    }
    std::fs::create_dir_all(&args.out)
        .map_err(spatialsv_lab::LabError::output("creating --out", &args.out))?;
    // scores[seed]: (arm, test set, scores)
    let mut scores: Vec<SeedScores> = Vec::new();
    let mut label_ratio = Vec::new();
    let mut minutes = Vec::new();
    for (i, seed) in args.seeds.iter().enumerate() {
        out!(
            "== study seed {seed} ({}/{}), world seed {}",
            i + 1,
            args.seeds.len(),
            args.world_seed
        );
        let dir = args.out.join(format!("seed-{seed}"));
        let report = run_report(
            super::demo::Args::for_study(args.quick, *seed, args.world_seed, dir),
            ctx,
        )?;
        minutes.push(report.seconds / 60.0);
        if let Some(c) = &report.comparison {
            label_ratio.push(c.kept_ratio());
        }
        let mut evals = report.evals.clone();
        if args.ablations {
            evals.extend(ablations(
                ctx,
                &args.out.join(format!("seed-{seed}")),
                &report,
            )?);
        }
        let mut per = Vec::new();
        for (arm, e) in &evals {
            for set in TestSet::ALL {
                if let Some(s) = e.subset(|s| report.world.test_set(s) == set) {
                    per.push((arm.clone(), set, s));
                }
            }
        }
        scores.push(per);
    }
    let all_arms: Vec<&str> = ARMS
        .iter()
        .copied()
        .chain(
            if args.ablations { &ABLATIONS[..] } else { &[] }
                .iter()
                .copied(),
        )
        .collect();
    let study = aggregate(
        &args.seeds,
        args.world_seed,
        args.quick,
        &all_arms,
        SeedResults {
            scores,
            label_ratio,
            minutes,
        },
    );
    write_json(&args.out, "study.json", &study)?;
    let md = study.markdown();
    let path = args.out.join("study.md");
    std::fs::write(&path, &md).map_err(spatialsv_lab::LabError::output("writing", &path))?;
    for line in md
        .lines()
        .filter(|l| l.starts_with("| B") || l.starts_with("| A"))
    {
        out!("{line}");
    }
    out!("study written to {}", path.display());
    Ok(())
}
