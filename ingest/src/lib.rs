//! Ingestion of 3D scan layouts (and, in [`video`], raw video) into a dataset.
//!
//! Each layout module only *lists* a scene: it parses the text files (poses, intrinsics,
//! associations), normalises every pose to `world_from_camera` in OpenCV axes and metres, and
//! names every frame's image and depth files ([`SourceScene`]). The shared loader here then
//! reads the files in parallel, validates them, quarantines what is wrong with its reason,
//! and streams the rest into the store; a per-scene reprojection self-check catches
//! convention errors the per-frame checks cannot see.

mod check;
mod colmap;
pub mod detect;
mod nerfstudio;
mod ply;
mod scannet;
mod sevenscenes;
pub mod synth;
mod tum;
pub mod video;

use spatialsv_schemas::Invalid;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use spatialsv_schemas::{SourceKind, Split, Table};

pub use check::{Consistency, PairView, reprojection_consistency};
pub use detect::{ScanFormat, detect_format};

use spatialsv_store::geometry::Mat4;
use spatialsv_store::media::{self, DepthImage, MediaError};
use spatialsv_store::objects::ObjectView;
use spatialsv_store::progress::Progress;
use spatialsv_store::rows::{
    DepthMap, FrameRow, QuarantineRow, SceneRow, frames_batch, now_ns, quarantine_batch,
    scenes_batch,
};
use spatialsv_store::{Dataset, Transaction, WriteOptions};
use spatialsv_store::{Error, Result};

/// Why an input was refused: a short machine-readable reason and an explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// e.g. `non_finite_pose`, `truncated_image`, `missing_depth`.
    pub reason: &'static str,
    /// Human-readable detail.
    pub detail: String,
}

impl Refusal {
    /// A refusal.
    pub fn new(reason: &'static str, detail: impl std::fmt::Display) -> Self {
        Self {
            reason,
            detail: detail.to_string(),
        }
    }
}

/// Pinhole intrinsics as a layout gives them, optionally with the image size they were
/// calibrated at (rescaled to the stored image by [`SourceIntrinsics::rescaled`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceIntrinsics {
    /// fx, fy, cx, cy in pixels.
    pub k: [f64; 4],
    /// Size the intrinsics refer to; `None` means "the stored image's size".
    pub size: Option<(u32, u32)>,
}

impl SourceIntrinsics {
    /// SourceIntrinsics at the stored image's size.
    pub fn at_stored(k: [f64; 4]) -> Self {
        Self { k, size: None }
    }

    /// Rescales to an image of `w` x `h`. Refuses when the aspect ratio differs by more than
    /// 1%, which no scaling can explain.
    pub fn rescaled(&self, w: u32, h: u32) -> std::result::Result<[f64; 4], Invalid> {
        let Some((cw, ch)) = self.size else {
            return Ok(self.k);
        };
        if (cw, ch) == (w, h) {
            return Ok(self.k);
        }
        let (sx, sy) = (f64::from(w) / f64::from(cw), f64::from(h) / f64::from(ch));
        if (sx / sy - 1.0).abs() > 0.01 {
            return Err(Invalid(format!(
                "intrinsics are for {cw}x{ch} but the image is {w}x{h} (different aspect)"
            )));
        }
        Ok([
            self.k[0] * sx,
            self.k[1] * sy,
            self.k[2] * sx,
            self.k[3] * sy,
        ])
    }
}

/// Where a frame's depth map is and how to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDepth {
    /// The 16-bit PNG.
    pub path: PathBuf,
    /// Metres per stored unit.
    pub scale_m: f64,
    /// A stored value meaning "invalid" other than 0 (7-Scenes uses 65535); rewritten to 0.
    pub invalid_value: Option<u16>,
    /// SourceIntrinsics of the depth camera; `None` means "registered to colour" (the colour
    /// intrinsics rescaled to the depth map's size).
    pub intrinsics: Option<SourceIntrinsics>,
}

