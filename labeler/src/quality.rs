//! Pseudo-label quality, scored honestly against the ground truth `spatialsv synth` writes
//! aside for its videos (`groundtruth/<scene>/depth/<frame>.png` in mm and
//! `groundtruth/<scene>/poses.txt`), which neither ingestion nor the labeler ever reads.
//!
//! Depth: each label is median-scaled to the truth on all its valid pixels (pseudo depth has
//! the teacher's scale), and the same scale is used for every subset, so the comparison
//! measures which pixels the filters keep, not a refit. Subsets: all pixels of all frames,
//! the kept pixels of accepted frames, and the pixels the filters removed.
//!
//! Cameras: the label's camera-to-reference pose against the true relative pose, for every
//! frame that is not its window's reference; rotation error and translation-direction error,
//! in accepted and in rejected frames.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;
use spatialsv_schemas::Table;
use spatialsv_store::Dataset;
use spatialsv_store::geometry::{
    Mat4, invert_rigid, mul, parse_matrix4, relative_rotation_deg, translation, vector_angle_deg,
};
use spatialsv_store::labels::{PseudoLabelRow, read_pseudo_labels, select_labelling};
use spatialsv_store::{Digest, Labelling, Selector};

use crate::error::{LabelError, Result};

/// Depth accuracy of a set of pixels.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DepthScore {
    /// Pixels scored.
    pub pixels: u64,
    /// Mean |d - d*| / d*.
    pub abs_rel: f64,
    /// Share with max(d/d*, d*/d) < 1.25.
    pub delta1: f64,
}

#[derive(Debug, Default)]
struct DepthSum {
    n: u64,
    rel: f64,
    good: u64,
}

impl DepthSum {
    fn add(&mut self, pred: f64, truth: f64) {
        self.n += 1;
        self.rel += (pred - truth).abs() / truth;
        if (pred / truth).max(truth / pred) < 1.25 {
            self.good += 1;
        }
    }

    fn score(&self) -> DepthScore {
        let n = self.n.max(1) as f64;
        DepthScore {
            pixels: self.n,
            abs_rel: self.rel / n,
            delta1: self.good as f64 / n,
        }
    }
}

/// Camera accuracy of a set of frames.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PoseScore {
    /// Frames scored (window references excluded: their pose is the identity by definition).
    pub frames: u64,
    /// Mean rotation error, degrees.
    pub rotation_deg: f64,
    /// Mean translation-direction error, degrees.
    pub direction_deg: f64,
}

/// The quality of one labelling (a teacher and a config).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LabelQuality {
    /// Teacher scored.
    pub teacher_hash: Digest,
    /// Config scored.
    pub config_hash: Digest,
    /// Frames with ground truth.
    pub frames: u64,
    /// Of those, accepted.
    pub frames_accepted: u64,
    /// `frames_accepted / frames`.
    pub acceptance_rate: f64,
    /// Kept pixels of accepted frames over all pixels.
    pub pixel_keep_rate: f64,
    /// Every pixel of every frame (no filtering).
    pub all: DepthScore,
    /// Kept pixels of accepted frames (what the student trains on).
    pub accepted: DepthScore,
    /// Pixels the pixel filters removed.
    pub removed: DepthScore,
    /// Cameras of accepted frames.
    pub pose_accepted: PoseScore,
    /// Cameras of rejected frames.
    pub pose_rejected: PoseScore,
    /// Cameras of frames whose pose cycles closed (the camera filter's verdict).
    pub pose_consistent: PoseScore,
    /// Cameras of frames whose pose cycles did not close.
    pub pose_inconsistent: PoseScore,
    /// Frames rejected, by reason (text before the first colon).
    pub reject_reasons: BTreeMap<String, u64>,
}

