//! Evaluation of a checkpoint on held-out labeled scenes (`spatialsv eval`).
//!
//! Each scene of the split is cut into consecutive clips of the training clip length; a scene
//! shorter than that (a single real RGB-D frame, say) is one clip of all its views
//! ([`clips_of`]). For every clip the model predicts depth, rays and points, and we score:
//! - depth (DOMAIN.md section 6) after median scaling and after least-squares scale and
//!   shift: AbsRel, delta1, RMSE;
//! - cameras recovered from the predicted ray maps ([`pose_from_rays`]) against the true
//!   relative poses over all frame pairs of the clip: RRA@15, RTA@15, AUC@30 (clips of two
//!   views or more; for single-view clips these are `None`, never zero);
//! - point maps after Umeyama Sim(3) alignment to the true points: accuracy, completeness,
//!   Chamfer.
//!
//! Trivial baselines are scored on the same pixels and pairs so the comparison is direct:
//! the training-set median depth everywhere, and identity motion (no camera moves).

use std::collections::BTreeMap;
use std::path::Path;

use nalgebra::Vector3;
use serde::Serialize;
use spatialsv_schemas::Split;
use spatialsv_store::Dataset;
use spatialsv_store::geometry::{Rigid, invert_rigid, mul};

use crate::config::TrainConfig;
use crate::data::{Augment, FrameRef, FrameStore, load_clip};
use crate::error::{Result, TrainError};
use crate::infer::{Shape, camera_of_view, predict};
use crate::metrics::{DepthAlignment, chamfer, depth_metrics, pose_metrics, umeyama};

/// Scores of one scene (or of all scenes), averaged over its clips. Depth and point metrics
/// are measured on every clip (down to a single view); camera metrics need a pair of views, so
/// they average over the clips of at least two views and are `None` (null in eval.json, with
/// the reason in `not_measured`) where there is none: nothing measured is never a zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scores {
    /// Clips scored.
    pub clips: usize,
    /// Clips of at least two views, over which the camera metrics are averaged.
    pub camera_clips: usize,
    /// Depth AbsRel after median scaling.
    pub abs_rel: f64,
    /// Depth delta1 after median scaling.
    pub delta1: f64,
    /// Depth RMSE (m) after median scaling.
    pub rmse: f64,
    /// Depth AbsRel after least-squares scale and shift.
    pub abs_rel_lsq: f64,
    /// Depth delta1 after least-squares scale and shift.
    pub delta1_lsq: f64,
    /// Depth RMSE (m) after least-squares scale and shift.
    pub rmse_lsq: f64,
    /// Relative rotation accuracy at 15 degrees.
    pub rra15: Option<f64>,
    /// Relative translation-direction accuracy at 15 degrees.
    pub rta15: Option<f64>,
    /// Pose AUC at 30 degrees.
    pub auc30: Option<f64>,
    /// Point accuracy (m) after Sim(3) alignment.
    pub accuracy: f64,
    /// Point completeness (m).
    pub completeness: f64,
    /// Chamfer (m): mean of accuracy and completeness.
    pub chamfer: f64,
    /// Baseline: training median depth everywhere, median-scaled AbsRel.
    pub baseline_abs_rel: f64,
    /// Baseline: identity motion, AUC@30.
    pub baseline_auc30: Option<f64>,
    /// Why a metric is `None`, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_measured: Option<String>,
}

/// Why the camera metrics of a single-view clip (or scene) are absent.
pub const NO_CAMERA_PAIRS: &str =
    "camera metrics need two views; every clip here has one (depth and point metrics are measured)";

impl Scores {
    /// Depth and point metrics (every clip has them).
    fn dense(&self) -> [f64; 10] {
        [
            self.abs_rel,
            self.delta1,
            self.rmse,
            self.abs_rel_lsq,
            self.delta1_lsq,
            self.rmse_lsq,
            self.accuracy,
            self.completeness,
            self.chamfer,
            self.baseline_abs_rel,
        ]
    }

    /// Camera metrics (clips of two views or more have them).
    fn camera(&self) -> [Option<f64>; 4] {
        [self.rra15, self.rta15, self.auc30, self.baseline_auc30]
    }

