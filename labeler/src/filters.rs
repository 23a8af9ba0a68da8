//! The confidence filters: pure functions of the teacher's outputs and named thresholds
//! (`configs/label.toml`), each tested on constructed cases without a model.
//!
//! - [`confidence_keep`]: per-pixel confidence, absolute or per-image percentile.
//! - [`geometric_agreement`] / [`geometric_keep`]: multi-view consistency inside a window
//!   (MVSNet-style fusion: reproject into another view and back).
//! - [`cycle_errors`]: pose cycles around frame triplets must close.
//! - [`accept`]: frame acceptance.

use spatialsv_store::geometry::{
    Intrinsics, Mat4, Rigid, invert_rigid, mul, transform_point, translation, vector_angle_deg,
};

use spatialsv_schemas::RejectKind;

use crate::config::{AcceptanceFilter, ConfidenceFilter, ConfidenceMode, GeometricFilter};

/// Keeps the pixels whose confidence passes `f`.
pub fn confidence_keep(conf: &[f32], f: &ConfidenceFilter) -> Vec<bool> {
    let threshold = match f.mode {
        ConfidenceMode::Absolute => f.threshold,
        ConfidenceMode::Percentile => {
            let mut sorted: Vec<f32> = conf.iter().copied().filter(|c| c.is_finite()).collect();
            if sorted.is_empty() {
                return vec![false; conf.len()];
            }
            sorted.sort_by(f32::total_cmp);
            let at = ((f.percentile / 100.0) * sorted.len() as f32).floor() as usize;
            sorted[at.min(sorted.len() - 1)]
        }
    };
    conf.iter()
        .map(|c| c.is_finite() && *c >= threshold)
        .collect()
}

/// One view of a teacher window: z-depth `[h, w]` (0 = none), intrinsics (fx, fy, cx, cy)
/// and camera-to-reference pose, all in the teacher's units.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// Depth, row-major.
    pub depth: &'a [f32],
    /// Intrinsics in pixels of the map.
    pub k: Intrinsics,
    /// Camera-to-reference, row-major.
    pub pose: Mat4,
}

