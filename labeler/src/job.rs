//! The labelling job behind `spatialsv label`.
//!
//! 1. The work is the `clips` of unlabeled frames (frames without depth or pose), sorted by
//!    clip id; `--shard K/N` keeps the clips whose id hashes to K (BLAKE3, mod N), so N
//!    processes share the work without talking to each other.
//! 2. Clips whose frames all have a label from this teacher and config are skipped: a rerun
//!    after a crash picks up where the last commit ended, and commits are idempotent anyway
//!    (the table's key is scene, frame, teacher hash and config hash).
//! 3. Each clip is cut into teacher windows of `clip_len` frames `frame_gap` apart, which
//!    interleave so every frame is labelled exactly once ([`windows`]).
//! 4. A decoding thread (rayon inside) prepares the next batch of windows while the teacher
//!    runs on the current one; the filters then run in parallel over the batch's windows.
//! 5. Rows are committed every `commit_every` clips; a commit that loses a race with another
//!    shard is retried on the new version.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::AsArray;
use burn::module::AutodiffModule;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use spatialsv_pipeline::geometry::{Intrinsics, Mat4};
use spatialsv_pipeline::labels::{PseudoLabelRow, pseudo_labels_batch};
use spatialsv_pipeline::rows::now_ns;
use spatialsv_pipeline::{CODE_VERSION, Dataset};
use spatialsv_pipeline::{FrameRef, FrameStore};
use spatialsv_schemas::{Columns, Split, Table};
use spatialsv_trainer::data::load_images;
use spatialsv_trainer::eval::camera_of_view;
use spatialsv_trainer::model::{SpatialSv, SpatialSvConfig};
use spatialsv_trainer::{Backend as B, default_device};
use spatialsv_trainer::{TrainConfig, load_model, require_checkpoint};

use crate::config::LabelConfig;
use crate::error::{LabelError, Result};
use crate::filters::{
    View, accept, confidence_keep, cycle_errors, geometric_agreement, geometric_keep,
};

/// This process's share of the work: clips whose id hashes to `index` modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// K, from 0.
    pub index: usize,
    /// N.
    pub count: usize,
}

