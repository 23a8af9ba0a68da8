//! Evaluation metrics of the field (DOMAIN.md section 6), as pure functions on plain arrays.
//!
//! - Depth over valid pixels, after median scaling or least-squares scale-and-shift alignment:
//!   AbsRel, delta1 (< 1.25), RMSE.
//! - Camera poses over all frame pairs: relative rotation error, relative translation
//!   direction error `min(theta, 180 - theta)`, RRA@k / RTA@k and AUC@30.
//! - Point clouds after Umeyama Sim(3) alignment: accuracy, completeness and their mean
//!   (Chamfer).

use nalgebra::{Matrix3, Vector3};
use spatialsv_store::geometry::{Rigid, rotation_angle_deg, vector_angle_deg};

/// Depth metrics over the valid pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthMetrics {
    /// mean(|d^ - d| / d).
    pub abs_rel: f64,
    /// Fraction with max(d^/d, d/d^) < 1.25.
    pub delta1: f64,
    /// sqrt(mean((d^ - d)^2)), metres.
    pub rmse: f64,
    /// Valid pixels counted.
    pub pixels: usize,
}

/// How predicted depth is aligned to the truth before scoring (predictions of scale-free
/// models are only defined up to scale, or scale and shift).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepthAlignment {
    /// Multiply by `median(d) / median(d^)`.
    Median,
    /// Least-squares `a * d^ + b`.
    ScaleShift,
    /// Score as predicted.
    None,
}

/// Pairs (prediction, truth) where the truth is a valid depth (finite, > 0) and the
/// prediction is finite.
fn valid_pairs(pred: &[f32], gt: &[f32]) -> Vec<(f64, f64)> {
    pred.iter()
        .zip(gt)
        .filter(|(p, g)| g.is_finite() && **g > 0.0 && p.is_finite())
        .map(|(p, g)| (f64::from(*p), f64::from(*g)))
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Depth metrics of `pred` against `gt` (same length; invalid truth is 0, negative or
/// non-finite). `None` when no pixel is valid.
pub fn depth_metrics(pred: &[f32], gt: &[f32], align: DepthAlignment) -> Option<DepthMetrics> {
    let pairs = valid_pairs(pred, gt);
    if pairs.is_empty() {
        return None;
    }
    let (a, b) = match align {
        DepthAlignment::None => (1.0, 0.0),
        DepthAlignment::Median => {
            let mp = median(pairs.iter().map(|p| p.0).collect());
            let mg = median(pairs.iter().map(|p| p.1).collect());
            (if mp.abs() > 1e-12 { mg / mp } else { 1.0 }, 0.0)
        }
        DepthAlignment::ScaleShift => {
            let n = pairs.len() as f64;
            let (sp, sg) = pairs
                .iter()
                .fold((0.0, 0.0), |(x, y), (p, g)| (x + p, y + g));
            let (mp, mg) = (sp / n, sg / n);
            let (cov, var) = pairs.iter().fold((0.0, 0.0), |(c, v), (p, g)| {
                (c + (p - mp) * (g - mg), v + (p - mp) * (p - mp))
            });
            let a = if var > 1e-18 { cov / var } else { 1.0 };
            (a, mg - a * mp)
        }
    };
    let (mut rel, mut good, mut sq) = (0.0, 0usize, 0.0);
    for (p, g) in &pairs {
        let p = a * p + b;
        rel += (p - g).abs() / g;
        sq += (p - g) * (p - g);
        let ratio = if p > 0.0 {
            (p / g).max(g / p)
        } else {
            f64::INFINITY
        };
        if ratio < 1.25 {
            good += 1;
        }
    }
    let n = pairs.len() as f64;
    Some(DepthMetrics {
        abs_rel: rel / n,
        delta1: good as f64 / n,
        rmse: (sq / n).sqrt(),
        pixels: pairs.len(),
    })
}

/// Camera metrics over all ordered pairs i < j.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoseMetrics {
    /// Fraction of pairs with relative rotation error under 15 degrees.
    pub rra15: f64,
    /// Fraction of pairs with relative translation direction error under 15 degrees.
    pub rta15: f64,
    /// Mean over thresholds 1..=30 degrees of the fraction with max(rot, trans) error under it.
    pub auc30: f64,
    /// Pairs scored.
    pub pairs: usize,
}

/// Rotation and translation-direction errors (degrees) of every pair i < j.
pub fn pair_errors(pred: &[Rigid], gt: &[Rigid]) -> Vec<(f64, f64)> {
    let n = pred.len().min(gt.len());
    let mut out = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            // Relative motion i -> j: camera_i_from_camera_j = inv(T_i) T_j.
            let rel = |p: &[Rigid]| p[i].inverse().compose(&p[j]);
            let (rp, rg) = (rel(pred), rel(gt));
            let rot = rotation_angle_deg(&(rp.rotation.transpose() * rg.rotation));
            // A zero-length motion has no direction: count it as fully wrong.
            let trans = vector_angle_deg(&rp.translation, &rg.translation, 1e-12)
                .map_or(90.0, |theta| theta.min(180.0 - theta));
            out.push((rot, trans));
        }
    }
    out
}

