//! `spatialsv qa`: questions from geometry on a small synthetic world and on a dataset without
//! objects, idempotence, and the user errors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use spatialsv_pipeline::Dataset;
use spatialsv_schemas::{Columns, Table};

use super::{fails, ok, repo};

fn world(dir: &Path) -> String {
    let w = dir.join("world");
    ok(&[
        "synth",
        "--out",
        w.to_str().unwrap(),
        "--scenes",
        "3",
        "--test-scenes",
        "1",
        "--videos",
        "0",
        "--frames",
        "12",
    ]);
    let ds = dir.join("ds");
    for split in ["train", "test"] {
        ok(&[
            "ingest",
            "scannet",
            w.join("scans").join(split).to_str().unwrap(),
            "--dataset",
            ds.to_str().unwrap(),
            "--split",
            split,
        ]);
    }
    ds.to_str().unwrap().to_string()
}

#[test]
fn questions_are_answered_from_geometry_name_only_visible_objects_and_rerun_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ds = world(dir.path());
    let text = ok(&["qa", "--dataset", &ds, "--per-clip", "3"]);
    assert!(
        text.contains("questions added, 0 already present"),
        "{text}"
    );
    for family in [
        "camera_motion",
        "point_closer",
        "object_closer",
        "view_taking",
    ] {
        assert!(
            text.contains(&format!("train    {family}")),
            "{family}: {text}"
        );
    }
    let again = ok(&["qa", "--dataset", &ds, "--per-clip", "3"]);
    assert!(again.contains(" 0 questions added"), "{again}");

    // Every row: the answer is an option (or a number), and every object it names is seen
    // in one of the views shown.
    let d = Dataset::open(&ds).unwrap();
    let m = d.latest().unwrap();
    let mut seen: BTreeMap<(String, i64), BTreeSet<i64>> = BTreeMap::new();
    for b in d.read_table(&m, Table::ObjectViews, None).unwrap() {
        let c = Columns::new(Table::ObjectViews, &b).unwrap();
        let (s, f, o) = (
            c.strings("scene_id").unwrap(),
            c.i64s("frame_idx").unwrap(),
            c.i64s("object_id").unwrap(),
        );
        for r in 0..b.num_rows() {
            seen.entry((s.value(r).to_string(), f.value(r)))
                .or_default()
                .insert(o.value(r));
        }
    }
    let mut rows = 0;
    let mut families = BTreeSet::new();
    for b in d.read_table(&m, Table::Qa, None).unwrap() {
        let c = Columns::new(Table::Qa, &b).unwrap();
        let scene = c.strings("scene_id").unwrap();
        let family = c.strings("family").unwrap();
        let answer = c.strings("answer").unwrap();
        let numeric = c.f64s("answer_numeric").unwrap();
        let (frames, options, objects) = (
            c.lists("frame_indices").unwrap(),
            c.lists("options").unwrap(),
            c.lists("object_ids").unwrap(),
        );
        for r in 0..b.num_rows() {
            rows += 1;
            families.insert(family.value(r).to_string());
            let opts: Vec<String> = options
                .value(r)
                .as_string::<i32>()
                .iter()
                .map(|o| o.unwrap().to_string())
                .collect();
            if numeric.is_null(r) {
                assert!(opts.contains(&answer.value(r).to_string()), "row {r}");
            } else {
                assert!(opts.is_empty());
                let n: f64 = answer.value(r).parse().unwrap();
                assert!((n - numeric.value(r)).abs() < 1e-9);
            }
            let shown: BTreeSet<i64> = frames
                .value(r)
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .flat_map(|f| {
                    seen.get(&(scene.value(r).to_string(), *f))
                        .cloned()
                        .unwrap_or_default()
                })
                .collect();
            for o in objects.value(r).as_primitive::<Int64Type>().values() {
                assert!(
                    shown.contains(o),
                    "{} names object {o}, which no view shown sees",
                    family.value(r)
                );
            }
        }
    }
    assert!(rows > 100, "{rows}");
    assert!(families.len() >= 9, "{families:?}");
    // Margins are recorded; relative direction keeps 10 degrees from every boundary.
    let csv = ok(&[
        "sql",
        "--dataset",
        &ds,
        "--format",
        "csv",
        "SELECT min(margin) FROM qa WHERE family = 'relative_direction'",
    ]);
    let min: f64 = csv.lines().nth(1).unwrap().parse().unwrap_or(10.0);
    assert!(min >= 10.0, "{csv}");
}

#[test]
fn a_dataset_without_objects_gets_the_families_that_need_none_and_bad_requests_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("ds");
    ok(&[
        "ingest",
        "tum",
        repo()
            .join("tests/fixtures/scans/tum/rgbd_dataset_freiburg3_synthetic")
            .to_str()
            .unwrap(),
        "--dataset",
        ds.to_str().unwrap(),
    ]);
    let ds = ds.to_str().unwrap();
    let text = ok(&["qa", "--dataset", ds, "--views", "3"]);
    assert!(
        text.contains("object_closer: not generated") && text.contains("no annotated objects"),
        "{text}"
    );
    assert!(
        text.contains("camera_motion") || text.contains("point_depth"),
        "{text}"
    );
    assert!(!text.contains("    object_count "), "{text}");

    let before = Dataset::open(ds).unwrap().latest_version().unwrap();
    for (args, want) in [
        (
            vec!["qa", "--dataset", ds, "--families", "depth_order"],
            "unknown question family 'depth_order'",
        ),
        (
            vec![
                "qa",
                "--dataset",
                ds,
                "--families",
                "object_closer,view_taking",
            ],
            "needs annotated objects",
        ),
        (
            vec!["qa", "--dataset", ds, "--per-clip", "0"],
            "--per-clip 0",
        ),
    ] {
        let (code, err) = fails(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert_eq!(
        Dataset::open(ds).unwrap().latest_version().unwrap(),
        before,
        "a refused request writes nothing"
    );

    // A dataset of unlabeled video only: nothing to ask about.
    let video = dir.path().join("video");
    ok(&[
        "ingest",
        "video",
        repo()
            .join("tests/fixtures/video/bikes.mp4")
            .to_str()
            .unwrap(),
        "--dataset",
        video.to_str().unwrap(),
    ]);
    let (code, err) = fails(&["qa", "--dataset", video.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has no labeled scenes"), "{err}");
}
