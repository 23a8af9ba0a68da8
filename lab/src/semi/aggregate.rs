//! `study semi`'s aggregation: the demo's arms compared over training seeds on one world, as
//! paired differences student - arm per test set and metric, with 95% t-intervals and the
//! verdict words only where the interval excludes 0 (the numbers behind README's claims).

use serde::Serialize;
use spatialsv_ingest::synth::TestSet;
use spatialsv_trainer::eval::Scores;

use crate::recipe::STUDENT;
use crate::stats::{PairedDiff, Verdict, mean_interval, paired};

/// The metrics a study compares: name, accessor, whether lower is better.
pub type Metric = (&'static str, fn(&Scores) -> f64, bool);

/// Depth AbsRel, delta1, camera AUC@30 and point-cloud Chamfer distance.
pub const METRICS: [Metric; 4] = [
    ("AbsRel", |s| s.abs_rel, true),
    ("delta1", |s| s.delta1, false),
    ("AUC@30", |s| s.auc30.unwrap_or(f64::NAN), false),
    ("Chamfer (m)", |s| s.chamfer, true),
];

/// One seed's scores: (arm, test set, scores).
pub type SeedScores = Vec<(String, TestSet, Scores)>;

/// One arm over seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmStat {
    /// Test set.
    pub test_set: TestSet,
    /// Metric name.
    pub metric: &'static str,
    /// Arm.
    pub arm: String,
    /// Its value per seed.
    pub per_seed: Vec<f64>,
    /// Mean over seeds.
    pub mean: f64,
    /// Sample standard deviation over seeds.
    pub sd: f64,
}

/// The student against one arm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Paired {
    /// Test set.
    pub test_set: TestSet,
    /// Metric name.
    pub metric: &'static str,
    /// The arm compared with.
    pub against: String,
    /// student - arm, per seed.
    pub per_seed: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Half-width of the 95% t-interval.
    pub ci95: f64,
    /// Mean relative difference, (student - arm) / arm.
    pub relative: f64,
}

impl Paired {
    /// What the interval says about the student.
    pub fn verdict(&self, seeds: usize) -> Verdict {
        let lower = METRICS
            .iter()
            .find(|m| m.0 == self.metric)
            .is_some_and(|m| m.2);
        Verdict::of(self.mean, self.ci95, seeds, lower)
    }
}

/// `study.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Study {
    /// Training seeds.
    pub seeds: Vec<u64>,
    /// The world's seed.
    pub world_seed: u64,
    /// The quick budget.
    pub quick: bool,
    /// Every arm over seeds.
    pub arms: Vec<ArmStat>,
    /// The student against every other arm.
    pub paired: Vec<Paired>,
    /// Per seed: fused kept-pixel AbsRel over the single pass's on the same pixels.
    pub label_ratio: Vec<f64>,
    /// Wall time per seed.
    pub minutes_per_seed: Vec<f64>,
}

/// What the seeds of a study measured.
#[derive(Debug, Clone, Default)]
pub struct SeedResults {
    /// Per seed, its scores.
    pub scores: Vec<SeedScores>,
    /// Per seed, the fused labels' kept-pixel AbsRel ratio (where measured).
    pub label_ratio: Vec<f64>,
    /// Per seed, minutes.
    pub minutes: Vec<f64>,
}

/// Aggregates per-seed results over `arms` (the student among them): each arm's mean and
/// spread, and the student's paired difference against every other arm, for every test set
/// and metric that every seed measured.
pub fn aggregate(
    seeds: &[u64],
    world_seed: u64,
    quick: bool,
    arms: &[&str],
    r: SeedResults,
) -> Study {
    let value = |seed: usize, arm: &str, set: TestSet, m: &Metric| {
        r.scores[seed]
            .iter()
            .find(|(a, s, _)| a == arm && *s == set)
            .map(|(_, _, sc)| (m.1)(sc))
    };
    let n = r.scores.len();
    let (mut arm_stats, mut pairs) = (Vec::new(), Vec::new());
    for set in TestSet::ALL {
        for m in &METRICS {
            for arm in arms.iter().copied() {
                let v: Option<Vec<f64>> = (0..n).map(|k| value(k, arm, set, m)).collect();
                let Some(v) = v else { continue };
                let (mean, sd, _) = mean_interval(&v);
                arm_stats.push(ArmStat {
                    test_set: set,
                    metric: m.0,
                    arm: arm.to_string(),
                    per_seed: v,
                    mean,
                    sd,
                });
            }
            for arm in arms.iter().filter(|a| **a != STUDENT) {
                let p: Option<Vec<(f64, f64)>> = (0..n)
                    .map(|k| Some((value(k, STUDENT, set, m)?, value(k, arm, set, m)?)))
                    .collect();
                let Some(p) = p else { continue };
                let PairedDiff {
                    per_draw,
                    mean,
                    ci95,
                    relative,
                } = paired(&p);
                pairs.push(Paired {
                    test_set: set,
                    metric: m.0,
                    against: arm.to_string(),
                    per_seed: per_draw,
                    mean,
                    ci95,
                    relative,
                });
            }
        }
    }
    Study {
        seeds: seeds.to_vec(),
        world_seed,
        quick,
        arms: arm_stats,
        paired: pairs,
        label_ratio: r.label_ratio,
        minutes_per_seed: r.minutes,
    }
}

