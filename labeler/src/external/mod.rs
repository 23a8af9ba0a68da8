//! External teachers (VGGT, Depth Anything 3, any model run outside spatialsv):
//! `spatialsv label export-clips` writes the clips to label as image folders and a manifest;
//! the user's model writes one `.npz` per clip ([`layout`](self) below); `spatialsv label
//! import` validates each file, maps it back to the stored image geometry, converts it to the
//! dataset's conventions, runs the same pixel filters and acceptance as `label`, and commits
//! `pseudo_labels`.
//!
//! The `.npz` layout (docs/labeling.md, "Bring your own teacher"), `S` views of `H x W`:
//!
//! | key | shape | what |
//! |---|---|---|
//! | `depth` | `[S,H,W]` or `[S,H,W,1]` | z-depth along the optical axis, the teacher's units |
//! | `depth_conf` | `[S,H,W]` (optional) | confidence, higher is better (VGGT: >= 1) |
//! | `extrinsic` | `[S,3,4]` or `[S,4,4]` | camera from world, OpenCV axes, same units |
//! | `intrinsic` | `[S,3,3]` | pinhole, pixels of the `H x W` grid |
//! | `frame_idx` | `[S]` (optional) | the manifest's frames, in its order when absent |
//! | `preprocess_resize` | `[2]` (optional) | `(W', H')` the stored image was resized to |
//! | `preprocess_offset` | `[2]` (optional) | `(x0, y0)`: teacher pixel `(u, v)` is resized pixel `(u + x0, v + y0)`; positive = cropped, negative = padded |
//! | `metres_per_unit` | `[]` (optional) | for metric teachers |
//!
//! Without `preprocess_*` the grid is the stored image resized to `W x H`. Other keys
//! (`world_points`, ...) are ignored.

pub mod npz;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use spatialsv_store::geometry::{Mat4, invert_rigid, mul};
use spatialsv_store::labels::PseudoLabelRow;
use spatialsv_store::{Dataset, FrameStore};

use crate::config::LabelConfig;
use crate::error::{LabelError, Result};
use crate::filters::confidence_keep;
use crate::job::{Progress, Provenance, Shard, ViewLabel, filtered_rows};

/// Format name of the manifest.
pub const MANIFEST_FORMAT: &str = "spatialsv-clips/1";

/// One exported frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedFrame {
    /// `frames.frame_idx`.
    pub frame_idx: i64,
    /// Image file, relative to the export directory.
    pub file: String,
    /// Stored width in pixels.
    pub width: u32,
    /// Stored height in pixels.
    pub height: u32,
}

/// One exported clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedClip {
    /// `clips.clip_id`.
    pub clip_id: String,
    /// Scene.
    pub scene_id: String,
    /// Split.
    pub split: String,
    /// Where the teacher writes its `.npz`, relative to the export directory.
    pub labels: String,
    /// Frames in capture order (the pose reference is the first).
    pub frames: Vec<ExportedFrame>,
}

/// `manifest.json` of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipManifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// The dataset exported.
    pub dataset: String,
    /// Its version.
    pub version: u64,
    /// The shard, `K/N`.
    pub shard: String,
    /// Clips.
    pub clips: Vec<ExportedClip>,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportReport {
    /// Clips exported.
    pub clips: usize,
    /// Frames exported.
    pub frames: usize,
    /// Image files already there (a rerun).
    pub frames_existing: usize,
    /// The manifest written.
    pub manifest: PathBuf,
}