/// One frame as a layout describes it, before any file is read.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFrame {
    /// Index in capture order.
    pub frame_idx: i64,
    /// Time since the start of the scene.
    pub timestamp_ns: i64,
    /// The colour image.
    pub image_path: PathBuf,
    /// The depth map, if the layout has one for this frame.
    pub depth: Option<SourceDepth>,
    /// Colour intrinsics.
    pub intrinsics: SourceIntrinsics,
    /// COLMAP camera model name, lower case.
    pub camera_model: String,
    /// Distortion coefficients in COLMAP order.
    pub distortion: Vec<f64>,
    /// Camera-to-world in OpenCV axes, metres (not yet validated).
    pub world_from_camera: Option<Mat4>,
    /// `groundtruth`, `sfm`, `synthetic`.
    pub pose_source: &'static str,
    /// A problem already known from the listing (e.g. no depth partner): the frame is
    /// quarantined without reading it.
    pub problem: Option<Refusal>,
}

/// One scene as a layout describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceScene {
    /// Scene id (from the directory names).
    pub scene_id: String,
    /// The scene's directory.
    pub root: PathBuf,
    /// Layout name as stored in `scenes.dataset_format`.
    pub format: &'static str,
    /// Frames in capture order.
    pub frames: Vec<SourceFrame>,
    /// Notes for the summary (e.g. how TUM frames were associated).
    pub notes: Vec<String>,
    /// Why the scene could not be listed at all (a malformed pose list or intrinsics
    /// file): the scene is quarantined as a whole while the other scenes go on.
    pub failure: Option<Refusal>,
    /// The scene's annotated objects, when the layout has them.
    pub annotations: Option<Annotations>,
    /// The split of a `train` / `val` / `test` folder between the source and the scene,
    /// which `--split auto` takes before the hash.
    pub split_hint: Option<Split>,
}

/// A scene's objects and where its per-frame instance (object-id) images are.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotations {
    /// The objects (`objects` rows).
    pub objects: spatialsv_store::objects::SceneObjects,
    /// Directory of `{frame_idx}.png` instance images (`object_views` rows), when present.
    pub instance_dir: Option<PathBuf>,
}

/// How scenes get their split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitChoice {
    /// From a `train` / `val` / `test` folder between the source and the scene
    /// (`SourceScene::split_hint`), else a hash of the scene id: 80% train, 10% val, 10% test,
    /// stable across runs.
    Auto,
    /// Every scene of this run gets this split.
    Fixed(Split),
}

impl SplitChoice {
    /// The split of `scene_id`.
    pub fn of(self, scene_id: &str) -> Split {
        match self {
            SplitChoice::Fixed(s) => s,
            SplitChoice::Auto => {
                let h = blake3::hash(scene_id.as_bytes());
                match u16::from_le_bytes([h.as_bytes()[0], h.as_bytes()[1]]) % 10 {
                    8 => Split::Val,
                    9 => Split::Test,
                    _ => Split::Train,
                }
            }
        }
    }
}

/// Options of a scan ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Split assignment.
    pub split: SplitChoice,
    /// TUM: largest colour/depth and colour/pose timestamp difference accepted, seconds.
    pub tum_max_dt_s: f64,
    /// SourceIntrinsics to use instead of the layout's (fx, fy, cx, cy at the stored colour size).
    pub intrinsics: Option<[f64; 4]>,
    /// Worker threads (`None`: one per core).
    pub jobs: Option<usize>,
    /// Commit after at least this many frames, so an interrupted run keeps its progress.
    pub commit_every_frames: usize,
    /// Frame pairs per scene for the reprojection self-check.
    pub check_pairs: usize,
    /// Parquet layout.
    pub write: WriteOptions,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            split: SplitChoice::Auto,
            tum_max_dt_s: 0.02,
            intrinsics: None,
            jobs: None,
            commit_every_frames: 2000,
            check_pairs: 8,
            write: WriteOptions::default(),
        }
    }
}

