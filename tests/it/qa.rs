//! `spatialsv qa`: questions from geometry on a small synthetic world and on a dataset without
//! objects, idempotence, and the user errors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use spatialsv_schemas::{Columns, Table};
use spatialsv_store::Dataset;

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

/// The multimodal model end to end on a tiny budget: qa -> train -> eval --qa -> ask, exact
/// resume, and the one-line refusals (unknown words, a run of the other kind).
#[test]
fn a_multimodal_run_trains_answers_lifts_3d_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let ds = world(dir.path());
    ok(&["qa", "--dataset", &ds, "--per-clip", "2", "--views", "3"]);
    let cfg = |steps: usize| {
        format!(
            "kind = \"mllm\"\nsteps = {steps}\ncheckpoint_every = 2\nwarmup_steps = 1\nbatch_size = 3\nimage_height = 16\nimage_width = 16\nviews = 3\nvision_width = 16\nwidth = 16\nheads = 2\nhead_width = 8\nspatial_only = \"rooms\"\nqa_share = 0.5\nspatial_share = 0.34\n"
        )
    };
    let (c4, c2) = (dir.path().join("m4.toml"), dir.path().join("m2.toml"));
    std::fs::write(&c4, cfg(4)).unwrap();
    std::fs::write(&c2, cfg(2)).unwrap();
    let (a, b) = (dir.path().join("runs/a"), dir.path().join("runs/b"));
    let text = ok(&[
        "train",
        "--dataset",
        &ds,
        "--config",
        c4.to_str().unwrap(),
        "--out",
        a.to_str().unwrap(),
    ]);
    assert!(
        text.contains("trained to step 4") && text.contains("from 1 rooms"),
        "{text}"
    );
    for f in ["mllm.json", "vocab.json", "tokenizer.json", "config.toml"] {
        assert!(a.join(f).exists(), "{f}");
    }
    // Interrupted at step 2, then resumed with the full config: the same model.
    ok(&[
        "train",
        "--dataset",
        &ds,
        "--config",
        c2.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
    ]);
    std::fs::copy(a.join("config.toml"), b.join("config.toml")).unwrap();
    let again = ok(&[
        "train",
        "--dataset",
        &ds,
        "--config",
        c4.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
        "--resume",
    ]);
    assert!(again.contains("trained to step 4"), "{again}");
    let eval = |run: &Path, name: &str| {
        let out = dir.path().join(name);
        let table = ok(&[
            "eval",
            "--qa",
            "--dataset",
            &ds,
            "--checkpoint",
            run.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("qa_eval.json")).unwrap())
                .unwrap();
        (table, json)
    };
    let (table, ja) = eval(&a, "eval-a");
    assert!(
        table.contains("all multiple choice") && table.contains("3D probe of the taps"),
        "{table}"
    );
    let (_, jb) = eval(&b, "eval-b");
    assert_eq!(
        ja["per_question"], jb["per_question"],
        "a resumed run answers differently"
    );
    let probe = |j: &serde_json::Value| j["probe"]["abs_rel"].as_f64().unwrap();
    assert!((probe(&ja) - probe(&jb)).abs() < 1e-5);
    assert!(ja["multiple_choice"]["questions"].as_u64().unwrap() > 0);
    let mc = &ja["multiple_choice"];
    for k in ["model", "blind", "most_frequent", "chance"] {
        let x = mc[k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&x), "{k}: {x}");
    }

    // ask: an answer and the model's 3D lifting of those views.
    let lift = dir.path().join("ask");
    let said = ok(&[
        "ask",
        "--checkpoint",
        a.to_str().unwrap(),
        "--dataset",
        &ds,
        "--scene",
        "synth_scan_002",
        "--frames",
        "0,4,8",
        "From view 1 to view 3, which way did the camera mostly move?",
        "--out",
        lift.to_str().unwrap(),
    ]);
    assert!(
        said.contains("wrote the model's 3D lifting of 3 views"),
        "{said}"
    );
    assert!(lift.join("points.ply").exists() && lift.join("depth_4.png").exists());
    let (code, err) = fails(&[
        "ask",
        "--checkpoint",
        a.to_str().unwrap(),
        "--dataset",
        &ds,
        "--scene",
        "synth_scan_002",
        "--frames",
        "0,4,8",
        "Which sofa is closer to the fridge?",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not have: sofa, fridge"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // Export for PyTorch trainers, read back with json + numpy + safetensors.
    let csv = dir.path().join("qa.csv");
    std::fs::write(
        &csv,
        ok(&[
            "sql",
            "--dataset",
            &ds,
            "--format",
            "csv",
            "SELECT qa_id, answer FROM qa",
        ]),
    )
    .unwrap();
    for format in ["llava", "sharegpt"] {
        let ex = dir.path().join(format!("export-{format}"));
        let text = ok(&[
            "export-mllm",
            "--dataset",
            &ds,
            "--out",
            ex.to_str().unwrap(),
            "--format",
            format,
            "--size",
            "32x24",
        ]);
        assert!(
            text.contains("exported") && text.contains("tokenizer.json"),
            "{text}"
        );
        let py = std::process::Command::new("python3")
            .arg(super::repo().join("tests/export_mllm.py"))
            .args([ex.to_str().unwrap(), format, csv.to_str().unwrap()])
            .output()
            .expect("running python3");
        let stdout = String::from_utf8_lossy(&py.stdout);
        assert!(
            py.status.success() && stdout.starts_with("ok "),
            "the export does not read back (or numpy/safetensors are missing: pip install numpy safetensors):\n{stdout}\n{}",
            String::from_utf8_lossy(&py.stderr)
        );
    }
    let (code, err) = fails(&[
        "export-mllm",
        "--dataset",
        &ds,
        "--out",
        dir.path().join("z").to_str().unwrap(),
        "--format",
        "alpaca",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected llava or sharegpt"), "{err}");

    // A 3D run given to eval --qa, and a multimodal run given to eval: one line each.
    let teacher_cfg = dir.path().join("t.toml");
    std::fs::write(
        &teacher_cfg,
        "image_height = 16\nimage_width = 24\nbatch_size = 1\nclip_len = 2\nsteps = 1\n",
    )
    .unwrap();
    let t = dir.path().join("runs/t");
    ok(&[
        "train",
        "--dataset",
        &ds,
        "--config",
        teacher_cfg.to_str().unwrap(),
        "--out",
        t.to_str().unwrap(),
    ]);
    let (code, err) = fails(&[
        "eval",
        "--qa",
        "--dataset",
        &ds,
        "--checkpoint",
        t.to_str().unwrap(),
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a 3D model run"), "{err}");
    let (code, err) = fails(&[
        "eval",
        "--dataset",
        &ds,
        "--checkpoint",
        a.to_str().unwrap(),
        "--out",
        dir.path().join("y").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a multimodal (mllm) run"), "{err}");
}
