//! Importer tests on small committed fixtures in each real scan layout
//! (`tests/fixtures/scans/<layout>/`), written from one rendered synthetic room so that the
//! truth is known exactly, with the layouts' traps: inverse pose direction (COLMAP), quaternion
//! order (TUM scalar-last, COLMAP scalar-first), depth scale (TUM / 5000), OpenGL axes
//! (nerfstudio), 65535-as-invalid depth (7-Scenes), colour and depth of different sizes
//! (ScanNet), non-finite poses, truncated images and missing partners.
//!
//! Regenerate the fixtures on purpose with `SPATIALSV_BLESS=1 cargo test --test tests layouts`.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Once;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type};
use image::{ImageBuffer, Rgb};
use spatialsv_ingest::synth::world::{Room, View, render, trajectory};
use spatialsv_ingest::{
    IngestOptions, IngestReport, ScanFormat, SplitChoice, ingest_scans, list_scenes,
};
use spatialsv_schemas::{Columns, Split, Table};
use spatialsv_store::Dataset;
use spatialsv_store::datagen::SplitMix64;
use spatialsv_store::geometry::{
    Mat4, format_matrix4, invert_rigid, opengl_to_opencv, quat_wxyz_from_rotation, rotation,
};
use spatialsv_store::media::{DepthImage, decode_png16, encode_png16};

use super::repo;

const FRAMES: usize = 6;
const W: u32 = 32;
const H: u32 = 24;

fn fixtures() -> PathBuf {
    repo().join("tests/fixtures/scans")
}

/// The room and camera path every layout fixture shows.
fn world() -> (Room, Vec<Mat4>) {
    let mut rng = SplitMix64::new(42);
    let room = Room::generate(&mut rng);
    let poses = trajectory(&room, &mut rng, FRAMES);
    (room, poses)
}

fn k_for(w: u32, h: u32, f_scale: f64) -> [f64; 4] {
    let f = f_scale * f64::from(w);
    [f, f, f64::from(w) / 2.0, f64::from(h) / 2.0]
}

