//! Pseudo-labelled clips for semi-supervised training.
//!
//! A pseudo group is the frames of the chosen labelling (teacher and config hash) that share a
//! reference frame, so one coordinate frame: one teacher window of a single-pass labelling,
//! or a whole video (segment) of a fused one. Groups of at least `clip_len` frames with an
//! accepted frame are used; each training clip is a window drawn from a group like a labeled
//! clip from a scene (a random start and a gap up to `max_gap`), so every frame of a fused
//! video can reach the student. Its targets are built like a labeled clip's
//! ([`crate::data::clip_targets`]) from the teacher's depth, intrinsics and poses; only the
//! kept pixels of accepted frames are depth and point targets, and point and ray targets are
//! used only when every frame of the window passed the pose-cycle check
//! ([`PseudoClip::cameras_ok`]). Each clip is pre-normalised to a mean point distance of 1, so depth pasted by
//! CutMix from another pseudo clip is on the same scale.
//!
//! Inputs are strongly perturbed (colour jitter, blur, CutMix between pseudo clips of the
//! batch), as in Depth Anything.

use std::collections::BTreeMap;

use spatialsv_schemas::Table;
use spatialsv_store::datagen::SplitMix64;
use spatialsv_store::geometry::Mat4;
use spatialsv_store::labels::{read_pseudo_labels, select_labelling};
use spatialsv_store::{Dataset, Manifest};
use spatialsv_store::{Labelling, Selector};

use crate::data::{
    Augment, ClipSample, FrameRef, FrameStore, Prepared, clip_targets, draw_window, flip_rows,
    load_images,
};
use crate::error::{Result, TrainError};

/// One frame of a pseudo clip.
#[derive(Debug, Clone)]
pub struct PseudoFrame {
    /// Where its image is.
    pub frame: FrameRef,
    /// Teacher depth (teacher units), `[h, w]`.
    pub depth: Vec<f32>,
    /// Pixels that are targets: kept by the filters, in an accepted frame.
    pub keep: Vec<bool>,
    /// fx, fy, cx, cy.
    pub k: [f64; 4],
    /// Camera-to-reference.
    pub pose: Mat4,
}

/// Pseudo-labelled frames in one coordinate frame (a window, or a fused video segment).
#[derive(Debug, Clone)]
pub struct PseudoClip {
    /// Frames in capture order.
    pub frames: Vec<PseudoFrame>,
    /// Per frame: whether its camera passed the camera check (cycles, or fused residuals).
    pub camera_ok: Vec<bool>,
}

impl PseudoClip {
    /// Whether every frame's camera passed its check (the cameras may supervise).
    pub fn cameras_ok(&self) -> bool {
        self.camera_ok.iter().all(|c| *c)
    }
}

/// The usable pseudo clips of one labelling.
#[derive(Debug, Clone)]
pub struct PseudoSet {
    /// The labelling (teacher and config).
    pub labelling: Labelling,
    /// Groups of at least `clip_len` frames.
    pub clips: Vec<PseudoClip>,
    /// Frames labelled in total, and accepted, in the usable clips.
    pub frames_accepted: usize,
}

