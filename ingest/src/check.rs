//! The per-scene reprojection self-check: valid depth of frame i, unprojected with its
//! intrinsics and pose and projected into a nearby frame j, must land on j's own depth.
//! Correct conventions give a high agreement (occlusions and depth noise cost a little); a
//! pose stored in the wrong direction, wrong axes or a wrong depth scale give a low one.

use crate::SourceFrame;
use spatialsv_store::geometry::{
    Intrinsics, Mat4, invert_rigid, mul, relative_rotation_deg, transform_point, translation,
};
use spatialsv_store::media::DepthImage;

/// What the check needs of one frame.
#[derive(Debug, Clone)]
pub struct PairView {
    /// Camera-to-world.
    pub world_from_camera: Mat4,
    /// Depth intrinsics fx, fy, cx, cy in depth pixels.
    pub depth_k: [f64; 4],
    /// Metres per stored unit.
    pub depth_scale_m: f64,
    /// Decoded depth.
    pub depth: DepthImage,
}

/// Result of the check over a scene's pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Consistency {
    /// Frame pairs checked.
    pub pairs: usize,
    /// Points of frame i tested (valid depth, on a sparse grid).
    pub points: usize,
    /// Fraction of tested points that project inside frame j onto valid depth.
    pub overlap: f64,
    /// Of those, the fraction whose depth agrees with frame j's within 5%: the figure.
    pub agreement: f64,
}

impl Consistency {
    /// A warning when the figure suggests a convention error.
    pub fn warning(&self, scene: &str) -> Option<String> {
        if self.points < 50 {
            return None;
        }
        if self.overlap < 0.05 {
            return Some(format!(
                "scene {scene}: depth of nearby frames barely overlaps ({:.0}% lands in the other view): \
                 poses may be world-to-camera stored as camera-to-world, or in other axes",
                self.overlap * 100.0
            ));
        }
        if self.agreement < 0.5 {
            return Some(format!(
                "scene {scene}: only {:.0}% of reprojected depth agrees between nearby frames: likely a \
                 convention error (pose direction or axes, or a wrong depth scale)",
                self.agreement * 100.0
            ));
        }
        None
    }
}

/// Chooses up to `n` (i, j) frame pairs spread over the scene, each j the nearest later frame
/// that moved enough (5 cm or 5 degrees) to make the check sensitive, but not so far (60 cm,
/// 30 degrees) that the views stop overlapping.
pub fn choose_pairs(frames: &[SourceFrame], n: usize) -> Vec<(usize, usize)> {
    let posed: Vec<(usize, Mat4)> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.problem.is_none() && f.depth.is_some())
        .filter_map(|(i, f)| Some((i, f.world_from_camera?)))
        .filter(|(_, p)| spatialsv_schemas::check_pose(p).is_ok())
        .collect();
    if posed.len() < 2 || n == 0 {
        return Vec::new();
    }
    let mut pairs = Vec::new();
    let step = (posed.len() / n).max(1);
    for a in (0..posed.len() - 1).step_by(step).take(n) {
        let (i, pi) = posed[a];
        let mut chosen = None;
        for &(j, pj) in &posed[a + 1..] {
            let dist = (translation(&pi) - translation(&pj)).norm();
            let angle = relative_rotation_deg(&pi, &pj);
            if dist > 0.6 || angle > 30.0 {
                break;
            }
            chosen = Some(j);
            if dist >= 0.05 || angle >= 5.0 {
                break;
            }
        }
        // When even the next frame moved too far, check against it anyway: a convention
        // error can make every pose look far from its neighbour.
        if let Some(j) = chosen.or_else(|| posed.get(a + 1).map(|p| p.0)) {
            pairs.push((i, j));
        }
    }
    pairs
}

/// Runs the check over frame pairs.
pub fn reprojection_consistency(pairs: &[(&PairView, &PairView)]) -> Consistency {
    let (mut points, mut inside, mut agree) = (0usize, 0usize, 0usize);
    for (a, b) in pairs {
        let b_from_a = mul(&invert_rigid(&b.world_from_camera), &a.world_from_camera);
        let (ka, kb) = (Intrinsics::from_k(a.depth_k), Intrinsics::from_k(b.depth_k));
        let stride = ((a.depth.width.max(a.depth.height) / 40).max(1)) as usize;
        for y in (0..a.depth.height).step_by(stride) {
            for x in (0..a.depth.width).step_by(stride) {
                let raw = a.depth.at(x, y);
                if raw == 0 {
                    continue;
                }
                points += 1;
                let z = f64::from(raw) * a.depth_scale_m;
                let p = ka.unproject(f64::from(x) + 0.5, f64::from(y) + 0.5, z);
                let q = transform_point(&b_from_a, p);
                let Some((u, v)) = kb.project(q) else {
                    continue;
                };
                if !(u >= 0.0
                    && v >= 0.0
                    && u < f64::from(b.depth.width)
                    && v < f64::from(b.depth.height))
                {
                    continue;
                }
                let observed = b.depth.at(u as u32, v as u32);
                if observed == 0 {
                    continue;
                }
                inside += 1;
                let zb = f64::from(observed) * b.depth_scale_m;
                if ((q[2] - zb) / zb).abs() < 0.05 {
                    agree += 1;
                }
            }
        }
    }
    Consistency {
        pairs: pairs.len(),
        points,
        overlap: if points > 0 {
            inside as f64 / points as f64
        } else {
            0.0
        },
        agreement: if inside > 0 {
            agree as f64 / inside as f64
        } else {
            0.0
        },
    }
}
