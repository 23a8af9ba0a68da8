//! TUM RGB-D: `rgb.txt` and `depth.txt` (`timestamp path`), `groundtruth.txt`
//! (`timestamp tx ty tz qx qy qz qw`: camera-to-world, quaternion scalar LAST), `#` comments.
//! Depth is uint16 with value / 5000 = metres. Colour, depth and motion capture run on separate
//! clocks and rates: each colour frame takes the depth frame nearest in time (within
//! `max_dt_s`, 0.02 s by default) and the pose interpolated at the colour timestamp. No
//! intrinsics are shipped: the published calibration of freiburg1 is used for `*freiburg1*`
//! sequences, the default 525/525/319.5/239.5 otherwise (override with `--intrinsics`).

use std::path::Path;

use super::detect::scene_id_from;
use super::{Refusal, SourceDepth, SourceFrame, SourceIntrinsics, SourceScene};
use spatialsv_store::geometry::{from_rt, rotation_from_quat_wxyz, slerp};
use spatialsv_store::{Error, Result};

/// Freiburg 1 colour calibration (TUM RGB-D website).
const FR1: [f64; 4] = [517.3, 516.5, 318.6, 255.3];
/// The default calibration of the dataset's ROS driver.
const DEFAULT: [f64; 4] = [525.0, 525.0, 319.5, 239.5];
/// Largest gap between two motion-capture samples to interpolate across.
const MAX_INTERP_GAP_S: f64 = 0.1;

/// Parses a decimal timestamp in seconds exactly into nanoseconds.
pub(crate) fn parse_ts_ns(s: &str) -> Option<i64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = int.parse().ok()?;
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_ns: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    Some(secs * 1_000_000_000 + frac_ns)
}

/// Non-comment, non-empty lines split on whitespace, with their 1-based line numbers.
fn table(path: &Path) -> Result<Vec<(usize, Vec<String>)>> {
    let text = std::fs::read_to_string(path).map_err(Error::io("reading", path))?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| (i + 1, l.split_whitespace().map(str::to_string).collect()))
        .collect())
}

fn file_list(path: &Path) -> Result<Vec<(i64, String)>> {
    let mut out = Vec::new();
    for (line, cols) in table(path)? {
        let (Some(ts), Some(file)) = (cols.first().and_then(|t| parse_ts_ns(t)), cols.get(1))
        else {
            return Err(Error::bad_input(
                path,
                format!("line {line}: expected 'timestamp filename'"),
            ));
        };
        out.push((ts, file.clone()));
    }
    out.sort_by_key(|(t, _)| *t);
    Ok(out)
}

/// A motion-capture sample: time, translation, quaternion (w, x, y, z).
type Sample = (i64, [f64; 3], [f64; 4]);

fn groundtruth(path: &Path) -> Result<Vec<Sample>> {
    let mut out = Vec::new();
    for (line, cols) in table(path)? {
        let nums: Option<Vec<f64>> = cols.iter().skip(1).map(|c| c.parse().ok()).collect();
        match (cols.first().and_then(|t| parse_ts_ns(t)), nums) {
            (Some(ts), Some(n)) if n.len() == 7 => {
                // File order: tx ty tz qx qy qz qw (scalar last).
                out.push((ts, [n[0], n[1], n[2]], [n[6], n[3], n[4], n[5]]));
            }
            _ => {
                return Err(Error::bad_input(
                    path,
                    format!("line {line}: expected 'timestamp tx ty tz qx qy qz qw'"),
                ));
            }
        }
    }
    out.sort_by_key(|s| s.0);
    Ok(out)
}

/// Index of the entry nearest to `t` in a time-sorted list.
fn nearest<T>(list: &[T], t: i64, time: impl Fn(&T) -> i64) -> Option<usize> {
    let i = list.partition_point(|e| time(e) < t);
    [i.checked_sub(1), (i < list.len()).then_some(i)]
        .into_iter()
        .flatten()
        .min_by_key(|&j| (time(&list[j]) - t).abs())
}

