//! What the model believes, as files (`spatialsv export`): the method's interpretability made
//! usable. For one scene, clip by clip (clips as `eval` cuts them, [`clips_of`]: a scene
//! shorter than the clip length, down to one view, is one clip):
//!
//! - `pred.ply`, `gt.ply`: coloured binary point clouds (MeshLab, CloudCompare, Open3D) of the
//!   predicted point maps (Sim(3)-aligned to the truth per clip, then placed in the world with
//!   the clip's first true pose) and of the true depth unprojected;
//! - `frames/{frame_idx}.png`: the image, true depth, predicted depth and predicted confidence
//!   side by side (depth colour-mapped on a shared range, confidence on its own);
//! - `trajectory_gt.txt`, `trajectory_pred.txt`: camera trajectories in the TUM format
//!   (`timestamp tx ty tz qx qy qz qw`, world frame), the predicted cameras recovered from
//!   the ray maps and aligned with the same Sim(3).

use std::io::Write;
use std::path::Path;

use image::{ImageBuffer, Rgb};
use nalgebra::Vector3;
use spatialsv_schemas::Split;
use spatialsv_store::Dataset;
use spatialsv_store::geometry::Rigid;

use crate::data::{Augment, FrameStore, load_clip};
use crate::error::{Result, TrainError};
use crate::eval::{clips_of, corresponding_points};
use crate::infer::{Shape, camera_of_view};
use crate::metrics::umeyama;

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportSummary {
    /// Frames exported.
    pub frames: usize,
    /// Points in `pred.ply`.
    pub pred_points: usize,
    /// Points in `gt.ply`.
    pub gt_points: usize,
}

impl ExportSummary {
    /// What `spatialsv export` prints for `scene` exported into `out`.
    pub fn line(&self, scene: &str, out: &Path) -> String {
        format!(
            "exported {} frames of {scene}: pred.ply ({} points), gt.ply ({} points), frames/*.png, trajectory_{{gt,pred}}.txt in {}",
            self.frames,
            self.pred_points,
            self.gt_points,
            out.display()
        )
    }
}

