//! Pseudo-labelling through the command line: sharding, resumption after a kill, idempotent
//! commits, quality scoring, semi-supervised training, and the demo end to end (tiny budget).

use std::process::Command;

use super::ok;

fn csv(ds: &str, sql: &str) -> String {
    ok(&["sql", "--dataset", ds, "--format", "csv", sql])
}

/// A small world: 2 scan scenes (train, test), 2 videos of 12 frames, ingested; a teacher
/// trained for 2 steps at 24x16. Returns (world, dataset, teacher run).
fn setup(dir: &std::path::Path) -> (String, String, String) {
    let world = dir.join("world");
    let w = world.to_str().unwrap().to_string();
    ok(&[
        "synth",
        "--out",
        &w,
        "--scenes",
        "2",
        "--videos",
        "2",
        "--frames",
        "12",
        "--resolution",
        "48x36",
    ]);
    let ds = dir.join("ds").to_str().unwrap().to_string();
    for split in ["train", "test"] {
        ok(&[
            "ingest",
            "scannet",
            &format!("{w}/scans/{split}"),
            "--dataset",
            &ds,
            "--split",
            split,
        ]);
    }
    ok(&["ingest", "video", &format!("{w}/videos"), "--dataset", &ds]);
    let cfg = dir.join("teacher.toml");
    std::fs::write(
        &cfg,
        "image_height = 16\nimage_width = 24\nsteps = 2\nwarmup_steps = 1\nbatch_size = 1\n",
    )
    .unwrap();
    let teacher = dir.join("runs/teacher").to_str().unwrap().to_string();
    ok(&[
        "train",
        "--dataset",
        &ds,
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        &teacher,
    ]);
    (w, ds, teacher)
}