/// What happened to one scene.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SceneReport {
    /// Scene id.
    pub scene_id: String,
    /// Layout.
    pub format: String,
    /// Split given to the scene.
    pub split: String,
    /// Frames the layout lists.
    pub frames_found: usize,
    /// Frames newly committed.
    pub ingested: usize,
    /// Frames already in the dataset (same content hash).
    pub duplicates: usize,
    /// Frames refused, by reason.
    pub quarantined: BTreeMap<String, usize>,
    /// Reprojection self-check.
    pub consistency: Option<Consistency>,
    /// Warnings for the user.
    pub warnings: Vec<String>,
    /// Notes from the layout reader.
    pub notes: Vec<String>,
    /// Annotated objects of the scene (`objects` rows).
    pub objects: usize,
    /// Object sightings (`object_views` rows).
    pub object_views: usize,
}

/// What an ingest run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestReport {
    /// Per scene, in order.
    pub scenes: Vec<SceneReport>,
    /// Dataset version after the run.
    pub version: u64,
}

impl IngestReport {
    /// What `spatialsv ingest` prints for this run into the dataset at `location`: each
    /// scene's notes and line, the summary and the version (warnings are separate:
    /// [`SceneReport::warnings`]).
    pub fn lines(&self, location: &str) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.scenes {
            for n in &s.notes {
                out.push(format!("{}: {n}", s.scene_id));
            }
            let q: usize = s.quarantined.values().sum();
            let mut line = format!(
                "{} ({}, {}): {} ingested, {} duplicates skipped, {} quarantined",
                s.scene_id, s.format, s.split, s.ingested, s.duplicates, q
            );
            if let Some(c) = &s.consistency {
                line.push_str(&format!(
                    "; reprojection agreement {:.1}% ({} pairs, {:.0}% overlap)",
                    c.agreement * 100.0,
                    c.pairs,
                    c.overlap * 100.0
                ));
            }
            if s.objects > 0 {
                line.push_str(&format!(
                    "; {} objects, {} object sightings",
                    s.objects, s.object_views
                ));
            }
            out.push(line);
        }
        let q = self.quarantined();
        let qn: usize = q.values().sum();
        let reasons: Vec<String> = q.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out.push(format!(
            "summary: {} scenes, {} frames ingested, {} duplicates skipped, {} quarantined{}",
            self.scenes.len(),
            self.ingested(),
            self.duplicates(),
            qn,
            if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", reasons.join(", "))
            }
        ));
        out.push(format!("dataset {location} is at version {}", self.version));
        out
    }

    /// Frames newly committed.
    pub fn ingested(&self) -> usize {
        self.scenes.iter().map(|s| s.ingested).sum()
    }

    /// Frames skipped as duplicates.
    pub fn duplicates(&self) -> usize {
        self.scenes.iter().map(|s| s.duplicates).sum()
    }

    /// Frames quarantined, by reason.
    pub fn quarantined(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in &self.scenes {
            for (r, n) in &s.quarantined {
                *out.entry(r.clone()).or_default() += n;
            }
        }
        out
    }
}

/// A frame read and validated, plus its decoded depth when the self-check wants it.
struct Loaded {
    row: FrameRow,
    depth_for_check: Option<DepthImage>,
    /// Objects seen, from the frame's instance image (when the scene has them); an unreadable
    /// instance image costs the frame its object rows, not the frame.
    object_views: Option<std::result::Result<Vec<ObjectView>, String>>,
}

/// Smallest share of an instance image's pixels an object must cover to count as seen
/// (0.1%: 19 pixels at 160x120, 307 at ScanNet's 640x480; at least one pixel).
const MIN_OBJECT_FRACTION: f64 = 0.001;

/// The objects an instance image shows, with their true depth from `depth`.
fn frame_object_views(
    path: &Path,
    depth: Option<(&DepthImage, f64)>,
) -> std::result::Result<Vec<ObjectView>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (w, h, ids) = spatialsv_store::objects::decode_instance(&bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    media::check_dims(w, h).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(spatialsv_store::objects::object_views(
        &ids,
        w,
        h,
        depth.map(|(d, scale)| (d.values.as_slice(), d.width, d.height, scale)),
        ((f64::from(w) * f64::from(h) * MIN_OBJECT_FRACTION) as usize).max(1),
    ))
}