/// RRA@15, RTA@15 and AUC@30 over all frame pairs. `None` with fewer than two frames.
pub fn pose_metrics(pred: &[Rigid], gt: &[Rigid]) -> Option<PoseMetrics> {
    let errs = pair_errors(pred, gt);
    if errs.is_empty() {
        return None;
    }
    let n = errs.len() as f64;
    let frac = |f: &dyn Fn(&(f64, f64)) -> bool| errs.iter().filter(|e| f(e)).count() as f64 / n;
    let auc = (1..=30)
        .map(|t| frac(&|e: &(f64, f64)| e.0.max(e.1) < f64::from(t)))
        .sum::<f64>()
        / 30.0;
    Some(PoseMetrics {
        rra15: frac(&|e| e.0 < 15.0),
        rta15: frac(&|e| e.1 < 15.0),
        auc30: auc,
        pairs: errs.len(),
    })
}

/// A similarity transform `y = s R x + t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sim3 {
    /// Scale.
    pub scale: f64,
    /// Rotation.
    pub rotation: Matrix3<f64>,
    /// Translation.
    pub translation: Vector3<f64>,
}

impl Sim3 {
    /// Applies the transform.
    pub fn apply(&self, x: &Vector3<f64>) -> Vector3<f64> {
        self.scale * (self.rotation * x) + self.translation
    }
}

/// Umeyama (1991): the least-squares similarity taking `src` onto `dst` (corresponding
/// points). `None` with fewer than 3 points or a degenerate source.
pub fn umeyama(src: &[Vector3<f64>], dst: &[Vector3<f64>]) -> Option<Sim3> {
    let n = src.len().min(dst.len());
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let mu_s = src[..n].iter().sum::<Vector3<f64>>() / nf;
    let mu_d = dst[..n].iter().sum::<Vector3<f64>>() / nf;
    let mut cov = Matrix3::zeros();
    let mut var_s = 0.0;
    for (s, d) in src[..n].iter().zip(&dst[..n]) {
        let (a, b) = (s - mu_s, d - mu_d);
        cov += b * a.transpose();
        var_s += a.norm_squared();
    }
    cov /= nf;
    var_s /= nf;
    if var_s < 1e-18 {
        return None;
    }
    let svd = cov.svd(true, true);
    let (u, v_t) = (svd.u?, svd.v_t?);
    let mut s_diag = Matrix3::identity();
    if (u * v_t).determinant() < 0.0 {
        s_diag[(2, 2)] = -1.0;
    }
    let rotation = u * s_diag * v_t;
    let d = svd.singular_values;
    let trace_ds = d[0] * s_diag[(0, 0)] + d[1] * s_diag[(1, 1)] + d[2] * s_diag[(2, 2)];
    let scale = trace_ds / var_s;
    let translation = mu_d - scale * (rotation * mu_s);
    Some(Sim3 {
        scale,
        rotation,
        translation,
    })
}

/// Point-cloud distances, metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChamferMetrics {
    /// Mean distance from each predicted point to the nearest true point.
    pub accuracy: f64,
    /// Mean distance from each true point to the nearest predicted point.
    pub completeness: f64,
    /// (accuracy + completeness) / 2.
    pub overall: f64,
}

fn mean_nearest(from: &[Vector3<f64>], to: &[Vector3<f64>]) -> f64 {
    use rayon::prelude::*;
    let total: f64 = from
        .par_iter()
        .map(|p| {
            to.iter()
                .map(|q| (p - q).norm_squared())
                .fold(f64::INFINITY, f64::min)
                .sqrt()
        })
        .sum();
    total / from.len() as f64
}

/// Chamfer metrics between point sets (brute-force nearest neighbours, in parallel; callers
/// subsample large clouds). `None` if either set is empty.
pub fn chamfer(pred: &[Vector3<f64>], gt: &[Vector3<f64>]) -> Option<ChamferMetrics> {
    if pred.is_empty() || gt.is_empty() {
        return None;
    }
    let accuracy = mean_nearest(pred, gt);
    let completeness = mean_nearest(gt, pred);
    Some(ChamferMetrics {
        accuracy,
        completeness,
        overall: 0.5 * (accuracy + completeness),
    })
}

#[cfg(test)]
mod tests {
    use nalgebra::Rotation3;

    use super::*;

    #[test]
    fn depth_metrics_by_hand() {
        // Truth 1, 2, 4 (and one invalid pixel); prediction 1.1, 2, 2.
        let gt = [1.0, 2.0, 4.0, 0.0];
        let pred = [1.1, 2.0, 2.0, 9.0];
        let m = depth_metrics(&pred, &gt, DepthAlignment::None).unwrap();
        assert_eq!(m.pixels, 3);
        // AbsRel = (0.1/1 + 0 + 2/4) / 3 = 0.2
        assert!((m.abs_rel - 0.2).abs() < 1e-6, "{m:?}");
        // delta1: 1.1 ok, 2 ok, 2 vs 4 (ratio 2) not: 2/3
        assert!((m.delta1 - 2.0 / 3.0).abs() < 1e-12);
        // RMSE = sqrt((0.01 + 0 + 4) / 3)
        assert!((m.rmse - (4.01f64 / 3.0).sqrt()).abs() < 1e-6);
    }

