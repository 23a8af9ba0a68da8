//! One window's teacher outputs to `pseudo_labels` rows: cameras from the ray maps, the
//! filters of [`crate::filters`], statistics and provenance.

use spatialsv_store::CODE_VERSION;
use spatialsv_store::FrameRef;
use spatialsv_store::geometry::{Intrinsics, Mat4};
use spatialsv_store::labels::PseudoLabelRow;
use spatialsv_store::rows::now_ns;
use spatialsv_trainer::infer::camera_of_view;

use crate::config::LabelConfig;
use spatialsv_schemas::RejectKind;

use crate::filters::{
    Rejection, View, accept, confidence_keep, cycle_errors, geometric_agreement, geometric_keep,
};

use super::plan::Work;
use super::teacher::run_order;
use spatialsv_trainer::infer::Predicted as Outputs;

/// Static facts every row of a run shares.
pub(crate) struct Provenance<'a> {
    pub(crate) teacher: &'a str,
    pub(crate) config_hash: &'a str,
    pub(crate) config_toml: &'a str,
}

/// A frame's pixels after two filters in turn.
pub(crate) struct Filtered {
    /// Kept by both.
    pub(crate) keep: Vec<bool>,
    /// Removed by the first.
    pub(crate) removed_first: usize,
    /// Kept by the first, removed by the second.
    pub(crate) removed_second: usize,
    /// Kept by both, counted.
    pub(crate) kept: usize,
}

/// Combines the confidence filter's mask (`first`) with the next filter's (`second`: the
/// geometric round trip, or the fused spread), counting what each removed.
pub(crate) fn combine(first: &[bool], second: &[bool]) -> Filtered {
    let keep: Vec<bool> = first.iter().zip(second).map(|(a, b)| *a && *b).collect();
    Filtered {
        removed_first: first.iter().filter(|k| !**k).count(),
        removed_second: first
            .iter()
            .zip(second)
            .filter(|(a, b)| **a && !**b)
            .count(),
        kept: keep.iter().filter(|k| **k).count(),
        keep,
    }
}

/// Median of a depth map's valid (positive) values; 0 without any.
pub(crate) fn positive_median(depth: &[f32]) -> f64 {
    let mut sorted: Vec<f32> = depth.iter().copied().filter(|d| *d > 0.0).collect();
    sorted.sort_by(f32::total_cmp);
    sorted.get(sorted.len() / 2).map_or(0.0, |d| f64::from(*d))
}

/// Mean of a map.
pub(super) fn mean(x: &[f32]) -> f64 {
    x.iter().map(|c| f64::from(*c)).sum::<f64>() / x.len().max(1) as f64
}

/// Filters one window's outputs into rows. `runs`: how many reference runs were made (1, or
/// `v` with the camera filter); the outputs hold `runs` consecutive clips of `v` views.
#[allow(clippy::too_many_arguments)]
pub(super) fn window_rows(
    out: &Outputs,
    first_clip: usize,
    runs: usize,
    v: usize,
    h: usize,
    w: usize,
    work: &Work,
    frames: &[FrameRef],
    cfg: &LabelConfig,
    prov: &Provenance<'_>,
) -> Vec<PseudoLabelRow> {
    let hw = h * w;
    let clip_rays = |c: usize| &out.rays[c * v * 6 * hw..(c + 1) * v * 6 * hw];
    let step = (w / 16).max(1);
    // Run 0 (frame 0 as reference, natural order) gives the labels.
    let cams: Vec<(Mat4, f64)> = (0..v)
        .map(|j| {
            let (p, f) = camera_of_view(clip_rays(first_clip), j, h, w, step);
            (p.to_row_major(), f)
        })
        .collect();
    let errors = if runs == v && v > 1 {
        let rel: Vec<Vec<Mat4>> = (0..v)
            .map(|r| {
                if r == 0 {
                    // Run 0 is the labelling run itself: its cameras are already fitted.
                    return cams.iter().map(|c| c.0).collect();
                }
                let order = run_order(v, r);
                let mut poses = vec![spatialsv_store::geometry::IDENTITY; v];
                for (pos, &j) in order.iter().enumerate() {
                    poses[j] = camera_of_view(clip_rays(first_clip + r), pos, h, w, step)
                        .0
                        .to_row_major();
                }
                poses
            })
            .collect();
        cycle_errors(&rel)
    } else {
        vec![(0.0, 0.0); v]
    };
    let base = first_clip * v * hw;
    let depth_of = |j: usize| &out.depth[base + j * hw..base + (j + 1) * hw];
    let conf_of = |j: usize| &out.conf[base + j * hw..base + (j + 1) * hw];
    let views: Vec<ViewLabel> = (0..v)
        .map(|j| {
            let confidence = conf_of(j).to_vec();
            ViewLabel {
                frame_idx: frames[j].frame_idx,
                depth: depth_of(j).to_vec(),
                conf_keep: confidence_keep(&confidence, &cfg.confidence),
                confidence_mean: mean(&confidence),
                confidence,
                k: [cams[j].1, cams[j].1, w as f64 / 2.0, h as f64 / 2.0],
                reference_from_camera: cams[j].0,
                camera_errors_deg: errors[j],
            }
        })
        .collect();
    // The built-in teacher's scale is unknown on video.
    filtered_rows(views, w, h, None, work, cfg, prov)
}

