//! 7-Scenes sequence: `frame-NNNNNN.color.png`, `frame-NNNNNN.depth.png` (uint16 mm,
//! 65535 = invalid, rewritten to 0), `frame-NNNNNN.pose.txt` (4x4 camera-to-world). No
//! intrinsics are shipped: colour ~525 px and depth ~585 px focal length, principal point at
//! the centre, 640x480. The depth camera is not registered to the colour camera, so depth
//! keeps its own intrinsics.

use std::path::Path;

use super::detect::scene_id_from;
use super::{Refusal, SourceDepth, SourceFrame, SourceIntrinsics, SourceScene};
use spatialsv_store::geometry::parse_matrix4;
use spatialsv_store::{Error, Result};

const COLOUR: [f64; 4] = [525.0, 525.0, 320.0, 240.0];
const DEPTH: [f64; 4] = [585.0, 585.0, 320.0, 240.0];
const FRAME_NS: i64 = 33_333_333;

/// Lists a 7-Scenes sequence directory (`.../chess/seq-01`).
pub fn list(dir: &Path) -> Result<SourceScene> {
    let mut idx: Vec<i64> = std::fs::read_dir(dir)
        .map_err(Error::io("listing", dir))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("frame-")?
                .strip_suffix(".color.png")?
                .parse()
                .ok()
        })
        .collect();
    idx.sort_unstable();
    let mut frames = Vec::new();
    for i in idx {
        let base = dir.join(format!("frame-{i:06}"));
        let pose_path = base.with_extension("pose.txt");
        let (pose, mut problem) = match std::fs::read_to_string(&pose_path) {
            Ok(t) => match parse_matrix4(&t) {
                Ok(m) => (Some(m), None),
                Err(e) => (
                    None,
                    Some(Refusal::new(
                        "unreadable_pose",
                        format!("{e}: {}", pose_path.display()),
                    )),
                ),
            },
            Err(_) => (
                None,
                Some(Refusal::new(
                    "missing_pose",
                    format!("no pose file {}", pose_path.display()),
                )),
            ),
        };
        if i.checked_mul(FRAME_NS).is_none() {
            problem = Some(Refusal::new(
                "invalid_frame_number",
                format!(
                    "frame number {i} is too large for a nanosecond timestamp: {}",
                    base.display()
                ),
            ));
        }
        frames.push(SourceFrame {
            frame_idx: i,
            timestamp_ns: i.checked_mul(FRAME_NS).unwrap_or(0),
            image_path: base.with_extension("color.png"),
            depth: Some(SourceDepth {
                path: base.with_extension("depth.png"),
                scale_m: 0.001,
                invalid_value: Some(65535),
                intrinsics: Some(SourceIntrinsics {
                    k: DEPTH,
                    size: Some((640, 480)),
                }),
            }),
            intrinsics: SourceIntrinsics {
                k: COLOUR,
                size: Some((640, 480)),
            },
            camera_model: "pinhole".into(),
            distortion: Vec::new(),
            world_from_camera: pose,
            pose_source: "groundtruth",
            problem,
        });
    }
    Ok(SourceScene {
        failure: None,
        annotations: None,
        split_hint: None,
        scene_id: scene_id_from(dir, 2),
        root: dir.to_path_buf(),
        format: "sevenscenes",
        frames,
        notes: vec![
            "intrinsics: colour 525 px, depth 585 px, centred (7-Scenes ships none)".into(),
        ],
    })
}
