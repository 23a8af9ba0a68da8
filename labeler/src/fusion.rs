//! Labels better than one forward pass: many teacher passes over a video fused into one depth
//! map and one camera per frame. Pure functions, tested on constructed cases without a model.
//!
//! - [`sliding_windows`]: teacher windows at every start position and several frame gaps, so
//!   each frame is seen by many windows, at every position inside them.
//! - [`fuse_depth`]: each pass has its own scale (the teacher's depth is only known up to
//!   one per window); the scales are aligned by least squares in log depth over the frames
//!   passes share (on per-frame medians), then every pixel takes the median over the passes that saw
//!   it, and the spread across them (a scaled median absolute deviation, in log depth, so
//!   relative) becomes its confidence.
//! - [`fuse_poses`]: relative poses from every pass that contains a pair of frames, in the
//!   common scale; rotations averaged (chordal L2, iterated projections onto SO(3)), then
//!   camera centres by least squares over the same edges (Gauss-Seidel from a spanning-tree
//!   start). Each frame's residuals against its edges say how far the passes disagree.

use nalgebra::{Matrix3, Vector3};
use rayon::prelude::*;
use spatialsv_store::geometry::{Rigid, rotation_angle_deg, vector_angle_deg};

/// Teacher windows of `len` frames over `n` frames: for every gap in `gaps`, a window
/// `[s, s + g, ..., s + (len - 1) g]` at every start `s` that fits. Gap 1 is always included,
/// so every frame is in at least one window; a sequence shorter than `len` is one window of
/// all its frames. Windows are in capture order and never longer than `len`.
pub fn sliding_windows(n: usize, len: usize, gaps: &[usize]) -> Vec<Vec<usize>> {
    let len = len.max(1);
    if n == 0 {
        return Vec::new();
    }
    if n < len {
        return vec![(0..n).collect()];
    }
    let mut gs: Vec<usize> = gaps.iter().copied().filter(|g| *g > 0).collect();
    gs.push(1);
    gs.sort_unstable();
    gs.dedup();
    let mut out = Vec::new();
    for g in gs {
        let span = (len - 1) * g;
        if span >= n {
            continue;
        }
        for s in 0..n - span {
            out.push((0..len).map(|k| s + k * g).collect());
        }
    }
    out
}

/// One teacher pass over a window: the frames it saw (indices into the fused sequence) and
/// its depth for each, `[h * w]` per frame, in the pass's own scale (0 or non-finite = none).
#[derive(Debug, Clone)]
pub struct DepthPass {
    /// Frames of the sequence, in window order.
    pub frames: Vec<usize>,
    /// Depth per frame.
    pub depth: Vec<Vec<f32>>,
}

/// The fused depth of a sequence.
#[derive(Debug, Clone)]
pub struct FusedDepth {
    /// Per frame, `[h * w]`: the median over passes (0 where no pass had a valid value).
    pub depth: Vec<Vec<f32>>,
    /// Per frame and pixel: the spread across passes, 1.4826 x the median absolute deviation
    /// of log depth (about a relative standard deviation); infinite where fewer than two
    /// passes saw the pixel.
    pub spread: Vec<Vec<f32>>,
    /// Passes per frame.
    pub passes: Vec<usize>,
    /// Each pass's multiplicative scale into the common one.
    pub scales: Vec<f64>,
}

/// The median of a non-empty slice (the mean of the two middle values for an even count);
/// reorders it.
fn median_in_place(v: &mut [f32]) -> f32 {
    let mid = v.len() / 2;
    let odd = v.len() % 2 == 1;
    let (lo, m, _) = v.select_nth_unstable_by(mid, f32::total_cmp);
    let m = *m;
    if odd || lo.is_empty() {
        return m;
    }
    let below = lo.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    0.5 * (below + m)
}