/// One view of a teacher window, ready for the geometric filter and acceptance.
pub(crate) struct ViewLabel {
    /// `frames.frame_idx`.
    pub(crate) frame_idx: i64,
    /// Depth `[h, w]`, 0 = none.
    pub(crate) depth: Vec<f32>,
    /// Confidence `[h, w]`.
    pub(crate) confidence: Vec<f32>,
    /// The confidence filter's keep mask.
    pub(crate) conf_keep: Vec<bool>,
    /// Mean confidence as recorded.
    pub(crate) confidence_mean: f64,
    /// fx, fy, cx, cy at the map size.
    pub(crate) k: [f64; 4],
    /// Camera to the window's first camera.
    pub(crate) reference_from_camera: Mat4,
    /// Pose-cycle closure errors (rotation, direction), degrees; zeros when not measured.
    pub(crate) camera_errors_deg: (f64, f64),
}

/// The rows of one window's views (the first is the pose reference): the multi-view
/// geometric round trip on top of each view's confidence mask, camera consistency,
/// acceptance, statistics and provenance. Shared by `label` and `label import`.
pub(crate) fn filtered_rows(
    views: Vec<ViewLabel>,
    w: usize,
    h: usize,
    metres_per_unit: Option<f64>,
    work: &Work,
    cfg: &LabelConfig,
    prov: &Provenance<'_>,
) -> Vec<PseudoLabelRow> {
    let (v, hw) = (views.len(), w * h);
    let geo_keep: Vec<Vec<bool>> = if cfg.geometric.enabled {
        let geo: Vec<View<'_>> = views
            .iter()
            .map(|x| View {
                depth: &x.depth,
                k: Intrinsics::from_k(x.k),
                pose: x.reference_from_camera,
            })
            .collect();
        let agree = geometric_agreement(&geo, w, h, &cfg.geometric);
        geometric_keep(&agree, cfg.geometric.views_needed(v))
    } else {
        vec![vec![true; hw]; v]
    };
    let now = now_ns();
    let reference = views.first().map_or(0, |x| x.frame_idx);
    views
        .into_iter()
        .zip(geo_keep)
        .map(|(x, geo)| {
            let px = combine(&x.conf_keep, &geo);
            let (rot, dir) = x.camera_errors_deg;
            let consistent = cfg.camera.consistent(rot, dir);
            let verdict = if v == 1 && cfg.geometric.enabled {
                Err(Rejection {
                    kind: RejectKind::SingleView,
                    detail: "window of one frame: no other view to check against".into(),
                })
            } else {
                accept(px.kept, hw, consistent, &cfg.acceptance)
            };
            PseudoLabelRow {
                scene_id: work.scene_id.clone(),
                frame_idx: x.frame_idx,
                clip_id: work.clip_id.clone(),
                reference_frame_idx: reference,
                split: work.split,
                width: w as i32,
                height: h as i32,
                depth_median: positive_median(&x.depth),
                metres_per_unit,
                depth: x.depth,
                confidence_mean: x.confidence_mean,
                confidence: x.confidence,
                keep: px.keep,
                intrinsics: x.k,
                reference_from_camera: x.reference_from_camera,
                px_removed_confidence: px.removed_first as i64,
                px_removed_geometric: px.removed_second as i64,
                camera_rotation_error_deg: rot,
                camera_direction_error_deg: dir,
                camera_consistent: consistent,
                accepted: verdict.is_ok(),
                reject_kind: verdict.as_ref().err().map(|r| r.kind),
                reject_reason: verdict.err().map(|r| r.detail),
                teacher_hash: prov.teacher.to_string(),
                config_hash: prov.config_hash.to_string(),
                config_toml: prov.config_toml.to_string(),
                code_version: CODE_VERSION.to_string(),
                labeled_at: now,
            }
        })
        .collect()
}