    fn from_parts(clips: usize, camera_clips: usize, d: [f64; 10], c: [Option<f64>; 4]) -> Self {
        let [
            abs_rel,
            delta1,
            rmse,
            abs_rel_lsq,
            delta1_lsq,
            rmse_lsq,
            accuracy,
            completeness,
            chamfer,
            baseline_abs_rel,
        ] = d;
        let [rra15, rta15, auc30, baseline_auc30] = c;
        Scores {
            clips,
            camera_clips,
            abs_rel,
            delta1,
            rmse,
            abs_rel_lsq,
            delta1_lsq,
            rmse_lsq,
            rra15,
            rta15,
            auc30,
            accuracy,
            completeness,
            chamfer,
            baseline_abs_rel,
            baseline_auc30,
            not_measured: (camera_clips == 0).then(|| NO_CAMERA_PAIRS.to_string()),
        }
    }
}

/// A running sum of [`Scores`], each weighted by its clips (dense metrics) and by its clips of
/// two views or more (camera metrics), so means over scenes are means over clips.
#[derive(Debug, Default)]
struct ScoreSum {
    clips: usize,
    camera_clips: usize,
    dense: [f64; 10],
    camera: [f64; 4],
}

impl ScoreSum {
    fn add(&mut self, s: &Scores) {
        for (a, b) in self.dense.iter_mut().zip(s.dense()) {
            *a += b * s.clips as f64;
        }
        if s.camera_clips > 0 {
            for (a, b) in self.camera.iter_mut().zip(s.camera()) {
                *a += b.unwrap_or(0.0) * s.camera_clips as f64;
            }
        }
        self.clips += s.clips;
        self.camera_clips += s.camera_clips;
    }

    /// The means; `None` when nothing was added.
    fn mean(&self) -> Option<Scores> {
        if self.clips == 0 {
            return None;
        }
        let n = self.clips as f64;
        let m = self.camera_clips as f64;
        Some(Scores::from_parts(
            self.clips,
            self.camera_clips,
            self.dense.map(|x| x / n),
            self.camera
                .map(|x| (self.camera_clips > 0).then_some(x / m)),
        ))
    }
}

impl EvalReport {
    /// The scores of the evaluated scenes that `keep` selects, over all their clips (as
    /// `overall` is over every scene); `None` when it selects none.
    pub fn subset(&self, keep: impl Fn(&str) -> bool) -> Option<Scores> {
        let mut sum = ScoreSum::default();
        for (_, sc) in self.scenes.iter().filter(|(s, _)| keep(s)) {
            sum.add(sc);
        }
        sum.mean()
    }
}

/// The evaluation report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EvalReport {
    /// Split evaluated.
    pub split: String,
    /// Over all clips.
    pub overall: Scores,
    /// Per scene.
    pub scenes: BTreeMap<String, Scores>,
    /// Scenes of the split that were not evaluated, with the reason (no clip with enough valid
    /// depth to align). They are in neither `scenes` nor `overall`: nothing measured is never
    /// reported as a zero.
    pub skipped: BTreeMap<String, String>,
}

/// Corresponding (predicted, true) points of every pixel with valid true depth, from point
/// maps `[v, 3, h, w]` (flattened) and depth `[v, h, w]`.
pub fn corresponding_points(
    pred: &[f32],
    truth: &[f32],
    depth: &[f32],
    v: usize,
    hw: usize,
) -> (Vec<Vector3<f64>>, Vec<Vector3<f64>>) {
    let (mut src, mut dst) = (Vec::new(), Vec::new());
    for k in 0..v {
        for i in (0..hw).filter(|i| depth[k * hw + i] > 0.0) {
            let at = |b: &[f32], c: usize| f64::from(b[(k * 3 + c) * hw + i]);
            src.push(Vector3::new(at(pred, 0), at(pred, 1), at(pred, 2)));
            dst.push(Vector3::new(at(truth, 0), at(truth, 1), at(truth, 2)));
        }
    }
    (src, dst)
}

/// The true cameras of `clip` relative to its first camera.
pub(crate) fn relative_poses(store: &FrameStore, clip: &[FrameRef]) -> Result<Vec<Rigid>> {
    let raw: Vec<[f64; 16]> = clip
        .iter()
        .map(|f| {
            store
                .load(f)
                .map(|r| r.pose.unwrap_or(spatialsv_store::geometry::IDENTITY))
        })
        .collect::<Result<_, _>>()?;
    let first = invert_rigid(&raw[0]);
    Ok(raw
        .iter()
        .map(|m| Rigid::from_row_major(&mul(&first, m)))
        .collect())
}