/// Values formatted one by one, space-separated.
fn list(values: &[f64], fmt: fn(f64) -> String) -> String {
    values.iter().map(|v| fmt(*v)).collect::<Vec<_>>().join(" ")
}

impl Study {
    /// `study.md`.
    pub fn markdown(&self) -> String {
        let s = self;
        let mut md = format!(
            "# spatialsv study: semi-supervised, seeds {:?}, world seed {}, {} budget\n\n",
            s.seeds,
            s.world_seed,
            if s.quick { "quick" } else { "full" }
        );
        md.push_str("Every seed trains the teacher, labels, and trains every arm again on the same world; differences are paired by seed. Interval: 95% Student t over seeds (a single seed has none). Against an `ablation_*` arm (the student without one stage), \"student better\" means the stage helps.\n\n");
        md.push_str("## Paired differences, student - arm\n\n| set | metric | against | per seed | mean | 95% interval | relative | student better? |\n|---|---|---|---|---|---|---|---|\n");
        for p in &s.paired {
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
                p.verdict(s.seeds.len()).words("seed")
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(abs_rel: f64) -> Scores {
        Scores {
            abs_rel,
            delta1: 1.0 - abs_rel,
            chamfer: abs_rel,
            auc30: Some(0.5),
            ..Scores::default()
        }
    }

    /// Fake seeds: per seed, the student's and the baseline's AbsRel on test set A (test set
    /// B measured for the student only).
    fn seeds(values: &[(f64, f64)]) -> SeedResults {
        SeedResults {
            scores: values
                .iter()
                .map(|(s, b)| {
                    vec![
                        ("student".to_string(), TestSet::A, scores(*s)),
                        ("baseline".to_string(), TestSet::A, scores(*b)),
                        ("student".to_string(), TestSet::B, scores(*s)),
                    ]
                })
                .collect(),
            label_ratio: vec![0.8; values.len()],
            minutes: vec![1.0; values.len()],
        }
    }

    fn absrel_pair(s: &Study) -> &Paired {
        s.paired
            .iter()
            .find(|p| p.metric == "AbsRel" && p.test_set == TestSet::A)
            .unwrap()
    }

    #[test]
    fn a_consistent_win_is_a_win_and_an_interval_spanning_zero_is_a_tie() {
        let arms = ["baseline", "student"];
        let win = aggregate(
            &[0, 1, 2],
            0,
            true,
            &arms,
            seeds(&[(0.10, 0.12), (0.11, 0.13), (0.09, 0.115)]),
        );
        let p = absrel_pair(&win);
        assert_eq!(p.against, "baseline");
        assert!((p.mean + 0.0217).abs() < 1e-3, "{p:?}");
        assert_eq!(p.verdict(3), Verdict::Better);
        // delta1 = 1 - AbsRel: higher is better, so the same seeds win there too.
        let d1 = win.paired.iter().find(|p| p.metric == "delta1").unwrap();
        assert_eq!(d1.verdict(3), Verdict::Better);
        // Test set B has no baseline: no pair, but the student's own row.
        assert!(!win.paired.iter().any(|p| p.test_set == TestSet::B));
        assert!(
            win.arms
                .iter()
                .any(|a| a.test_set == TestSet::B && a.arm == "student")
        );
        let md = win.markdown();
        assert!(md.contains("| A | AbsRel | baseline |"), "{md}");
        assert!(md.contains("| yes |"), "{md}");

        let tie = aggregate(
            &[0, 1, 2],
            0,
            true,
            &arms,
            seeds(&[(0.10, 0.12), (0.13, 0.11), (0.10, 0.10)]),
        );
        assert_eq!(absrel_pair(&tie).verdict(3), Verdict::Tie);
        assert!(tie.markdown().contains("tie (interval spans 0)"));
    }

    #[test]
    fn one_seed_is_undecided_and_the_json_keeps_its_field_names() {
        let one = aggregate(
            &[4],
            9,
            false,
            &["baseline", "student"],
            seeds(&[(0.1, 0.2)]),
        );
        let p = absrel_pair(&one);
        assert_eq!((p.ci95, p.verdict(1)), (0.0, Verdict::Undecided));
        assert!(one.markdown().contains("one seed: undecided"));
        let json = serde_json::to_value(&one).unwrap();
        for key in [
            "seeds",
            "world_seed",
            "quick",
            "arms",
            "paired",
            "label_ratio",
            "minutes_per_seed",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert_eq!(json["paired"][0]["test_set"], "A");
        for key in ["metric", "against", "per_seed", "mean", "ci95", "relative"] {
            assert!(json["paired"][0].get(key).is_some(), "{key}");
        }
    }
}