fn read(path: &Path) -> std::result::Result<Vec<u8>, Refusal> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Refusal::new("missing_file", format!("{} does not exist", path.display()))
        }
        _ => Refusal::new("unreadable_file", format!("{}: {e}", path.display())),
    })
}

fn fov_deg(f: f64, size: u32) -> f64 {
    2.0 * (f64::from(size) / 2.0 / f).atan().to_degrees()
}

/// Reads and validates one frame.
fn load_frame(
    scene: &SourceScene,
    f: &SourceFrame,
    split: Split,
    want_depth: bool,
) -> std::result::Result<Loaded, Refusal> {
    if let Some(p) = &f.problem {
        return Err(p.clone());
    }
    let pose = match f.world_from_camera {
        None => {
            return Err(Refusal::new(
                "missing_pose",
                "the layout has no pose for this frame",
            ));
        }
        Some(p) => p,
    };
    if let Err(msg) = spatialsv_schemas::check_pose(&pose) {
        let reason = if msg.contains("not finite") {
            "non_finite_pose"
        } else {
            "invalid_pose"
        };
        return Err(Refusal::new(reason, msg));
    }
    let image = read(&f.image_path)?;
    let codec = media::sniff_codec(&image).ok_or_else(|| {
        Refusal::new(
            "unreadable_image",
            format!("{} is neither JPEG nor PNG", f.image_path.display()),
        )
    })?;
    media::check_complete(&image, codec).map_err(|e| Refusal::new("truncated_image", e))?;
    let (w, h) = media::image_dims(&image).map_err(|e| Refusal::new("unreadable_image", e))?;
    let at = |e: MediaError| format!("{e}: {}", f.image_path.display());
    media::check_dims(w, h).map_err(|e| Refusal::new("oversized_image", at(e)))?;
    // Stored bytes must decode: training decodes every frame, and one that does not would
    // fail a whole run far from here.
    media::verify_decodes(&image).map_err(|e| Refusal::new("corrupt_image", at(e)))?;
    let k = f
        .intrinsics
        .rescaled(w, h)
        .map_err(|e| Refusal::new("intrinsics_mismatch", e))?;
    if !(k[0] > 0.0 && k[1] > 0.0 && k.iter().all(|v| v.is_finite())) {
        return Err(Refusal::new(
            "invalid_intrinsics",
            format!("fx fy cx cy = {k:?}"),
        ));
    }
    let instance = scene
        .annotations
        .as_ref()
        .and_then(|a| a.instance_dir.as_ref())
        .map(|d| d.join(format!("{}.png", f.frame_idx)))
        .filter(|p| p.exists());
    let mut depth_for_check = None;
    let mut decoded_depth: Option<(DepthImage, f64)> = None;
    let depth = match &f.depth {
        None => None,
        Some(d) => {
            let mut bytes = read(&d.path).map_err(|r| match r.reason {
                "missing_file" => Refusal::new("missing_depth", r.detail),
                _ => r,
            })?;
            let (dw, dh) = media::check_png16(&bytes).map_err(|e| {
                let reason = if matches!(e, MediaError::Truncated { .. }) {
                    "truncated_depth"
                } else {
                    "unreadable_depth"
                };
                Refusal::new(reason, format!("{e}: {}", d.path.display()))
            })?;
            let at = |e: String| format!("{e}: {}", d.path.display());
            media::check_dims(dw, dh)
                .map_err(|e| Refusal::new("oversized_depth", at(e.to_string())))?;
            // Decoded in full: a depth map whose data does not decode is refused here, not
            // in the middle of a training run.
            let mut img = media::decode_png16(&bytes).map_err(|e| {
                Refusal::new(
                    "corrupt_depth",
                    at(format!("pixel data does not decode ({e})")),
                )
            })?;
            if let Some(bad) = d.invalid_value {
                // Canonical depth uses 0 for invalid: rewrite the layout's marker (lossless
                // for every valid value).
                for v in &mut img.values {
                    if *v == bad {
                        *v = 0;
                    }
                }
                bytes =
                    media::encode_png16(&img).map_err(|e| Refusal::new("unreadable_depth", e))?;
            }
            let decoded = Some(img);
            let dk = match &d.intrinsics {
                Some(i) => i
                    .rescaled(dw, dh)
                    .map_err(|e| Refusal::new("depth_colour_mismatch", e))?,
                None => SourceIntrinsics {
                    k,
                    size: Some((w, h)),
                }
                .rescaled(dw, dh)
                .map_err(|e| {
                    Refusal::new(
                        "depth_colour_mismatch",
                        format!("depth is not registered to colour: {e}"),
                    )
                })?,
            };
            // Colour and depth cameras of one rig see nearly the same field of view; a large
            // difference means the intrinsics (or the files) do not belong together.
            let (dfx, dfy) = (
                fov_deg(dk[0], dw) - fov_deg(k[0], w),
                fov_deg(dk[1], dh) - fov_deg(k[1], h),
            );
            if dfx.abs() > 15.0 || dfy.abs() > 15.0 {
                return Err(Refusal::new(
                    "depth_colour_mismatch",
                    format!(
                        "depth field of view differs from colour by {dfx:.1} x {dfy:.1} degrees ({dw}x{dh} depth vs {w}x{h} colour)"
                    ),
                ));
            }
            if instance.is_some() {
                decoded_depth = decoded.clone().map(|img| (img, d.scale_m));
            }
            if want_depth {
                depth_for_check = decoded;
            }
            Some(DepthMap {
                png16: bytes,
                scale_m: d.scale_m,
                width: dw as i32,
                height: dh as i32,
                intrinsics: dk,
            })
        }
    };
    Ok(Loaded {
        row: FrameRow {
            scene_id: scene.scene_id.clone(),
            frame_idx: f.frame_idx,
            timestamp_ns: f.timestamp_ns,
            source: SourceKind::Scan,
            split,
            image,
            image_codec: codec.into(),
            width: w as i32,
            height: h as i32,
            depth,
            intrinsics: Some(k),
            camera_model: f.camera_model.clone(),
            distortion: f.distortion.clone(),
            world_from_camera: Some(pose),
            pose_source: Some(f.pose_source.into()),
            source_uri: f.image_path.display().to_string(),
        },
        depth_for_check,
        object_views: instance
            .map(|p| frame_object_views(&p, decoded_depth.as_ref().map(|(d, s)| (d, *s)))),
    })
}

