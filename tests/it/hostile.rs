//! A corpus of bad inputs, as a new (or hostile) user would give them: each case asserts one
//! clear line naming the file, key or row (exit code 2 for the user's mistakes, 1 for a
//! damaged dataset) or a quarantine row with its reason while the rest of the job lands;
//! never a panic, never silently lost data.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{copy_dir, fails, ok, repo, spatialsv, tiny};

fn scans() -> PathBuf {
    repo().join("tests/fixtures/scans")
}

/// The committed ScanNet fixture scene (6 colour frames, traps at frames 2, 4 and 5) copied
/// to `dir/name`.
fn scannet_scene(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    copy_dir(&scans().join("scannet/scene0000_00"), &to);
    to
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// CSV rows of a query (header dropped).
fn rows(ds: &Path, sql: &str) -> Vec<String> {
    ok(&["sql", "--dataset", s(ds), "--format", "csv", sql])
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

/// Asserts a failure with `code`, on one line, containing every needle, without a panic.
fn fails_with(args: &[&str], code: i32, needles: &[&str]) {
    let (got, err) = fails(args);
    assert_eq!(got, code, "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: '{n}' missing from: {err}");
    }
}

/// CRC-32 (IEEE) of PNG chunks, so a rewritten header is still a well-formed PNG.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for b in bytes {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn rgb_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 9) as u8, 77]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::from(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

#[test]
fn corrupt_pixel_data_bomb_headers_and_absurd_poses_are_quarantined_and_the_rest_lands() {
    let dir = tempfile::tempdir().unwrap();
    let scene = scannet_scene(dir.path(), "scene0001_00");
    let color = scene.join("color");
    // Frame 0: a PNG with a valid header and IEND around a corrupt deflate stream.
    let mut png = rgb_png(32, 24);
    let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
    for b in &mut png[idat + 6..idat + 30] {
        *b ^= 0xA5;
    }
    std::fs::remove_file(color.join("0.jpg")).unwrap();
    std::fs::write(color.join("0.png"), &png).unwrap();
    // Frame 1: a header claiming 160000x120000 pixels (with a correct CRC).
    let mut bomb = rgb_png(32, 24);
    bomb[16..20].copy_from_slice(&160_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&120_000u32.to_be_bytes());
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    std::fs::remove_file(color.join("1.jpg")).unwrap();
    std::fs::write(color.join("1.png"), &bomb).unwrap();
    // Frame 3: a translation of 1e308 metres.
    let pose = std::fs::read_to_string(scene.join("pose/3.txt")).unwrap();
    let mut lines: Vec<String> = pose.lines().map(str::to_string).collect();
    let mut first: Vec<&str> = lines[0].split_whitespace().collect();
    first[3] = "1e308";
    lines[0] = first.join(" ");
    std::fs::write(scene.join("pose/3.txt"), lines.join("\n")).unwrap();

    let ds = dir.path().join("ds");
    ok(&["ingest", "scannet", s(&scene), "--dataset", s(&ds)]);
    let q = rows(
        &ds,
        "SELECT frame_idx, reason, detail FROM quarantine ORDER BY frame_idx",
    );
    let reason_of = |i: i64| {
        q.iter()
            .find(|r| r.starts_with(&format!("{i},")))
            .unwrap_or_else(|| panic!("frame {i} not quarantined: {q:?}"))
            .clone()
    };
    assert!(reason_of(0).contains("corrupt_image"), "{q:?}");
    assert!(reason_of(0).contains("0.png"), "{q:?}");
    assert!(reason_of(1).contains("oversized_image"), "{q:?}");
    assert!(reason_of(1).contains("160000x120000"), "{q:?}");
    assert!(reason_of(3).contains("invalid_pose"), "{q:?}");
    assert!(reason_of(3).contains("1e308"), "{q:?}");
    // The fixture's own traps (2: -inf pose, 4: truncated, 5: no depth) stay quarantined;
    // nothing else is lost: 6 frames = 0 ingested + 6 quarantined.
    assert_eq!(q.len(), 6, "{q:?}");
    assert_eq!(rows(&ds, "SELECT count(*) FROM frames"), ["0"]);
}

#[test]
fn one_malformed_scene_is_quarantined_while_the_others_land_and_symlinks_are_not_aliases() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("scans");
    for name in ["scene0001_00", "scene0002_00", "scene0003_00"] {
        scannet_scene(&parent, name);
    }
    let bad = parent.join("scene0002_00/intrinsic/intrinsic_color.txt");
    std::fs::write(&bad, "garbage, not a matrix\n").unwrap();
    std::os::unix::fs::symlink(".", parent.join("loop")).unwrap();
    let ds = dir.path().join("ds");
    let out = ok(&["ingest", "scannet", s(&parent), "--dataset", s(&ds)]);
    // The two good scenes land (each: frames 0, 1 and 3 of the fixture).
    assert_eq!(
        rows(
            &ds,
            "SELECT scene_id, count(*) FROM frames GROUP BY scene_id ORDER BY scene_id"
        ),
        ["scene0001_00,3", "scene0003_00,3"]
    );
    let q = rows(
        &ds,
        "SELECT reason, detail FROM quarantine WHERE scene_id = 'scene0002_00'",
    );
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(
        q[0].starts_with("unreadable_scene,") && q[0].contains(s(&bad)),
        "{q:?}"
    );
    // The symlink loop is walked once, and skipped with a note naming it and the directory
    // it leads back to; the scenes are kept under the paths through no link.
    assert!(
        out.contains(&format!(
            "skipped {}: the same directory as one already walked ({})",
            parent.join("loop").display(),
            std::fs::canonicalize(&parent).unwrap().display()
        )),
        "{out}"
    );
    assert!(!q[0].contains("/loop/"), "{q:?}");
}