/// For every pixel of every view, how many other views agree with its depth: the pixel is
/// lifted with its depth, projected into the other view, lifted there with that view's depth
/// (nearest pixel) and projected back; the view agrees when the round trip lands within
/// `max_reprojection_px` of the pixel centre and the returned depth is within
/// `max_relative_depth` of the original.
pub fn geometric_agreement(
    views: &[View<'_>],
    w: usize,
    h: usize,
    f: &GeometricFilter,
) -> Vec<Vec<u8>> {
    let inverse: Vec<Mat4> = views.iter().map(|v| invert_rigid(&v.pose)).collect();
    views
        .iter()
        .enumerate()
        .map(|(r, rv)| {
            let mut count = vec![0u8; w * h];
            for (s, sv) in views.iter().enumerate() {
                if s == r {
                    continue;
                }
                let r_to_s = mul(&inverse[s], &rv.pose);
                let s_to_r = mul(&inverse[r], &sv.pose);
                for y in 0..h {
                    for x in 0..w {
                        let i = y * w + x;
                        let d = f64::from(rv.depth[i]);
                        if d <= 0.0 || !d.is_finite() {
                            continue;
                        }
                        let (u, v) = (x as f64 + 0.5, y as f64 + 0.5);
                        let ps = transform_point(&r_to_s, rv.k.unproject(u, v, d));
                        let Some((qu, qv)) = sv.k.project(ps) else {
                            continue;
                        };
                        let (qx, qy) = (qu.floor(), qv.floor());
                        if qx < 0.0 || qy < 0.0 || qx >= w as f64 || qy >= h as f64 {
                            continue;
                        }
                        let ds = f64::from(sv.depth[qy as usize * w + qx as usize]);
                        if ds <= 0.0 || !ds.is_finite() {
                            continue;
                        }
                        let back = transform_point(&s_to_r, sv.k.unproject(qu, qv, ds));
                        let Some((bu, bv)) = rv.k.project(back) else {
                            continue;
                        };
                        let reproj = ((bu - u).powi(2) + (bv - v).powi(2)).sqrt();
                        let rel = (back[2] - d).abs() / d;
                        if reproj < f.max_reprojection_px && rel < f.max_relative_depth {
                            count[i] = count[i].saturating_add(1);
                        }
                    }
                }
            }
            count
        })
        .collect()
}

/// The pixels of every view that at least `needed` other views agree with.
pub fn geometric_keep(agreement: &[Vec<u8>], needed: usize) -> Vec<Vec<bool>> {
    agreement
        .iter()
        .map(|c| c.iter().map(|n| usize::from(*n) >= needed).collect())
        .collect()
}

/// Rotation angle of a row-major rigid transform, degrees.
fn rotation_deg(m: &Mat4) -> f64 {
    Rigid::from_row_major(m).rotation_angle_deg()
}

/// Angle between two translations of a cycle, degrees; 0 when either is too short to have a
/// direction (a camera that did not move: nothing to disagree about).
fn direction_deg(a: &Mat4, b: &Mat4) -> f64 {
    vector_angle_deg(&translation(a), &translation(b), 1e-4).unwrap_or(0.0)
}

/// Closure errors of pose cycles. `runs[r][j]` is frame `j`'s camera-to-camera-`r` pose as
/// predicted by the teacher run with frame `r` as its reference, so every edge of a cycle
/// comes from a different run. For each frame: the worst (rotation, translation-direction)
/// error, in degrees, over the cycles through it: every triplet `a < b < c`
/// (`T_ab T_bc T_ca` against the identity; direct `t_ac` against the composed `T_ab T_bc`),
/// or the pair for 2-frame windows. A single frame has no cycle and gets (0, 0).
pub fn cycle_errors(runs: &[Vec<Mat4>]) -> Vec<(f64, f64)> {
    let v = runs.len();
    let mut worst = vec![(0.0f64, 0.0f64); v];
    let mut note = |frames: &[usize], rot: f64, dir: f64| {
        for &f in frames {
            worst[f].0 = worst[f].0.max(rot);
            worst[f].1 = worst[f].1.max(dir);
        }
    };
    if v == 2 {
        let cycle = mul(&runs[0][1], &runs[1][0]);
        let back = invert_rigid(&runs[1][0]);
        note(
            &[0, 1],
            rotation_deg(&cycle),
            direction_deg(&runs[0][1], &back),
        );
    }
    for a in 0..v {
        for b in a + 1..v {
            for c in b + 1..v {
                let ab_bc = mul(&runs[a][b], &runs[b][c]);
                let cycle = mul(&ab_bc, &runs[c][a]);
                note(
                    &[a, b, c],
                    rotation_deg(&cycle),
                    direction_deg(&runs[a][c], &ab_bc),
                );
            }
        }
    }
    worst
}

/// Whether a frame is accepted: enough of its pixels survive (and, with `require_cameras`,
/// its pose cycles close). The error says why not.
pub fn accept(
    kept: usize,
    total: usize,
    camera_consistent: bool,
    f: &AcceptanceFilter,
) -> Result<(), Rejection> {
    let fraction = kept as f64 / total.max(1) as f64;
    if f.require_cameras && !camera_consistent {
        return Err(Rejection {
            kind: RejectKind::Camera,
            detail: "pose cycles do not close".into(),
        });
    }
    if fraction < f.min_kept_fraction {
        return Err(Rejection {
            kind: RejectKind::Pixels,
            detail: format!(
                "kept {:.1}% < {:.1}%",
                100.0 * fraction,
                100.0 * f.min_kept_fraction
            ),
        });
    }
    Ok(())
}

/// Why a frame was rejected: its category and the detail in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The category (`pseudo_labels.reject_kind`).
    pub kind: RejectKind,
    /// The detail, with the numbers (`pseudo_labels.reject_reason`).
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use spatialsv_store::geometry::IDENTITY;

    fn pose(yaw_deg: f64, t: [f64; 3]) -> Mat4 {
        spatialsv_store::geometry::from_axis_angle_deg([0.0, 1.0, 0.0], yaw_deg, t)
    }

    #[test]
    fn confidence_absolute_and_percentile() {
        let conf = [1.0f32, 5.0, 2.0, 3.0, 4.0, f32::NAN, 1.5, 2.5, 3.5, 4.5];
        let abs = ConfidenceFilter {
            mode: ConfidenceMode::Absolute,
            threshold: 3.0,
            percentile: 0.0,
        };
        let keep = confidence_keep(&conf, &abs);
        assert_eq!(
            keep,
            [
                false, true, false, true, true, false, false, false, true, true
            ]
        );
        let pct = ConfidenceFilter {
            mode: ConfidenceMode::Percentile,
            threshold: 0.0,
            percentile: 30.0,
        };
        // 9 finite values; floor(0.3 * 9) = 2: the two least confident (1.0, 1.5) go.
        let keep = confidence_keep(&conf, &pct);
        assert_eq!(keep.iter().filter(|k| **k).count(), 7);
        assert!(!keep[0] && !keep[6] && !keep[5]);
        assert!(keep[2] && keep[1]);
    }

    /// A fronto-parallel wall at z = 2 in the reference camera, seen by cameras that move
    /// sideways and turn slightly.
    fn wall_views(w: usize, h: usize, poses: &[Mat4]) -> (Vec<Vec<f32>>, Intrinsics) {
        let k = Intrinsics::from_k([w as f64, w as f64, w as f64 / 2.0, h as f64 / 2.0]);
        let depths = poses
            .iter()
            .map(|p| {
                let mut d = vec![0.0f32; w * h];
                for y in 0..h {
                    for x in 0..w {
                        // Ray of the pixel in the reference frame; intersect with z = 2.
                        let dir = k.unproject(x as f64 + 0.5, y as f64 + 0.5, 1.0);
                        let o = translation(p);
                        let rd = [0, 1, 2].map(|r| {
                            p[r * 4] * dir[0] + p[r * 4 + 1] * dir[1] + p[r * 4 + 2] * dir[2]
                        });
                        let t = (2.0 - o[2]) / rd[2];
                        d[y * w + x] = t as f32; // z in the camera = t for unit-z rays
                    }
                }
                d
            })
            .collect();
        (depths, k)
    }

    #[test]
    fn geometric_filter_keeps_consistent_pixels_and_removes_a_wrong_one() {
        let (w, h) = (32, 24);
        let poses = [
            IDENTITY,
            pose(2.0, [0.05, 0.0, 0.0]),
            pose(-3.0, [-0.04, 0.01, 0.02]),
        ];
        let (mut depths, k) = wall_views(w, h, &poses);
        let wrong = 12 * w + 16;
        depths[0][wrong] *= 1.1; // 10% off: no other view can agree
        let views: Vec<View<'_>> = depths
            .iter()
            .zip(&poses)
            .map(|(d, p)| View {
                depth: d,
                k,
                pose: *p,
            })
            .collect();
        let f = GeometricFilter::default();
        let agree = geometric_agreement(&views, w, h, &f);
        let keep = geometric_keep(&agree, f.views_needed(3));
        assert!(!keep[0][wrong], "the corrupted pixel must go");
        assert_eq!(agree[0][wrong], 0);
        // A central pixel of the reference, seen by both other views, is kept.
        assert!(keep[0][12 * w + 10]);
        assert_eq!(agree[0][12 * w + 10], 2);
        // Most pixels of every view are seen consistently (borders leave the other views).
        for k in &keep {
            let n = k.iter().filter(|b| **b).count();
            assert!(n > w * h * 3 / 4, "{n} of {}", w * h);
        }
        // A camera believed 10 cm closer to the wall than it was breaks agreement.
        let bad = [IDENTITY, pose(2.0, [0.05, 0.0, 0.1]), poses[2]];
        let shifted: Vec<View<'_>> = views
            .iter()
            .zip(&bad)
            .map(|(v, p)| View { pose: *p, ..*v })
            .collect();
        let agree = geometric_agreement(&shifted, w, h, &f);
        let with_one = agree[1].iter().filter(|n| **n >= 1).count();
        assert!(with_one < w * h / 10, "{with_one}");
    }

    #[test]
    fn pose_cycles_close_for_consistent_runs_and_flag_a_bad_edge() {
        let abs = [
            IDENTITY,
            pose(5.0, [0.2, 0.0, 0.1]),
            pose(12.0, [0.5, 0.05, 0.0]),
        ];
        // Run r: every camera relative to camera r.
        let runs: Vec<Vec<Mat4>> = (0..3)
            .map(|r| {
                let inv = invert_rigid(&abs[r]);
                abs.iter().map(|p| mul(&inv, p)).collect()
            })
            .collect();
        let errs = cycle_errors(&runs);
        for (rot, dir) in &errs {
            assert!(*rot < 1e-6 && *dir < 1e-6, "{rot} {dir}");
        }
        // Run 1 believes camera 2 turned 10 degrees more: every frame's triplet fails.
        let mut bad = runs.clone();
        bad[1][2] = mul(&bad[1][2], &pose(10.0, [0.0; 3]));
        let errs = cycle_errors(&bad);
        assert!((errs[0].0 - 10.0).abs() < 1e-6, "{:?}", errs[0]);
        // The pair case.
        let pair = vec![
            vec![IDENTITY, abs[1]],
            vec![invert_rigid(&abs[1]), IDENTITY],
        ];
        assert!(cycle_errors(&pair)[0].0 < 1e-9);
        let mut pair_bad = pair.clone();
        pair_bad[1][0] = mul(&pair_bad[1][0], &pose(7.0, [0.0; 3]));
        assert!((cycle_errors(&pair_bad)[1].0 - 7.0).abs() < 1e-6);
        assert_eq!(cycle_errors(&[vec![IDENTITY]]), vec![(0.0, 0.0)]);
    }

    #[test]
    fn acceptance_needs_cameras_and_pixels() {
        let mut f = AcceptanceFilter {
            min_kept_fraction: 0.5,
            require_cameras: true,
        };
        assert!(accept(60, 100, true, &f).is_ok());
        let low = accept(40, 100, true, &f).unwrap_err();
        assert_eq!(low.kind, RejectKind::Pixels);
        assert!(low.detail.contains("kept 40.0%"), "{low:?}");
        assert_eq!(
            accept(90, 100, false, &f).unwrap_err().kind,
            RejectKind::Camera
        );
        f.require_cameras = false;
        assert!(accept(90, 100, false, &f).is_ok());
    }
}
