//! ScanNet exported layout: `color/{i}.jpg`, `depth/{i}.png` (uint16 mm, 0 = invalid),
//! `pose/{i}.txt` (4x4 camera-to-world, OpenCV axes; some are all `-inf`),
//! `intrinsic/intrinsic_{color,depth}.txt` (4x4, top-left 3x3). Indices are unpadded: sort
//! numerically. Colour and depth may differ in resolution, each with its own intrinsics.
//! Objects, where annotated: `objects.json` or ScanNet's aggregation + segments + mesh
//! ([`annotations`]), and per-frame instance images in `instance-filt/{i}.png`.

use std::path::{Path, PathBuf};

use super::detect::scene_id_from;
use super::{Annotations, Refusal, SourceDepth, SourceFrame, SourceIntrinsics, SourceScene};
use spatialsv_store::geometry::parse_matrix4;
use spatialsv_store::objects::{
    INSTANCE_DIR, SceneObject, SceneObjects, name_objects, read_objects_file,
};
use spatialsv_store::{Error, Result};

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
    let scene_id = scene_id_from(dir, 1);
    let annotations = match annotations(dir, &scene_id) {
        Ok(a) => a,
        Err(e) => {
            // A damaged annotation loses the objects, not the scene's frames.
            notes.push(format!("objects not ingested: {e}"));
            None
        }
    };
    Ok(SourceScene {
        failure: None,
        scene_id,
        root: dir.to_path_buf(),
        format: "scannet",
        frames,
        notes,
        annotations,
        split_hint: None,
    })
}

/// The scene's objects: `objects.json` (spatialsv's own file, written by `synth`) when present,
/// else ScanNet's `{scene}.aggregation.json` (or `{scene}_vh_clean.aggregation.json`) with its
/// segments file over the `{scene}_vh_clean_2.ply` mesh. Instance images are read from
/// `instance-filt/` when it exists. `None` when the scene has no annotation.
pub(crate) fn annotations(dir: &Path, scene_id: &str) -> Result<Option<Annotations>> {
    let instance_dir = Some(dir.join(INSTANCE_DIR)).filter(|d| d.is_dir());
    if let Some(objects) = read_objects_file(dir)? {
        return Ok(Some(Annotations {
            objects,
            instance_dir,
        }));
    }
    let Some(agg) = [
        format!("{scene_id}.aggregation.json"),
        format!("{scene_id}_vh_clean.aggregation.json"),
    ]
    .into_iter()
    .map(|n| dir.join(n))
    .find(|p| p.exists()) else {
        return Ok(None);
    };
    let objects = read_aggregation(dir, scene_id, &agg)?;
    Ok(Some(Annotations {
        objects,
        instance_dir,
    }))
}

/// ScanNet's object annotation: each segment group (an object with a label) is the set of
/// mesh vertices whose segment is in the group; its box is those vertices' bounds. Object ids
/// are `objectId + 1`, as ScanNet's 2D instance images number them.
fn read_aggregation(dir: &Path, scene_id: &str, agg_path: &Path) -> Result<SceneObjects> {
    #[derive(serde::Deserialize)]
    struct Group {
        #[serde(rename = "objectId")]
        object_id: i64,
        label: String,
        segments: Vec<i64>,
    }
    #[derive(serde::Deserialize)]
    struct Aggregation {
        #[serde(rename = "segGroups")]
        seg_groups: Vec<Group>,
        #[serde(rename = "segmentsFile", default)]
        segments_file: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Segments {
        #[serde(rename = "segIndices")]
        seg_indices: Vec<i64>,
    }
    let read_json = |p: &Path| -> Result<String> {
        std::fs::read_to_string(p).map_err(|e| {
            Error::bad_input(p, format!("cannot read the ScanNet annotation file ({e})"))
        })
    };
    let agg: Aggregation = serde_json::from_str(&read_json(agg_path)?)
        .map_err(|e| Error::bad_input(agg_path, format!("not a ScanNet aggregation ({e})")))?;
    // The segments file is named in the aggregation ("scannet.{scene}_vh_clean_2...") or
    // follows the usual name.
    let segs_name = agg
        .segments_file
        .as_deref()
        .map(|n| n.trim_start_matches("scannet.").to_string())
        .unwrap_or_else(|| format!("{scene_id}_vh_clean_2.0.010000.segs.json"));
    let segs_path = dir.join(&segs_name);
    let segs: Segments = serde_json::from_str(&read_json(&segs_path)?)
        .map_err(|e| Error::bad_input(&segs_path, format!("not a ScanNet segments file ({e})")))?;
    let mesh_path = dir.join(format!("{scene_id}_vh_clean_2.ply"));
    let vertices = crate::ply::read_ply_vertices(&mesh_path)?;
    if vertices.len() != segs.seg_indices.len() {
        return Err(Error::bad_input(
            &segs_path,
            format!(
                "{} segment indices for a mesh of {} vertices ({})",
                segs.seg_indices.len(),
                vertices.len(),
                mesh_path.display()
            ),
        ));
    }
    let mut objects = Vec::new();
    for g in &agg.seg_groups {
        let set: std::collections::BTreeSet<i64> = g.segments.iter().copied().collect();
        let (mut lo, mut hi) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
        for (v, s) in vertices.iter().zip(&segs.seg_indices) {
            if set.contains(s) {
                for a in 0..3 {
                    lo[a] = lo[a].min(v[a]);
                    hi[a] = hi[a].max(v[a]);
                }
            }
        }
        if !lo[0].is_finite() {
            continue; // a group whose segments hold no vertex has no box
        }
        objects.push(SceneObject {
            object_id: g.object_id + 1,
            name: String::new(),
            category: g.label.trim().to_string(),
            colour: None,
            size: None,
            centre: [0, 1, 2].map(|a| (lo[a] + hi[a]) / 2.0),
            extent: [0, 1, 2].map(|a| hi[a] - lo[a]),
        });
    }
    let mut objs = SceneObjects {
        source: "scannet_aggregation".into(),
        objects,
    };
    objs.check().map_err(|e| Error::bad_input(agg_path, e))?;
    name_objects(&mut objs.objects);
    Ok(objs)
}