#[test]
fn malformed_layout_files_exit_2_naming_the_file_and_line_or_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ds = d.join("ds");
    // ScanNet intrinsics.
    let scannet = scannet_scene(d, "scene0009_00");
    let k = scannet.join("intrinsic/intrinsic_color.txt");
    std::fs::write(&k, "1 2 3\n").unwrap();
    fails_with(
        &["ingest", "scannet", s(&scannet), "--dataset", s(&ds)],
        2,
        &["bad intrinsics", s(&k)],
    );
    // TUM lists.
    let tum = d.join("tum");
    copy_dir(&scans().join("tum/rgbd_dataset_freiburg3_synthetic"), &tum);
    let rgb = tum.join("rgb.txt");
    std::fs::write(&rgb, "# x\nnot-a-timestamp\n").unwrap();
    fails_with(
        &["ingest", "tum", s(&tum), "--dataset", s(&ds)],
        2,
        &["line 2", s(&rgb)],
    );
    // COLMAP text.
    let colmap = d.join("colmap");
    copy_dir(&scans().join("colmap/garden"), &colmap);
    let images = colmap.join("sparse/0/images.txt");
    std::fs::write(&images, "1 x y z w 0 0 0 1 a.jpg\n\n").unwrap();
    fails_with(
        &["ingest", "colmap", s(&colmap), "--dataset", s(&ds)],
        2,
        &[s(&images)],
    );
    // nerfstudio JSON, and a negative depth scale (the file and the key).
    let ns = d.join("ns");
    copy_dir(&scans().join("nerfstudio/livingroom"), &ns);
    let json = ns.join("transforms.json");
    let good = std::fs::read_to_string(&json).unwrap();
    std::fs::write(&json, "{ not json").unwrap();
    fails_with(
        &["ingest", "nerfstudio", s(&ns), "--dataset", s(&ds)],
        2,
        &["not valid JSON", s(&json)],
    );
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["depth_unit_scale_factor"] = (-0.001).into();
    std::fs::write(&json, v.to_string()).unwrap();
    fails_with(
        &["ingest", "nerfstudio", s(&ns), "--dataset", s(&ds)],
        2,
        &["depth_unit_scale_factor", s(&json)],
    );
    // Nothing was committed by any of them.
    assert!(!ds.join("data").exists());
}