impl LabelQuality {
    /// What `spatialsv eval --pseudo-labels` prints: the summary, depth and camera tables and
    /// the rejection reasons.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.push(format!("pseudo-labels of {}", self.summary()));
        out.push(format!(
            "{:<34} {:>10} {:>8} {:>7}",
            "depth (median-scaled)", "pixels", "AbsRel", "d1"
        ));
        for (name, d) in self.depth_rows() {
            out.push(format!(
                "{name:<34} {:>10} {:>8.4} {:>7.3}",
                d.pixels, d.abs_rel, d.delta1
            ));
        }
        out.push(format!(
            "{:<34} {:>10} {:>8} {:>7}",
            "cameras", "frames", "rot deg", "dir deg"
        ));
        for (name, p) in self.pose_rows() {
            out.push(format!(
                "{name:<34} {:>10} {:>8.2} {:>7.2}",
                p.frames, p.rotation_deg, p.direction_deg
            ));
        }
        for (reason, n) in &self.reject_reasons {
            out.push(format!("rejected by {reason}: {n} frames"));
        }
        out
    }

    /// The labelling scored.
    pub fn labelling(&self) -> Labelling {
        Labelling {
            teacher: self.teacher_hash.clone(),
            config: self.config_hash.clone(),
        }
    }

    /// One line of summary: hashes, frames, acceptance and kept pixels.
    pub fn summary(&self) -> String {
        format!(
            "teacher {} config {}: {} frames, {} accepted ({:.1}%), {:.1}% of pixels kept",
            self.teacher_hash.short(),
            self.config_hash.short(),
            self.frames,
            self.frames_accepted,
            100.0 * self.acceptance_rate,
            100.0 * self.pixel_keep_rate
        )
    }

    /// The depth scores by pixel subset, named.
    pub fn depth_rows(&self) -> [(&'static str, &DepthScore); 3] {
        [
            ("all pixels (unfiltered)", &self.all),
            ("kept pixels of accepted frames", &self.accepted),
            ("pixels removed by the filters", &self.removed),
        ]
    }

    /// The camera scores by frame subset, named.
    pub fn pose_rows(&self) -> [(&'static str, &PoseScore); 4] {
        [
            ("accepted frames", &self.pose_accepted),
            ("rejected frames", &self.pose_rejected),
            ("pose cycles closed", &self.pose_consistent),
            ("pose cycles open", &self.pose_inconsistent),
        ]
    }
}

/// Angle between the translations of two poses, degrees; `None` without motion.
fn direction_deg(a: &Mat4, b: &Mat4) -> Option<f64> {
    vector_angle_deg(&translation(a), &translation(b), 1e-9)
}

/// Ground truth of one synthetic video.
struct Truth {
    dir: std::path::PathBuf,
    poses: HashMap<i64, Mat4>,
}

fn load_truth(dir: &Path) -> Result<Truth> {
    let path = dir.join("poses.txt");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        LabelError::User(format!("cannot read ground truth {} ({e})", path.display()))
    })?;
    let mut poses = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        let bad = || {
            LabelError::User(format!(
                "{}:{}: not 'frame timestamp 16 values'",
                path.display(),
                n + 1
            ))
        };
        let idx: i64 = it.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let _ts = it.next().ok_or_else(bad)?;
        let rest: Vec<&str> = it.collect();
        let m = parse_matrix4(&rest.join(" ")).map_err(|_| bad())?;
        poses.insert(idx, m);
    }
    Ok(Truth {
        dir: dir.to_path_buf(),
        poses,
    })
}

/// The true depth (m) of `frame`, resized to `w` x `h` by nearest neighbour.
fn true_depth(t: &Truth, frame: i64, w: usize, h: usize) -> Result<Vec<f64>> {
    let path = t.dir.join(format!("depth/{frame}.png"));
    let bytes = std::fs::read(&path).map_err(|e| {
        LabelError::User(format!("cannot read ground truth {} ({e})", path.display()))
    })?;
    let d = spatialsv_store::media::decode_png16(&bytes)
        .map_err(|e| LabelError::User(format!("{}: {e}", path.display())))?;
    Ok(d.resized_nearest(w, h)
        .into_iter()
        .map(|v| f64::from(v) / 1000.0)
        .collect())
}

