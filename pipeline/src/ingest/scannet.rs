//! ScanNet exported layout: `color/{i}.jpg`, `depth/{i}.png` (uint16 mm, 0 = invalid),
//! `pose/{i}.txt` (4x4 camera-to-world, OpenCV axes; some are all `-inf`),
//! `intrinsic/intrinsic_{color,depth}.txt` (4x4, top-left 3x3). Indices are unpadded: sort
//! numerically. Colour and depth may differ in resolution, each with its own intrinsics.

use std::path::{Path, PathBuf};

use super::detect::scene_id_from;
use super::{Refusal, SourceDepth, SourceFrame, SourceIntrinsics, SourceScene};
use crate::error::{Error, Result};
use crate::geometry::parse_matrix4;

/// Frame interval assumed for ScanNet, which stores no timestamps (30 Hz capture).
const FRAME_NS: i64 = 33_333_333;

fn read_intrinsics(path: &Path) -> Result<Option<[f64; 4]>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(Error::io("reading", path))?;
    let m = parse_matrix4(&text)
        .map_err(|e| Error::bad_input(path, format!("bad intrinsics ({e})")))?;
    Ok(Some([m[0], m[5], m[2], m[6]]))
}

/// Numbered files `{i}.{ext}` in `dir`, sorted numerically, and the files with one of
/// `exts` whose name is not a frame number (non-UTF-8 names included), which the caller
/// reports instead of dropping silently.
pub(crate) fn numbered(dir: &Path, exts: &[&str]) -> (Vec<(i64, PathBuf)>, Vec<PathBuf>) {
    let mut v = Vec::new();
    let mut odd = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let ext = p
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if !exts.contains(&ext.as_str()) {
            continue;
        }
        match p
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|i| *i >= 0)
        {
            Some(i) => v.push((i, p)),
            None => odd.push(p),
        }
    }
    v.sort();
    odd.sort();
    (v, odd)
}

/// Lists a ScanNet scene.
pub fn list(dir: &Path) -> Result<SourceScene> {
    let color_k =
        read_intrinsics(&dir.join("intrinsic/intrinsic_color.txt"))?.ok_or_else(|| {
            Error::User(format!(
                "ScanNet scene has no intrinsic/intrinsic_color.txt: {}",
                dir.display()
            ))
        })?;
    let depth_k = read_intrinsics(&dir.join("intrinsic/intrinsic_depth.txt"))?;
    let mut frames = Vec::new();
    let mut notes = Vec::new();
    let (images, odd) = numbered(&dir.join("color"), &["jpg", "jpeg", "png"]);
    if !odd.is_empty() {
        notes.push(format!(
            "{} files in color/ skipped: their names are not frame numbers ({{index}}.jpg), e.g. {}",
            odd.len(),
            odd[0].display()
        ));
    }
    if images.is_empty() {
        return Err(Error::User(format!(
            "ScanNet scene has no images in color/: {}",
            dir.display()
        )));
    }
    let mut missing_depth = 0;
    for (i, image_path) in images {
        let pose_path = dir.join(format!("pose/{i}.txt"));
        let depth_path = dir.join(format!("depth/{i}.png"));
        let mut problem = None;
        let pose = match std::fs::read_to_string(&pose_path) {
            Ok(text) => match parse_matrix4(&text) {
                Ok(m) => Some(m),
                Err(e) => {
                    problem = Some(Refusal::new(
                        "unreadable_pose",
                        format!("{e}: {}", pose_path.display()),
                    ));
                    None
                }
            },
            Err(_) => {
                problem = Some(Refusal::new(
                    "missing_pose",
                    format!("no pose file {}", pose_path.display()),
                ));
                None
            }
        };
        if problem.is_none() && !depth_path.exists() {
            missing_depth += 1;
            problem = Some(Refusal::new(
                "missing_depth",
                format!("no depth file {}", depth_path.display()),
            ));
        }
        // A frame number whose timestamp overflows is the first thing wrong with it.
        let timestamp_ns = i.checked_mul(FRAME_NS).unwrap_or_else(|| {
            problem = Some(Refusal::new(
                "invalid_frame_number",
                format!(
                    "frame number {i} is too large for a nanosecond timestamp: {}",
                    image_path.display()
                ),
            ));
            0
        });
        frames.push(SourceFrame {
            frame_idx: i,
            timestamp_ns,
            image_path,
            depth: Some(SourceDepth {
                path: depth_path,
                scale_m: 0.001,
                invalid_value: None,
                intrinsics: depth_k.map(SourceIntrinsics::at_stored),
            }),
            intrinsics: SourceIntrinsics::at_stored(color_k),
            camera_model: "pinhole".into(),
            distortion: Vec::new(),
            world_from_camera: pose,
            pose_source: "groundtruth",
            problem,
        });
    }
    if missing_depth > 0 {
        notes.push(format!("{missing_depth} colour frames have no depth file"));
    }
    Ok(SourceScene {
        failure: None,
        scene_id: scene_id_from(dir, 1),
        root: dir.to_path_buf(),
        format: "scannet",
        frames,
        notes,
    })
}