/// A file-system-safe, collision-free name for a clip id.
fn clip_dir(clip_id: &str) -> String {
    let safe: String = clip_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hex = spatialsv_store::hash::hex_prefix(clip_id.as_bytes(), 8);
    format!("{}-{hex}", safe.trim_start_matches('.'))
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> LabelError {
    LabelError::User(format!("{}: {e}", path.display()))
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

/// The manifest's file name for a shard.
pub fn manifest_name(shard: Shard) -> String {
    if shard.count == 1 {
        "manifest.json".into()
    } else {
        format!("manifest-{}-of-{}.json", shard.index, shard.count)
    }
}

/// Exports this shard's clips of unlabeled frames of `ds` into `out`: `images/<clip>/` with
/// each frame's stored image (its own encoding, unchanged) and the manifest. Images already
/// there are kept (a rerun finishes an interrupted export).
pub fn export_clips(
    ds: &Dataset,
    out: &Path,
    shard: Shard,
    mut on_progress: impl FnMut(Progress),
) -> Result<ExportReport> {
    let manifest = ds.latest()?;
    let store = Arc::new(FrameStore::new(ds.clone(), &manifest, 16));
    let work = crate::job::work_list(ds, &store)?;
    let mine: Vec<_> = work
        .into_iter()
        .filter(|w| shard.owns(&w.clip_id))
        .collect();
    if mine.is_empty() {
        return Err(LabelError::User(format!(
            "{}: no clips of unlabeled frames{} (ingest video first)",
            ds.location(),
            if shard.count > 1 {
                format!(" in shard {}/{}", shard.index, shard.count)
            } else {
                String::new()
            }
        )));
    }
    std::fs::create_dir_all(out.join("images")).map_err(|e| io_err(out, e))?;
    std::fs::create_dir_all(out.join("labels")).map_err(|e| io_err(out, e))?;
    let frames_total: usize = mine.iter().map(|w| w.frames.len()).sum();
    let mut report = ExportReport::default();
    let mut clips = Vec::new();
    for w in &mine {
        let dir = clip_dir(&w.clip_id);
        std::fs::create_dir_all(out.join("images").join(&dir))
            .map_err(|e| io_err(&out.join("images").join(&dir), e))?;
        let mut frames = Vec::new();
        for f in &w.frames {
            let (ext, size, bytes) = store.with_image(f, |b| {
                let ext = if b.starts_with(b"\x89PNG") {
                    "png"
                } else {
                    "jpg"
                };
                (ext, image_size(b), b.to_vec())
            })?;
            let (width, height) = size.map_err(|e| {
                LabelError::User(format!(
                    "scene {} frame {}: stored image unreadable: {e}",
                    w.scene_id, f.frame_idx
                ))
            })?;
            let rel = format!("images/{dir}/{:06}.{ext}", f.frame_idx);
            let path = out.join(&rel);
            if path.exists() {
                report.frames_existing += 1;
            } else {
                write_atomic(&path, &bytes)?;
            }
            frames.push(ExportedFrame {
                frame_idx: f.frame_idx,
                file: rel,
                width,
                height,
            });
            report.frames += 1;
            on_progress(Progress {
                frames_done: report.frames,
                frames_total,
            });
        }
        clips.push(ExportedClip {
            clip_id: w.clip_id.clone(),
            scene_id: w.scene_id.clone(),
            split: w.split.to_string(),
            labels: format!("labels/{dir}.npz"),
            frames,
        });
    }
    report.clips = clips.len();
    let m = ClipManifest {
        format: MANIFEST_FORMAT.into(),
        dataset: ds.location(),
        version: manifest.version,
        shard: format!("{}/{}", shard.index, shard.count),
        clips,
    };
    let path = out.join(manifest_name(shard));
    let text = serde_json::to_string_pretty(&m)
        .map_err(|e| LabelError::Internal(format!("manifest: {e}")))?;
    write_atomic(&path, text.as_bytes())?;
    report.manifest = path;
    Ok(report)
}

/// Width and height of an encoded image, from its header.
fn image_size(bytes: &[u8]) -> std::result::Result<(u32, u32), String> {
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .into_dimensions()
        .map_err(|e| e.to_string())
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    /// BLAKE3 over the teacher's name and its files: the labelling's `teacher_hash`.
    pub teacher_hash: String,
    /// BLAKE3 of the resolved config.
    pub config_hash: String,
    /// Clips in the manifests.
    pub clips_total: usize,
    /// Clips whose file is not there (not labelled by the teacher yet).
    pub clips_without_file: usize,
    /// Clips already imported with this teacher and config.
    pub clips_skipped: usize,
    /// Clips imported now.
    pub clips_imported: usize,
    /// Frames imported now, and of those accepted.
    pub frames_imported: usize,
    /// Accepted frames.
    pub frames_accepted: usize,
    /// Files that failed validation: (file, what is wrong).
    pub bad_files: Vec<(String, String)>,
    /// Versions committed.
    pub versions: Vec<u64>,
}

impl ImportReport {
    /// What `spatialsv label import` prints for teacher `teacher_name`: the files skipped and
    /// the totals.
    pub fn lines(&self, teacher_name: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .bad_files
            .iter()
            .map(|(file, why)| format!("skipped {file}: {why}"))
            .collect();
        out.push(format!(
            "teacher {teacher_name} ({}) config {}: {} clips in the export, {} without a file, {} already imported, {} imported now ({} frames, {} accepted), {} bad files; versions {:?}",
            spatialsv_store::hash::short(&self.teacher_hash),
            spatialsv_store::hash::short(&self.config_hash),
            self.clips_total,
            self.clips_without_file,
            self.clips_skipped,
            self.clips_imported,
            self.frames_imported,
            self.frames_accepted,
            self.bad_files.len(),
            self.versions
        ));
        out
    }
}

/// One validated teacher file, mapped to the label grid.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// Label grid (the resized stored image).
    pub width: usize,
    /// Label grid height.
    pub height: usize,
    /// Per view: depth on the grid (0 = none).
    pub depth: Vec<Vec<f32>>,
    /// Per view: confidence on the grid (0 where the teacher saw nothing).
    pub conf: Vec<Vec<f32>>,
    /// Per view: where the teacher has a pixel.
    pub valid: Vec<Vec<bool>>,
    /// Per view: fx, fy, cx, cy on the grid.
    pub k: Vec<[f64; 4]>,
    /// Per view: camera to the first view's camera.
    pub reference_from_camera: Vec<Mat4>,
    /// Frame indices, in the manifest's order.
    pub frame_idx: Vec<i64>,
    /// Metres per unit, when the teacher says.
    pub metres_per_unit: Option<f64>,
}

/// Validates a teacher's arrays for `clip` and maps them to the label grid. The error says
/// which key and what is wrong.
pub fn map_teacher_output(
    a: &BTreeMap<String, npz::Array>,
    clip: &ExportedClip,
) -> std::result::Result<Mapped, String> {
    let get = |k: &str| a.get(k).ok_or_else(|| format!("missing key '{k}'"));
    let depth = get("depth")?;
    let s = clip.frames.len();
    let (ds, th, tw) = match depth.shape[..] {
        [n, h, w] | [n, h, w, 1] => (n, h, w),
        _ => {
            return Err(format!(
                "'depth' has shape {:?}, expected [S,H,W] or [S,H,W,1]",
                depth.shape
            ));
        }
    };
    if ds != s {
        return Err(format!(
            "'depth' has {ds} views, the manifest lists {s} frames for clip {}",
            clip.clip_id
        ));
    }
    if th < 2 || tw < 2 {
        return Err(format!("'depth' maps of {tw}x{th} are too small"));
    }
    let hw = th * tw;
    let bad = depth
        .data
        .iter()
        .filter(|d| !d.is_finite() || **d < 0.0)
        .count();
    if bad > 0 {
        return Err(format!("'depth' has {bad} non-finite or negative values"));
    }
    let conf = match a.get("depth_conf") {
        Some(c) => {
            if c.shape != [s, th, tw] && c.shape != [s, th, tw, 1] {
                return Err(format!(
                    "'depth_conf' has shape {:?}, expected [{s},{th},{tw}]",
                    c.shape
                ));
            }
            if c.data.iter().any(|v| !v.is_finite()) {
                return Err("'depth_conf' has non-finite values".into());
            }
            c.f32s()
        }
        None => vec![1.0; s * hw],
    };
    let ext = get("extrinsic")?;
    let rows = match ext.shape[..] {
        [n, 3, 4] if n == s => 3,
        [n, 4, 4] if n == s => 4,
        _ => {
            return Err(format!(
                "'extrinsic' has shape {:?}, expected [{s},3,4] or [{s},4,4]",
                ext.shape
            ));
        }
    };
    let mut cam_from_world: Vec<Mat4> = Vec::with_capacity(s);
    for j in 0..s {
        let m = &ext.data[j * rows * 4..(j + 1) * rows * 4];
        let mut t = spatialsv_store::geometry::IDENTITY;
        t[..12].copy_from_slice(&m[..12]);
        if t.iter().any(|v| !v.is_finite()) {
            return Err(format!("'extrinsic' of view {j} has non-finite values"));
        }
        let r = nalgebra::Matrix3::new(t[0], t[1], t[2], t[4], t[5], t[6], t[8], t[9], t[10]);
        let ortho = (r.transpose() * r - nalgebra::Matrix3::identity())
            .abs()
            .max();
        let det = r.determinant();
        if ortho > 1e-3 || (det - 1.0).abs() > 1e-3 {
            return Err(format!(
                "'extrinsic' of view {j} is not rigid (|R^T R - I| = {ortho:.2e}, det R = {det:.4})"
            ));
        }
        cam_from_world.push(t);
    }
    let intr = get("intrinsic")?;
    if intr.shape != [s, 3, 3] {
        return Err(format!(
            "'intrinsic' has shape {:?}, expected [{s},3,3]",
            intr.shape
        ));
    }
    let frame_idx: Vec<i64> = clip.frames.iter().map(|f| f.frame_idx).collect();
    if let Some(fi) = a.get("frame_idx") {
        let got: Vec<i64> = fi.data.iter().map(|v| *v as i64).collect();
        if got != frame_idx {
            return Err(format!(
                "'frame_idx' {got:?} is not the manifest's frames {frame_idx:?}"
            ));
        }
    }
    let pair = |k: &str| -> std::result::Result<Option<[f64; 2]>, String> {
        match a.get(k) {
            None => Ok(None),
            Some(v) if v.data.len() == 2 && v.data.iter().all(|x| x.is_finite()) => {
                Ok(Some([v.data[0], v.data[1]]))
            }
            Some(v) => Err(format!(
                "'{k}' must be two finite numbers, got {:?}",
                v.data
            )),
        }
    };
    let resize = pair("preprocess_resize")?.unwrap_or([tw as f64, th as f64]);
    let offset = pair("preprocess_offset")?.unwrap_or([0.0, 0.0]);
    let (gw, gh) = (resize[0].round() as usize, resize[1].round() as usize);
    if gw < 2 || gh < 2 || gw > 8192 || gh > 8192 {
        return Err(format!(
            "'preprocess_resize' {resize:?} is not an image size"
        ));
    }
    let (x0, y0) = (offset[0].round() as i64, offset[1].round() as i64);
    let metres_per_unit = match a.get("metres_per_unit") {
        Some(v) if v.data.len() == 1 && v.data[0].is_finite() && v.data[0] > 0.0 => Some(v.data[0]),
        Some(v) => {
            return Err(format!(
                "'metres_per_unit' must be one positive number, got {:?}",
                v.data
            ));
        }
        None => None,
    };
    let ref_world = cam_from_world[0];
    let mut out = Mapped {
        width: gw,
        height: gh,
        depth: Vec::with_capacity(s),
        conf: Vec::with_capacity(s),
        valid: Vec::with_capacity(s),
        k: Vec::with_capacity(s),
        reference_from_camera: Vec::with_capacity(s),
        frame_idx,
        metres_per_unit,
    };
    for (j, cam) in cam_from_world.iter().enumerate() {
        let ki = &intr.data[j * 9..(j + 1) * 9];
        let (fx, fy, cx, cy) = (ki[0], ki[4], ki[2], ki[5]);
        if !(fx.is_finite()
            && fy.is_finite()
            && fx > 0.0
            && fy > 0.0
            && cx.is_finite()
            && cy.is_finite())
        {
            return Err(format!(
                "'intrinsic' of view {j} has no positive finite focal length"
            ));
        }
        let (mut d, mut c, mut v) = (
            vec![0f32; gw * gh],
            vec![0f32; gw * gh],
            vec![false; gw * gh],
        );
        for y in 0..gh {
            let ty = y as i64 - y0;
            if ty < 0 || ty >= th as i64 {
                continue;
            }
            for x in 0..gw {
                let tx = x as i64 - x0;
                if tx < 0 || tx >= tw as i64 {
                    continue;
                }
                let src = j * hw + ty as usize * tw + tx as usize;
                let z = depth.data[src] as f32;
                if z > 0.0 {
                    d[y * gw + x] = z;
                    c[y * gw + x] = conf[src];
                    v[y * gw + x] = true;
                }
            }
        }
        out.depth.push(d);
        out.conf.push(c);
        out.valid.push(v);
        out.k.push([fx, fy, cx + x0 as f64, cy + y0 as f64]);
        out.reference_from_camera
            .push(mul(&ref_world, &invert_rigid(cam)));
    }
    Ok(out)
}

/// Reads every manifest (`manifest*.json`) of an export.
pub fn read_manifests(from: &Path) -> Result<Vec<ClipManifest>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(from)
        .map_err(|e| io_err(from, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("manifest") && n.ends_with(".json"))
        })
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(LabelError::User(format!(
            "{}: no manifest.json (made by `spatialsv label export-clips`)",
            from.display()
        )));
    }
    names
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| io_err(p, e))?;
            let m: ClipManifest = serde_json::from_str(&text)
                .map_err(|e| io_err(p, format!("not a clip manifest: {e}")))?;
            if m.format != MANIFEST_FORMAT {
                return Err(io_err(
                    p,
                    format!("format '{}', expected '{MANIFEST_FORMAT}'", m.format),
                ));
            }
            Ok(m)
        })
        .collect()
}

