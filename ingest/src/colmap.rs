//! COLMAP text models: `cameras.txt` (`CAMERA_ID MODEL WIDTH HEIGHT PARAMS...`) and
//! `images.txt` (two lines per image: `IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`, then the
//! 2D points, possibly an empty line). Poses are world-to-camera with the quaternion scalar
//! FIRST; the camera centre is `-R^T t`. Images are read from `images/NAME` beside the model.
//! Supported camera models: SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV. SfM poses
//! have an arbitrary scale, and no depth is imported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::detect::scene_id_from;
use super::{Refusal, SourceFrame, SourceIntrinsics, SourceScene};
use spatialsv_store::geometry::{from_rt, invert_rigid, rotation_from_quat_wxyz};
use spatialsv_store::{Error, Result};

const FRAME_NS: i64 = 33_333_333;

/// The directory holding `cameras.txt` and `images.txt` for a scene root.
pub fn model_dir(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join("sparse/0"), dir.join("sparse")]
        .into_iter()
        .find(|d| d.join("cameras.txt").is_file() && d.join("images.txt").is_file())
}

/// A camera: model name (lower case), intrinsics at its calibrated size, distortion.
type Camera = std::result::Result<(String, SourceIntrinsics, Vec<f64>), String>;

fn parse_camera(cols: &[&str]) -> Camera {
    let model = cols.get(1).ok_or("missing model")?;
    let w: u32 = cols
        .get(2)
        .and_then(|v| v.parse().ok())
        .ok_or("bad WIDTH")?;
    let h: u32 = cols
        .get(3)
        .and_then(|v| v.parse().ok())
        .ok_or("bad HEIGHT")?;
    let p: Vec<f64> = cols[4..]
        .iter()
        .map(|v| v.parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| "bad PARAMS")?;
    let need = |n: usize| {
        if p.len() == n {
            Ok(())
        } else {
            Err(format!("{model} needs {n} parameters, found {}", p.len()))
        }
    };
    let (name, k, dist) = match *model {
        "SIMPLE_PINHOLE" => {
            need(3)?;
            ("pinhole", [p[0], p[0], p[1], p[2]], vec![])
        }
        "PINHOLE" => {
            need(4)?;
            ("pinhole", [p[0], p[1], p[2], p[3]], vec![])
        }
        "SIMPLE_RADIAL" => {
            need(4)?;
            ("simple_radial", [p[0], p[0], p[1], p[2]], vec![p[3]])
        }
        "RADIAL" => {
            need(5)?;
            ("radial", [p[0], p[0], p[1], p[2]], vec![p[3], p[4]])
        }
        "OPENCV" => {
            need(8)?;
            ("opencv", [p[0], p[1], p[2], p[3]], p[4..8].to_vec())
        }
        other => {
            return Err(format!(
                "camera model {other} is not supported (SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV are)"
            ));
        }
    };
    Ok((
        name.into(),
        SourceIntrinsics {
            k,
            size: Some((w, h)),
        },
        dist,
    ))
}

/// Lists a COLMAP scene.
pub fn list(dir: &Path) -> Result<SourceScene> {
    let model = model_dir(dir).ok_or_else(|| {
        Error::User(format!(
            "no COLMAP text model (cameras.txt, images.txt): {}",
            dir.display()
        ))
    })?;
    let cam_path = model.join("cameras.txt");
    let text = std::fs::read_to_string(&cam_path).map_err(Error::io("reading", &cam_path))?;
    let mut cameras: BTreeMap<String, Camera> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let cols: Vec<&str> = line.split_whitespace().collect();
        cameras.insert(cols[0].to_string(), parse_camera(&cols));
    }
    let img_path = model.join("images.txt");
    let text = std::fs::read_to_string(&img_path).map_err(Error::io("reading", &img_path))?;
    // Two lines per image; the second (2D points) may be empty, so only comments are dropped.
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#'))
        .collect();
    let mut entries = Vec::new();
    for pair in lines.chunks(2) {
        let (n, line) = pair[0];
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 10 {
            return Err(Error::bad_input(
                &img_path,
                format!(
                    "line {}: expected 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME'",
                    n + 1
                ),
            ));
        }
        let nums: Option<Vec<f64>> = cols[1..8].iter().map(|v| v.parse().ok()).collect();
        let nums = nums.ok_or_else(|| {
            Error::bad_input(&img_path, format!("line {}: bad pose numbers", n + 1))
        })?;
        entries.push((cols[9..].join(" "), cols[8].to_string(), nums));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let image_dir = dir.join("images");
    let mut frames = Vec::new();
    for (i, (name, cam_id, n)) in entries.into_iter().enumerate() {
        let mut problem = None;
        let (model_name, intr, dist) = match cameras.get(&cam_id) {
            Some(Ok(c)) => c.clone(),
            Some(Err(e)) => {
                problem = Some(Refusal::new(
                    "unsupported_camera",
                    format!("camera {cam_id}: {e}"),
                ));
                (
                    "pinhole".into(),
                    SourceIntrinsics::at_stored([1.0, 1.0, 0.0, 0.0]),
                    vec![],
                )
            }
            None => {
                problem = Some(Refusal::new(
                    "missing_camera",
                    format!("camera {cam_id} is not in cameras.txt"),
                ));
                (
                    "pinhole".into(),
                    SourceIntrinsics::at_stored([1.0, 1.0, 0.0, 0.0]),
                    vec![],
                )
            }
        };
        // images.txt stores camera_from_world as (QW QX QY QZ) and (TX TY TZ).
        let pose = rotation_from_quat_wxyz(n[0], n[1], n[2], n[3])
            .map(|r| invert_rigid(&from_rt(&r, [n[4], n[5], n[6]])));
        if pose.is_none() && problem.is_none() {
            problem = Some(Refusal::new(
                "invalid_pose",
                "zero or non-finite quaternion",
            ));
        }
        frames.push(SourceFrame {
            frame_idx: i as i64,
            timestamp_ns: i as i64 * FRAME_NS,
            image_path: image_dir.join(&name),
            depth: None,
            intrinsics: intr,
            camera_model: model_name,
            distortion: dist,
            world_from_camera: pose,
            pose_source: "sfm",
            problem,
        });
    }
    Ok(SourceScene {
        failure: None,
        annotations: None,
        split_hint: None,
        scene_id: scene_id_from(dir, 1),
        root: dir.to_path_buf(),
        format: "colmap",
        frames,
        notes: vec![
            "COLMAP: SfM poses (arbitrary scale), frames ordered by image name, no depth imported"
                .into(),
        ],
    })
}