impl Shard {
    /// All the work.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether `clip_id` belongs to this shard.
    pub fn owns(&self, clip_id: &str) -> bool {
        shard_of(clip_id, self.count) == self.index
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("--shard '{s}' is not K/N with 0 <= K < N (e.g. 0/4)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// The shard (of `n`) a clip belongs to: its id's BLAKE3, first 8 bytes, modulo `n`. Stable
/// across runs, machines and dataset growth.
pub fn shard_of(clip_id: &str, n: usize) -> usize {
    let h = blake3::hash(clip_id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    (u64::from_le_bytes(b) % n.max(1) as u64) as usize
}

/// Teacher windows over `n` frames of a clip (positions into the clip's frames): blocks of
/// `len * gap` frames, each cut into `gap` interleaved windows of `len` frames `gap` apart;
/// a last, shorter block of `m` frames uses gap `ceil(m / len)`. Every position appears in
/// exactly one window and no window is longer than `len`.
pub fn windows(n: usize, len: usize, gap: usize) -> Vec<Vec<usize>> {
    let (len, gap) = (len.max(1), gap.max(1));
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let m = (len * gap).min(n - start);
        let g = m.div_ceil(len);
        for o in 0..g {
            let w: Vec<usize> = (start + o..start + m).step_by(g).collect();
            if !w.is_empty() {
                out.push(w);
            }
        }
        start += m;
    }
    out
}

/// A trained teacher, ready for inference.
pub struct Teacher {
    /// The model on the inference backend.
    pub model: SpatialSv<B>,
    /// Its size.
    pub model_config: SpatialSvConfig,
    /// The config it was trained with (image size, clip length).
    pub train_config: TrainConfig,
    /// BLAKE3 (hex) of the checkpoint weights and model config.
    pub hash: String,
}

impl std::fmt::Debug for Teacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teacher")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// Loads the newest checkpoint of the run in `run_dir`.
pub fn load_teacher(run_dir: &Path) -> Result<Teacher> {
    let (model, model_config) = load_model(run_dir)?;
    let train_config: TrainConfig = spatialsv_pipeline::load_toml(&run_dir.join("config.toml"))?;
    let dir = require_checkpoint(run_dir)?;
    let mut h = blake3::Hasher::new();
    for path in [run_dir.join("model.json"), dir.join("model.mpk")] {
        let bytes = std::fs::read(&path).map_err(|e| LabelError::Io {
            action: "reading the teacher",
            path: path.clone(),
            message: e.to_string(),
        })?;
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(Teacher {
        model: model.valid(),
        model_config,
        train_config,
        hash: h.finalize().to_hex().to_string(),
    })
}

/// What a labelling run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelReport {
    /// BLAKE3 of the teacher.
    pub teacher_hash: String,
    /// BLAKE3 of the resolved config.
    pub config_hash: String,
    /// Clips of unlabeled frames in the dataset.
    pub clips_total: usize,
    /// Of those, this shard's.
    pub clips_in_shard: usize,
    /// Of those, already labelled by this teacher and config.
    pub clips_skipped: usize,
    /// Labelled now.
    pub clips_labeled: usize,
    /// Frames labelled now.
    pub frames_labeled: usize,
    /// Of those, accepted.
    pub frames_accepted: usize,
    /// Versions committed.
    pub versions: Vec<u64>,
}

/// Progress of a running job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Frames of this run labelled so far.
    pub frames_done: usize,
    /// Frames this run will label.
    pub frames_total: usize,
}

/// A clip to label: its id, scene, split and frames in order.
#[derive(Debug, Clone)]
struct Work {
    clip_id: String,
    scene_id: String,
    split: Split,
    frames: Vec<FrameRef>,
}

/// A window of one work item.
#[derive(Debug, Clone)]
struct Window {
    work: usize,
    frames: Vec<FrameRef>,
}

/// The labelling config with `clip_len` resolved against the teacher, and its TOML and hash.
pub fn resolve_config(
    cfg: &LabelConfig,
    teacher: &Teacher,
) -> Result<(LabelConfig, String, String)> {
    cfg.validate().map_err(LabelError::User)?;
    let mut resolved = cfg.clone();
    if resolved.clip_len == 0 {
        resolved.clip_len = teacher.train_config.clip_len;
    }
    if resolved.clip_len > teacher.model_config.max_frames {
        return Err(LabelError::User(format!(
            "clip_len {} exceeds the teacher's {} frames",
            resolved.clip_len, teacher.model_config.max_frames
        )));
    }
    let toml = spatialsv_pipeline::to_toml(&resolved)?;
    let hash = blake3::hash(toml.as_bytes()).to_hex().to_string();
    Ok((resolved, toml, hash))
}

/// Clips of unlabeled frames, sorted by id.
fn work_list(ds: &Dataset, store: &FrameStore) -> Result<Vec<Work>> {
    let m = ds.latest()?;
    let index = store.frame_index()?;
    let batches = ds.read_table(
        &m,
        Table::Clips,
        Some(&["clip_id", "scene_id", "split", "frame_indices"]),
    )?;
    let mut out = Vec::new();
    for b in &batches {
        let c = Columns::new(Table::Clips, b)?;
        let (ids, scenes, splits) = (
            c.strings("clip_id")?,
            c.strings("scene_id")?,
            c.strings("split")?,
        );
        let lists = c.lists("frame_indices")?;
        for r in 0..b.num_rows() {
            let scene = scenes.value(r).to_string();
            let idx = lists.value(r);
            let Some(idx) = idx.as_primitive_opt::<arrow::datatypes::Int64Type>() else {
                return Err(LabelError::Internal(
                    "clips.frame_indices is not Int64".into(),
                ));
            };
            let mut frames: Vec<FrameRef> = idx
                .values()
                .iter()
                .filter_map(|i| match index.get(&(scene.clone(), *i)) {
                    Some((f, false)) => Some(*f),
                    _ => None,
                })
                .collect();
            frames.sort_by_key(|f| f.frame_idx);
            frames.dedup_by_key(|f| f.frame_idx);
            if frames.is_empty() {
                continue;
            }
            out.push(Work {
                clip_id: ids.value(r).to_string(),
                scene_id: scene,
                split: splits.value(r).parse().map_err(LabelError::User)?,
                frames,
            });
        }
    }
    out.sort_by(|a, b| a.clip_id.cmp(&b.clip_id));
    out.dedup_by(|a, b| a.clip_id == b.clip_id);
    Ok(out)
}

/// (scene, frame) already labelled by this teacher and config.
fn already_labeled(ds: &Dataset, teacher: &str, config: &str) -> Result<HashSet<(String, i64)>> {
    let m = ds.latest()?;
    let batches = ds.read_table(
        &m,
        Table::PseudoLabels,
        Some(&["scene_id", "frame_idx", "teacher_hash", "config_hash"]),
    )?;
    let mut done = HashSet::new();
    for b in &batches {
        let cols = Columns::new(Table::PseudoLabels, b)?;
        let (s, t, c) = (
            cols.strings("scene_id")?,
            cols.strings("teacher_hash")?,
            cols.strings("config_hash")?,
        );
        let f = cols.i64s("frame_idx")?;
        for r in 0..b.num_rows() {
            if t.value(r) == teacher && c.value(r) == config {
                done.insert((s.value(r).to_string(), f.value(r)));
            }
        }
    }
    Ok(done)
}

/// The teacher's raw outputs for one batch of windows of equal length, flattened.
struct Outputs {
    depth: Vec<f32>,
    conf: Vec<f32>,
    rays: Vec<f32>,
}

/// Order of the frames of a `v`-frame window in the run with frame `r` as reference: `r`
/// first, the others in capture order.
fn run_order(v: usize, r: usize) -> Vec<usize> {
    std::iter::once(r)
        .chain((0..v).filter(|j| *j != r))
        .collect()
}

/// Static facts every row of a run shares.
struct Provenance<'a> {
    teacher: &'a str,
    config_hash: &'a str,
    config_toml: &'a str,
}

/// Filters one window's outputs into rows. `runs`: how many reference runs were made (1, or
/// `v` with the camera filter); the outputs hold `runs` consecutive clips of `v` views.
#[allow(clippy::too_many_arguments)]
fn window_rows(
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
                let mut poses = vec![spatialsv_pipeline::geometry::IDENTITY; v];
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
    let k_of = |j: usize| [cams[j].1, cams[j].1, w as f64 / 2.0, h as f64 / 2.0];
    let conf_keep: Vec<Vec<bool>> = (0..v)
        .map(|j| confidence_keep(conf_of(j), &cfg.confidence))
        .collect();
    let geo_keep: Vec<Vec<bool>> = if cfg.geometric.enabled {
        let views: Vec<View<'_>> = (0..v)
            .map(|j| View {
                depth: depth_of(j),
                k: Intrinsics::from_k(k_of(j)),
                pose: cams[j].0,
            })
            .collect();
        let agree = geometric_agreement(&views, w, h, &cfg.geometric);
        geometric_keep(&agree, cfg.geometric.views_needed(v))
    } else {
        vec![vec![true; hw]; v]
    };
    let now = now_ns();
    (0..v)
        .map(|j| {
            let keep: Vec<bool> = conf_keep[j]
                .iter()
                .zip(&geo_keep[j])
                .map(|(a, b)| *a && *b)
                .collect();
            let removed_conf = conf_keep[j].iter().filter(|k| !**k).count();
            let removed_geo = conf_keep[j]
                .iter()
                .zip(&geo_keep[j])
                .filter(|(a, b)| **a && !**b)
                .count();
            let kept = keep.iter().filter(|k| **k).count();
            let (rot, dir) = errors[j];
            let consistent = !cfg.camera.enabled
                || (rot <= cfg.camera.max_rotation_deg && dir <= cfg.camera.max_direction_deg);
            let verdict = if v == 1 && cfg.geometric.enabled {
                Err("window of one frame: no other view to check against".to_string())
            } else {
                accept(kept, hw, consistent, &cfg.acceptance)
            };
            let depth = depth_of(j).to_vec();
            let mut sorted = depth.clone();
            sorted.sort_by(f32::total_cmp);
            let conf = conf_of(j).to_vec();
            let conf_mean = conf.iter().map(|c| f64::from(*c)).sum::<f64>() / hw.max(1) as f64;
            PseudoLabelRow {
                scene_id: work.scene_id.clone(),
                frame_idx: frames[j].frame_idx,
                clip_id: work.clip_id.clone(),
                reference_frame_idx: frames[0].frame_idx,
                split: work.split,
                width: w as i32,
                height: h as i32,
                depth_median: f64::from(sorted[sorted.len() / 2]),
                // The built-in teacher's scale is unknown on video.
                metres_per_unit: None,
                depth,
                confidence_mean: conf_mean,
                confidence: conf,
                keep,
                intrinsics: k_of(j),
                reference_from_camera: cams[j].0,
                px_removed_confidence: removed_conf as i64,
                px_removed_geometric: removed_geo as i64,
                camera_rotation_error_deg: rot,
                camera_direction_error_deg: dir,
                camera_consistent: consistent,
                accepted: verdict.is_ok(),
                reject_reason: verdict.err(),
                teacher_hash: prov.teacher.to_string(),
                config_hash: prov.config_hash.to_string(),
                config_toml: prov.config_toml.to_string(),
                code_version: CODE_VERSION.to_string(),
                labeled_at: now,
            }
        })
        .collect()
}

/// Runs the teacher on `images` (`[n, v, 3, h, w]`).
fn infer(
    model: &SpatialSv<B>,
    images: Vec<f32>,
    n: usize,
    v: usize,
    h: usize,
    w: usize,
) -> Result<Outputs> {
    let device = default_device();
    let x = Tensor::<B, 5>::from_data(TensorData::new(images, [n, v, 3, h, w]), &device);
    let p = model.forward(x);
    let vec = |d: TensorData| {
        d.to_vec::<f32>()
            .map_err(|e| LabelError::Internal(format!("teacher output: {e:?}")))
    };
    Ok(Outputs {
        depth: vec(p.depth.into_data())?,
        conf: vec(p.depth_conf.into_data())?,
        rays: vec(p.rays.into_data())?,
    })
}

/// Commits `rows`, retrying on a version race with another shard.
fn commit(ds: &Dataset, rows: &[PseudoLabelRow], what: &str) -> Result<Option<u64>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let batch = pseudo_labels_batch(rows)?;
    let (_, o) = ds.commit_retrying(
        &format!("label {what}"),
        &spatialsv_pipeline::WriteOptions::default(),
        |tx| tx.append(Table::PseudoLabels, batch.clone()),
    )?;
    Ok(o.published.then_some(o.version))
}