/// Scores one clip. `v`, `h`, `w`: clip length (one view or more) and image size.
#[allow(clippy::too_many_arguments)]
pub(crate) fn score_clip(
    pred_depth: &[f32],
    pred_rays: &[f32],
    pred_points: &[f32],
    gt_depth: &[f32],
    gt_points: &[f32],
    gt_poses: &[Rigid],
    train_median: f32,
    v: usize,
    h: usize,
    w: usize,
) -> Option<Scores> {
    let hw = h * w;
    let med = depth_metrics(pred_depth, gt_depth, DepthAlignment::Median)?;
    let lsq = depth_metrics(pred_depth, gt_depth, DepthAlignment::ScaleShift)?;
    let constant = vec![train_median; gt_depth.len()];
    let base = depth_metrics(&constant, gt_depth, DepthAlignment::Median)?;
    // Cameras from rays, on a sparse pixel grid.
    let step = (w / 16).max(1);
    let poses: Vec<Rigid> = (0..v)
        .map(|k| camera_of_view(pred_rays, k, h, w, step).0)
        .collect();
    // Cameras need pairs: a single-view clip has depth and point metrics only.
    let pm = pose_metrics(&poses, gt_poses);
    let still: Vec<Rigid> = (0..v).map(|_| Rigid::identity()).collect();
    let bm = pose_metrics(&still, gt_poses);
    // Points: Sim(3) from corresponding valid pixels, then Chamfer on subsamples.
    let (src, dst) = corresponding_points(pred_points, gt_points, gt_depth, v, hw);
    let sim = umeyama(&src, &dst)?;
    let stride = (src.len() / 1500).max(1);
    let aligned: Vec<Vector3<f64>> = src.iter().step_by(stride).map(|p| sim.apply(p)).collect();
    let truth: Vec<Vector3<f64>> = dst.iter().step_by(stride).copied().collect();
    let ch = chamfer(&aligned, &truth)?;
    Some(Scores::from_parts(
        1,
        usize::from(pm.is_some()),
        [
            med.abs_rel,
            med.delta1,
            med.rmse,
            lsq.abs_rel,
            lsq.delta1,
            lsq.rmse,
            ch.accuracy,
            ch.completeness,
            ch.overall,
            base.abs_rel,
        ],
        [
            pm.as_ref().map(|p| p.rra15),
            pm.as_ref().map(|p| p.rta15),
            pm.as_ref().map(|p| p.auc30),
            bm.map(|p| p.auc30),
        ],
    ))
}

/// What the trivial baselines need from a run's training data, saved in the run directory
/// (`baseline.json`) when training starts, so a run can be evaluated on a dataset that has no
/// train split (a separate benchmark).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct BaselineStats {
    /// Median labeled depth of the training split, at the run's image size.
    pub train_median_depth: f32,
    /// The dataset it was measured on.
    pub dataset: String,
    /// Its version.
    pub dataset_version: u64,
}

/// The training median depth for the baselines: the run's own (`baseline.json`, written by
/// `train`), else measured on `ds`'s train split (runs trained before the file existed).
fn baseline_median(
    run: &crate::run::RunDir,
    store: &FrameStore,
    ds: &Dataset,
    cfg: &TrainConfig,
) -> Result<f32> {
    let path = run.baseline_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let stats: BaselineStats = serde_json::from_str(&text)
                .map_err(|e| TrainError::corrupt(&path, "unreadable baseline statistics", e))?;
            Ok(stats.train_median_depth)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => train_median_depth(store, ds, cfg),
        Err(e) => Err(TrainError::io("reading baseline statistics", &path)(e)),
    }
}

/// Median depth of the training split (the trivial baseline), from up to 64 frames.
pub(crate) fn train_median_depth(
    store: &FrameStore,
    ds: &Dataset,
    cfg: &TrainConfig,
) -> Result<f32> {
    let m = ds.latest()?;
    let scenes = store.labeled_scenes(&m, Split::Train)?;
    let frames: Vec<_> = scenes.values().flatten().copied().collect();
    let step = (frames.len() / 64).max(1);
    let mut values = Vec::new();
    for f in frames.iter().step_by(step) {
        let s = load_clip(
            store,
            std::slice::from_ref(f),
            cfg.image_width,
            cfg.image_height,
            Augment::NONE,
            0,
        )?;
        values.extend(s.depth.into_iter().filter(|d| *d > 0.0));
    }
    if values.is_empty() {
        return Err(TrainError::User(format!(
            "the train split of {} has no labeled depth for the baseline",
            ds.location()
        )));
    }
    values.sort_by(f32::total_cmp);
    Ok(values[values.len() / 2])
}

