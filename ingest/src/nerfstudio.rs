//! nerfstudio `transforms.json`: intrinsics `fl_x fl_y cx cy w h` (and distortion `k1 k2 p1
//! p2`) at the top level or per frame; `frames[{file_path, transform_matrix, depth_file_path?}]`
//! with camera-to-world in OpenGL axes (y up, looking down -z), converted to OpenCV by flipping
//! the camera's y and z axes. Optional depth PNGs use `depth_unit_scale_factor` metres per unit
//! (default 0.001).

use std::path::Path;

use serde_json::Value;

use super::detect::scene_id_from;
use super::{Refusal, SourceDepth, SourceFrame, SourceIntrinsics, SourceScene};
use spatialsv_store::geometry::{Mat4, opengl_to_opencv};
use spatialsv_store::{Error, Result};

const FRAME_NS: i64 = 33_333_333;

fn num(v: &Value, frame: &Value, key: &str) -> Option<f64> {
    frame
        .get(key)
        .or_else(|| v.get(key))
        .and_then(Value::as_f64)
}

fn matrix(v: &Value) -> Option<Mat4> {
    let rows = v.as_array()?;
    if rows.len() != 4 {
        return None;
    }
    let mut m = [0.0; 16];
    for (i, r) in rows.iter().enumerate() {
        let r = r.as_array()?;
        if r.len() != 4 {
            return None;
        }
        for (j, x) in r.iter().enumerate() {
            m[i * 4 + j] = x.as_f64()?;
        }
    }
    Some(m)
}

/// Lists a nerfstudio scene.
pub fn list(dir: &Path) -> Result<SourceScene> {
    let path = dir.join("transforms.json");
    let text = std::fs::read_to_string(&path).map_err(Error::io("reading", &path))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::bad_input(&path, format!("not valid JSON ({e})")))?;
    let frames_json = v
        .get("frames")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::bad_input(&path, "no 'frames' array"))?;
    let depth_scale = match v.get("depth_unit_scale_factor") {
        None => 0.001,
        Some(s) => match s.as_f64() {
            Some(x) if x.is_finite() && x > 0.0 => x,
            _ => {
                return Err(Error::bad_input(
                    &path,
                    format!(
                        "key depth_unit_scale_factor = {s} must be a positive number of metres per unit"
                    ),
                ));
            }
        },
    };
    let mut frames = Vec::new();
    for (i, f) in frames_json.iter().enumerate() {
        let file = f
            .get("file_path")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut problem = None;
        let k = match (
            num(&v, f, "fl_x"),
            num(&v, f, "fl_y"),
            num(&v, f, "cx"),
            num(&v, f, "cy"),
        ) {
            (Some(fx), fy, Some(cx), Some(cy)) => [fx, fy.unwrap_or(fx), cx, cy],
            _ => {
                problem = Some(Refusal::new(
                    "missing_intrinsics",
                    format!("frame {i}: no fl_x/cx/cy"),
                ));
                [1.0, 1.0, 0.0, 0.0]
            }
        };
        let size = match (num(&v, f, "w"), num(&v, f, "h")) {
            (Some(w), Some(h)) => Some((w as u32, h as u32)),
            _ => None,
        };
        let dist: Vec<f64> = ["k1", "k2", "p1", "p2"]
            .iter()
            .map(|k| num(&v, f, k).unwrap_or(0.0))
            .collect();
        let has_dist = dist.iter().any(|d| *d != 0.0);
        let pose = f
            .get("transform_matrix")
            .and_then(matrix)
            .map(|m| opengl_to_opencv(&m));
        if pose.is_none() && problem.is_none() {
            problem = Some(Refusal::new(
                "missing_pose",
                format!("frame {i}: no 4x4 transform_matrix"),
            ));
        }
        if file.is_empty() && problem.is_none() {
            problem = Some(Refusal::new(
                "missing_file",
                format!("frame {i}: no file_path"),
            ));
        }
        frames.push(SourceFrame {
            frame_idx: i as i64,
            timestamp_ns: i as i64 * FRAME_NS,
            image_path: dir.join(file),
            depth: f
                .get("depth_file_path")
                .and_then(Value::as_str)
                .map(|d| SourceDepth {
                    path: dir.join(d),
                    scale_m: depth_scale,
                    invalid_value: None,
                    intrinsics: None,
                }),
            intrinsics: SourceIntrinsics { k, size },
            camera_model: if has_dist {
                "opencv".into()
            } else {
                "pinhole".into()
            },
            distortion: if has_dist { dist } else { Vec::new() },
            world_from_camera: pose,
            pose_source: "groundtruth",
            problem,
        });
    }
    Ok(SourceScene {
        failure: None,
        annotations: None,
        split_hint: None,
        scene_id: scene_id_from(dir, 1),
        root: dir.to_path_buf(),
        format: "nerfstudio",
        frames,
        notes: vec!["nerfstudio: OpenGL camera axes converted to OpenCV".into()],
    })
}