fn png(view: &View, w: u32, h: u32) -> Vec<u8> {
    let img: ImageBuffer<Rgb<u8>, Vec<u8>> = ImageBuffer::from_raw(w, h, view.rgb.clone()).unwrap();
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn jpg(view: &View, w: u32, h: u32) -> Vec<u8> {
    let img: ImageBuffer<Rgb<u8>, Vec<u8>> = ImageBuffer::from_raw(w, h, view.rgb.clone()).unwrap();
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn depth_png(view: &View, w: u32, h: u32, units_per_m: f64, hole: Option<u16>) -> Vec<u8> {
    let mut values: Vec<u16> = view
        .depth_m
        .iter()
        .map(|d| (f64::from(*d) * units_per_m).round() as u16)
        .collect();
    if let Some(h) = hole {
        // A few invalid pixels, marked the layout's way.
        for i in (0..values.len()).step_by(7) {
            values[i] = h;
        }
    }
    encode_png16(&DepthImage {
        width: w,
        height: h,
        values,
    })
    .unwrap()
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn kmat(k: [f64; 4]) -> String {
    format!(
        "{} 0 {} 0\n0 {} {} 0\n0 0 1 0\n0 0 0 1\n",
        k[0], k[2], k[1], k[3]
    )
}

fn write_scannet(dir: &Path, room: &Room, poses: &[Mat4]) {
    let kc = k_for(W, H, 0.9);
    let kd = k_for(W / 2, H / 2, 0.9);
    write(&dir.join("intrinsic/intrinsic_color.txt"), kmat(kc));
    write(&dir.join("intrinsic/intrinsic_depth.txt"), kmat(kd));
    for (i, p) in poses.iter().enumerate() {
        let colour = render(room, p, kc, W, H);
        let depth = render(room, p, kd, W / 2, H / 2);
        let mut image = jpg(&colour, W, H);
        if i == 4 {
            image.truncate(image.len() / 2); // trap: truncated image
        }
        write(&dir.join(format!("color/{i}.jpg")), image);
        if i != 5 {
            write(
                &dir.join(format!("depth/{i}.png")),
                depth_png(&depth, W / 2, H / 2, 1000.0, None),
            );
        } // trap: frame 5 has no depth
        let pose = if i == 2 { [f64::NEG_INFINITY; 16] } else { *p }; // trap: ScanNet's -inf poses
        write(
            &dir.join(format!("pose/{i}.txt")),
            format_matrix4(&pose, 12),
        );
    }
}

fn tum_ts(i: usize, offset_us: i64) -> String {
    let us = 1_305_031_102_000_000i64 + i as i64 * 100_000 + offset_us;
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

fn write_tum(dir: &Path, room: &Room, poses: &[Mat4]) {
    let k = k_for(W, H, 0.9);
    let mut rgb = String::from("# color images\n# timestamp filename\n");
    let mut depth = String::from("# depth maps\n# timestamp filename\n");
    let mut gt = String::from("# ground truth trajectory\n# timestamp tx ty tz qx qy qz qw\n");
    for (i, p) in poses.iter().enumerate() {
        let v = render(room, p, k, W, H);
        let (tc, td) = (tum_ts(i, 0), tum_ts(i, if i == 3 { 50_000 } else { 7_000 })); // trap: frame 3's depth is 50 ms off
        write(&dir.join(format!("rgb/{tc}.png")), png(&v, W, H));
        write(
            &dir.join(format!("depth/{td}.png")),
            depth_png(&v, W, H, 5000.0, None),
        );
        rgb.push_str(&format!("{tc} rgb/{tc}.png\n"));
        depth.push_str(&format!("{td} depth/{td}.png\n"));
        // Motion capture brackets each colour time (same pose on both sides), scalar last.
        let q = quat_wxyz_from_rotation(&rotation(p));
        for off in [-4_000, 6_000] {
            gt.push_str(&format!(
                "{} {} {} {} {} {} {} {}\n",
                tum_ts(i, off),
                p[3],
                p[7],
                p[11],
                q[1],
                q[2],
                q[3],
                q[0]
            ));
        }
    }
    write(&dir.join("rgb.txt"), rgb);
    write(&dir.join("depth.txt"), depth);
    write(&dir.join("groundtruth.txt"), gt);
}

fn write_sevenscenes(dir: &Path, room: &Room, poses: &[Mat4]) {
    // 7-Scenes' fixed calibration is for 640x480; these images are 64x48 (scale 0.1).
    let (w, h) = (64, 48);
    let kc = [52.5, 52.5, 32.0, 24.0];
    let kd = [58.5, 58.5, 32.0, 24.0];
    for (i, p) in poses.iter().enumerate() {
        let base = dir.join(format!("frame-{i:06}"));
        write(
            &base.with_extension("color.png"),
            png(&render(room, p, kc, w, h), w, h),
        );
        write(
            &base.with_extension("depth.png"),
            depth_png(&render(room, p, kd, w, h), w, h, 1000.0, Some(65535)),
        );
        write(&base.with_extension("pose.txt"), format_matrix4(p, 12));
    }
}

fn write_colmap(dir: &Path, room: &Room, poses: &[Mat4]) {
    let k = k_for(W, H, 0.9);
    // Camera 1 is calibrated at twice the stored size (the importer rescales); camera 7 is a
    // SIMPLE_RADIAL with no distortion. Image ids are not contiguous.
    let cameras = format!(
        "# Camera list\n1 PINHOLE {} {} {} {} {} {}\n7 SIMPLE_RADIAL {W} {H} {} {} {} 0\n",
        2 * W,
        2 * H,
        2.0 * k[0],
        2.0 * k[1],
        2.0 * k[2],
        2.0 * k[3],
        k[0],
        k[2],
        k[3]
    );
    write(&dir.join("sparse/0/cameras.txt"), cameras);
    let mut images = String::from("# Image list with two lines of data per image:\n");
    for (i, p) in poses.iter().enumerate().rev() {
        let name = format!("frame_{i:03}.png");
        write(
            &dir.join("images").join(&name),
            png(&render(room, p, k, W, H), W, H),
        );
        let cw = invert_rigid(p); // images.txt holds camera_from_world, scalar first
        let q = quat_wxyz_from_rotation(&rotation(&cw));
        let cam = if i % 2 == 0 { 1 } else { 7 };
        images.push_str(&format!(
            "{} {} {} {} {} {} {} {} {cam} {name}\n",
            100 - i * 13,
            q[0],
            q[1],
            q[2],
            q[3],
            cw[3],
            cw[7],
            cw[11]
        ));
        images.push_str(if i % 3 == 0 {
            "\n"
        } else {
            "10.5 12.5 -1 3.0 4.0 17\n"
        });
    }
    write(&dir.join("sparse/0/images.txt"), images);
    write(&dir.join("sparse/0/points3D.txt"), "# 3D point list\n");
}

fn write_nerfstudio(dir: &Path, room: &Room, poses: &[Mat4]) {
    let k = k_for(W, H, 0.9);
    let mut frames = Vec::new();
    for (i, p) in poses.iter().enumerate() {
        let v = render(room, p, k, W, H);
        write(&dir.join(format!("images/frame_{i:05}.png")), png(&v, W, H));
        write(
            &dir.join(format!("depth/frame_{i:05}.png")),
            depth_png(&v, W, H, 1000.0, None),
        );
        let gl = opengl_to_opencv(p); // the flip is its own inverse: OpenCV -> OpenGL
        let m: Vec<Vec<f64>> = gl.chunks(4).map(|r| r.to_vec()).collect();
        frames.push(serde_json::json!({
            "file_path": format!("images/frame_{i:05}.png"),
            "depth_file_path": format!("depth/frame_{i:05}.png"),
            "transform_matrix": m,
        }));
    }
    let doc = serde_json::json!({
        "camera_model": "OPENCV", "fl_x": k[0], "fl_y": k[1], "cx": k[2], "cy": k[3], "w": W, "h": H,
        "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0, "frames": frames,
    });
    write(
        &dir.join("transforms.json"),
        serde_json::to_string_pretty(&doc).unwrap(),
    );
}

static BLESS: Once = Once::new();

/// Regenerates the committed fixtures when SPATIALSV_BLESS is set (once per test run).
fn ensure_fixtures() {
    BLESS.call_once(|| {
        if std::env::var_os("SPATIALSV_BLESS").is_none() {
            return;
        }
        let (room, poses) = world();
        let root = fixtures();
        for d in ["scannet", "tum", "sevenscenes", "colmap", "nerfstudio"] {
            let _ = std::fs::remove_dir_all(root.join(d));
        }
        write_scannet(&root.join("scannet/scene0000_00"), &room, &poses);
        // ScanNet's object annotation files beside it (standard-library Python).
        let script = root.join("make_scannet_objects.py");
        let ok = std::process::Command::new("python3")
            .arg(&script)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "{} failed", script.display());
        write_tum(
            &root.join("tum/rgbd_dataset_freiburg3_synthetic"),
            &room,
            &poses,
        );
        write_sevenscenes(&root.join("sevenscenes/chess/seq-01"), &room, &poses);
        write_colmap(&root.join("colmap/garden"), &room, &poses);
        write_nerfstudio(&root.join("nerfstudio/livingroom"), &room, &poses);
    });
}

struct Ingested {
    _dir: tempfile::TempDir,
    ds: Dataset,
    report: IngestReport,
}

fn ingest(format: Option<ScanFormat>, src: &Path, opts: IngestOptions) -> Ingested {
    ensure_fixtures();
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::create(dir.path().join("ds")).unwrap();
    let scenes = list_scenes(format, &[src.to_path_buf()], &opts).unwrap();
    let report = ingest_scans(&ds, &scenes, &opts, "test", &spatialsv_store::Silent).unwrap();
    Ingested {
        _dir: dir,
        ds,
        report,
    }
}

fn frames(ds: &Dataset) -> RecordBatch {
    let m = ds.latest().unwrap();
    let batches = ds.read_table(&m, Table::Frames, None).unwrap();
    let b = arrow::compute::concat_batches(&Table::Frames.schema(), &batches).unwrap();
    let idx = arrow::compute::sort_to_indices(b.column_by_name("frame_idx").unwrap(), None, None)
        .unwrap();
    arrow::compute::take_record_batch(&b, &idx).unwrap()
}

fn f64_col(b: &RecordBatch, name: &str, row: usize) -> f64 {
    b.column_by_name(name)
        .unwrap()
        .as_primitive::<Float64Type>()
        .value(row)
}

fn pose(b: &RecordBatch, row: usize) -> Mat4 {
    let l = b
        .column_by_name("world_from_camera")
        .unwrap()
        .as_fixed_size_list();
    let v = l.value(row);
    let mut m = [0.0; 16];
    m.copy_from_slice(v.as_primitive::<Float64Type>().values());
    m
}

fn frame_idx(b: &RecordBatch, row: usize) -> usize {
    b.column_by_name("frame_idx")
        .unwrap()
        .as_primitive::<Int64Type>()
        .value(row) as usize
}

/// Every stored pose equals the true camera-to-world, and stored depth (times its scale) the
/// true z-depth seen through the stored depth intrinsics.
fn assert_truth(b: &RecordBatch, room: &Room, poses: &[Mat4], tol_m: f64) {
    for row in 0..b.num_rows() {
        let i = frame_idx(b, row);
        let got = pose(b, row);
        let err = got
            .iter()
            .zip(&poses[i])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            err < 1e-6,
            "frame {i}: pose differs from the truth by {err}"
        );
        let depth = b.column_by_name("depth").unwrap();
        if depth.is_null(row) {
            continue;
        }
        let d = decode_png16(depth.as_binary::<i32>().value(row)).unwrap();
        let k = ["depth_fx", "depth_fy", "depth_cx", "depth_cy"].map(|c| f64_col(b, c, row));
        let truth = render(room, &poses[i], k, d.width, d.height);
        let scale = f64_col(b, "depth_scale_m", row);
        for (v, t) in d.values.iter().zip(&truth.depth_m) {
            if *v != 0 {
                let e = (f64::from(*v) * scale - f64::from(*t)).abs();
                assert!(e <= tol_m, "frame {i}: depth off by {e} m");
            }
        }
    }
}

#[test]
fn scannet_traps() {
    let (room, poses) = world();
    let r = ingest(
        Some(ScanFormat::Scannet),
        &fixtures().join("scannet"),
        IngestOptions::default(),
    );
    let q = r.report.quarantined();
    assert_eq!(q.get("non_finite_pose"), Some(&1), "{q:?}");
    assert_eq!(q.get("truncated_image"), Some(&1), "{q:?}");
    assert_eq!(q.get("missing_depth"), Some(&1), "{q:?}");
    let b = frames(&r.ds);
    assert_eq!(
        (0..b.num_rows())
            .map(|r| frame_idx(&b, r))
            .collect::<Vec<_>>(),
        vec![0, 1, 3]
    );
    // Colour 32x24 and depth 16x12, each with its own intrinsics.
    assert_eq!(
        b.column_by_name("width")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int32Type>()
            .value(0),
        32
    );
    assert_eq!(
        b.column_by_name("depth_width")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int32Type>()
            .value(0),
        16
    );
    assert!(
        (f64_col(&b, "fx", 0) - 28.8).abs() < 1e-9
            && (f64_col(&b, "depth_fx", 0) - 14.4).abs() < 1e-9
    );
    assert_truth(&b, &room, &poses, 0.0006);
    // The quarantine table names file, reason and detail.
    let m = r.ds.latest().unwrap();
    let qb =
        r.ds.read_table(
            &m,
            Table::Quarantine,
            Some(&["source_uri", "reason", "detail"]),
        )
        .unwrap();
    let strings = |name: &str| -> Vec<String> {
        qb.iter()
            .flat_map(|b| {
                Columns::new(Table::Quarantine, b)
                    .unwrap()
                    .strings(name)
                    .unwrap()
                    .iter()
                    .map(|v| v.unwrap().to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let reasons = strings("reason");
    assert_eq!(reasons.len(), 3);
    let uris = strings("source_uri");
    assert!(uris.iter().any(|u| u.ends_with("color/4.jpg")), "{uris:?}");
}

/// ScanNet's object annotation (aggregation + segments over the mesh, `instance-filt/`
/// images; written by `tests/fixtures/scans/make_scannet_objects.py`) lands in `objects` and
/// `object_views`; a damaged annotation loses the objects with a note, never the frames.
#[test]
fn scannet_objects_from_the_aggregation_and_instance_images() {
    let r = ingest(
        Some(ScanFormat::Scannet),
        &fixtures().join("scannet"),
        IngestOptions::default(),
    );
    let scene = &r.report.scenes[0];
    assert_eq!((scene.objects, scene.object_views), (2, 4), "{scene:?}");
    assert!(
        scene
            .warnings
            .iter()
            .any(|w| w.contains("1 object sightings") && w.contains("ids the annotation lacks")),
        "{:?}",
        scene.warnings
    );
    let m = r.ds.latest().unwrap();
    let objects = r.ds.read_table(&m, Table::Objects, None).unwrap();
    let b = arrow::compute::concat_batches(&Table::Objects.schema(), &objects).unwrap();
    let c = Columns::new(Table::Objects, &b).unwrap();
    let names: Vec<&str> = c.strings("name").unwrap().iter().flatten().collect();
    assert_eq!(names, ["chair", "table"]);
    let boxes = b.column_by_name("centre").unwrap().as_fixed_size_list();
    let centre = |row: usize| -> Vec<f64> {
        boxes
            .value(row)
            .as_primitive::<Float64Type>()
            .values()
            .to_vec()
    };
    for (got, want) in centre(0).iter().zip([1.25, 1.25, 0.45]) {
        assert!((got - want).abs() < 1e-6, "{:?}", centre(0));
    }
    for (got, want) in centre(1).iter().zip([2.5, 0.5, 0.375]) {
        assert!((got - want).abs() < 1e-6, "{:?}", centre(1));
    }
    let views = r.ds.read_table(&m, Table::ObjectViews, None).unwrap();
    let b = arrow::compute::concat_batches(&Table::ObjectViews.schema(), &views).unwrap();
    let col = |name: &str| -> Vec<i64> {
        b.column_by_name(name)
            .unwrap()
            .as_primitive::<Int64Type>()
            .values()
            .to_vec()
    };
    let mut seen: Vec<(i64, i64, i64)> = col("frame_idx")
        .into_iter()
        .zip(col("object_id"))
        .zip(col("pixels"))
        .map(|((f, o), p)| (f, o, p))
        .collect();
    seen.sort();
    // Frames 2, 4 and 5 were quarantined; their instance images add nothing.
    assert_eq!(seen, [(0, 1, 16), (0, 2, 30), (1, 2, 30), (3, 2, 30)]);
    let depth = b
        .column_by_name("depth_median_m")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(depth.null_count(), 0);

    // A damaged aggregation: the frames land, the objects do not, and a note says why.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("scene0000_00");
    super::copy_dir(&fixtures().join("scannet/scene0000_00"), &copy);
    std::fs::write(
        copy.join("scene0000_00.aggregation.json"),
        "{\"segGroups\": [",
    )
    .unwrap();
    let r = ingest(Some(ScanFormat::Scannet), &copy, IngestOptions::default());
    let scene = &r.report.scenes[0];
    assert_eq!((scene.ingested, scene.objects), (3, 0));
    assert!(
        scene
            .notes
            .iter()
            .any(|n| n.starts_with("objects not ingested")
                && n.contains("scene0000_00.aggregation.json")
                && n.contains("not a ScanNet aggregation")),
        "{:?}",
        scene.notes
    );
    let m = r.ds.latest().unwrap();
    assert_eq!(m.rows("objects"), 0);
}

#[test]
fn tum_association_quaternion_order_and_depth_scale() {
    let (room, poses) = world();
    let opts = IngestOptions {
        intrinsics: Some(k_for(W, H, 0.9)),
        ..IngestOptions::default()
    };
    let r = ingest(
        Some(ScanFormat::Tum),
        &fixtures().join("tum/rgbd_dataset_freiburg3_synthetic"),
        opts,
    );
    assert_eq!(r.report.quarantined().get("missing_depth"), Some(&1));
    let b = frames(&r.ds);
    assert_eq!(b.num_rows(), 5);
    assert!((f64_col(&b, "depth_scale_m", 0) - 0.0002).abs() < 1e-12);
    // Timestamps are exact, relative to the first colour frame.
    let ts = b
        .column_by_name("timestamp_ns")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(ts.value(1), 100_000_000);
    assert_truth(&b, &room, &poses, 0.00011);
    let c = r.report.scenes[0].consistency.unwrap();
    assert!(c.agreement > 0.9, "{c:?}");
}

#[test]
fn sevenscenes_invalid_depth_and_fixed_calibration() {
    let (room, poses) = world();
    let r = ingest(
        None,
        &fixtures().join("sevenscenes"),
        IngestOptions::default(),
    );
    assert_eq!(r.report.scenes[0].scene_id, "chess-seq-01");
    assert!(
        r.report.scenes[0].notes[0].contains("sevenscenes"),
        "{:?}",
        r.report.scenes[0].notes
    );
    let b = frames(&r.ds);
    assert_eq!(b.num_rows(), FRAMES);
    assert!((f64_col(&b, "fx", 0) - 52.5).abs() < 1e-9);
    assert!((f64_col(&b, "depth_fx", 0) - 58.5).abs() < 1e-9);
    // 65535 holes became 0.
    let d = decode_png16(
        b.column_by_name("depth")
            .unwrap()
            .as_binary::<i32>()
            .value(0),
    )
    .unwrap();
    assert!(d.values.iter().all(|v| *v != 65535));
    assert_eq!(d.values[0], 0);
    assert_truth(&b, &room, &poses, 0.0006);
}

#[test]
fn colmap_world_to_camera_scalar_first_and_rescaled_cameras() {
    let (room, poses) = world();
    let r = ingest(
        Some(ScanFormat::Colmap),
        &fixtures().join("colmap"),
        IngestOptions::default(),
    );
    let b = frames(&r.ds);
    assert_eq!(b.num_rows(), FRAMES, "{:?}", r.report);
    assert_truth(&b, &room, &poses, 0.0);
    let models = b.column_by_name("camera_model").unwrap().as_string::<i32>();
    assert_eq!(models.value(0), "pinhole");
    assert_eq!(models.value(1), "simple_radial");
    // Camera 1 was calibrated at 64x48: intrinsics come back at the stored 32x24.
    assert!(
        (f64_col(&b, "fx", 0) - 28.8).abs() < 1e-9 && (f64_col(&b, "cx", 0) - 16.0).abs() < 1e-9
    );
}

#[test]
fn nerfstudio_opengl_axes() {
    let (room, poses) = world();
    let r = ingest(
        Some(ScanFormat::Nerfstudio),
        &fixtures().join("nerfstudio"),
        IngestOptions::default(),
    );
    let b = frames(&r.ds);
    assert_eq!(b.num_rows(), FRAMES);
    assert_truth(&b, &room, &poses, 0.0006);
    assert!(r.report.scenes[0].consistency.unwrap().agreement > 0.9);
}

#[test]
fn reingesting_adds_nothing_and_auto_finds_every_layout() {
    ensure_fixtures();
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::create(dir.path()).unwrap();
    let opts = IngestOptions {
        split: SplitChoice::Fixed(Split::Train),
        ..IngestOptions::default()
    };
    let srcs: Vec<PathBuf> = ["scannet", "sevenscenes", "colmap", "nerfstudio"]
        .iter()
        .map(|d| fixtures().join(d))
        .collect();
    let scenes = list_scenes(None, &srcs, &opts).unwrap();
    let formats: Vec<&str> = scenes.iter().map(|s| s.format).collect();
    assert_eq!(formats, ["scannet", "sevenscenes", "colmap", "nerfstudio"]);
    let first = ingest_scans(&ds, &scenes, &opts, "first", &spatialsv_store::Silent).unwrap();
    assert_eq!(first.ingested(), 3 + 3 * FRAMES);
    let again = ingest_scans(&ds, &scenes, &opts, "again", &spatialsv_store::Silent).unwrap();
    assert_eq!((again.ingested(), again.duplicates()), (0, 3 + 3 * FRAMES));
    assert_eq!(again.version, first.version, "nothing new: no new version");
    assert_eq!(ds.latest().unwrap().rows("quarantine"), 3);
}

#[test]
fn convention_errors_are_caught_by_the_reprojection_check() {
    ensure_fixtures();
    let (room, poses) = world();
    let dir = tempfile::tempdir().unwrap();
    // The same scans with world-to-camera stored where camera-to-world belongs.
    let inverted: Vec<Mat4> = poses.iter().map(invert_rigid).collect();
    let good = dir.path().join("good");
    let bad = dir.path().join("inverted");
    write_nerfstudio(&good, &room, &poses);
    write_nerfstudio(&bad, &room, &inverted);
    let opts = IngestOptions::default();
    let ds = Dataset::create(dir.path().join("ds")).unwrap();
    let scenes = list_scenes(Some(ScanFormat::Nerfstudio), &[good, bad], &opts).unwrap();
    let report = ingest_scans(&ds, &scenes, &opts, "test", &spatialsv_store::Silent).unwrap();
    assert!(
        report.scenes[0].warnings.is_empty(),
        "{:?}",
        report.scenes[0].warnings
    );
    assert!(
        !report.scenes[1].warnings.is_empty(),
        "inverted poses went unnoticed: {:?}",
        report.scenes[1].consistency
    );
    // A wrong depth scale (millimetres read as TUM's 1/5000) is caught too.
    let tum = dir.path().join("rgbd_dataset_freiburg3_mm");
    write_tum(&tum, &room, &poses);
    let k = k_for(W, H, 0.9);
    for (i, p) in poses.iter().enumerate() {
        let td = tum_ts(i, if i == 3 { 50_000 } else { 7_000 });
        write(
            &tum.join(format!("depth/{td}.png")),
            depth_png(&render(&room, p, k, W, H), W, H, 1000.0, None),
        );
    }
    let opts = IngestOptions {
        intrinsics: Some(k),
        ..IngestOptions::default()
    };
    let scenes = list_scenes(Some(ScanFormat::Tum), &[tum], &opts).unwrap();
    let report = ingest_scans(&ds, &scenes, &opts, "test", &spatialsv_store::Silent).unwrap();
    assert!(
        !report.scenes[0].warnings.is_empty(),
        "wrong depth scale went unnoticed: {:?}",
        report.scenes[0].consistency
    );
}