/// The clips a scene is cut into: consecutive clips of the run's clip length `v` (frames after
/// the last whole clip are left out), or, for a scene shorter than that, one clip of all its
/// frames: the trunk alternates frame and global attention, so it takes any number of views.
pub fn clips_of<T>(frames: &[T], v: usize) -> Vec<&[T]> {
    if frames.len() >= v {
        frames.chunks_exact(v.max(1)).collect()
    } else if frames.is_empty() {
        Vec::new()
    } else {
        vec![frames]
    }
}

/// Evaluates the run in `run_dir` on `split` of `dataset`.
pub fn evaluate(dataset: &Dataset, run_dir: &Path, split: Split) -> Result<EvalReport> {
    let run = crate::infer::SpatialRun::load(run_dir)?;
    let cfg = &run.config;
    let manifest = dataset.latest()?;
    let store = FrameStore::new(dataset.clone(), &manifest, cfg.cache_row_groups);
    let scenes = store.labeled_scenes(&manifest, split)?;
    if scenes.is_empty() {
        return Err(TrainError::User(format!(
            "the {split} split of {} has no labeled scenes",
            dataset.location()
        )));
    }
    let train_median = baseline_median(&run.dir, &store, dataset, cfg)?;
    let (v, h, w) = (cfg.clip_len, cfg.image_height, cfg.image_width);
    let mut report = EvalReport {
        split: split.to_string(),
        ..EvalReport::default()
    };
    let mut overall = ScoreSum::default();
    for (scene, frames) in &scenes {
        let mut sum = ScoreSum::default();
        for clip in clips_of(frames, v) {
            let n = clip.len();
            let s = load_clip(&store, clip, w, h, Augment::NONE, 0)?;
            let p = predict(
                &run.model,
                s.images.clone(),
                Shape { n: 1, v: n, h, w },
                true,
            )?;
            let (pd, pr, pp) = (p.depth, p.rays, p.points.unwrap_or_default());
            let gt_poses = relative_poses(&store, clip)?;
            if let Some(sc) = score_clip(
                &pd,
                &pr,
                &pp,
                &s.depth,
                &s.points,
                &gt_poses,
                train_median,
                n,
                h,
                w,
            ) {
                sum.add(&sc);
            }
        }
        let Some(scores) = sum.mean() else {
            report.skipped.insert(
                scene.clone(),
                "no clip had enough valid depth to score".into(),
            );
            continue;
        };
        overall.add(&scores);
        report.scenes.insert(scene.clone(), scores);
    }
    let Some(overall) = overall.mean() else {
        let why: Vec<String> = report
            .skipped
            .iter()
            .map(|(scene, reason)| format!("{scene}: {reason}"))
            .collect();
        return Err(TrainError::User(format!(
            "nothing to evaluate in the {split} split of {}: {}",
            dataset.location(),
            why.join("; ")
        )));
    };
    report.overall = overall;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_scenes_are_one_clip_of_all_their_views() {
        let frames: Vec<u32> = (0..7).collect();
        assert_eq!(clips_of(&frames, 3), vec![&[0, 1, 2][..], &[3, 4, 5][..]]);
        assert_eq!(clips_of(&frames[..2], 3), vec![&[0, 1][..]]);
        assert_eq!(clips_of(&frames[..1], 3), vec![&[0][..]]);
        assert!(clips_of(&frames[..0], 3).is_empty());
    }

    fn clip(value: f64, camera: Option<f64>) -> Scores {
        Scores::from_parts(1, usize::from(camera.is_some()), [value; 10], [camera; 4])
    }

    #[test]
    fn camera_metrics_average_over_clips_with_pairs_and_are_absent_without() {
        let mut single = ScoreSum::default();
        single.add(&clip(0.2, None));
        let single = single.mean().unwrap();
        assert_eq!((single.clips, single.camera_clips), (1, 0));
        assert_eq!(single.auc30, None);
        assert_eq!(single.not_measured.as_deref(), Some(NO_CAMERA_PAIRS));
        assert!(ScoreSum::default().mean().is_none());

        // A scene of two clips with pairs and a one-view scene: depth over 3 clips, cameras
        // over 2.
        let mut scene = ScoreSum::default();
        scene.add(&clip(0.1, Some(0.5)));
        scene.add(&clip(0.4, Some(0.9)));
        let scene = scene.mean().unwrap();
        let mut all = ScoreSum::default();
        all.add(&scene);
        all.add(&single);
        let all = all.mean().unwrap();
        assert_eq!((all.clips, all.camera_clips), (3, 2));
        assert!((all.abs_rel - 0.7 / 3.0).abs() < 1e-12);
        assert!((all.auc30.unwrap() - 0.7).abs() < 1e-12);
        assert_eq!(all.not_measured, None);
    }
}