/// Fuses the passes over a sequence of `n` frames of `hw` pixels (see the module doc).
///
/// Scales: with `m[p][f]` the median log depth of pass `p` on frame `f`, the log scales `s`
/// and frame levels `c` minimise `sum (m[p][f] + s[p] - c[f])^2` over every frame of every
/// pass (each pass's `s` eliminated, the `n x n` normal equations in `c` solved directly,
/// frame 0's level fixing the gauge). Per-frame medians make this robust to pixels a pass
/// gets wrong; exact when passes differ only by scale.
pub fn fuse_depth(passes: &[DepthPass], n: usize, hw: usize) -> FusedDepth {
    let ok = |d: f32| d.is_finite() && d > 0.0;
    // Median log depth of every (pass, slot); NaN where the pass has no valid pixel there.
    let m: Vec<Vec<f64>> = passes
        .iter()
        .map(|p| {
            p.depth
                .iter()
                .map(|d| {
                    let mut logs: Vec<f32> =
                        d.iter().copied().filter(|d| ok(*d)).map(f32::ln).collect();
                    if logs.is_empty() {
                        f64::NAN
                    } else {
                        f64::from(median_in_place(&mut logs))
                    }
                })
                .collect()
        })
        .collect();
    let members = |p: usize| -> Vec<(usize, f64)> {
        passes[p]
            .frames
            .iter()
            .zip(&m[p])
            .filter(|(f, v)| **f < n && v.is_finite())
            .map(|(f, v)| (*f, *v))
            .collect()
    };
    let mut a = nalgebra::DMatrix::<f64>::zeros(n, n);
    let mut b = nalgebra::DVector::<f64>::zeros(n);
    for p in 0..passes.len() {
        let mem = members(p);
        let k = mem.len() as f64;
        if mem.len() < 2 {
            continue;
        }
        let mean_m = mem.iter().map(|x| x.1).sum::<f64>() / k;
        // Centering matrix C = I - 11^T / k on this pass's frames.
        for (i, (fi, mi)) in mem.iter().enumerate() {
            for (j, (fj, _)) in mem.iter().enumerate() {
                a[(*fi, *fj)] += if i == j { 1.0 } else { 0.0 } - 1.0 / k;
            }
            b[*fi] += mi - mean_m;
        }
    }
    // Gauge: frame 0's level is 0 (and frames no pass connects stay at 0).
    for f in 0..n {
        a[(f, f)] += if f == 0 { 1.0 } else { 1e-9 };
    }
    let c = a
        .clone()
        .cholesky()
        .map(|ch| ch.solve(&b))
        .or_else(|| a.lu().solve(&b))
        .unwrap_or_else(|| nalgebra::DVector::zeros(n));
    let log_scale: Vec<f32> = (0..passes.len())
        .map(|p| {
            let mem = members(p);
            if mem.is_empty() {
                return 0.0;
            }
            (mem.iter().map(|(f, v)| c[*f] - v).sum::<f64>() / mem.len() as f64) as f32
        })
        .collect();
    // Which (pass, slot) saw each frame.
    let mut seen_by: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (p, pass) in passes.iter().enumerate() {
        for (slot, f) in pass.frames.iter().enumerate() {
            if *f < n {
                seen_by[*f].push((p, slot));
            }
        }
    }
    let per_frame: Vec<(Vec<f32>, Vec<f32>)> = (0..n)
        .into_par_iter()
        .map(|f| {
            let mut fused = vec![f32::NAN; hw];
            let mut spread = vec![f32::INFINITY; hw];
            let mut vals: Vec<f32> = Vec::new();
            for i in 0..hw {
                vals.clear();
                for &(p, slot) in &seen_by[f] {
                    let d = passes[p].depth[slot][i];
                    if ok(d) {
                        vals.push(d.ln() + log_scale[p]);
                    }
                }
                if vals.is_empty() {
                    continue;
                }
                let m = median_in_place(&mut vals);
                fused[i] = m;
                if vals.len() >= 2 {
                    for v in vals.iter_mut() {
                        *v = (*v - m).abs();
                    }
                    spread[i] = 1.4826 * median_in_place(&mut vals);
                }
            }
            (fused, spread)
        })
        .collect();
    let (fused, spread): (Vec<Vec<f32>>, Vec<Vec<f32>>) = per_frame.into_iter().unzip();
    FusedDepth {
        depth: fused
            .into_iter()
            .map(|f| {
                f.into_iter()
                    .map(|l| if l.is_finite() { l.exp() } else { 0.0 })
                    .collect()
            })
            .collect(),
        spread,
        passes: seen_by.iter().map(Vec::len).collect(),
        scales: log_scale.iter().map(|s| f64::from(*s).exp()).collect(),
    }
}

/// One pass's cameras: for each of its frames, camera-to-window pose in the pass's own
/// units, and the pass's scale into the common units (from [`fuse_depth`]).
#[derive(Debug, Clone)]
pub struct PosePass {
    /// Frames of the sequence, in window order.
    pub frames: Vec<usize>,
    /// Camera-to-window pose per frame.
    pub poses: Vec<Rigid>,
    /// Multiplies the translations.
    pub scale: f64,
}

