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
//!
//! With `[fusion] enabled`, steps 3-4 are replaced by `fused`: each video (segments of at most
//! `max_segment` frames) is labelled as a whole from many passes per frame
//! ([`crate::fusion`]), committed every `commit_every` segments.
//!
//! Rooms: `plan` (shards, resumption, windows), `teacher` (loading, config, inference),
//! `rows` (filters and rows of one window); this file runs the loop and commits.

mod fused;
mod plan;
mod rows;
mod teacher;

pub use plan::{Shard, shard_of, windows};
pub use teacher::{
    Teacher, load_teacher, load_teacher_at, load_teachers, load_teachers_at, resolve_config,
};

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;
use spatialsv_schemas::Table;
use spatialsv_store::Dataset;
use spatialsv_store::FrameStore;
use spatialsv_store::labels::{PseudoLabelRow, pseudo_labels_batch};

use crate::config::LabelConfig;
use crate::error::Result;

use plan::Window;
pub(crate) use plan::{Work, already_labeled, work_list};
use rows::window_rows;
pub(crate) use rows::{Provenance, ViewLabel, filtered_rows};
use teacher::{infer, run_order};

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

impl LabelReport {
    /// What `spatialsv label` prints for this run of `shard`, which took `seconds`.
    pub fn lines(&self, shard: Shard, seconds: f64) -> Vec<String> {
        vec![
            format!(
                "teacher {} config {}: shard {}/{} holds {} of {} clips; {} already labelled, {} labelled now",
                spatialsv_store::hash::short(&self.teacher_hash),
                spatialsv_store::hash::short(&self.config_hash),
                shard.index,
                shard.count,
                self.clips_in_shard,
                self.clips_total,
                self.clips_skipped,
                self.clips_labeled
            ),
            format!(
                "{} frames labelled in {seconds:.1}s ({:.1} frames/s), {} accepted ({:.0}%); versions {:?}",
                self.frames_labeled,
                self.frames_labeled as f64 / seconds.max(1e-9),
                self.frames_accepted,
                100.0 * self.frames_accepted as f64 / self.frames_labeled.max(1) as f64,
                self.versions
            ),
        ]
    }
}

/// Progress of a running job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Frames of this run labelled so far.
    pub frames_done: usize,
    /// Frames this run will label.
    pub frames_total: usize,
}

/// Commits `rows`, retrying on a version race with another shard.
fn commit(ds: &Dataset, rows: &[PseudoLabelRow], what: &str) -> Result<Option<u64>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let batch = pseudo_labels_batch(rows)?;
    let (_, o) = ds.commit_retrying(
        &format!("label {what}"),
        &spatialsv_store::WriteOptions::default(),
        |tx| tx.append(Table::PseudoLabels, batch.clone()),
    )?;
    Ok(o.published.then_some(o.version))
}

/// Commits the pending rows (`N <what>` in the log), records the version and empties
/// `pending` (the import's commits).
pub(crate) fn flush_rows(
    ds: &Dataset,
    pending: &mut Vec<PseudoLabelRow>,
    what: &str,
    versions: &mut Vec<u64>,
) -> Result<()> {
    if let Some(v) = commit(ds, pending, &format!("{} {what}", pending.len()))? {
        versions.push(v);
    }
    pending.clear();
    Ok(())
}

/// Commits the pending rows (`N <what> (shard K/N)` in the log), records the version and
/// empties `pending`.
fn flush(
    ds: &Dataset,
    pending: &mut Vec<PseudoLabelRow>,
    what: &str,
    shard: Shard,
    versions: &mut Vec<u64>,
) -> Result<()> {
    let message = format!(
        "{} {what} (shard {}/{})",
        pending.len(),
        shard.index,
        shard.count
    );
    if let Some(v) = commit(ds, pending, &message)? {
        versions.push(v);
        spatialsv_store::crash_point("label-after-commit");
    }
    pending.clear();
    Ok(())
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
    let (h, w) = teacher.grid(&store, &todo)?;
    let preparer = teacher.model.preparer();
    let prov = Provenance {
        teacher: &teacher.hash,
        config_hash: &config_hash,
        config_toml: &toml,
    };

    if cfg.fusion.enabled {
        let segs = fused::segments(&todo, cfg.fusion.max_segment);
        let mut frames_done = 0usize;
        let mut pending: Vec<PseudoLabelRow> = Vec::new();
        for (i, seg) in segs.iter().enumerate() {
            let _span = tracing::info_span!(
                "label segment",
                scene = seg.scene_id.as_str(),
                frames = seg.frames.len()
            )
            .entered();
            let rows = fused::label_segment(&store, teacher, seg, &cfg, &prov, (h, w))?;
            frames_done += rows.len();
            report.frames_accepted += rows.iter().filter(|r| r.accepted).count();
            pending.extend(
                rows.into_iter()
                    .filter(|r| !done.contains(&(r.scene_id.clone(), r.frame_idx))),
            );
            on_progress(Progress {
                frames_done,
                frames_total,
            });
            if (i + 1) % cfg.commit_every == 0 || i + 1 == segs.len() {
                flush(
                    ds,
                    &mut pending,
                    "fused frames",
                    shard,
                    &mut report.versions,
                )?;
            }
        }
        report.clips_labeled = todo.len();
        report.frames_labeled = frames_done;
        return Ok(report);
    }

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
        let preparer = &preparer;
        scope.spawn(move || {
            for (b, (wins, _)) in plan_ref.iter().enumerate() {
                let decoded: Result<Vec<f32>> = wins
                    .par_iter()
                    .map(|win| {
                        let v = win.frames.len();
                        let imgs = preparer.prepare(&store, &win.frames, w, h)?;
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
            let clips: Vec<&str> = wins.iter().map(|w| todo[w.work].clip_id.as_str()).collect();
            let _span = tracing::info_span!(
                "label clips",
                first = clips.first().copied().unwrap_or(""),
                last = clips.last().copied().unwrap_or(""),
                windows = wins.len(),
                views = v
            )
            .entered();
            let runs = if cfg.camera.enabled && v > 1 { v } else { 1 };
            let out = infer(teacher.model.as_ref(), images, wins.len() * runs, v, h, w)?;
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
            tracing::info!(frames = frames_done, of = frames_total, "labelled");
            on_progress(Progress {
                frames_done,
                frames_total,
            });
            if *chunk_end {
                flush(ds, &mut pending, "frames", shard, &mut report.versions)?;
            }
        }
        Ok(())
    })?;
    report.clips_labeled = todo.len();
    report.frames_labeled = frames_done;
    Ok(report)
}