/// Imports an external teacher's files from the export `from` into `ds` as pseudo-labels.
/// Files are validated one by one: a bad file is reported and skipped, the rest goes on.
pub fn import(
    ds: &Dataset,
    from: &Path,
    teacher_name: &str,
    cfg: &LabelConfig,
    mut on_progress: impl FnMut(Progress),
) -> Result<ImportReport> {
    if teacher_name.trim().is_empty() {
        return Err(LabelError::User("--teacher-name must not be empty".into()));
    }
    cfg.validate().map_err(|e| LabelError::User(e.0))?;
    let manifests = read_manifests(from)?;
    let mut clips: Vec<ExportedClip> = manifests.into_iter().flat_map(|m| m.clips).collect();
    clips.sort_by(|a, b| a.clip_id.cmp(&b.clip_id));
    clips.dedup_by(|a, b| a.clip_id == b.clip_id);
    let mut report = ImportReport {
        clips_total: clips.len(),
        ..ImportReport::default()
    };
    // The teacher is its files: their hashes (sorted by clip) with its name.
    let mut hasher = blake3::Hasher::new();
    hasher.update(format!("external teacher {teacher_name}\n").as_bytes());
    let mut present = Vec::new();
    for c in &clips {
        let path = from.join(&c.labels);
        // Streamed: a teacher's files can be large, and are read again when imported.
        let mut file_hash = blake3::Hasher::new();
        match std::fs::File::open(&path).and_then(|f| file_hash.update_reader(f).map(drop)) {
            Ok(()) => {
                hasher.update(
                    format!("{} {}\n", c.clip_id, file_hash.finalize().to_hex()).as_bytes(),
                );
                present.push((c, path));
            }
            Err(_) => report.clips_without_file += 1,
        }
    }
    if present.is_empty() {
        return Err(LabelError::User(format!(
            "{}: none of the {} clips has a teacher file under labels/ (run the teacher first)",
            from.display(),
            clips.len()
        )));
    }
    report.teacher_hash = hasher.finalize().to_hex().to_string();
    // Only the filters that apply to one pass of an external teacher.
    let mut resolved = cfg.clone();
    resolved.fusion.enabled = false;
    resolved.camera.enabled = false;
    resolved.acceptance.require_cameras = false;
    let toml = format!(
        "{}\n[import]\nteacher_name = {:?}\nfrom = {:?}\nfiles = {}\n",
        spatialsv_store::to_toml(&resolved)?,
        teacher_name,
        from.display().to_string(),
        present.len()
    );
    report.config_hash = blake3::hash(toml.as_bytes()).to_hex().to_string();
    let manifest = ds.latest()?;
    let store = Arc::new(FrameStore::new(ds.clone(), &manifest, 16));
    let work = crate::job::work_list(ds, &store)?;
    let known: BTreeMap<&str, &crate::job::Work> =
        work.iter().map(|w| (w.clip_id.as_str(), w)).collect();
    let done: HashSet<(String, i64)> =
        crate::job::already_labeled(ds, &report.teacher_hash, &report.config_hash)?;
    let frames_total: usize = present.iter().map(|(c, _)| c.frames.len()).sum();
    let mut frames_done = 0;
    let mut pending: Vec<PseudoLabelRow> = Vec::new();
    let n_present = present.len();
    for (i, (clip, path)) in present.into_iter().enumerate() {
        let name = path.display().to_string();
        frames_done += clip.frames.len();
        let result = (|| -> std::result::Result<Option<Vec<PseudoLabelRow>>, String> {
            let w = known.get(clip.clip_id.as_str()).ok_or_else(|| {
                format!(
                    "clip {} is not among the dataset's unlabeled clips",
                    clip.clip_id
                )
            })?;
            let ids: HashSet<i64> = w.frames.iter().map(|f| f.frame_idx).collect();
            if let Some(f) = clip.frames.iter().find(|f| !ids.contains(&f.frame_idx)) {
                return Err(format!(
                    "frame {} of clip {} is not an unlabeled frame of scene {}",
                    f.frame_idx, clip.clip_id, w.scene_id
                ));
            }
            if clip
                .frames
                .iter()
                .all(|f| done.contains(&(w.scene_id.clone(), f.frame_idx)))
            {
                return Ok(None);
            }
            let arrays = npz::read(&path).map_err(|e| e.0)?;
            let m = map_teacher_output(&arrays, clip)?;
            Ok(Some(rows_of(m, w, &resolved, &report, &toml)))
        })();
        match result {
            Ok(None) => report.clips_skipped += 1,
            Ok(Some(rows)) => {
                report.clips_imported += 1;
                report.frames_imported += rows.len();
                report.frames_accepted += rows.iter().filter(|r| r.accepted).count();
                pending.extend(rows);
            }
            Err(e) => report.bad_files.push((name, e)),
        }
        on_progress(Progress {
            frames_done,
            frames_total,
        });
        if (i + 1) % cfg.commit_every.max(1) == 0 || i + 1 == n_present {
            crate::job::flush_rows(
                ds,
                &mut pending,
                &format!("imported frames of {teacher_name}"),
                &mut report.versions,
            )?;
        }
    }
    Ok(report)
}