#[test]
fn bad_command_line_values_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ds = d.join("ds");
    let tum = scans().join("tum/rgbd_dataset_freiburg3_synthetic");
    let video = repo().join("tests/fixtures/video/bikes.mp4");
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["ingest", "tum", s(&tum), "--dataset", s(&ds)]
            .iter()
            .map(|x| x.to_string())
            .collect();
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    for (extra, needle) in [
        (vec!["--intrinsics", "0,0,0,0"], "--intrinsics 0,0,0,0"),
        (vec!["--intrinsics", "NaN,1,1,1"], "--intrinsics NaN"),
        (vec!["--intrinsics", "1,2,3"], "takes four numbers"),
        (vec!["--tum-max-dt", "-1"], "--tum-max-dt -1"),
        (vec!["--tum-max-dt", "NaN"], "--tum-max-dt NaN"),
        (vec!["--commit-every", "0"], "--commit-every"),
    ] {
        let args = base(&extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_with(&args, 2, &[needle]);
    }
    for (extra, needle) in [
        (vec!["--clip-len", "0"], "--clip-len 0"),
        (vec!["--fps", "-2"], "--fps -2"),
    ] {
        let mut args = vec!["ingest", "video", s(&video), "--dataset", s(&ds)];
        args.extend(extra);
        fails_with(&args, 2, &[needle]);
    }
    fails_with(
        &[
            "label",
            "--dataset",
            s(&tiny()),
            "--teacher",
            s(d),
            "--shard",
            "-1/2",
        ],
        2,
        &["--shard '-1/2' is not K/N"],
    );
    // --dataset naming a file.
    let file = d.join("file");
    std::fs::write(&file, "x").unwrap();
    fails_with(
        &["ingest", "tum", s(&tum), "--dataset", s(&file)],
        2,
        &["this is a file", s(&file)],
    );
    fails_with(
        &["sql", "--dataset", s(&file), "SELECT 1"],
        2,
        &["this is a file"],
    );
    assert!(!ds.exists(), "a refused command created the dataset");
    // The README's `--intrinsics fx,fy,cx,cy` form works, and the summary says what was used.
    let out = ok(&base(&["--intrinsics", "500,500,16,12"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert!(
        out.contains("[500.0, 500.0, 16.0, 12.0] from --intrinsics"),
        "{out}"
    );
    assert!(!out.contains("TUM ships none"), "{out}");
    assert_eq!(
        rows(&ds, "SELECT DISTINCT fx, cy FROM frames"),
        ["500.0,12.0"]
    );
}

#[test]
fn train_configs_with_impossible_sizes_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (line, key) in [
        ("image_width = 0", "image_width = 0"),
        ("image_height = 80000", "image_height = 80000"),
        ("batch_size = 0", "batch_size = 0"),
        ("augment_blur = 2.0", "augment_blur = 2"),
        ("preset = \"huge\"", "unknown variant `huge`"),
    ] {
        let cfg = dir.path().join("bad.toml");
        std::fs::write(&cfg, format!("{line}\n")).unwrap();
        fails_with(
            &[
                "train",
                "--dataset",
                s(&tiny()),
                "--config",
                s(&cfg),
                "--out",
                s(&dir.path().join("run")),
            ],
            2,
            &[key],
        );
    }
}

/// The fixture dataset copied somewhere it may be damaged.
fn damaged_copy(dir: &Path) -> PathBuf {
    let ds = dir.join("ds");
    copy_dir(&tiny(), &ds);
    ds
}

#[test]
fn sql_is_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let ds = damaged_copy(dir.path());
    let leak = dir.path().join("leak.csv");
    for sql in [
        "CREATE TABLE t AS SELECT * FROM scenes".to_string(),
        "DROP TABLE frames".to_string(),
        format!("COPY (SELECT * FROM scenes) TO '{}'", leak.display()),
    ] {
        fails_with(
            &["sql", "--dataset", s(&ds), &sql],
            2,
            &["SQL sessions are read-only"],
        );
    }
    assert!(!leak.exists());
    assert_eq!(rows(&ds, "SELECT count(*) FROM frames"), ["20"]);
}

#[test]
fn a_missing_or_truncated_data_file_is_an_error_naming_it_never_fewer_rows() {
    let dir = tempfile::tempdir().unwrap();
    let ds = damaged_copy(dir.path());
    let manifest: serde_json::Value =
        serde_json::from_str(&ok(&["log", "--dataset", s(&ds), "--json"])).unwrap();
    let newest = manifest.as_array().unwrap().last().unwrap();
    let file = newest["tables"]["frames"]["files"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let path = ds.join(&file);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    fails_with(
        &["sql", "--dataset", s(&ds), "SELECT count(*) FROM frames"],
        1,
        &["truncated", &file],
    );
    std::fs::remove_file(&path).unwrap();
    for args in [
        vec!["sql", "--dataset", s(&ds), "SELECT count(*) FROM frames"],
        vec!["sql", "--dataset", s(&ds), "SELECT count(*) FROM scenes"],
    ] {
        fails_with(&args, 1, &["missing", &file]);
    }
    // `log` prints the history, then says the newest version is damaged.
    let out = spatialsv(&["log", "--dataset", s(&ds)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&file));
}

#[test]
fn runs_without_a_usable_checkpoint_say_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir_all(run.join("checkpoints/step-00000100")).unwrap();
    std::fs::write(run.join("checkpoints/step-00000100/state.json"), "{}").unwrap();
    std::fs::write(run.join("latest"), "step-00000300").unwrap();
    let (tiny, out) = (tiny(), dir.path().join("eval"));
    let args = [
        "eval",
        "--dataset",
        s(&tiny),
        "--checkpoint",
        s(&run),
        "--out",
        s(&out),
    ];
    fails_with(
        &args,
        2,
        &["`latest` names step-00000300", "present: step-00000100"],
    );
    // A checkpoint whose model config is damaged: one line, exit 1, no library advice.
    std::fs::write(run.join("latest"), "step-00000100").unwrap();
    std::fs::write(run.join("model.json"), "{ damaged").unwrap();
    fails_with(&args, 1, &["unreadable model config", "model.json"]);
}

#[test]
fn a_damaged_checkpoint_is_one_line_naming_the_file() {
    let t = super::ingest::trained();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    copy_dir(Path::new(&t.run), &run);
    let latest = std::fs::read_to_string(run.join("latest")).unwrap();
    let model = run
        .join("checkpoints")
        .join(latest.trim())
        .join("model.mpk");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 3]).unwrap();
    let out = dir.path().join("eval");
    fails_with(
        &[
            "eval",
            "--dataset",
            &t.ds,
            "--checkpoint",
            s(&run),
            "--out",
            s(&out),
        ],
        1,
        &["checkpoint does not load", "model.mpk"],
    );
}