/// Labels this shard's clips of `ds` with `teacher`. `on_progress` is called after every
/// batch.
pub fn label(
    ds: &Dataset,
    teacher: &Teacher,
    cfg: &LabelConfig,
    shard: Shard,
    mut on_progress: impl FnMut(Progress),
) -> Result<LabelReport> {
    let (cfg, toml, config_hash) = resolve_config(cfg, teacher)?;
    let manifest = ds.latest()?;
    let store = Arc::new(FrameStore::new(ds.clone(), &manifest, 16));
    let all = work_list(ds, &store)?;
    let mut report = LabelReport {
        teacher_hash: teacher.hash.clone(),
        config_hash: config_hash.clone(),
        clips_total: all.len(),
        ..LabelReport::default()
    };
    let mine: Vec<Work> = all.into_iter().filter(|w| shard.owns(&w.clip_id)).collect();
    report.clips_in_shard = mine.len();
    let done = already_labeled(ds, &teacher.hash, &config_hash)?;
    let todo: Vec<Work> = mine
        .into_iter()
        .filter(|w| {
            !w.frames
                .iter()
                .all(|f| done.contains(&(w.scene_id.clone(), f.frame_idx)))
        })
        .collect();
    report.clips_skipped = report.clips_in_shard - todo.len();
    let frames_total: usize = todo.iter().map(|w| w.frames.len()).sum();
    let (h, w) = (
        teacher.train_config.image_height,
        teacher.train_config.image_width,
    );
    let prov = Provenance {
        teacher: &teacher.hash,
        config_hash: &config_hash,
        config_toml: &toml,
    };

    // Batches of windows of equal length, never spanning a commit chunk.
    type Batch = (Vec<Window>, bool);
    let mut plan: Vec<Batch> = Vec::new();
    for (c, chunk) in todo.chunks(cfg.commit_every).enumerate() {
        let mut by_len: BTreeMap<usize, Vec<Window>> = BTreeMap::new();
        for (i, work) in chunk.iter().enumerate() {
            for win in windows(work.frames.len(), cfg.clip_len, cfg.frame_gap) {
                by_len.entry(win.len()).or_default().push(Window {
                    work: c * cfg.commit_every + i,
                    frames: win.iter().map(|p| work.frames[*p]).collect(),
                });
            }
        }
        let start = plan.len();
        for (_, wins) in by_len {
            for b in wins.chunks(cfg.batch_size) {
                plan.push((b.to_vec(), false));
            }
        }
        if plan.len() > start
            && let Some(last) = plan.last_mut()
        {
            last.1 = true;
        }
    }

    let mut frames_done = 0usize;
    let mut pending: Vec<PseudoLabelRow> = Vec::new();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(usize, Vec<f32>)>>(1);
    std::thread::scope(|scope| -> Result<()> {
        // Owned here so an early error drops it and unblocks the decoding thread.
        let rx = rx;
        let store = store.clone();
        let plan_ref = &plan;
        let camera = cfg.camera.enabled;
        scope.spawn(move || {
            for (b, (wins, _)) in plan_ref.iter().enumerate() {
                let decoded: Result<Vec<f32>> = wins
                    .par_iter()
                    .map(|win| {
                        let v = win.frames.len();
                        let imgs = load_images(
                            &store,
                            &win.frames,
                            w,
                            h,
                            spatialsv_trainer::data::Augment::NONE,
                            0,
                        )?;
                        if !camera || v < 2 {
                            return Ok(imgs);
                        }
                        let per = 3 * h * w;
                        Ok((0..v)
                            .flat_map(|r| run_order(v, r))
                            .flat_map(|j| imgs[j * per..(j + 1) * per].iter().copied())
                            .collect::<Vec<f32>>())
                    })
                    .collect::<Result<Vec<Vec<f32>>>>()
                    .map(|v| v.concat());
                if tx.send(decoded.map(|d| (b, d))).is_err() {
                    return;
                }
            }
        });
        for msg in rx.iter() {
            let (b, images) = msg?;
            let (wins, chunk_end) = &plan[b];
            let v = wins[0].frames.len();
            let runs = if cfg.camera.enabled && v > 1 { v } else { 1 };
            let out = infer(&teacher.model, images, wins.len() * runs, v, h, w)?;
            let rows: Vec<Vec<PseudoLabelRow>> = wins
                .par_iter()
                .enumerate()
                .map(|(i, win)| {
                    window_rows(
                        &out,
                        i * runs,
                        runs,
                        v,
                        h,
                        w,
                        &todo[win.work],
                        &win.frames,
                        &cfg,
                        &prov,
                    )
                })
                .collect();
            for r in rows {
                frames_done += r.len();
                report.frames_accepted += r.iter().filter(|r| r.accepted).count();
                pending.extend(r);
            }
            on_progress(Progress {
                frames_done,
                frames_total,
            });
            if *chunk_end {
                let what = format!(
                    "{} frames (shard {}/{})",
                    pending.len(),
                    shard.index,
                    shard.count
                );
                if let Some(v) = commit(ds, &pending, &what)? {
                    report.versions.push(v);
                    spatialsv_pipeline::crash_point("label-after-commit");
                }
                pending.clear();
            }
        }
        Ok(())
    })?;
    report.clips_labeled = todo.len();
    report.frames_labeled = frames_done;
    Ok(report)
}