/// Loads the usable groups of the labelling `selector` names (`latest` or a teacher-hash
/// prefix): at least `clip_len` frames at `w` x `h`, one of them accepted; with
/// `max_scenes > 0`, of the first `max_scenes` scenes (by id) only.
#[allow(clippy::too_many_arguments)]
pub fn load_pseudo_set(
    ds: &Dataset,
    manifest: &Manifest,
    store: &FrameStore,
    selector: &Selector,
    clip_len: usize,
    w: usize,
    h: usize,
    max_scenes: usize,
) -> Result<PseudoSet> {
    let mut rows = Vec::new();
    for b in ds.read_table(manifest, Table::PseudoLabels, None)? {
        rows.extend(read_pseudo_labels(&b)?);
    }
    if max_scenes > 0 {
        // The first `max_scenes` scenes (by id) that this labelling covers.
        let chosen = select_labelling(&rows, selector)?;
        let mut scenes: Vec<&str> = rows
            .iter()
            .filter(|r| r.is_of(&chosen))
            .map(|r| r.scene_id.as_str())
            .collect();
        scenes.sort_unstable();
        scenes.dedup();
        let keep: std::collections::HashSet<String> = scenes
            .iter()
            .take(max_scenes)
            .map(|s| s.to_string())
            .collect();
        rows.retain(|r| keep.contains(&r.scene_id));
    }
    let chosen = select_labelling(&rows, selector)?;
    let index = store.frame_index()?;
    let mut windows: BTreeMap<(String, i64), Vec<_>> = BTreeMap::new();
    for r in rows.into_iter().filter(|r| r.is_of(&chosen)) {
        if (r.width as usize, r.height as usize) != (w, h) {
            return Err(TrainError::User(format!(
                "pseudo-labels of {} are {}x{} but training is at {w}x{h}; train at the teacher's image size",
                r.scene_id, r.width, r.height
            )));
        }
        windows
            .entry((r.scene_id.clone(), r.reference_frame_idx))
            .or_default()
            .push(r);
    }
    let mut clips = Vec::new();
    let mut accepted = 0;
    for ((scene, _), mut frames) in windows {
        frames.sort_by_key(|r| r.frame_idx);
        frames.dedup_by_key(|r| r.frame_idx);
        if frames.len() < clip_len || !frames.iter().any(|r| r.accepted) {
            continue;
        }
        let camera_ok = frames.iter().map(|r| r.camera_consistent).collect();
        let mut clip = Vec::with_capacity(frames.len());
        for r in frames {
            let Some((frame, _)) = index.get(&(scene.clone(), r.frame_idx)) else {
                return Err(TrainError::User(format!(
                    "pseudo-label of {scene} frame {} has no frame in the dataset",
                    r.frame_idx
                )));
            };
            accepted += usize::from(r.accepted);
            let keep = r.keep.iter().map(|k| *k && r.accepted).collect();
            clip.push(PseudoFrame {
                frame: *frame,
                depth: r.depth,
                keep,
                k: r.intrinsics,
                pose: r.reference_from_camera,
            });
        }
        clips.push(PseudoClip {
            frames: clip,
            camera_ok,
        });
    }
    if clips.is_empty() {
        return Err(TrainError::User(format!(
            "labelling {} has no usable group of {clip_len} frames (frames sharing a reference, one of them accepted); relax the filters, label with clip_len = {clip_len}, or fuse ([fusion] enabled)",
            chosen.teacher.short()
        )));
    }
    Ok(PseudoSet {
        labelling: chosen,
        clips,
        frames_accepted: accepted,
    })
}