#[test]
fn colour_files_that_are_not_frame_numbers_are_reported_not_dropped_silently() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let scene = scannet_scene(dir.path(), "scene0004_00");
    let color = scene.join("color");
    let odd = std::ffi::OsStr::from_bytes(b"fr\xffme.jpg");
    std::fs::copy(color.join("0.jpg"), color.join(odd)).unwrap();
    // A frame number whose timestamp would overflow.
    std::fs::copy(color.join("0.jpg"), color.join("9223372036854775807.jpg")).unwrap();
    let ds = dir.path().join("ds");
    let out = ok(&["ingest", "scannet", s(&scene), "--dataset", s(&ds)]);
    assert!(
        out.contains("1 files in color/ skipped: their names are not frame numbers"),
        "{out}"
    );
    assert_eq!(
        rows(
            &ds,
            "SELECT reason FROM quarantine WHERE frame_idx = 9223372036854775807"
        ),
        ["invalid_frame_number"]
    );
}

#[test]
fn tum_groundtruth_with_a_nan_quaternion_is_a_non_finite_pose() {
    let dir = tempfile::tempdir().unwrap();
    let tum = dir.path().join("rgbd_dataset_freiburg3_nan");
    copy_dir(&scans().join("tum/rgbd_dataset_freiburg3_synthetic"), &tum);
    let gt = std::fs::read_to_string(tum.join("groundtruth.txt")).unwrap();
    let nan: Vec<String> = gt
        .lines()
        .map(|l| {
            if l.starts_with('#') {
                l.to_string()
            } else {
                let mut c: Vec<&str> = l.split_whitespace().collect();
                c[7] = "nan";
                c.join(" ")
            }
        })
        .collect();
    std::fs::write(tum.join("groundtruth.txt"), nan.join("\n")).unwrap();
    let ds = dir.path().join("ds");
    ok(&["ingest", "tum", s(&tum), "--dataset", s(&ds)]);
    let reasons = rows(
        &ds,
        "SELECT DISTINCT reason FROM quarantine ORDER BY reason",
    );
    assert!(
        reasons.contains(&"non_finite_pose".to_string()),
        "{reasons:?}"
    );
    assert!(
        !reasons.contains(&"missing_pose".to_string()),
        "{reasons:?}"
    );
}