/// Scores the pseudo-labels of `ds` against the ground truth under `groundtruth`
/// (`groundtruth/<scene_id>/`); scenes without ground truth are skipped.
pub fn score(ds: &Dataset, groundtruth: &Path, selector: &Selector) -> Result<LabelQuality> {
    let m = ds.latest()?;
    let mut rows = Vec::new();
    for b in ds.read_table(&m, Table::PseudoLabels, None)? {
        rows.extend(read_pseudo_labels(&b)?);
    }
    let chosen = select_labelling(&rows, selector)?;
    let rows: Vec<&PseudoLabelRow> = rows.iter().filter(|r| r.is_of(&chosen)).collect();
    let mut truths: HashMap<String, Option<Truth>> = HashMap::new();
    let (mut all, mut kept, mut removed) = (
        DepthSum::default(),
        DepthSum::default(),
        DepthSum::default(),
    );
    let mut q = LabelQuality {
        teacher_hash: chosen.teacher.clone(),
        config_hash: chosen.config.clone(),
        ..LabelQuality::default()
    };
    // accepted, rejected, camera-consistent, inconsistent
    let mut pose_sums = [(0u64, 0.0f64, 0.0f64, 0u64); 4];
    let (mut px_total, mut px_kept) = (0u64, 0u64);
    for r in rows {
        let dir = groundtruth.join(&r.scene_id);
        let truth = match truths.entry(r.scene_id.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(if dir.join("poses.txt").exists() {
                    Some(load_truth(&dir)?)
                } else {
                    None
                })
            }
        };
        let Some(truth) = truth.as_ref() else {
            continue;
        };
        let (w, h) = (r.width as usize, r.height as usize);
        let gt = true_depth(truth, r.frame_idx, w, h)?;
        let Some(scale) = median_scale(&gt, &r.depth) else {
            continue;
        };
        q.frames += 1;
        if r.accepted {
            q.frames_accepted += 1;
        } else if let Some(kind) = r.reject_kind {
            *q.reject_reasons.entry(kind.to_string()).or_default() += 1;
        }
        for (i, (g, d)) in gt.iter().zip(&r.depth).enumerate() {
            let (g, p) = (*g, f64::from(*d) * scale);
            if g <= 0.0 || p <= 0.0 {
                continue;
            }
            px_total += 1;
            all.add(p, g);
            if !r.keep[i] {
                removed.add(p, g);
            } else if r.accepted {
                kept.add(p, g);
                px_kept += 1;
            }
        }
        if r.frame_idx != r.reference_frame_idx
            && let (Some(pr), Some(pj)) = (
                truth.poses.get(&r.reference_frame_idx),
                truth.poses.get(&r.frame_idx),
            )
        {
            let rel = mul(&invert_rigid(pr), pj);
            let (rot, dir) = (
                relative_rotation_deg(&r.reference_from_camera, &rel),
                direction_deg(&r.reference_from_camera, &rel),
            );
            for k in [
                usize::from(!r.accepted),
                2 + usize::from(!r.camera_consistent),
            ] {
                let s = &mut pose_sums[k];
                s.0 += 1;
                s.1 += rot;
                if let Some(d) = dir {
                    s.2 += d;
                    s.3 += 1;
                }
            }
        }
    }
    if q.frames == 0 {
        return Err(LabelError::User(format!(
            "no pseudo-labelled scene has ground truth under {}",
            groundtruth.display()
        )));
    }
    q.acceptance_rate = q.frames_accepted as f64 / q.frames as f64;
    q.pixel_keep_rate = px_kept as f64 / px_total.max(1) as f64;
    q.all = all.score();
    q.accepted = kept.score();
    q.removed = removed.score();
    let pose = |s: (u64, f64, f64, u64)| PoseScore {
        frames: s.0,
        rotation_deg: s.1 / s.0.max(1) as f64,
        direction_deg: s.2 / s.3.max(1) as f64,
    };
    q.pose_accepted = pose(pose_sums[0]);
    q.pose_rejected = pose(pose_sums[1]);
    q.pose_consistent = pose(pose_sums[2]);
    q.pose_inconsistent = pose(pose_sums[3]);
    Ok(q)
}

