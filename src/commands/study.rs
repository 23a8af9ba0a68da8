//! `spatialsv study`: an experiment repeated over training seeds on one fixed world, with
//! paired differences and intervals.

use super::Context;
use std::path::PathBuf;

use serde::Serialize;
use spatialsv_trainer::eval::Scores;

use super::demo::{ARMS, run_report, test_set};
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

/// Two-sided 95% Student-t critical values for 1..=30 degrees of freedom.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// Mean, sample standard deviation and the 95% t-interval half-width of `v`
/// (spread and interval are 0 for a single value, which decides nothing).
pub fn mean_interval(v: &[f64]) -> (f64, f64, f64) {
    let n = v.len();
    if n == 0 {
        return (f64::NAN, 0.0, 0.0);
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (mean, 0.0, 0.0);
    }
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let t = T95.get(n - 2).copied().unwrap_or(1.96);
    (mean, sd, t * sd / (n as f64).sqrt())
}

/// The metrics a study compares: name, accessor, whether lower is better.
type Metric = (&'static str, fn(&Scores) -> f64, bool);
const METRICS: [Metric; 4] = [
    ("AbsRel", |s| s.abs_rel, true),
    ("delta1", |s| s.delta1, false),
    ("AUC@30", |s| s.auc30.unwrap_or(f64::NAN), false),
    ("Chamfer (m)", |s| s.chamfer, true),
];

#[derive(Debug, Serialize)]
struct ArmStat {
    test_set: char,
    metric: &'static str,
    arm: String,
    per_seed: Vec<f64>,
    mean: f64,
    sd: f64,
}

#[derive(Debug, Serialize)]
struct Paired {
    test_set: char,
    metric: &'static str,
    against: String,
    /// student - arm, per seed.
    per_seed: Vec<f64>,
    mean: f64,
    ci95: f64,
    /// Mean relative difference, (student - arm) / arm.
    relative: f64,
}

#[derive(Debug, Serialize)]
struct Study {
    seeds: Vec<u64>,
    world_seed: u64,
    quick: bool,
    arms: Vec<ArmStat>,
    paired: Vec<Paired>,
    /// Per seed: fused kept-pixel AbsRel over the single pass's on the same pixels.
    label_ratio: Vec<f64>,
    minutes_per_seed: Vec<f64>,
}

/// The student without one stage each (`--ablations`).
const ABLATIONS: [&str; 3] = [
    "ablation_single_pass",
    "ablation_no_noise",
    "ablation_fewer_videos",
];

/// Trains and evaluates the ablated students of one finished seed in `dir` (resumable: a
/// finished run is only evaluated).
fn ablations(
    ctx: &Context,
    dir: &std::path::Path,
    report: &crate::report::Report,
) -> Result<Vec<(String, spatialsv_trainer::eval::EvalReport)>, CliError> {
    let ds_dir = dir.join("ds");
    let student: spatialsv_trainer::TrainConfig =
        spatialsv_store::load_toml(&dir.join("configs/student.toml"))?;
    let single = report
        .comparison
        .as_ref()
        .map(|c| c.single.config.to_string())
        .ok_or_else(|| CliError::User("the seed has no single-pass labelling".into()))?;
    let variants = [
        (
            ABLATIONS[0],
            spatialsv_trainer::TrainConfig {
                pseudo_labels: Some(format!(":{}", &single[..16.min(single.len())])),
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
        super::demo::write_config(&config, &cfg)?;
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
    std::fs::create_dir_all(&args.out).map_err(|e| {
        CliError::User(format!("cannot create --out ({e}): {}", args.out.display()))
    })?;
    // scores[seed][arm][set]
    let mut scores: Vec<Vec<(String, char, Scores)>> = Vec::new();
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
            for set in ['A', 'B'] {
                if let Some(s) = e.subset(|s| test_set(s) == set) {
                    per.push((arm.clone(), set, s));
                }
            }
        }
        scores.push(per);
    }
    let value = |seed: usize, arm: &str, set: char, m: &Metric| {
        scores[seed]
            .iter()
            .find(|(a, s, _)| a == arm && *s == set)
            .map(|(_, _, sc)| (m.1)(sc))
    };
    let n = args.seeds.len();
    let mut arms = Vec::new();
    let mut paired = Vec::new();
    let all_arms: Vec<&str> = ARMS
        .iter()
        .copied()
        .chain(
            if args.ablations { &ABLATIONS[..] } else { &[] }
                .iter()
                .copied(),
        )
        .collect();
    for set in ['A', 'B'] {
        for m in &METRICS {
            for arm in all_arms.iter().copied() {
                let v: Option<Vec<f64>> = (0..n).map(|k| value(k, arm, set, m)).collect();
                let Some(v) = v else { continue };
                let (mean, sd, _) = mean_interval(&v);
                arms.push(ArmStat {
                    test_set: set,
                    metric: m.0,
                    arm: arm.to_string(),
                    per_seed: v,
                    mean,
                    sd,
                });
            }
            for arm in all_arms.iter().filter(|a| **a != "student") {
                let pairs: Option<Vec<(f64, f64)>> = (0..n)
                    .map(|k| Some((value(k, "student", set, m)?, value(k, arm, set, m)?)))
                    .collect();
                let Some(pairs) = pairs else { continue };
                let diffs: Vec<f64> = pairs.iter().map(|(s, b)| s - b).collect();
                let (mean, _, ci95) = mean_interval(&diffs);
                let relative = pairs
                    .iter()
                    .map(|(s, b)| (s - b) / b.abs().max(1e-12))
                    .sum::<f64>()
                    / n as f64;
                paired.push(Paired {
                    test_set: set,
                    metric: m.0,
                    against: arm.to_string(),
                    per_seed: diffs,
                    mean,
                    ci95,
                    relative,
                });
            }
        }
    }
    let study = Study {
        seeds: args.seeds.clone(),
        world_seed: args.world_seed,
        quick: args.quick,
        arms,
        paired,
        label_ratio,
        minutes_per_seed: minutes,
    };
    write_json(&args.out, "study.json", &study)?;
    let md = markdown(&study);
    let path = args.out.join("study.md");
    std::fs::write(&path, &md)
        .map_err(|e| CliError::User(format!("cannot write ({e}): {}", path.display())))?;
    for line in md
        .lines()
        .filter(|l| l.starts_with("| B") || l.starts_with("| A"))
    {
        out!("{line}");
    }
    out!("study written to {}", path.display());
    Ok(())
}

/// Values formatted one by one, space-separated.
fn list(values: &[f64], fmt: fn(f64) -> String) -> String {
    values.iter().map(|v| fmt(*v)).collect::<Vec<_>>().join(" ")
}

fn markdown(s: &Study) -> String {
    let lower = |metric: &str| METRICS.iter().find(|m| m.0 == metric).is_some_and(|m| m.2);
    let mut md = format!(
        "# spatialsv study: semi-supervised, seeds {:?}, world seed {}, {} budget\n\n",
        s.seeds,
        s.world_seed,
        if s.quick { "quick" } else { "full" }
    );
    md.push_str("Every seed trains the teacher, labels, and trains every arm again on the same world; differences are paired by seed. Interval: 95% Student t over seeds (a single seed has none). Against an `ablation_*` arm (the student without one stage), \"student better\" means the stage helps.\n\n");
    md.push_str("## Paired differences, student - arm\n\n| set | metric | against | per seed | mean | 95% interval | relative | student better? |\n|---|---|---|---|---|---|---|---|\n");
    for p in &s.paired {
        let better = if lower(p.metric) {
            p.mean + p.ci95 < 0.0
        } else {
            p.mean - p.ci95 > 0.0
        };
        let worse = if lower(p.metric) {
            p.mean - p.ci95 > 0.0
        } else {
            p.mean + p.ci95 < 0.0
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {:+.4} | [{:+.4}, {:+.4}] | {:+.1}% | {} |\n",
            p.test_set,
            p.metric,
            p.against,
            list(&p.per_seed, |v| format!("{v:+.4}")),
            p.mean,
            p.mean - p.ci95,
            p.mean + p.ci95,
            100.0 * p.relative,
            if s.seeds.len() < 2 {
                "one seed: undecided"
            } else if better {
                "yes"
            } else if worse {
                "no, worse"
            } else {
                "tie (interval spans 0)"
            }
        ));
    }
    md.push_str("\n## Each arm over seeds\n\n| set | metric | arm | per seed | mean | sd |\n|---|---|---|---|---|---|\n");
    for a in &s.arms {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {:.4} | {:.4} |\n",
            a.test_set,
            a.metric,
            a.arm,
            list(&a.per_seed, |v| format!("{v:.4}")),
            a.mean,
            a.sd
        ));
    }
    let (m, sd, ci) = mean_interval(&s.label_ratio);
    md.push_str(&format!(
        "\n## Labels\n\nFused kept-pixel AbsRel over the single pass's on the same pixels, per seed: {} (mean {m:.3}, sd {sd:.3}, 95% interval ±{ci:.3}; the go/no-go asks for at most 0.85).\n\nMinutes per seed: {}.\n",
        list(&s.label_ratio, |v| format!("{v:.3}")),
        list(&s.minutes_per_seed, |v| format!("{v:.1}"))
    ));
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_by_hand() {
        let (m, sd, ci) = mean_interval(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (sd - 1.0).abs() < 1e-12);
        assert!((ci - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(mean_interval(&[5.0]), (5.0, 0.0, 0.0));
    }
}
