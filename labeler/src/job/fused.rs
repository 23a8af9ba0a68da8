//! Fused labelling (`[fusion] enabled = true`): a whole video at a time (segments of at most
//! `max_segment` frames), many teacher passes per frame, fused by [`crate::fusion`].
//!
//! Per segment: decode every frame once; run the teacher on windows at every start position
//! and at each gap, plain and flipped, `batch_size` windows per forward; fuse depth (scale
//! alignment, median, spread) and cameras (pose graph); filter (spread, the teacher's own
//! confidence, acceptance) and make one row per frame, its pose relative to the segment's
//! first frame. Every frame of the segment gets exactly one row.

use std::collections::HashMap;

use rayon::prelude::*;
use spatialsv_schemas::Split;
use spatialsv_store::labels::PseudoLabelRow;
use spatialsv_store::rows::now_ns;
use spatialsv_store::{CODE_VERSION, FrameRef, FrameStore};
use spatialsv_trainer::infer::camera_of_view;
use spatialsv_trainer::infer::flip_rows;

use crate::config::LabelConfig;
use crate::error::Result;
use crate::filters::{accept, confidence_keep};
use crate::fusion::{DepthPass, PosePass, fuse_depth, fuse_poses, sliding_windows};

use super::Teacher;
use super::plan::Work;
use super::rows::{Provenance, combine, mean, positive_median};
use super::teacher::infer;

/// A run of frames of one scene fused together.
#[derive(Debug, Clone)]
pub(super) struct Segment {
    pub(super) scene_id: String,
    pub(super) split: Split,
    /// Frames in capture order, each with the ingested clip it belongs to.
    pub(super) frames: Vec<(FrameRef, String)>,
}

/// The segments of the clips in `todo`: each scene's frames in order, cut every
/// `max_segment` frames.
pub(super) fn segments(todo: &[Work], max_segment: usize) -> Vec<Segment> {
    type SceneFrames = (Split, Vec<(FrameRef, String)>);
    let mut by_scene: HashMap<&str, SceneFrames> = HashMap::new();
    for w in todo {
        let e = by_scene
            .entry(w.scene_id.as_str())
            .or_insert_with(|| (w.split, Vec::new()));
        e.1.extend(w.frames.iter().map(|f| (*f, w.clip_id.clone())));
    }
    let mut scenes: Vec<_> = by_scene.into_iter().collect();
    scenes.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::new();
    for (scene, (split, mut frames)) in scenes {
        frames.sort_by_key(|f| f.0.frame_idx);
        frames.dedup_by_key(|f| f.0.frame_idx);
        for chunk in frames.chunks(max_segment.max(2)) {
            out.push(Segment {
                scene_id: scene.to_string(),
                split,
                frames: chunk.to_vec(),
            });
        }
    }
    out
}

/// One teacher pass: a window of the segment, plain or flipped, by one ensemble member.
#[derive(Debug, Clone)]
struct Pass {
    frames: Vec<usize>,
    flipped: bool,
    member: usize,
}