/// Two labellings of the same frames compared against the truth: the go/no-go for training
/// a student on fused labels (a single teacher pass against fused passes, and each on the
/// pixels the fused filters keep).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LabelComparison {
    /// The single-pass labelling (teacher, config).
    pub single: Labelling,
    /// The fused labelling.
    pub fused: Labelling,
    /// Frames both labelled that have ground truth.
    pub frames: u64,
    /// Single pass, every pixel of every frame.
    pub single_all: DepthScore,
    /// Fused, every pixel of every frame.
    pub fused_all: DepthScore,
    /// Fused, the kept pixels of its accepted frames (what a student trains on).
    pub fused_kept: DepthScore,
    /// Single pass on exactly those pixels.
    pub single_on_fused_kept: DepthScore,
    /// Single pass, its own kept pixels of its accepted frames.
    pub single_kept: DepthScore,
    /// Cameras of frame pairs two frames apart that share a reference, single pass.
    pub single_pairs: PoseScore,
    /// The same for the fused labelling.
    pub fused_pairs: PoseScore,
}

impl LabelComparison {
    /// What `spatialsv eval --against` prints: both labellings' depth against the truth on
    /// the same frames and pixels, their cameras, and the go/no-go ratio.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.push(format!(
            "config {} (single pass) against {} (fused), {} frames:",
            self.single.config.short(),
            self.fused.config.short(),
            self.frames
        ));
        out.push(format!(
            "{:<48} {:>10} {:>8} {:>7}",
            "depth (median-scaled)", "pixels", "AbsRel", "d1"
        ));
        for (name, d) in self.depth_rows() {
            out.push(format!(
                "{name:<48} {:>10} {:>8.4} {:>7.3}",
                d.pixels, d.abs_rel, d.delta1
            ));
        }
        for (name, p) in [
            ("single pass", &self.single_pairs),
            ("fused", &self.fused_pairs),
        ] {
            out.push(format!(
                "cameras of frame pairs 2 apart, {name:<12} {:>6} pairs {:>7.2} deg rotation {:>7.2} deg direction",
                p.frames,
                p.rotation_deg,
                p.direction_deg
            ));
        }
        out.push(format!(
            "fused kept pixels: AbsRel {:.4} against the single pass's {:.4} on the same pixels ({:.2}x; the go/no-go asks for at most 0.85x)",
            self.fused_kept.abs_rel,
            self.single_on_fused_kept.abs_rel,
            self.kept_ratio()
        ));
        out
    }

    /// Depth rows, named.
    pub fn depth_rows(&self) -> [(&'static str, &DepthScore); 5] {
        [
            ("single pass, all pixels", &self.single_all),
            (
                "single pass, its kept pixels of accepted frames",
                &self.single_kept,
            ),
            ("fused, all pixels", &self.fused_all),
            ("fused, kept pixels of accepted frames", &self.fused_kept),
            (
                "single pass on the fused kept pixels",
                &self.single_on_fused_kept,
            ),
        ]
    }

    /// Fused kept over single pass on the same pixels (AbsRel; below 1 is better). The
    /// go/no-go asks for at most 0.85.
    pub fn kept_ratio(&self) -> f64 {
        self.fused_kept.abs_rel / self.single_on_fused_kept.abs_rel.max(1e-12)
    }
}

/// Median-scales `depth` to `gt` over their valid pixels; `None` without any.
fn median_scale(gt: &[f64], depth: &[f32]) -> Option<f64> {
    let mut ratios: Vec<f64> = gt
        .iter()
        .zip(depth)
        .filter(|(g, p)| **g > 0.0 && **p > 0.0)
        .map(|(g, p)| g / f64::from(*p))
        .collect();
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    Some(ratios[ratios.len() / 2])
}

