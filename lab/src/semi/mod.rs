//! `study semi`: the demo's semi-supervised protocol repeated over training seeds on one
//! fixed world, optionally with the student's ablations, aggregated into paired differences
//! ([`aggregate`]) and written as `study.json` and `study.md`.

mod aggregate;

pub use aggregate::{ArmStat, METRICS, Metric, Paired, SeedResults, SeedScores, Study, aggregate};

use std::path::{Path, PathBuf};

use spatialsv_schemas::Split;
use spatialsv_trainer::TrainConfig;
use spatialsv_trainer::eval::{EvalReport, evaluate};

use crate::TestSet;
use crate::demo::Demo;
use crate::error::{LabError, Result};
use crate::jobs::{Env, Train, write_json};
use crate::recipe::{ABLATIONS, ARMS};
use crate::report::Report;

/// What `study semi` is asked to run.
#[derive(Debug, Clone)]
pub struct SemiStudy {
    /// Training seeds (one demo each).
    pub seeds: Vec<u64>,
    /// The world every seed shares.
    pub world_seed: u64,
    /// The demo's short budget.
    pub quick: bool,
    /// Output directory (`seed-N/` per seed).
    pub out: PathBuf,
    /// Also the student without one stage at a time.
    pub ablations: bool,
}

/// The student's ablations of one seed's configs: the single-pass labels instead of the
/// fused ones (`single` is the single-pass labelling's config hash), no strong
/// perturbation, the labels of 6 videos only.
fn ablated(
    student: &TrainConfig,
    single: &spatialsv_store::Digest,
) -> [(&'static str, TrainConfig); 3] {
    [
        (
            ABLATIONS[0],
            TrainConfig {
                pseudo_labels: Some(format!(":{}", single.prefix(16))),
                ..student.clone()
            },
        ),
        (
            ABLATIONS[1],
            TrainConfig {
                strong_colour: 0.0,
                strong_blur: 0.0,
                cutmix: 0.0,
                strong_flip: 0.0,
                ..student.clone()
            },
        ),
        (
            ABLATIONS[2],
            TrainConfig {
                pseudo_max_scenes: 6,
                ..student.clone()
            },
        ),
    ]
}

/// Trains and evaluates the ablated students of one finished seed in `dir` (resumable: a
/// finished run is only evaluated).
fn ablations(env: &Env, dir: &Path, report: &Report) -> Result<Vec<(String, EvalReport)>> {
    let ds_dir = dir.join("ds");
    let student: TrainConfig = spatialsv_store::load_toml(&dir.join("configs/student.toml"))?;
    let single = report
        .comparison
        .as_ref()
        .map(|c| c.single.config.clone())
        .ok_or_else(|| LabError::User("the seed has no single-pass labelling".into()))?;
    let ds = env.open(&ds_dir)?;
    let mut out = Vec::new();
    for (name, cfg) in ablated(&student, &single) {
        let config = dir.join("configs").join(format!("{name}.toml"));
        crate::write_toml(&config, &cfg)?;
        let run = dir.join("runs").join(name);
        env.say(&format!("== ablation {name}"))?;
        if !spatialsv_trainer::RunDir::new(&run).finished(cfg.steps) {
            Train::continuing(&ds_dir, config, run.clone()).run(env)?;
        }
        let e = evaluate(&ds, &run, Split::Test)?;
        write_json(&dir.join("eval").join(name), "eval.json", &e)?;
        out.push((name.to_string(), e));
    }
    Ok(out)
}

/// Runs the study and writes `study.json` and `study.md` into `s.out`.
pub fn run(s: &SemiStudy, env: &Env) -> Result<Study> {
    if s.seeds.is_empty() {
        return Err(LabError::User("--seeds: give at least one seed".into()));
    }
    std::fs::create_dir_all(&s.out).map_err(LabError::output("creating --out", &s.out))?;
    let mut scores: Vec<SeedScores> = Vec::new();
    let mut label_ratio = Vec::new();
    let mut minutes = Vec::new();
    for (i, seed) in s.seeds.iter().enumerate() {
        env.say(&format!(
            "== study seed {seed} ({}/{}), world seed {}",
            i + 1,
            s.seeds.len(),
            s.world_seed
        ))?;
        let dir = s.out.join(format!("seed-{seed}"));
        let report = crate::demo::run(
            &Demo::for_study(s.quick, *seed, s.world_seed, dir.clone()),
            env,
        )?;
        minutes.push(report.seconds / 60.0);
        if let Some(c) = &report.comparison {
            label_ratio.push(c.kept_ratio());
        }
        let mut evals = report.evals.clone();
        if s.ablations {
            evals.extend(ablations(env, &dir, &report)?);
        }
        let mut per = Vec::new();
        for (arm, e) in &evals {
            for set in TestSet::ALL {
                if let Some(sc) = e.subset(|scene| report.world.test_set(scene) == set) {
                    per.push((arm.clone(), set, sc));
                }
            }
        }
        scores.push(per);
    }
    let ablations: &[&str] = if s.ablations { &ABLATIONS } else { &[] };
    let all_arms: Vec<&str> = ARMS.iter().chain(ablations).copied().collect();
    let study = aggregate(
        &s.seeds,
        s.world_seed,
        s.quick,
        &all_arms,
        SeedResults {
            scores,
            label_ratio,
            minutes,
        },
    );
    write_json(&s.out, "study.json", &study)?;
    let md = study.markdown();
    let path = s.out.join("study.md");
    std::fs::write(&path, &md).map_err(LabError::output("writing", &path))?;
    for line in md
        .lines()
        .filter(|l| l.starts_with("| B") || l.starts_with("| A"))
    {
        env.say(line)?;
    }
    env.say(&format!("study written to {}", path.display()))?;
    Ok(study)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ablation_removes_one_stage_of_the_student() {
        let student = TrainConfig::default();
        let single = spatialsv_store::Digest::from_stored("ab".repeat(32));
        let [(a, single_pass), (b, no_noise), (c, fewer)] = ablated(&student, &single);
        assert_eq!([a, b, c], ABLATIONS);
        assert_eq!(
            single_pass.pseudo_labels.as_deref(),
            Some(&*format!(":{}", "ab".repeat(8)))
        );
        assert_eq!(
            (
                no_noise.strong_colour,
                no_noise.strong_blur,
                no_noise.cutmix,
                no_noise.strong_flip
            ),
            (0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!(no_noise.pseudo_labels, student.pseudo_labels);
        assert_eq!(fewer.pseudo_max_scenes, 6);
    }
}