#[test]
fn concurrent_ingests_into_one_dataset_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let a = scannet_scene(dir.path(), "scene0005_00");
    let b = scannet_scene(dir.path(), "scene0006_00");
    for trial in 0..3 {
        let ds = dir.path().join(format!("ds{trial}"));
        ok(&[
            "ingest",
            "scannet",
            s(&a),
            "--dataset",
            s(&ds),
            "--jobs",
            "1",
        ]);
        std::fs::remove_dir_all(ds.join("data")).unwrap();
        std::fs::remove_dir_all(ds.join("_spatialsv")).unwrap();
        let spawn = |src: &Path| {
            Command::new(env!("CARGO_BIN_EXE_spatialsv"))
                .args([
                    "ingest",
                    "scannet",
                    s(src),
                    "--dataset",
                    s(&ds),
                    "--jobs",
                    "1",
                ])
                .env("CI", "true")
                .output()
                .unwrap()
        };
        let (ra, rb) = std::thread::scope(|sc| {
            let ha = sc.spawn(|| spawn(&a));
            let hb = sc.spawn(|| spawn(&b));
            (ha.join().unwrap(), hb.join().unwrap())
        });
        for r in [&ra, &rb] {
            assert!(
                r.status.success(),
                "trial {trial}: {}",
                String::from_utf8_lossy(&r.stderr)
            );
        }
        assert_eq!(
            rows(
                &ds,
                "SELECT scene_id, count(*) FROM frames GROUP BY scene_id ORDER BY scene_id"
            ),
            ["scene0005_00,3", "scene0006_00,3"],
            "trial {trial}"
        );
    }
}

#[test]
fn videos_with_non_utf8_names_and_damaged_streams_give_the_same_rows_every_time() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let bikes = std::fs::read(repo().join("tests/fixtures/video/bikes.mp4")).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"b\xefkes.mp4");
    let odd = dir.path().join(name);
    std::fs::write(&odd, &bikes).unwrap();
    let ds = dir.path().join("named");
    let out = Command::new(env!("CARGO_BIN_EXE_spatialsv"))
        .arg("ingest")
        .arg("video")
        .arg(&odd)
        .args(["--dataset", s(&ds)])
        .env("CI", "true")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(rows(&ds, "SELECT count(*) FROM frames"), ["0"]);
    assert_eq!(rows(&ds, "SELECT count(*) FROM quarantine"), ["0"]);

    // A damaged stream: bytes overwritten in the middle of the file. Three ingests into
    // three datasets store the same timestamps, none twice; a rerun adds no second
    // quarantine row.
    let mut damaged = bikes.clone();
    let mid = damaged.len() / 2;
    for b in &mut damaged[mid..mid + 4096] {
        *b = 0x5A;
    }
    let file = dir.path().join("damaged.mp4");
    std::fs::write(&file, &damaged).unwrap();
    let mut seen: Option<Vec<String>> = None;
    for run in 0..3 {
        let ds = dir.path().join(format!("damaged{run}"));
        ok(&["ingest", "video", s(&file), "--dataset", s(&ds)]);
        let ts = rows(&ds, "SELECT timestamp_ns FROM frames ORDER BY frame_idx");
        let mut unique = ts.clone();
        unique.dedup();
        assert_eq!(unique.len(), ts.len(), "run {run}: a timestamp repeats");
        if let Some(first) = &seen {
            assert_eq!(first, &ts, "run {run} stored other frames");
        }
        seen = Some(ts);
        let q = rows(&ds, "SELECT count(*) FROM quarantine");
        ok(&["ingest", "video", s(&file), "--dataset", s(&ds)]);
        assert_eq!(rows(&ds, "SELECT count(*) FROM quarantine"), q, "run {run}");
    }
}