/// Relative-pose errors of frame pairs `gap` frames apart inside the same reference group.
fn pair_errors(rows: &[&PseudoLabelRow], truths: &HashMap<String, Truth>, gap: i64) -> PoseScore {
    let mut by: HashMap<(&str, i64, i64), &PseudoLabelRow> = HashMap::new();
    for r in rows {
        by.insert((&r.scene_id, r.reference_frame_idx, r.frame_idx), r);
    }
    let (mut n, mut rot, mut dir, mut nd) = (0u64, 0.0, 0.0, 0u64);
    for r in rows {
        let Some(b) = by.get(&(
            r.scene_id.as_str(),
            r.reference_frame_idx,
            r.frame_idx + gap,
        )) else {
            continue;
        };
        let Some(t) = truths.get(&r.scene_id) else {
            continue;
        };
        let (Some(ta), Some(tb)) = (t.poses.get(&r.frame_idx), t.poses.get(&b.frame_idx)) else {
            continue;
        };
        let truth = mul(&invert_rigid(ta), tb);
        let label = mul(
            &invert_rigid(&r.reference_from_camera),
            &b.reference_from_camera,
        );
        n += 1;
        rot += relative_rotation_deg(&label, &truth);
        if let Some(d) = direction_deg(&label, &truth) {
            dir += d;
            nd += 1;
        }
    }
    PoseScore {
        frames: n,
        rotation_deg: rot / n.max(1) as f64,
        direction_deg: dir / nd.max(1) as f64,
    }
}