    #[test]
    fn alignment_removes_scale_and_shift() {
        let gt: Vec<f32> = (1..50).map(|i| i as f32 * 0.1).collect();
        let scaled: Vec<f32> = gt.iter().map(|g| 3.0 * g).collect();
        let m = depth_metrics(&scaled, &gt, DepthAlignment::Median).unwrap();
        assert!(m.abs_rel < 1e-6 && m.delta1 == 1.0);
        let affine: Vec<f32> = gt.iter().map(|g| 0.5 * g + 2.0).collect();
        assert!(
            depth_metrics(&affine, &gt, DepthAlignment::Median)
                .unwrap()
                .abs_rel
                > 0.1
        );
        let m = depth_metrics(&affine, &gt, DepthAlignment::ScaleShift).unwrap();
        assert!(m.abs_rel < 1e-5 && m.rmse < 1e-5, "{m:?}");
        assert!(depth_metrics(&[1.0], &[0.0], DepthAlignment::Median).is_none());
    }

    fn yaw_pose(deg: f64, t: [f64; 3]) -> Rigid {
        Rigid::from_row_major(&spatialsv_store::geometry::from_axis_angle_deg(
            [0.0, 1.0, 0.0],
            deg,
            t,
        ))
    }

    #[test]
    fn perfect_poses_score_one_and_errors_are_measured_by_hand() {
        let gt = vec![
            yaw_pose(0.0, [0.0, 0.0, 0.0]),
            yaw_pose(10.0, [1.0, 0.0, 0.0]),
            yaw_pose(20.0, [2.0, 0.0, 1.0]),
        ];
        let m = pose_metrics(&gt, &gt).unwrap();
        assert_eq!((m.rra15, m.rta15, m.auc30, m.pairs), (1.0, 1.0, 1.0, 3));
        // Predict the second camera turned 20 degrees more: pairs (0,1) and (1,2) get a
        // 20-degree rotation error, (0,2) none.
        let mut pred = gt.clone();
        pred[1] = yaw_pose(30.0, [1.0, 0.0, 0.0]);
        let errs = pair_errors(&pred, &gt);
        assert!(
            (errs[0].0 - 20.0).abs() < 1e-9
                && errs[1].0.abs() < 1e-6
                && (errs[2].0 - 20.0).abs() < 1e-9,
            "{errs:?}"
        );
        let m = pose_metrics(&pred, &gt).unwrap();
        assert!((m.rra15 - 1.0 / 3.0).abs() < 1e-12);
        // A scaled trajectory has the same directions: translation metrics ignore scale.
        let scaled: Vec<Rigid> = gt
            .iter()
            .map(|p| Rigid {
                translation: 5.0 * p.translation,
                ..*p
            })
            .collect();
        assert_eq!(pose_metrics(&scaled, &gt).unwrap().rta15, 1.0);
        // Identity motion: every direction undefined, counted as wrong.
        let still: Vec<Rigid> = gt.iter().map(|_| yaw_pose(0.0, [0.0; 3])).collect();
        let m = pose_metrics(&still, &gt).unwrap();
        assert_eq!(m.rta15, 0.0);
        assert!(m.auc30 < 0.5);
    }

    #[test]
    fn umeyama_recovers_a_similarity() {
        let r = Rotation3::from_euler_angles(0.3, -0.2, 1.1).into_inner();
        let truth = Sim3 {
            scale: 2.5,
            rotation: r,
            translation: Vector3::new(1.0, -2.0, 0.5),
        };
        let src: Vec<Vector3<f64>> = (0..20)
            .map(|i| {
                Vector3::new(
                    (i as f64 * 0.7).sin(),
                    (i as f64 * 1.3).cos(),
                    i as f64 * 0.1,
                )
            })
            .collect();
        let dst: Vec<Vector3<f64>> = src.iter().map(|p| truth.apply(p)).collect();
        let est = umeyama(&src, &dst).unwrap();
        assert!((est.scale - 2.5).abs() < 1e-9);
        assert!((est.rotation - r).norm() < 1e-9);
        assert!((est.translation - truth.translation).norm() < 1e-9);
        assert!(umeyama(&src[..2], &dst[..2]).is_none());
    }

    #[test]
    fn chamfer_by_hand() {
        let a = vec![Vector3::new(0.0, 0.0, 0.0), Vector3::new(1.0, 0.0, 0.0)];
        let b = vec![
            Vector3::new(0.0, 0.0, 0.0),
            Vector3::new(1.0, 0.0, 0.0),
            Vector3::new(1.0, 2.0, 0.0),
        ];
        let m = chamfer(&a, &b).unwrap();
        assert_eq!(m.accuracy, 0.0);
        // Completeness: (0 + 0 + 2) / 3.
        assert!((m.completeness - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.overall - 1.0 / 3.0).abs() < 1e-12);
        assert!(chamfer(&[], &b).is_none());
    }
}