#[test]
fn shards_cover_every_clip_once_a_killed_job_resumes_and_students_train_on_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (w, ds, teacher) = setup(dir.path());
    let frames = csv(&ds, "SELECT count(*) AS n FROM frames WHERE depth IS NULL");
    assert_eq!(frames, "n\n24\n");

    // Two shards share the work: every frame labelled once, none twice.
    let a = ok(&[
        "label",
        "--dataset",
        &ds,
        "--teacher",
        &teacher,
        "--shard",
        "0/2",
    ]);
    let b = ok(&[
        "label",
        "--dataset",
        &ds,
        "--teacher",
        &teacher,
        "--shard",
        "1/2",
    ]);
    assert!(a.contains("0 already labelled"), "{a}");
    assert!(b.contains("0 already labelled"), "{b}");
    assert_eq!(
        csv(
            &ds,
            "SELECT count(*) AS n, count(DISTINCT scene_id || '/' || CAST(frame_idx AS VARCHAR)) AS k, \
             min(px_total) AS px FROM pseudo_labels"
        ),
        "n,k,px\n24,24,384\n"
    );
    // Every row's pixel counts add up, and a rejected frame says why.
    assert_eq!(
        csv(
            &ds,
            "SELECT count(*) AS bad FROM pseudo_labels \
             WHERE px_removed_confidence + px_removed_geometric + px_kept <> px_total \
             OR (accepted AND reject_reason IS NOT NULL) OR (NOT accepted AND reject_reason IS NULL)"
        ),
        "bad\n0\n"
    );
    // A rerun over everything finds nothing to do.
    let again = ok(&["label", "--dataset", &ds, "--teacher", &teacher]);
    assert!(again.contains("0 labelled now"), "{again}");

    // Another config (filters off, one clip per commit) is a separate labelling. Killed
    // after its first commit, it resumes without duplicates.
    let lax = dir.path().join("lax.toml");
    std::fs::write(
        &lax,
        "commit_every = 1\n[geometric]\nenabled = false\n[camera]\nenabled = false\n\
         [acceptance]\nmin_kept_fraction = 0.0\n",
    )
    .unwrap();
    let lax_s = lax.to_str().unwrap();
    let killed = Command::new(env!("CARGO_BIN_EXE_spatialsv"))
        .args([
            "label",
            "--dataset",
            &ds,
            "--teacher",
            &teacher,
            "--config",
            lax_s,
        ])
        .env("CI", "true")
        .env("SPATIALSV_CRASH_AT", "label-after-commit")
        .output()
        .unwrap();
    assert!(!killed.status.success());
    let partial = csv(&ds, "SELECT count(*) AS n FROM pseudo_labels");
    let n: usize = partial.lines().nth(1).unwrap().parse().unwrap();
    assert!(n > 24 && n < 48, "{partial}");
    let resumed = ok(&[
        "label",
        "--dataset",
        &ds,
        "--teacher",
        &teacher,
        "--config",
        lax_s,
    ]);
    assert!(!resumed.contains(" 0 already labelled"), "{resumed}");
    assert_eq!(
        csv(
            &ds,
            "SELECT count(*) AS n, sum(CAST(accepted AS INT)) AS a FROM pseudo_labels \
             GROUP BY config_hash ORDER BY a DESC LIMIT 1"
        ),
        "n,a\n24,24\n"
    );
    assert_eq!(
        csv(
            &ds,
            "SELECT count(*) AS n FROM (SELECT scene_id, frame_idx, config_hash FROM pseudo_labels \
             GROUP BY 1, 2, 3 HAVING count(*) > 1)"
        ),
        "n\n0\n"
    );

    // Quality against the hidden ground truth: every labelled frame is scored.
    let out = dir.path().join("q");
    let q = ok(&[
        "eval",
        "--dataset",
        &ds,
        "--pseudo-labels",
        "--groundtruth",
        &format!("{w}/groundtruth"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(q.contains("24 frames, 24 accepted"), "{q}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("pseudo_labels.json")).unwrap())
            .unwrap();
    assert_eq!(json["frames"], 24);
    assert!(json["all"]["abs_rel"].as_f64().unwrap() > 0.0);

    // A semi-supervised student trains on labeled scans plus the newest pseudo-labels.
    let cfg = dir.path().join("student.toml");
    std::fs::write(
        &cfg,
        format!(
            "image_height = 16\nimage_width = 24\nsteps = 2\nwarmup_steps = 1\nbatch_size = 3\n\
             pseudo_labels = \"latest\"\ninit_from = \"{teacher}\"\n"
        ),
    )
    .unwrap();
    let student = dir.path().join("runs/student");
    let s = student.to_str().unwrap();
    ok(&[
        "train",
        "--dataset",
        &ds,
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        s,
    ]);
    assert_eq!(
        csv(s, "SELECT role FROM runs"),
        "role\nstudent\n",
        "the run records its role"
    );
    // A student at another image size than the labels is refused with the reason.
    std::fs::write(
        &cfg,
        "image_height = 24\nimage_width = 32\nsteps = 1\nbatch_size = 3\npseudo_labels = \"latest\"\n",
    )
    .unwrap();
    let other = dir.path().join("runs/other");
    let (code, err) = super::fails(&[
        "train",
        "--dataset",
        &ds,
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("train at the teacher's image size"), "{err}");
}

#[test]
fn demo_runs_end_to_end_and_writes_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let lax = dir.path().join("lax.toml");
    // Two training steps make a useless teacher whose labels every filter would reject;
    // filters off so the student has pseudo-labels to train on.
    std::fs::write(
        &lax,
        "[geometric]\nenabled = false\n[camera]\nenabled = false\n[acceptance]\nmin_kept_fraction = 0.0\n",
    )
    .unwrap();
    let args = [
        "demo",
        "--out",
        out.to_str().unwrap(),
        "--seed",
        "3",
        "--steps",
        "2",
        "--world",
        "3,2,9,64x48",
        "--label-config",
        lax.to_str().unwrap(),
    ];
    let text = ok(&args);
    assert!(text.contains("demo step 10/10"), "{text}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for needle in [
        "| teacher |",
        "| baseline |",
        "| baseline_labeled |",
        "student against baseline:",
        "| student |",
        "trivial baselines",
        "kept pixels of accepted frames",
        "loss_total.png",
        "frame_student.png",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle}:\n{md}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<table>") && html.contains("data:image/png;base64,"));
    for f in [
        "export/student/pred.ply",
        "export/baseline/gt.ply",
        "eval/student/eval.json",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    // A rerun skips what is done.
    let again = ok(&args);
    assert!(again.contains("done in an earlier run; skipped"), "{again}");
}