/// Pseudo-label rows of one mapped clip: the confidence filter on the teacher's own
/// confidence (percentiles over the pixels it saw, never the cropped margins), then the same
/// geometric round trip and acceptance as `label` ([`crate::job::filtered_rows`]) with the
/// teacher's cameras; the pose-cycle check needs several passes and is not run.
fn rows_of(
    m: Mapped,
    w: &crate::job::Work,
    cfg: &LabelConfig,
    report: &ImportReport,
    toml: &str,
) -> Vec<PseudoLabelRow> {
    let hw = m.width * m.height;
    let views: Vec<ViewLabel> = (0..m.depth.len())
        .map(|j| {
            let valid = &m.valid[j];
            let seen: Vec<f32> = (0..hw)
                .filter(|p| valid[*p])
                .map(|p| m.conf[j][p])
                .collect();
            let mut keep_seen = confidence_keep(&seen, &cfg.confidence).into_iter();
            let conf_keep: Vec<bool> = valid
                .iter()
                .map(|v| *v && keep_seen.next().unwrap_or(false))
                .collect();
            ViewLabel {
                frame_idx: m.frame_idx[j],
                depth: m.depth[j].clone(),
                confidence_mean: seen.iter().map(|c| f64::from(*c)).sum::<f64>()
                    / seen.len().max(1) as f64,
                confidence: m.conf[j].clone(),
                conf_keep,
                k: m.k[j],
                reference_from_camera: m.reference_from_camera[j],
                camera_errors_deg: (0.0, 0.0),
            }
        })
        .collect();
    let prov = Provenance {
        teacher: &report.teacher_hash,
        config_hash: &report.config_hash,
        config_toml: toml,
    };
    filtered_rows(views, m.width, m.height, m.metres_per_unit, w, cfg, &prov)
}