/// Runs `f` on a pool of `jobs` threads (the global pool when `None`).
pub(crate) fn with_pool<T: Send>(jobs: Option<usize>, f: impl FnOnce() -> T + Send) -> Result<T> {
    match jobs {
        None => Ok(f()),
        Some(n) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .build()
                .map_err(|e| Error::Internal(format!("thread pool: {e}")))?;
            Ok(pool.install(f))
        }
    }
}

/// Lists the scenes under each source, detecting the layout when `format` is `None`.
pub fn list_scenes(
    format: Option<ScanFormat>,
    srcs: &[PathBuf],
    opts: &IngestOptions,
) -> Result<Vec<SourceScene>> {
    // Every scene root of every source, with its real path. A symbolic link (`loop -> .`)
    // or a source given twice names a directory twice: it is listed once, under the path
    // that goes through no link (else the first), and the aliases are named in its notes.
    let mut found: Vec<(ScanFormat, PathBuf, PathBuf, Option<Split>)> = Vec::new();
    // Directories the walk reached again through a symbolic link: noted on the first scene.
    let mut walk_notes: Vec<String> = Vec::new();
    for src in srcs {
        if !src.exists() {
            return Err(Error::User(format!(
                "source does not exist: {}",
                src.display()
            )));
        }
        let (roots, aliases) = detect::scene_roots(format, src)?;
        walk_notes.extend(
            aliases
                .into_iter()
                .map(|(dir, why)| format!("skipped {}: {why}", dir.display())),
        );
        for (fmt, root) in roots {
            let real = std::fs::canonicalize(&root).unwrap_or_else(|_| root.clone());
            let hint = detect::split_below(src, &root);
            found.push((fmt, root, real, hint));
        }
    }
    // Of the paths to one directory, the one with the fewest components goes through no
    // link (`scans/loop/scene` is longer than `scans/scene`); ties keep the first.
    let depth = |p: &Path| {
        std::env::current_dir()
            .map(|cwd| cwd.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .count()
    };
    let mut chosen: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for (i, (_, root, real, _)) in found.iter().enumerate() {
        match chosen.get(real) {
            Some(&j) if depth(&found[j].1) <= depth(root) => {}
            _ => {
                chosen.insert(real.clone(), i);
            }
        }
    }
    let mut scenes: Vec<SourceScene> = Vec::new();
    let mut first_failure = None;
    for (i, (fmt, root, real, hint)) in found.iter().enumerate() {
        let (fmt, root) = (*fmt, root.clone());
        if chosen.get(real) != Some(&i) {
            continue;
        }
        let aliases: Vec<String> = found
            .iter()
            .enumerate()
            .filter(|(j, (_, _, r, _))| *j != i && r == real)
            .map(|(_, (_, alias, _, _))| {
                format!(
                    "skipped {}: the same directory as {} (a symbolic link or a repeated source)",
                    alias.display(),
                    root.display()
                )
            })
            .collect();
        {
            let _span = tracing::info_span!("list scene", root = %root.display()).entered();
            let mut scene = match fmt.list(&root, opts) {
                Ok(s) => s,
                Err(e) if e.is_user_error() => {
                    // One malformed scene must not stop the others: it is quarantined whole
                    // (and reported in the summary).
                    tracing::info!("{e}");
                    let failure = Refusal::new("unreadable_scene", e.to_string());
                    first_failure.get_or_insert(e);
                    SourceScene {
                        scene_id: detect::scene_id_from(&root, 1),
                        root: root.clone(),
                        format: fmt.name(),
                        frames: Vec::new(),
                        notes: Vec::new(),
                        failure: Some(failure),
                        annotations: None,
                        split_hint: None,
                    }
                }
                Err(e) => return Err(e),
            };
            if format.is_none() {
                scene.notes.insert(
                    0,
                    format!("auto: detected the {fmt} layout ({})", fmt.expects()),
                );
            }
            scene.notes.extend(aliases);
            scene.split_hint = *hint;
            if let Some(k) = opts.intrinsics {
                for f in &mut scene.frames {
                    f.intrinsics = SourceIntrinsics::at_stored(k);
                }
                // The layout's own note about its intrinsics no longer holds.
                scene.notes.retain(|n| !n.starts_with("intrinsics "));
                scene
                    .notes
                    .push(format!("intrinsics {k:?} from --intrinsics"));
            }
            scenes.push(scene);
        }
    }
    // When nothing could be listed, the one error is the answer (exit 2, naming the file).
    if let Some(e) = first_failure
        && scenes.iter().all(|s| s.failure.is_some())
    {
        return Err(e);
    }
    if let Some(first) = scenes.first_mut() {
        first.notes.extend(walk_notes);
    }
    let mut seen = BTreeSet::new();
    for s in &scenes {
        if !seen.insert(s.scene_id.clone()) {
            return Err(Error::User(format!(
                "two sources give the same scene id '{}'; ingest them into different datasets or rename one: {}",
                s.scene_id,
                s.root.display()
            )));
        }
    }
    Ok(scenes)
}

/// Ingests scan scenes into `ds`, committing every `commit_every_frames` frames.
pub fn ingest_scans(
    ds: &Dataset,
    scenes: &[SourceScene],
    opts: &IngestOptions,
    operation: &str,
    progress: &dyn Progress,
) -> Result<IngestReport> {
    let total: usize = scenes.iter().map(|s| s.frames.len()).sum();
    progress.start(total as u64, "frames");
    // Frames reported so far: a re-staged group reports only what goes beyond it.
    let mut reached: u64 = 0;
    let mut report = IngestReport {
        version: ds.latest_version()?,
        ..IngestReport::default()
    };
    // Whole scenes per commit, at least `commit_every_frames` frames each (the last may
    // hold fewer), so an interrupted run keeps its progress.
    let mut groups: Vec<&[SourceScene]> = Vec::new();
    let (mut start, mut frames) = (0, 0);
    for (i, scene) in scenes.iter().enumerate() {
        frames += scene.frames.len();
        if frames >= opts.commit_every_frames || i + 1 == scenes.len() {
            groups.push(&scenes[start..=i]);
            (start, frames) = (i + 1, 0);
        }
    }
    for group in groups {
        let base = reached;
        // A commit that loses a race with another writer stages the group again on top of
        // the winner's version (keyed rows: only what is still missing is added); progress
        // reports the furthest point reached.
        let (reports, out) = ds.commit_retrying(operation, &opts.write, |tx| {
            let mut done = base;
            let mut reports = Vec::new();
            for scene in group {
                progress.message(&scene.scene_id);
                let _span = tracing::info_span!("ingest scene", scene = %scene.scene_id).entered();
                let mut on_frames = |n: u64| {
                    done += n;
                    if done > reached {
                        progress.advance(done - reached);
                        reached = done;
                    }
                };
                reports.push(ingest_scene(tx, scene, opts, &mut on_frames)?.0);
            }
            Ok(reports)
        })?;
        report.scenes.extend(reports);
        report.version = out.version;
    }
    progress.finish();
    Ok(report)
}

fn ingest_scene(
    tx: &mut Transaction<'_>,
    scene: &SourceScene,
    opts: &IngestOptions,
    on_frames: &mut dyn FnMut(u64),
) -> Result<(SceneReport, usize)> {
    let split = match (opts.split, scene.split_hint) {
        (SplitChoice::Auto, Some(hint)) => hint,
        (choice, _) => choice.of(&scene.scene_id),
    };
    let pairs = check::choose_pairs(&scene.frames, opts.check_pairs);
    let want: BTreeSet<usize> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
    let mut rep = SceneReport {
        scene_id: scene.scene_id.clone(),
        format: scene.format.into(),
        split: split.to_string(),
        frames_found: scene.frames.len(),
        notes: scene.notes.clone(),
        ..SceneReport::default()
    };
    if let Some(failure) = &scene.failure {
        *rep.quarantined
            .entry(failure.reason.to_string())
            .or_default() += 1;
        rep.warnings.push(format!(
            "scene {} was not ingested: {}",
            scene.scene_id, failure.detail
        ));
        tx.append(
            Table::Quarantine,
            quarantine_batch(&[QuarantineRow {
                source_uri: scene.root.display().to_string(),
                scene_id: Some(scene.scene_id.clone()),
                frame_idx: None,
                stage: "ingest".into(),
                reason: failure.reason.into(),
                detail: failure.detail.clone(),
                quarantined_at_ns: now_ns(),
            }])?,
        )?;
        return Ok((rep, 0));
    }
    let mut quarantine = Vec::new();
    let mut object_views: Vec<(i64, ObjectView)> = Vec::new();
    let mut check_views: BTreeMap<usize, PairView> = BTreeMap::new();
    let chunk = 64;
    for (c, frames) in scene.frames.chunks(chunk).enumerate() {
        let results: Vec<std::result::Result<Loaded, Refusal>> = with_pool(opts.jobs, || {
            frames
                .par_iter()
                .enumerate()
                .map(|(i, f)| load_frame(scene, f, split, want.contains(&(c * chunk + i))))
                .collect()
        })?;
        let mut rows = Vec::new();
        for (i, (f, r)) in frames.iter().zip(results).enumerate() {
            match r {
                Ok(l) => {
                    match l.object_views {
                        Some(Ok(v)) => object_views.extend(v.into_iter().map(|v| (f.frame_idx, v))),
                        Some(Err(e)) => rep.warnings.push(format!(
                            "instance image not read, frame {} keeps no object rows: {e}",
                            f.frame_idx
                        )),
                        None => {}
                    }
                    if let (Some(d), Some(dm)) = (l.depth_for_check, &l.row.depth) {
                        check_views.insert(
                            c * chunk + i,
                            PairView {
                                world_from_camera: l
                                    .row
                                    .world_from_camera
                                    .unwrap_or(spatialsv_store::geometry::IDENTITY),
                                depth_k: dm.intrinsics,
                                depth_scale_m: dm.scale_m,
                                depth: d,
                            },
                        );
                    }
                    rows.push(l.row);
                }
                Err(refusal) => {
                    *rep.quarantined
                        .entry(refusal.reason.to_string())
                        .or_default() += 1;
                    quarantine.push(QuarantineRow {
                        source_uri: f.image_path.display().to_string(),
                        scene_id: Some(scene.scene_id.clone()),
                        frame_idx: Some(f.frame_idx),
                        stage: "ingest".into(),
                        reason: refusal.reason.into(),
                        detail: refusal.detail,
                        quarantined_at_ns: now_ns(),
                    });
                }
            }
        }
        if !rows.is_empty() {
            let n = rows.len();
            let staged = tx.append(Table::Frames, frames_batch(&rows)?)?;
            rep.ingested += staged;
            rep.duplicates += n - staged;
        }
        on_frames(frames.len() as u64);
    }
    if !quarantine.is_empty() {
        tx.append(Table::Quarantine, quarantine_batch(&quarantine)?)?;
    }
    let present = rep.ingested + rep.duplicates;
    if let (Some(a), true) = (&scene.annotations, present > 0) {
        // Views only of annotated objects: an id the annotation lacks is label noise.
        let known: BTreeSet<i64> = a.objects.objects.iter().map(|o| o.object_id).collect();
        let unknown = object_views
            .iter()
            .filter(|(_, v)| !known.contains(&v.object_id))
            .count();
        object_views.retain(|(_, v)| known.contains(&v.object_id));
        if unknown > 0 {
            rep.warnings.push(format!(
                "{unknown} object sightings in instance images name ids the annotation lacks; left out"
            ));
        }
        tx.append(
            Table::Objects,
            spatialsv_store::objects::objects_batch(&scene.scene_id, split, &a.objects)?,
        )?;
        if !object_views.is_empty() {
            tx.append(
                Table::ObjectViews,
                spatialsv_store::objects::object_views_batch(
                    &scene.scene_id,
                    split,
                    &object_views,
                )?,
            )?;
        }
        rep.objects = a.objects.objects.len();
        rep.object_views = object_views.len();
    }
    if present > 0 {
        tx.append(
            Table::Scenes,
            scenes_batch(&[SceneRow {
                scene_id: scene.scene_id.clone(),
                source: SourceKind::Scan,
                source_uri: scene.root.display().to_string(),
                dataset_format: scene.format.into(),
                split,
                num_frames: present as i64,
                num_quarantined: rep.quarantined.values().sum::<usize>() as i64,
                ingested_at_ns: now_ns(),
            }])?,
        )?;
    } else {
        rep.warnings.push(format!(
            "scene {}: no frame could be ingested",
            scene.scene_id
        ));
    }
    let views: Vec<(&PairView, &PairView)> = pairs
        .iter()
        .filter_map(|(a, b)| Some((check_views.get(a)?, check_views.get(b)?)))
        .collect();
    if !views.is_empty() {
        let c = reprojection_consistency(&views);
        if let Some(w) = c.warning(&scene.scene_id) {
            rep.warnings.push(w);
        }
        rep.consistency = Some(c);
    }
    tracing::info!(
        ingested = rep.ingested,
        duplicates = rep.duplicates,
        quarantined = rep.quarantined.values().sum::<usize>(),
        "scene staged"
    );
    Ok((rep, scene.frames.len()))
}