/// Labels one segment: every frame gets one row.
pub(super) fn label_segment(
    store: &FrameStore,
    teacher: &Teacher,
    seg: &Segment,
    cfg: &LabelConfig,
    prov: &Provenance<'_>,
    (h, w): (usize, usize),
) -> Result<Vec<PseudoLabelRow>> {
    let preparer = teacher.model.preparer();
    let (hw, per) = (h * w, 3 * h * w);
    let n = seg.frames.len();
    let images: Vec<Vec<f32>> = seg
        .frames
        .par_iter()
        .map(|(f, _)| preparer.prepare(store, &[*f], w, h))
        .collect::<std::result::Result<_, _>>()?;
    let flipped_images: Vec<Vec<f32>> = if cfg.fusion.flips {
        images
            .par_iter()
            .map(|im| {
                let mut im = im.clone();
                flip_rows(&mut im, w);
                im
            })
            .collect()
    } else {
        Vec::new()
    };
    let members: Vec<&dyn spatialsv_trainer::infer::SpatialModel> =
        std::iter::once(teacher.model.as_ref())
            .chain(teacher.ensemble.iter().map(|m| m.as_ref()))
            .collect();
    let mut passes = Vec::new();
    for member in 0..members.len() {
        for win in sliding_windows(n, cfg.clip_len, &cfg.fusion.gaps) {
            for flipped in [false, true] {
                if flipped && !cfg.fusion.flips {
                    continue;
                }
                passes.push(Pass {
                    frames: win.clone(),
                    flipped,
                    member,
                });
            }
        }
    }
    let v = passes.first().map_or(0, |p| p.frames.len());
    let step = (w / 16).max(1);
    // Per pass: depth and teacher confidence per slot (un-flipped), and cameras (plain only).
    let mut depth_passes: Vec<DepthPass> = Vec::with_capacity(passes.len());
    let mut conf_passes: Vec<Vec<Vec<f32>>> = Vec::with_capacity(passes.len());
    let mut cameras: Vec<Option<Vec<(spatialsv_store::geometry::Rigid, f64)>>> =
        Vec::with_capacity(passes.len());
    // Batches never mix members (passes are ordered by member).
    let mut batches: Vec<&[Pass]> = Vec::new();
    for m in 0..members.len() {
        let (lo, hi) = (
            passes.partition_point(|p| p.member < m),
            passes.partition_point(|p| p.member <= m),
        );
        batches.extend(passes[lo..hi].chunks(cfg.batch_size.max(1)));
    }
    for batch in batches {
        let mut input = Vec::with_capacity(batch.len() * v * per);
        for p in batch {
            let src = if p.flipped { &flipped_images } else { &images };
            for f in &p.frames {
                input.extend_from_slice(&src[*f]);
            }
        }
        let out = infer(members[batch[0].member], input, batch.len(), v, h, w)?;
        let results: Vec<_> = batch
            .par_iter()
            .enumerate()
            .map(|(b, p)| {
                let slot = |buf: &[f32], j: usize| {
                    let mut x = buf[(b * v + j) * hw..(b * v + j + 1) * hw].to_vec();
                    if p.flipped {
                        flip_rows(&mut x, w);
                    }
                    x
                };
                let depth: Vec<Vec<f32>> = (0..v).map(|j| slot(&out.depth, j)).collect();
                let conf: Vec<Vec<f32>> = (0..v).map(|j| slot(&out.conf, j)).collect();
                let cams = (!p.flipped).then(|| {
                    let rays = &out.rays[b * v * 6 * hw..(b + 1) * v * 6 * hw];
                    (0..v)
                        .map(|j| camera_of_view(rays, j, h, w, step))
                        .collect::<Vec<_>>()
                });
                (depth, conf, cams)
            })
            .collect();
        for (p, (depth, conf, cams)) in batch.iter().zip(results) {
            depth_passes.push(DepthPass {
                frames: p.frames.clone(),
                depth,
            });
            conf_passes.push(conf);
            cameras.push(cams);
        }
    }
    let fused = fuse_depth(&depth_passes, n, hw);
    let pose_passes: Vec<PosePass> = cameras
        .iter()
        .enumerate()
        .filter_map(|(p, c)| {
            c.as_ref().map(|c| PosePass {
                frames: passes[p].frames.clone(),
                poses: c.iter().map(|x| x.0).collect(),
                scale: fused.scales[p],
            })
        })
        .collect();
    let poses = fuse_poses(&pose_passes, n);
    // Per frame: the teacher's mean confidence over its passes, and its median focal length.
    let mut conf_sum = vec![vec![0.0f32; hw]; n];
    let mut conf_n = vec![0u32; n];
    let mut focals: Vec<Vec<f64>> = vec![Vec::new(); n];
    for (p, pass) in passes.iter().enumerate() {
        for (j, f) in pass.frames.iter().enumerate() {
            for (s, c) in conf_sum[*f].iter_mut().zip(&conf_passes[p][j]) {
                *s += c;
            }
            conf_n[*f] += 1;
            if let Some(c) = &cameras[p] {
                focals[*f].push(c[j].1);
            }
        }
    }
    let now = now_ns();
    let reference = seg.frames[0].0.frame_idx;
    let rows = (0..n)
        .into_par_iter()
        .map(|f| {
            let teacher_conf: Vec<f32> = conf_sum[f]
                .iter()
                .map(|s| s / conf_n[f].max(1) as f32)
                .collect();
            let conf_keep = confidence_keep(&teacher_conf, &cfg.confidence);
            let spread_keep: Vec<bool> = fused.spread[f]
                .iter()
                .zip(&fused.depth[f])
                .map(|(s, d)| *s <= cfg.fusion.max_spread && *d > 0.0)
                .collect();
            let px = combine(&conf_keep, &spread_keep);
            let (rot, dir) = (
                poses.rotation_residual_deg[f],
                poses.direction_residual_deg[f],
            );
            let consistent = cfg.camera.consistent(rot, dir);
            let verdict = accept(px.kept, hw, consistent, &cfg.acceptance);
            let mut fl = focals[f].clone();
            fl.sort_by(f64::total_cmp);
            let focal = fl.get(fl.len() / 2).copied().unwrap_or(0.9 * w as f64);
            let depth = fused.depth[f].clone();
            let confidence: Vec<f32> = fused.spread[f]
                .iter()
                .map(|s| (1.0 / s.max(1e-3)).max(1.0))
                .collect();
            let (frame, clip) = &seg.frames[f];
            PseudoLabelRow {
                scene_id: seg.scene_id.clone(),
                frame_idx: frame.frame_idx,
                clip_id: clip.clone(),
                reference_frame_idx: reference,
                split: seg.split,
                width: w as i32,
                height: h as i32,
                depth_median: positive_median(&depth),
                metres_per_unit: None,
                depth,
                confidence_mean: mean(&confidence),
                confidence,
                keep: px.keep,
                intrinsics: [focal, focal, w as f64 / 2.0, h as f64 / 2.0],
                reference_from_camera: poses.poses[f].to_row_major(),
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
        .collect();
    Ok(rows)
}