/// The fused cameras of a sequence.
#[derive(Debug, Clone)]
pub struct FusedPoses {
    /// Camera-to-first-frame pose per frame, common units.
    pub poses: Vec<Rigid>,
    /// Per frame: median angle (degrees) between its fused rotation and what its edges
    /// predict; 0 for a frame without edges.
    pub rotation_residual_deg: Vec<f64>,
    /// Per frame: median angle (degrees) between the fused and the predicted direction of
    /// motion from each neighbour (edges with motion only).
    pub direction_residual_deg: Vec<f64>,
}

/// A relative-pose measurement: frame `b` in frame `a`'s camera, common units.
#[derive(Debug, Clone, Copy)]
struct Edge {
    a: usize,
    b: usize,
    rel: Rigid,
}

/// Nearest rotation (Frobenius) to `m`.
fn project_so3(m: &Matrix3<f64>) -> Matrix3<f64> {
    let svd = m.svd(true, true);
    let (Some(u), Some(vt)) = (svd.u, svd.v_t) else {
        return Matrix3::identity();
    };
    let mut s = Matrix3::identity();
    if (u * vt).determinant() < 0.0 {
        s[(2, 2)] = -1.0;
    }
    u * s * vt
}

/// Fuses the passes' cameras over a sequence of `n` frames (see the module doc).
pub fn fuse_poses(passes: &[PosePass], n: usize) -> FusedPoses {
    let mut edges = Vec::new();
    for p in passes {
        for i in 0..p.frames.len() {
            for j in 0..p.frames.len() {
                if i == j || p.frames[i] >= n || p.frames[j] >= n {
                    continue;
                }
                let mut rel = p.poses[i].inverse().compose(&p.poses[j]);
                rel.translation *= p.scale;
                edges.push(Edge {
                    a: p.frames[i],
                    b: p.frames[j],
                    rel,
                });
            }
        }
    }
    let mut incident: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (e, edge) in edges.iter().enumerate() {
        incident[edge.a].push(e);
        incident[edge.b].push(e);
    }
    // Spanning-tree start: breadth first from frame 0 (a frame no pass connects stays at
    // the identity, with no residual).
    let mut pose: Vec<Option<Rigid>> = vec![None; n];
    if n > 0 {
        pose[0] = Some(Rigid::identity());
    }
    let mut queue = std::collections::VecDeque::from([0usize]);
    while let Some(f) = queue.pop_front() {
        let Some(pf) = pose.get(f).copied().flatten() else {
            continue;
        };
        for &e in &incident[f] {
            let edge = edges[e];
            if edge.a == f && pose[edge.b].is_none() {
                pose[edge.b] = Some(pf.compose(&edge.rel));
                queue.push_back(edge.b);
            }
        }
    }
    let start: Vec<Rigid> = pose
        .into_iter()
        .map(|p| p.unwrap_or_else(Rigid::identity))
        .collect();
    let mut rot: Vec<Matrix3<f64>> = start.iter().map(|p| p.rotation).collect();
    let mut centre: Vec<Vector3<f64>> = start.iter().map(|p| p.translation).collect();
    // Rotation averaging: R_b ~ R_a R_ab for every edge; frame 0 fixes the gauge.
    for _ in 0..20 {
        for f in 1..n {
            let mut m = Matrix3::zeros();
            for &e in &incident[f] {
                let edge = edges[e];
                if edge.b == f {
                    m += rot[edge.a] * edge.rel.rotation;
                } else {
                    m += rot[edge.b] * edge.rel.rotation.transpose();
                }
            }
            if !incident[f].is_empty() {
                rot[f] = project_so3(&m);
            }
        }
    }
    // Centres: c_b - c_a ~ R_a t_ab.
    for _ in 0..200 {
        for f in 1..n {
            let mut sum = Vector3::zeros();
            for &e in &incident[f] {
                let edge = edges[e];
                let step = rot[edge.a] * edge.rel.translation;
                sum += if edge.b == f {
                    centre[edge.a] + step
                } else {
                    centre[edge.b] - step
                };
            }
            if !incident[f].is_empty() {
                centre[f] = sum / incident[f].len() as f64;
            }
        }
    }
    let median = |mut v: Vec<f64>| -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut rotation_residual_deg = Vec::with_capacity(n);
    let mut direction_residual_deg = Vec::with_capacity(n);
    for inc in &incident {
        let (mut rs, mut ds) = (Vec::new(), Vec::new());
        for &e in inc {
            let edge = edges[e];
            let predicted = rot[edge.a] * edge.rel.rotation;
            rs.push(rotation_angle_deg(&(predicted.transpose() * rot[edge.b])));
            let step = rot[edge.a] * edge.rel.translation;
            if let Some(a) = vector_angle_deg(&(centre[edge.b] - centre[edge.a]), &step, 1e-9) {
                ds.push(a);
            }
        }
        rotation_residual_deg.push(median(rs));
        direction_residual_deg.push(median(ds));
    }
    FusedPoses {
        poses: rot
            .into_iter()
            .zip(centre)
            .map(|(rotation, translation)| Rigid {
                rotation,
                translation,
            })
            .collect(),
        rotation_residual_deg,
        direction_residual_deg,
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // index loops read like the maths here
mod tests {
    use nalgebra::Rotation3;
    use proptest::prelude::*;
    use spatialsv_store::datagen::SplitMix64;

    use super::*;

    proptest! {
        /// Every frame is in at least one window; windows are in order, of `len` frames (or
        /// the whole sequence when it is shorter), and each gap's windows start at every
        /// position that fits.
        #[test]
        fn sliding_windows_cover_every_frame(n in 0usize..120, len in 1usize..6, gaps in proptest::collection::vec(0usize..5, 0..3)) {
            let ws = sliding_windows(n, len, &gaps);
            let mut seen = vec![0u32; n];
            for w in &ws {
                prop_assert!(!w.is_empty() && w.len() <= len);
                prop_assert!(w.len() == len || w.len() == n);
                prop_assert!(w.windows(2).all(|p| p[0] < p[1]));
                w.iter().for_each(|i| seen[*i] += 1);
            }
            prop_assert!(seen.iter().all(|c| *c >= 1), "{seen:?}");
            if n >= len {
                // Gap 1 alone: every frame at most `len` times, interior frames exactly.
                let g1 = sliding_windows(n, len, &[1]);
                prop_assert_eq!(g1.len(), n - len + 1);
            }
        }
    }

    fn ramp(f: usize, hw: usize) -> Vec<f32> {
        (0..hw)
            .map(|i| 1.0 + 0.1 * f as f32 + 0.01 * i as f32)
            .collect()
    }

    #[test]
    fn scale_alignment_recovers_known_scales() {
        let (n, hw) = (6, 50);
        let truth: Vec<Vec<f32>> = (0..n).map(|f| ramp(f, hw)).collect();
        // Windows of 3 at every start, each pass at its own scale.
        let passes: Vec<DepthPass> = sliding_windows(n, 3, &[1])
            .into_iter()
            .enumerate()
            .map(|(k, frames)| {
                let s = 0.5 + k as f32;
                DepthPass {
                    depth: frames
                        .iter()
                        .map(|f| truth[*f].iter().map(|d| d * s).collect())
                        .collect(),
                    frames,
                }
            })
            .collect();
        let fused = fuse_depth(&passes, n, hw);
        // The scales relative to the first pass are the inverse of the applied ones.
        for (k, s) in fused.scales.iter().enumerate() {
            let want = 0.5 / (0.5 + k as f64);
            assert!((s / fused.scales[0] - want).abs() < 1e-4, "{k}: {s}");
        }
        // Fused depth is the truth up to one global scale, with no spread.
        let g = f64::from(fused.depth[0][0]) / f64::from(truth[0][0]);
        for (f, t) in truth.iter().enumerate() {
            for i in 0..hw {
                let r = f64::from(fused.depth[f][i]) / f64::from(t[i]);
                assert!(
                    (r / g - 1.0).abs() < 1e-4,
                    "frame {f} pixel {i}: {r} vs {g}"
                );
            }
            if fused.passes[f] >= 2 {
                assert!(fused.spread[f].iter().all(|s| *s < 1e-4));
            }
        }
    }

    #[test]
    fn the_median_rejects_an_outlier_pass_and_its_spread_shows() {
        let (n, hw) = (1, 20);
        let good = ramp(0, hw);
        let mut passes: Vec<DepthPass> = (0..4)
            .map(|k| DepthPass {
                frames: vec![0],
                depth: vec![good.iter().map(|d| d * (1.0 + 0.01 * k as f32)).collect()],
            })
            .collect();
        // One pass is wrong on the first half of the image (not a scale change).
        let mut bad = good.clone();
        bad[..hw / 2].iter_mut().for_each(|d| *d *= 3.0);
        passes.push(DepthPass {
            frames: vec![0],
            depth: vec![bad],
        });
        let fused = fuse_depth(&passes, n, hw);
        let g = fused.depth[0][hw - 1] / good[hw - 1];
        for i in 0..hw {
            let r = fused.depth[0][i] / good[i] / g;
            assert!((r - 1.0).abs() < 0.03, "pixel {i}: {r}");
            assert!(
                fused.spread[0][i] < 0.05,
                "pixel {i}: {}",
                fused.spread[0][i]
            );
        }
        assert_eq!(fused.passes[0], 5);
        // A pixel seen by one pass has no spread to speak of.
        let one = fuse_depth(&passes[..1], 1, hw);
        assert!(one.spread[0].iter().all(|s| s.is_infinite()));
    }

    fn trajectory(n: usize) -> Vec<Rigid> {
        (0..n)
            .map(|i| {
                let t = i as f64;
                Rigid {
                    rotation: Rotation3::from_euler_angles(0.02 * t, 0.05 * t, -0.01 * t)
                        .into_inner(),
                    translation: Vector3::new(0.1 * t, 0.02 * t * t / 10.0, -0.05 * t),
                }
            })
            .collect()
    }

    /// What a pass reports: poses relative to its first frame (rotated noise added), in a
    /// scale of its own.
    fn pose_pass(
        truth: &[Rigid],
        frames: Vec<usize>,
        scale: f64,
        noise_deg: f64,
        k: usize,
    ) -> PosePass {
        let first = truth[frames[0]].inverse();
        let poses = frames
            .iter()
            .enumerate()
            .map(|(j, f)| {
                let mut p = first.compose(&truth[*f]);
                // A rotation of `noise_deg` about a random axis, independent per observation.
                let mut rng = SplitMix64::new((k * 1000 + j) as u64);
                let axis = Vector3::new(
                    rng.next_f64() - 0.5,
                    rng.next_f64() - 0.5,
                    rng.next_f64() - 0.5,
                );
                let noise = Rotation3::new(axis.normalize() * noise_deg.to_radians());
                p.rotation = noise.into_inner() * p.rotation;
                p.translation /= scale;
                p
            })
            .collect();
        PosePass {
            frames,
            poses,
            scale,
        }
    }

    /// Windows of 3 at gaps 1 and 2 over the whole trajectory, each in a scale of its own.
    fn overlapping_passes(truth: &[Rigid], noise_deg: f64) -> Vec<PosePass> {
        sliding_windows(truth.len(), 3, &[1, 2])
            .into_iter()
            .enumerate()
            .map(|(k, w)| pose_pass(truth, w, 0.5 + 0.1 * (k % 5) as f64, noise_deg, k))
            .collect()
    }

    #[test]
    fn pose_fusion_recovers_a_trajectory_from_noisy_overlapping_windows() {
        let n = 20;
        let truth = trajectory(n);
        let first = truth[0].inverse();
        // Without noise, exact whatever each pass's scale.
        let exact = overlapping_passes(&truth, 0.0);
        let fused = fuse_poses(&exact, n);
        for f in 0..n {
            let want = first.compose(&truth[f]);
            let got = fused.poses[f];
            assert!((want.rotation - got.rotation).norm() < 1e-9, "frame {f}");
            assert!(
                (want.translation - got.translation).norm() < 1e-6,
                "frame {f}"
            );
        }
        let passes = overlapping_passes(&truth, 1.0);
        let fused = fuse_poses(&passes, n);
        for f in 0..n {
            let want = first.compose(&truth[f]);
            let got = fused.poses[f];
            let r = rotation_angle_deg(&(want.rotation.transpose() * got.rotation));
            assert!(r < 2.0, "frame {f}: rotation off by {r} deg");
            let t = (want.translation - got.translation).norm();
            assert!(
                t < 0.05 * (1.0 + want.translation.norm()),
                "frame {f}: centre off by {t}"
            );
            assert!(fused.rotation_residual_deg[f] < 5.0);
        }
        // Chaining one window's relative pose after another drifts; fusing all of them does
        // not.
        let mut chained = Rigid::identity();
        for p in passes.iter().take(n - 2) {
            chained = chained.compose(&p.poses[0].inverse().compose(&p.poses[1]));
        }
        let chain_err = rotation_angle_deg(
            &(first.compose(&truth[n - 2]).rotation.transpose() * chained.rotation),
        );
        let fused_err = rotation_angle_deg(
            &(first.compose(&truth[n - 2]).rotation.transpose() * fused.poses[n - 2].rotation),
        );
        assert!(
            fused_err < chain_err,
            "fused {fused_err} vs chained {chain_err}"
        );
        // One pass that is badly wrong shows up in its frames' residuals, not in the poses.
        let mut bad = passes.clone();
        bad.push(pose_pass(&truth, vec![5, 6, 7], 1.0, 40.0, 0));
        let fused = fuse_poses(&bad, n);
        let want = first.compose(&truth[6]);
        let r = rotation_angle_deg(&(want.rotation.transpose() * fused.poses[6].rotation));
        assert!(r < 6.0, "{r}");
    }
}