/// The labelling whose config hash starts with `config_prefix`: `teacher`'s own when it has
/// one, else the only teacher's that does (an ensemble compared with its first member's single
/// pass).
pub fn labelling_by_config(
    ds: &Dataset,
    teacher: &Digest,
    config_prefix: &str,
) -> Result<Labelling> {
    let m = ds.latest()?;
    let mut found: Vec<Labelling> = Vec::new();
    for b in ds.read_table(
        &m,
        Table::PseudoLabels,
        Some(&["teacher_hash", "config_hash"]),
    )? {
        let cols = spatialsv_schemas::Columns::new(Table::PseudoLabels, &b)?;
        let (t, c) = (cols.strings("teacher_hash")?, cols.strings("config_hash")?);
        for r in 0..b.num_rows() {
            if c.value(r).starts_with(config_prefix) {
                found.push(Labelling {
                    teacher: Digest::from_stored(t.value(r)),
                    config: Digest::from_stored(c.value(r)),
                });
            }
        }
    }
    found.sort();
    found.dedup();
    let own: Vec<&Labelling> = found.iter().filter(|l| &l.teacher == teacher).collect();
    let pick: Vec<&Labelling> = if own.is_empty() {
        found.iter().collect()
    } else {
        own
    };
    match &pick[..] {
        [one] => Ok((*one).clone()),
        [] => Err(LabelError::User(format!(
            "no labelling has a config hash starting with '{config_prefix}'"
        ))),
        many => Err(LabelError::User(format!(
            "config hash prefix '{config_prefix}' is ambiguous: {}",
            many.iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Compares the labelling `single` with the labelling `fused` (each a teacher and config
/// hash) on the frames both labelled, against the ground truth under `groundtruth`.
pub fn compare(
    ds: &Dataset,
    groundtruth: &Path,
    single: &Labelling,
    fused: &Labelling,
) -> Result<LabelComparison> {
    let m = ds.latest()?;
    let mut rows = Vec::new();
    for b in ds.read_table(&m, Table::PseudoLabels, None)? {
        rows.extend(read_pseudo_labels(&b)?);
    }
    let of = |sel: &Labelling| -> Vec<&PseudoLabelRow> {
        rows.iter().filter(|r| r.is_of(sel)).collect()
    };
    let (a, b) = (of(single), of(fused));
    let b_by: HashMap<(&str, i64), &PseudoLabelRow> = b
        .iter()
        .map(|r| ((r.scene_id.as_str(), r.frame_idx), *r))
        .collect();
    let mut truths: HashMap<String, Truth> = HashMap::new();
    for r in a.iter().chain(&b) {
        if !truths.contains_key(&r.scene_id) {
            let dir = groundtruth.join(&r.scene_id);
            if dir.join("poses.txt").exists() {
                truths.insert(r.scene_id.clone(), load_truth(&dir)?);
            }
        }
    }
    let mut sums: [DepthSum; 5] = Default::default();
    let mut c = LabelComparison {
        single: single.clone(),
        fused: fused.clone(),
        ..LabelComparison::default()
    };
    for ra in &a {
        let Some(rb) = b_by.get(&(ra.scene_id.as_str(), ra.frame_idx)) else {
            continue;
        };
        let Some(truth) = truths.get(&ra.scene_id) else {
            continue;
        };
        if (ra.width, ra.height) != (rb.width, rb.height) {
            return Err(LabelError::User(format!(
                "{} frame {}: the labellings have different sizes",
                ra.scene_id, ra.frame_idx
            )));
        }
        let gt = true_depth(truth, ra.frame_idx, ra.width as usize, ra.height as usize)?;
        let (Some(sa), Some(sb)) = (median_scale(&gt, &ra.depth), median_scale(&gt, &rb.depth))
        else {
            continue;
        };
        c.frames += 1;
        for (i, g) in gt.iter().enumerate() {
            let (pa, pb) = (f64::from(ra.depth[i]) * sa, f64::from(rb.depth[i]) * sb);
            if *g <= 0.0 {
                continue;
            }
            if pa > 0.0 {
                sums[0].add(pa, *g);
                if ra.accepted && ra.keep[i] {
                    sums[4].add(pa, *g);
                }
            }
            if pb > 0.0 {
                sums[1].add(pb, *g);
                if rb.accepted && rb.keep[i] {
                    sums[2].add(pb, *g);
                    if pa > 0.0 {
                        sums[3].add(pa, *g);
                    }
                }
            }
        }
    }
    if c.frames == 0 {
        return Err(LabelError::User(format!(
            "the two labellings share no frame with ground truth under {}",
            groundtruth.display()
        )));
    }
    c.single_all = sums[0].score();
    c.fused_all = sums[1].score();
    c.fused_kept = sums[2].score();
    c.single_on_fused_kept = sums[3].score();
    c.single_kept = sums[4].score();
    c.single_pairs = pair_errors(&a, &truths, 2);
    c.fused_pairs = pair_errors(&b, &truths, 2);
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_sums_by_hand() {
        let mut s = DepthSum::default();
        s.add(1.1, 1.0); // rel 0.1, good
        s.add(2.0, 1.0); // rel 1.0, bad
        let sc = s.score();
        assert_eq!(sc.pixels, 2);
        assert!((sc.abs_rel - 0.55).abs() < 1e-12);
        assert!((sc.delta1 - 0.5).abs() < 1e-12);
        let yaw = |deg: f64, t: [f64; 3]| {
            spatialsv_store::geometry::from_axis_angle_deg([0.0, 1.0, 0.0], deg, t)
        };
        let identity = spatialsv_store::geometry::IDENTITY;
        assert!((relative_rotation_deg(&identity, &yaw(30.0, [0.0; 3])) - 30.0).abs() < 1e-9);
        let d = direction_deg(&yaw(0.0, [1.0, 0.0, 0.0]), &yaw(0.0, [0.0, 0.0, 2.0])).unwrap();
        assert!((d - 90.0).abs() < 1e-9);
        assert!(direction_deg(&yaw(0.0, [0.0; 3]), &yaw(0.0, [1.0, 0.0, 0.0])).is_none());
    }
}