/// The pose at time `t`: interpolated between the bracketing samples when they are close
/// enough, else the nearest sample within `max_dt_ns`.
fn pose_at(gt: &[Sample], t: i64, max_dt_ns: i64) -> Option<[f64; 16]> {
    // A sample with a non-finite number gives a non-finite pose, which the loader refuses as
    // `non_finite_pose` (not as a missing one).
    let finite = |s: &Sample| s.1.iter().chain(&s.2).all(|v| v.is_finite());
    const NAN_POSE: [f64; 16] = [f64::NAN; 16];
    let i = gt.partition_point(|s| s.0 < t);
    if i > 0 && i < gt.len() {
        let (a, b) = (&gt[i - 1], &gt[i]);
        if ((b.0 - a.0) as f64) <= MAX_INTERP_GAP_S * 1e9 {
            if !finite(a) || !finite(b) {
                return Some(NAN_POSE);
            }
            let w = (t - a.0) as f64 / (b.0 - a.0).max(1) as f64;
            let q = slerp(a.2, b.2, w);
            let tr = [0, 1, 2].map(|k| a.1[k] + w * (b.1[k] - a.1[k]));
            return Some(from_rt(
                &rotation_from_quat_wxyz(q[0], q[1], q[2], q[3])?,
                tr,
            ));
        }
    }
    let j = nearest(gt, t, |s| s.0)?;
    if (gt[j].0 - t).abs() > max_dt_ns {
        return None;
    }
    if !finite(&gt[j]) {
        return Some(NAN_POSE);
    }
    let (_, tr, q) = gt[j];
    Some(from_rt(
        &rotation_from_quat_wxyz(q[0], q[1], q[2], q[3])?,
        tr,
    ))
}

/// Lists a TUM RGB-D sequence.
pub fn list(dir: &Path, max_dt_s: f64) -> Result<SourceScene> {
    let rgb = file_list(&dir.join("rgb.txt"))?;
    let depth = if dir.join("depth.txt").exists() {
        file_list(&dir.join("depth.txt"))?
    } else {
        Vec::new()
    };
    let gt = groundtruth(&dir.join("groundtruth.txt"))?;
    let max_dt_ns = (max_dt_s * 1e9).round() as i64;
    let scene_id = scene_id_from(dir, 1);
    let k = if scene_id.contains("freiburg1") {
        FR1
    } else {
        DEFAULT
    };
    let mut notes = vec![format!(
        "intrinsics {} {k:?} (TUM ships none; override with --intrinsics)",
        if k == FR1 { "freiburg1" } else { "default" }
    )];
    let t0 = rgb.first().map(|r| r.0).unwrap_or(0);
    let (mut no_depth, mut no_pose) = (0, 0);
    let mut frames = Vec::new();
    for (idx, (t, file)) in rgb.iter().enumerate() {
        let d = nearest(&depth, *t, |d| d.0).filter(|&j| (depth[j].0 - t).abs() <= max_dt_ns);
        let pose = pose_at(&gt, *t, max_dt_ns);
        let secs = *t as f64 / 1e9;
        let problem = if d.is_none() {
            no_depth += 1;
            Some(Refusal::new(
                "missing_depth",
                format!("no depth frame within {max_dt_s} s of colour timestamp {secs:.6}"),
            ))
        } else if pose.is_none() {
            no_pose += 1;
            Some(Refusal::new(
                "missing_pose",
                format!("no ground-truth pose within {max_dt_s} s of colour timestamp {secs:.6}"),
            ))
        } else {
            None
        };
        frames.push(SourceFrame {
            frame_idx: idx as i64,
            timestamp_ns: t - t0,
            image_path: dir.join(file),
            depth: d.map(|j| SourceDepth {
                path: dir.join(&depth[j].1),
                scale_m: 1.0 / 5000.0,
                invalid_value: None,
                intrinsics: None,
            }),
            intrinsics: SourceIntrinsics::at_stored(k),
            camera_model: "pinhole".into(),
            distortion: Vec::new(),
            world_from_camera: pose,
            pose_source: "groundtruth",
            problem,
        });
    }
    notes.push(format!(
        "associated {} colour frames: {no_depth} without a depth partner, {no_pose} without a pose (max dt {max_dt_s} s)",
        rgb.len()
    ));
    Ok(SourceScene {
        failure: None,
        annotations: None,
        split_hint: None,
        scene_id,
        root: dir.to_path_buf(),
        format: "tum",
        frames,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_exactly() {
        assert_eq!(
            parse_ts_ns("1305031102.175304"),
            Some(1_305_031_102_175_304_000)
        );
        assert_eq!(parse_ts_ns("12"), Some(12_000_000_000));
        assert_eq!(parse_ts_ns("1.5x"), None);
    }

    #[test]
    fn pose_interpolates_at_the_colour_time() {
        let gt = vec![
            (0, [0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]),
            (10_000_000, [1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]),
        ];
        let p = pose_at(&gt, 2_500_000, 20_000_000).unwrap();
        assert!((p[3] - 0.25).abs() < 1e-12);
        // Past the end: nearest within max dt, else nothing.
        assert!(pose_at(&gt, 25_000_000, 20_000_000).is_some());
        assert!(pose_at(&gt, 35_000_000, 20_000_000).is_none());
    }
}