/// Decodes a pseudo clip at `w` x `h` with the perturbation `aug`, and builds its targets,
/// normalised to a mean point distance of 1.
pub fn load_pseudo_clip(
    store: &FrameStore,
    clip: &[PseudoFrame],
    w: usize,
    h: usize,
    aug: Augment,
    seed: u64,
) -> Result<ClipSample> {
    let refs: Vec<FrameRef> = clip.iter().map(|f| f.frame).collect();
    let images = load_images(store, &refs, w, h, aug, seed)?;
    let per = 3 * w * h;
    let views: Vec<Prepared> = clip
        .iter()
        .enumerate()
        .map(|(v, f)| {
            (
                images[v * per..(v + 1) * per].to_vec(),
                f.depth.clone(),
                f.k,
                f.pose,
            )
        })
        .collect();
    let keep: Vec<Vec<bool>> = clip.iter().map(|f| f.keep.clone()).collect();
    let mut s = clip_targets(&views, Some(&keep), w, h);
    let hw = w * h;
    let (mut sum, mut n) = (0.0f64, 0usize);
    for v in 0..clip.len() {
        for i in 0..hw {
            if s.valid[v * hw + i] > 0.0 {
                let p = [0, 1, 2].map(|c| f64::from(s.points[(v * 3 + c) * hw + i]));
                sum += (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
                n += 1;
            }
        }
    }
    let scale = if n > 0 {
        (sum / n as f64).max(1e-6) as f32
    } else {
        1.0
    };
    s.depth.iter_mut().for_each(|d| *d /= scale);
    s.points.iter_mut().for_each(|p| *p /= scale);
    for v in 0..clip.len() {
        for c in 0..3 {
            s.rays[(v * 6 + c) * hw..(v * 6 + c + 1) * hw]
                .iter_mut()
                .for_each(|o| *o /= scale);
        }
    }
    Ok(s)
}

/// How the pseudo-labelled part of one training batch is drawn.
#[derive(Debug, Clone, Copy)]
pub struct PseudoBatch {
    /// Pseudo-labelled clips in the batch.
    pub clips: usize,
    /// Frames, height and width of each clip.
    pub size: (usize, usize, usize),
    /// Largest frame gap inside a clip drawn from a longer group.
    pub max_gap: usize,
    /// Strong perturbation of the inputs.
    pub strong: Augment,
    /// Whether point and ray maps from the teacher's cameras supervise too (else depth
    /// only); clips whose pose cycles do not close never supervise them.
    pub geometry: bool,
    /// Probability of CutMix with another pseudo clip of the batch.
    pub cutmix: f64,
    /// Probability of mirroring a clip left-right ([`flip_clip`]).
    pub flip: f64,
    /// Seed of this step's augmentation.
    pub seed: u64,
}

/// A window of `len` frames of a group: the whole group when it has exactly `len` (no draw),
/// else a random gap up to `max_gap` and a random start, as labeled clips are drawn.
pub fn window_of(n: usize, len: usize, max_gap: usize, rng: &mut SplitMix64) -> Vec<usize> {
    if n <= len {
        return (0..n.min(len)).collect();
    }
    draw_window(n, len, max_gap, rng)
}

/// The pseudo-labelled clips of one training batch: `b.clips` windows drawn from the groups
/// of `set`, decoded with the strong perturbation, geometry targets switched off where they
/// must not teach, then CutMix between pairs of them.
pub fn pseudo_batch(
    set: &PseudoSet,
    store: &FrameStore,
    b: &PseudoBatch,
    sampler: &mut SplitMix64,
) -> Result<Vec<ClipSample>> {
    let (v, h, w) = b.size;
    let picks: Vec<usize> = (0..b.clips)
        .map(|_| (sampler.next_u64() % set.clips.len() as u64) as usize)
        .collect();
    let mut extra: Vec<ClipSample> = picks
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let group = &set.clips[*c];
            let at = window_of(group.frames.len(), v, b.max_gap, sampler);
            let frames: Vec<PseudoFrame> = at.iter().map(|i| group.frames[*i].clone()).collect();
            let cameras_ok = at.iter().all(|i| group.camera_ok[*i]);
            let mut s = load_pseudo_clip(
                store,
                &frames,
                w,
                h,
                b.strong,
                b.seed ^ (0xC0FFEE + k as u64),
            )?;
            if b.flip > 0.0 && sampler.next_f64() < b.flip {
                flip_clip(&mut s, v, w, h);
            }
            if !b.geometry || !cameras_ok {
                s.geometry.iter_mut().for_each(|g| *g = 0.0);
            }
            Ok(s)
        })
        .collect::<Result<_>>()?;
    for k in 0..extra.len() {
        if extra.len() > 1 && sampler.next_f64() < b.cutmix {
            let other =
                (k + 1 + (sampler.next_u64() % (extra.len() - 1) as u64) as usize) % extra.len();
            // Borrow the destination and the source apart instead of cloning.
            let (dst, src) = if k < other {
                let (lo, hi) = extra.split_at_mut(other);
                (&mut lo[k], &hi[0])
            } else {
                let (lo, hi) = extra.split_at_mut(k);
                (&mut hi[0], &lo[other])
            };
            cutmix(dst, src, v, w, h, sampler);
        }
    }
    Ok(extra)
}

/// Mirrors every view of a clip left-right: images, depth and masks are flipped, and the x
/// axis of the point maps and of the ray origins and directions changes sign, which is the
/// same mirroring of the scene seen by cameras whose principal point is the image centre
/// (the targets stay consistent with each other and with the images).
pub fn flip_clip(s: &mut ClipSample, v: usize, w: usize, h: usize) {
    let hw = w * h;
    for x in [
        &mut s.images,
        &mut s.depth,
        &mut s.valid,
        &mut s.geometry,
        &mut s.points,
        &mut s.rays,
    ] {
        flip_rows(x, w);
    }
    for k in 0..v {
        s.points[(k * 3) * hw..(k * 3 + 1) * hw]
            .iter_mut()
            .for_each(|x| *x = -*x);
        for c in [0, 3] {
            s.rays[(k * 6 + c) * hw..(k * 6 + c + 1) * hw]
                .iter_mut()
                .for_each(|x| *x = -*x);
        }
    }
    debug_assert_eq!(s.depth.len(), v * hw);
}