/// A colour map from blue (low) through green to red (high), `t` in [0, 1].
pub fn colour_map(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    let r = (1.5 - (4.0 * t - 3.0).abs()).clamp(0.0, 1.0);
    let g = (1.5 - (4.0 * t - 2.0).abs()).clamp(0.0, 1.0);
    let b = (1.5 - (4.0 * t - 1.0).abs()).clamp(0.0, 1.0);
    [(r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8]
}

/// Writes a binary little-endian PLY of coloured points.
pub fn write_ply(path: &Path, points: &[([f32; 3], [u8; 3])]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    write!(
        f,
        "ply\nformat binary_little_endian 1.0\ncomment spatialsv export\nelement vertex {}\nproperty float x\nproperty float y\nproperty float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n",
        points.len()
    )?;
    for (p, c) in points {
        for v in p {
            f.write_all(&v.to_le_bytes())?;
        }
        f.write_all(c)?;
    }
    f.flush()
}

/// One TUM trajectory line: `t tx ty tz qx qy qz qw` of a camera-to-world pose.
fn tum_line(t_s: f64, world_from_camera: &Rigid) -> String {
    let (t, q) = (
        &world_from_camera.translation,
        world_from_camera.quat_wxyz(),
    );
    format!(
        "{t_s:.6} {} {} {} {} {} {} {}\n",
        t[0], t[1], t[2], q[1], q[2], q[3], q[0]
    )
}

/// Exports `scene` of `dataset` as seen by the run in `run_dir` into `out`.
pub fn export_scene(
    dataset: &Dataset,
    run_dir: &Path,
    scene: &str,
    out: &Path,
) -> Result<ExportSummary> {
    let run = crate::infer::SpatialRun::load(run_dir)?;
    let (model, cfg) = (&run.model, &run.config);
    let manifest = dataset.latest()?;
    let store = FrameStore::new(dataset.clone(), &manifest, cfg.cache_row_groups);
    let mut frames = None;
    for split in Split::ALL {
        if let Some(f) = store.labeled_scenes(&manifest, *split)?.remove(scene) {
            frames = Some(f);
        }
    }
    let frames = frames.ok_or_else(|| {
        TrainError::User(format!(
            "no labeled scene '{scene}' in {}",
            dataset.location()
        ))
    })?;
    let (v, h, w) = (cfg.clip_len, cfg.image_height, cfg.image_width);
    std::fs::create_dir_all(out.join("frames"))
        .map_err(TrainError::io("creating the export directory", out))?;
    let hw = h * w;
    let (mut pred_pts, mut gt_pts) = (Vec::new(), Vec::new());
    let (mut traj_gt, mut traj_pred) = (String::new(), String::new());
    let mut summary = ExportSummary::default();
    for clip in clips_of(&frames, v) {
        let v = clip.len();
        let s = load_clip(&store, clip, w, h, Augment::NONE, 0)?;
        let p = crate::infer::predict(model, s.images.clone(), Shape { n: 1, v, h, w }, true)?;
        let (pd, pc, pr) = (p.depth, p.conf, p.rays);
        let pp = p.points.unwrap_or_default();
        let first_pose = store
            .load(&clip[0])?
            .pose
            .unwrap_or(spatialsv_store::geometry::IDENTITY);
        let world_from_first = Rigid::from_row_major(&first_pose);
        let (r0, t0) = (world_from_first.rotation, world_from_first.translation);
        // Sim(3) from predicted to true points of this clip (first-camera frame).
        let (src, dst) = corresponding_points(&pp, &s.points, &s.depth, v, hw);
        let Some(sim) = umeyama(&src, &dst) else {
            continue;
        };
        let colour = |k: usize, i: usize| {
            [0, 1, 2].map(|c| {
                ((s.images[(k * 3 + c) * hw + i] * 0.25 + 0.45).clamp(0.0, 1.0) * 255.0) as u8
            })
        };
        for k in 0..v {
            let f = &clip[k];
            for i in (0..hw).filter(|i| s.depth[k * hw + i] > 0.0) {
                let at = |b: &[f32], c: usize| f64::from(b[(k * 3 + c) * hw + i]);
                let pw = r0 * sim.apply(&Vector3::new(at(&pp, 0), at(&pp, 1), at(&pp, 2))) + t0;
                let gw =
                    r0 * Vector3::new(at(&s.points, 0), at(&s.points, 1), at(&s.points, 2)) + t0;
                pred_pts.push(([pw[0] as f32, pw[1] as f32, pw[2] as f32], colour(k, i)));
                gt_pts.push(([gw[0] as f32, gw[1] as f32, gw[2] as f32], colour(k, i)));
            }
            // Trajectories.
            let t_s = f.frame_idx as f64 / 30.0;
            let world_from_camera = Rigid::from_row_major(
                &store
                    .load(f)?
                    .pose
                    .unwrap_or(spatialsv_store::geometry::IDENTITY),
            );
            traj_gt.push_str(&tum_line(t_s, &world_from_camera));
            // The predicted camera (first-camera frame, predicted units), through the clip's
            // Sim(3) into the first camera's true frame, then into the world.
            let (first_from_camera, _) = camera_of_view(&pr, k, h, w, 4);
            let predicted = Rigid {
                rotation: r0 * sim.rotation * first_from_camera.rotation,
                translation: r0 * sim.apply(&first_from_camera.translation) + t0,
            };
            traj_pred.push_str(&tum_line(t_s, &predicted));
            // Image | true depth | predicted depth (shared range) | confidence.
            let gt_d = &s.depth[k * hw..(k + 1) * hw];
            let pd_k: Vec<f32> = pd[k * hw..(k + 1) * hw]
                .iter()
                .map(|d| (f64::from(*d) * sim.scale) as f32)
                .collect();
            let valid: Vec<f32> = gt_d.iter().copied().filter(|d| *d > 0.0).collect();
            let (lo, hi) = valid
                .iter()
                .fold((f32::MAX, 0.0f32), |(a, b), d| (a.min(*d), b.max(*d)));
            let (clo, chi) = pc[k * hw..(k + 1) * hw]
                .iter()
                .fold((f32::MAX, 0.0f32), |(a, b), c| (a.min(*c), b.max(*c)));
            let mut img: ImageBuffer<Rgb<u8>, Vec<u8>> = ImageBuffer::new(4 * w as u32, h as u32);
            for y in 0..h {
                for x in 0..w {
                    let i = y * w + x;
                    let norm = |d: f32| (d - lo) / (hi - lo).max(1e-6);
                    img.put_pixel(x as u32, y as u32, Rgb(colour(k, i)));
                    let g = if gt_d[i] > 0.0 {
                        colour_map(norm(gt_d[i]))
                    } else {
                        [0, 0, 0]
                    };
                    img.put_pixel((w + x) as u32, y as u32, Rgb(g));
                    img.put_pixel((2 * w + x) as u32, y as u32, Rgb(colour_map(norm(pd_k[i]))));
                    let c = (pc[k * hw + i] - clo) / (chi - clo).max(1e-6);
                    img.put_pixel((3 * w + x) as u32, y as u32, Rgb(colour_map(c)));
                }
            }
            let path = out.join("frames").join(format!("{}.png", f.frame_idx));
            img.save(&path).map_err(|e| TrainError::Io {
                action: "writing a PNG",
                path: path.clone(),
                source: e.into(),
            })?;
            summary.frames += 1;
        }
    }
    if summary.frames == 0 {
        return Err(TrainError::User(format!(
            "nothing to export: no clip of scene '{scene}' of {} had enough valid depth to align its prediction",
            dataset.location()
        )));
    }
    write_ply(&out.join("pred.ply"), &pred_pts)
        .map_err(TrainError::io("writing export files", out))?;
    write_ply(&out.join("gt.ply"), &gt_pts).map_err(TrainError::io("writing export files", out))?;
    std::fs::write(
        out.join("trajectory_gt.txt"),
        format!("# timestamp tx ty tz qx qy qz qw (world, true)\n{traj_gt}"),
    )
    .map_err(TrainError::io("writing export files", out))?;
    std::fs::write(out.join("trajectory_pred.txt"), format!("# timestamp tx ty tz qx qy qz qw (world, predicted, Sim(3)-aligned per clip)\n{traj_pred}"))
        .map_err(TrainError::io("writing export files", out))?;
    summary.pred_points = pred_pts.len();
    summary.gt_points = gt_pts.len();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ply_header_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.ply");
        write_ply(
            &p,
            &[
                ([1.0, 2.0, 3.0], [255, 0, 10]),
                ([0.5, 0.0, -1.0], [1, 2, 3]),
            ],
        )
        .unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let header_end = text.find("end_header\n").unwrap() + "end_header\n".len();
        assert!(text.starts_with("ply\nformat binary_little_endian 1.0\n"));
        assert!(text.contains("element vertex 2\n"));
        assert_eq!(bytes.len() - header_end, 2 * (12 + 3));
        assert_eq!(&bytes[header_end..header_end + 4], &1.0f32.to_le_bytes());
        assert_eq!(&bytes[header_end + 12..header_end + 15], &[255, 0, 10]);
    }

    #[test]
    fn colour_map_ends() {
        assert_eq!(colour_map(0.0), [0, 0, 127]);
        assert_eq!(colour_map(1.0), [127, 0, 0]);
        assert_eq!(colour_map(0.5)[1], 255);
    }
}
