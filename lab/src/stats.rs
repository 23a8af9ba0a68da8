//! The statistics behind the studies' claims: means with Student-t intervals over seeds or
//! worlds, paired differences, the verdict words, and a percentile bootstrap over questions.

use serde::Serialize;
use spatialsv_store::datagen::SplitMix64;

/// Two-sided 95% Student-t critical values for 1..=30 degrees of freedom.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// Mean, sample standard deviation and the 95% t-interval half-width of `v` (spread and
/// interval are 0 for a single value, which decides nothing; the mean of nothing is NaN).
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

/// Mean and sample standard deviation of `v`.
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let (m, sd, _) = mean_interval(v);
    (m, sd)
}

/// What a paired difference `a - b` with its 95% interval says about `a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// The interval lies on the better side of 0.
    Better,
    /// The interval lies on the worse side of 0.
    Worse,
    /// The interval spans 0.
    Tie,
    /// One draw: no interval, nothing decided.
    Undecided,
}

impl Verdict {
    /// The verdict on `mean ± ci95` over `n` draws, where lower is better if `lower_better`.
    pub fn of(mean: f64, ci95: f64, n: usize, lower_better: bool) -> Verdict {
        if n < 2 {
            return Verdict::Undecided;
        }
        let (lo, hi) = (mean - ci95, mean + ci95);
        let (better, worse) = if lower_better {
            (hi < 0.0, lo > 0.0)
        } else {
            (lo > 0.0, hi < 0.0)
        };
        if better {
            Verdict::Better
        } else if worse {
            Verdict::Worse
        } else {
            Verdict::Tie
        }
    }

    /// The words the study tables print (with what one draw is called).
    pub fn words(self, draw: &str) -> String {
        match self {
            Verdict::Better => "yes".into(),
            Verdict::Worse => "no, worse".into(),
            Verdict::Tie => "tie (interval spans 0)".into(),
            Verdict::Undecided => format!("one {draw}: undecided"),
        }
    }
}

/// A paired comparison of `a` and `b` over draws: the differences `a - b`, their mean and
/// 95% t-interval, and the mean relative difference `(a - b) / |b|`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedDiff {
    /// `a - b` per draw.
    pub per_draw: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Half-width of the 95% t-interval.
    pub ci95: f64,
    /// Mean of `(a - b) / |b|`.
    pub relative: f64,
}

/// The paired comparison of `pairs` (`(a, b)` per draw).
pub fn paired(pairs: &[(f64, f64)]) -> PairedDiff {
    let diffs: Vec<f64> = pairs.iter().map(|(a, b)| a - b).collect();
    let (mean, _, ci95) = mean_interval(&diffs);
    let relative = pairs
        .iter()
        .map(|(a, b)| (a - b) / b.abs().max(1e-12))
        .sum::<f64>()
        / pairs.len().max(1) as f64;
    PairedDiff {
        per_draw: diffs,
        mean,
        ci95,
        relative,
    }
}

/// Mean over groups (seeds) of the mean of each group's values (per-question differences),
/// with a 95% percentile bootstrap interval from 1000 resamples of the values within each
/// group, drawn from `seed`. Also the per-group means. An empty group counts as 0.
pub fn bootstrap_mean(groups: &[Vec<f64>], seed: u64) -> (f64, (f64, f64), Vec<f64>) {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let per_group: Vec<f64> = groups.iter().map(|d| mean(d)).collect();
    let point = mean(&per_group);
    let mut rng = SplitMix64::new(seed);
    let mut boots: Vec<f64> = (0..1000)
        .map(|_| {
            let per: Vec<f64> = groups
                .iter()
                .map(|d| {
                    if d.is_empty() {
                        return 0.0;
                    }
                    (0..d.len())
                        .map(|_| d[(rng.next_u64() % d.len() as u64) as usize])
                        .sum::<f64>()
                        / d.len() as f64
                })
                .collect();
            mean(&per)
        })
        .collect();
    boots.sort_by(f64::total_cmp);
    (point, (boots[25], boots[974]), per_group)
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
        assert!(mean_interval(&[]).0.is_nan());
        // Golden: five values, 4 degrees of freedom (t = 2.776).
        let (m, sd, ci) = mean_interval(&[0.10, 0.12, 0.09, 0.11, 0.13]);
        assert!((m - 0.11).abs() < 1e-12);
        assert!((sd - 0.015_811_388_300_841_9).abs() < 1e-12, "{sd}");
        assert!((ci - 2.776 * sd / 5f64.sqrt()).abs() < 1e-12);
        // Beyond the table, the normal value.
        let v: Vec<f64> = (0..40).map(f64::from).collect();
        let (_, sd, ci) = mean_interval(&v);
        assert!((ci - 1.96 * sd / 40f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn verdicts_need_an_interval_that_excludes_zero() {
        // Lower is better (AbsRel): an interval below 0 is a win.
        assert_eq!(Verdict::of(-0.02, 0.01, 3, true), Verdict::Better);
        assert_eq!(Verdict::of(0.02, 0.01, 3, true), Verdict::Worse);
        assert_eq!(Verdict::of(-0.02, 0.03, 3, true), Verdict::Tie);
        // Higher is better (delta1): the sides swap.
        assert_eq!(Verdict::of(-0.02, 0.01, 3, false), Verdict::Worse);
        assert_eq!(Verdict::of(0.02, 0.01, 3, false), Verdict::Better);
        // One draw decides nothing, however large the difference.
        assert_eq!(Verdict::of(-5.0, 0.0, 1, true), Verdict::Undecided);
        assert_eq!(Verdict::Undecided.words("seed"), "one seed: undecided");
        assert_eq!(Verdict::Tie.words("seed"), "tie (interval spans 0)");
    }

    #[test]
    fn paired_differences_and_relative_change_by_hand() {
        let p = paired(&[(0.9, 1.0), (1.8, 2.0), (2.7, 3.0)]);
        for (got, want) in p.per_draw.iter().zip([-0.1, -0.2, -0.3]) {
            assert!((got - want).abs() < 1e-12);
        }
        assert!((p.mean + 0.2).abs() < 1e-12);
        assert!((p.ci95 - 4.303 * 0.1 / 3f64.sqrt()).abs() < 1e-9);
        assert!((p.relative + 0.1).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_of_constant_groups_is_a_point_and_is_seeded() {
        let groups = vec![vec![0.5; 10], vec![0.1; 4]];
        let (m, (lo, hi), per) = bootstrap_mean(&groups, 7);
        assert!((m - 0.3).abs() < 1e-12);
        assert!((lo - 0.3).abs() < 1e-12 && (hi - 0.3).abs() < 1e-12);
        assert_eq!(per.len(), 2);
        let spread = vec![vec![0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0]];
        let a = bootstrap_mean(&spread, 1);
        assert_eq!(a, bootstrap_mean(&spread, 1));
        assert!((a.0 - 0.5).abs() < 1e-12);
        assert!(a.1.0 < 0.5 && a.1.1 > 0.5 && a.1.0 >= 0.0 && a.1.1 <= 1.0);
    }
}