/// CutMix between two clips of the same shape: a random box (10% to 50% of the image) of
/// `src` is pasted into every view of `dst`: images, depth and its validity. Inside the box
/// the point and ray targets are switched off (they belong to another clip's cameras).
pub fn cutmix(
    dst: &mut ClipSample,
    src: &ClipSample,
    v: usize,
    w: usize,
    h: usize,
    rng: &mut SplitMix64,
) {
    let area = 0.1 + 0.4 * rng.next_f64();
    let side = area.sqrt();
    let (bw, bh) = (
        ((w as f64 * side) as usize).max(1),
        ((h as f64 * side) as usize).max(1),
    );
    let x0 = (rng.next_u64() % (w - bw + 1) as u64) as usize;
    let y0 = (rng.next_u64() % (h - bh + 1) as u64) as usize;
    let hw = w * h;
    for k in 0..v {
        for y in y0..y0 + bh {
            for x in x0..x0 + bw {
                let i = y * w + x;
                for c in 0..3 {
                    dst.images[(k * 3 + c) * hw + i] = src.images[(k * 3 + c) * hw + i];
                }
                dst.depth[k * hw + i] = src.depth[k * hw + i];
                dst.valid[k * hw + i] = src.valid[k * hw + i];
                dst.geometry[k * hw + i] = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(fill: f32, v: usize, hw: usize) -> ClipSample {
        ClipSample {
            images: vec![fill; v * 3 * hw],
            depth: vec![fill; v * hw],
            points: vec![fill; v * 3 * hw],
            rays: vec![fill; v * 6 * hw],
            valid: vec![1.0; v * hw],
            geometry: vec![1.0; v * hw],
            pseudo: true,
        }
    }

    #[test]
    fn windows_of_groups_take_every_frame_and_exact_groups_draw_nothing() {
        let mut rng = SplitMix64::new(5);
        let before = rng.clone().next_u64();
        assert_eq!(window_of(3, 3, 3, &mut rng), [0, 1, 2]);
        assert_eq!(rng.next_u64(), before, "an exact group draws nothing");
        // Over many draws from a 10-frame group every frame is used, including the last two.
        let mut seen = [0u32; 10];
        for _ in 0..400 {
            let w = window_of(10, 3, 3, &mut rng);
            assert_eq!(w.len(), 3);
            assert!(w.windows(2).all(|p| p[1] > p[0] && p[1] - p[0] <= 3));
            w.iter().for_each(|i| seen[*i] += 1);
        }
        assert!(seen.iter().all(|c| *c > 0), "{seen:?}");
    }

    #[test]
    fn a_flipped_clip_is_the_mirrored_scene() {
        let (v, w, h) = (2, 4, 3);
        let hw = w * h;
        let mut s = sample(1.0, v, hw);
        // Pixel (x=0, y=1) of view 1: depth 5, point (2, 3, 5), ray origin (1, 0, 0),
        // direction (0.6, 0, 0.8).
        let i = w;
        s.depth[hw + i] = 5.0;
        for (c, val) in [2.0, 3.0, 5.0].iter().enumerate() {
            s.points[(3 + c) * hw + i] = *val;
        }
        for (c, val) in [1.0, 0.0, 0.0, 0.6, 0.0, 0.8].iter().enumerate() {
            s.rays[(6 + c) * hw + i] = *val;
        }
        let mut f = s.clone();
        flip_clip(&mut f, v, w, h);
        let j = w + (w - 1); // (x = w - 1, y = 1)
        assert_eq!(f.depth[hw + j], 5.0);
        assert_eq!(
            [0, 1, 2].map(|c| f.points[(3 + c) * hw + j]),
            [-2.0, 3.0, 5.0]
        );
        assert_eq!(
            [0, 1, 2, 3, 4, 5].map(|c| f.rays[(6 + c) * hw + j]),
            [-1.0, 0.0, 0.0, -0.6, 0.0, 0.8]
        );
        // Twice is the identity.
        flip_clip(&mut f, v, w, h);
        assert_eq!(f.points, s.points);
        assert_eq!(f.rays, s.rays);
        assert_eq!(f.images, s.images);
    }

    #[test]
    fn cutmix_pastes_one_box_into_every_view_and_masks_its_geometry() {
        let (v, w, h) = (2, 20, 10);
        let mut dst = sample(1.0, v, w * h);
        let mut src = sample(2.0, v, w * h);
        src.valid[0] = 0.0;
        let mut rng = SplitMix64::new(3);
        cutmix(&mut dst, &src, v, w, h, &mut rng);
        let pasted: Vec<usize> = (0..w * h).filter(|i| dst.depth[*i] == 2.0).collect();
        let frac = pasted.len() as f64 / (w * h) as f64;
        assert!((0.05..=0.5).contains(&frac), "{frac}");
        // The same box in both views, in images, depth and geometry.
        for &i in &pasted {
            assert_eq!(dst.depth[w * h + i], 2.0);
            assert_eq!(dst.images[i], 2.0);
            assert_eq!(dst.geometry[i], 0.0);
            assert_eq!(dst.points[i], 1.0, "points are not pasted");
        }
        let outside = (0..w * h).find(|i| dst.depth[*i] == 1.0).unwrap();
        assert_eq!(dst.geometry[outside], 1.0);
    }
}
