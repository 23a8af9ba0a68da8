//! Tests of the store: layout, idempotence, validation, races, read-side checks, and crash
//! tests that abort a child process mid-commit.

use std::path::Path;
#[cfg(feature = "failpoints")]
use std::process::Command;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::{concat_batches, take_record_batch};
use parquet::arrow::ArrowWriter;
use spatialsv_schemas::Table;

use super::writer::{escape_segment, is_sorted};
use super::*;
use crate::datagen::{GenSpec, generate};
use crate::rows::{frames_batch, scenes_batch};

#[test]
fn configs_store_toml_lists_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/store.toml");
    let parsed: WriteOptions = crate::load_toml(&path).unwrap();
    assert_eq!(parsed, WriteOptions::default());
}

#[test]
fn segments_are_escaped() {
    assert_eq!(escape_segment("train"), "train");
    assert_eq!(escape_segment("a/b c"), "a%2Fb%20c");
    assert_eq!(escape_segment(".."), "%2E%2E");
    assert_eq!(escape_segment(""), "%00");
}

fn frames(seed: u64, scenes: usize) -> RecordBatch {
    let spec = GenSpec {
        seed,
        scenes,
        ..GenSpec::default()
    };
    frames_batch(&generate(&spec).unwrap().1).unwrap()
}

/// Every file under `data/` of the dataset, relative paths.
fn data_files(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.join("data"), root, &mut out);
    out.sort();
    out
}

fn rows(ds: &Dataset, table: Table) -> usize {
    let m = ds.latest().unwrap();
    ds.read_table(&m, table, None)
        .unwrap()
        .iter()
        .map(RecordBatch::num_rows)
        .sum()
}

#[test]
fn commit_publishes_partitioned_sorted_files() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::create(dir.path().join("ds")).unwrap();
    assert_eq!(ds.latest_version().unwrap(), 0);
    let mut tx = ds.begin("test").unwrap();
    assert_eq!(tx.append(Table::Frames, frames(0, 5)).unwrap(), 20);
    let out = tx.commit().unwrap();
    assert!(out.published);
    assert_eq!(out.version, 1);
    assert_eq!(out.added["frames"].rows, 20);
    let m = ds.latest().unwrap();
    assert_eq!(m.rows("frames"), 20);
    let files = &m.tables["frames"].files;
    // Scenes 0-2 train, 3 val, 4 test: one file per split directory.
    let mut parts: Vec<_> = files.iter().map(|f| f.partition["split"].clone()).collect();
    parts.sort();
    assert_eq!(parts, ["test", "train", "val"]);
    for f in files {
        assert!(
            f.path
                .starts_with(&format!("data/frames/split={}/", f.partition["split"])),
            "{}",
            f.path
        );
    }
    // Rows come back sorted by (scene_id, frame_idx) within each file.
    for f in files {
        let batches = ds
            .read_file(Table::Frames, &f.path, Some(&["scene_id", "frame_idx"]))
            .unwrap();
        let b = concat_batches(&batches[0].schema(), &batches).unwrap();
        let c = spatialsv_schemas::Columns::new(Table::Frames, &b).unwrap();
        let (scene, frame) = (c.strings("scene_id").unwrap(), c.i64s("frame_idx").unwrap());
        let keys: Vec<(String, i64)> = (0..b.num_rows())
            .map(|r| (scene.value(r).to_string(), frame.value(r)))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }
    assert_eq!(rows(&ds, Table::Frames), 20);
}

#[test]
fn rows_offered_out_of_order_are_stored_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::create(dir.path()).unwrap();
    let b = frames(0, 3);
    let reversed: Vec<u32> = (0..b.num_rows() as u32).rev().collect();
    let b = take_record_batch(&b, &arrow::array::UInt32Array::from(reversed)).unwrap();
    let mut tx = ds.begin("reversed").unwrap();
    tx.append(Table::Frames, b).unwrap();
    tx.commit().unwrap();
    let m = ds.latest().unwrap();
    let f = &m.tables["frames"].files[0];
    let batches = ds
        .read_file(Table::Frames, &f.path, Some(&["scene_id", "frame_idx"]))
        .unwrap();
    assert!(is_sorted(&batches, Table::Frames).unwrap());
    assert!(
        !is_sorted(
            &[
                take_record_batch(&batches[0], &arrow::array::UInt32Array::from(vec![1, 0]))
                    .unwrap()
            ],
            Table::Frames
        )
        .unwrap()
    );
}

#[test]
fn committing_the_same_rows_twice_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::create(dir.path()).unwrap();
    let mut tx = ds.begin("first").unwrap();
    tx.append(Table::Frames, frames(0, 2)).unwrap();
    tx.commit().unwrap();
    let files_before = data_files(dir.path());

    let mut tx = ds.begin("again").unwrap();
    assert_eq!(tx.append(Table::Frames, frames(0, 2)).unwrap(), 0);
    let out = tx.commit().unwrap();
    assert!(!out.published);
    assert_eq!(out.version, 1);
    assert_eq!(out.added["frames"].duplicates, 8);
    assert_eq!(data_files(dir.path()), files_before);

    // A superset adds only the new rows; duplicates inside one append are dropped too.
    let mut tx = ds.begin("superset").unwrap();
    let both = concat_batches(&frames(0, 3).schema(), &[frames(0, 3), frames(0, 3)]).unwrap();
    assert_eq!(tx.append(Table::Frames, both).unwrap(), 4);
    let out = tx.commit().unwrap();
    assert_eq!(
        (
            out.version,
            out.added["frames"].rows,
            out.added["frames"].duplicates
        ),
        (2, 4, 20)
    );
    assert_eq!(rows(&ds, Table::Frames), 12);
}

#[test]
fn invalid_batches_are_refused_with_column_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::create(dir.path()).unwrap();
    let (_, mut f) = generate(&GenSpec::default()).unwrap();
    f[3].world_from_camera.as_mut().unwrap()[3] = f64::NEG_INFINITY;
    let mut tx = ds.begin("bad").unwrap();
    let err = tx
        .append(Table::Frames, frames_batch(&f).unwrap())
        .unwrap_err();
    assert!(err.is_user_error());
    assert_eq!(
        err.to_string(),
        "table frames, column world_from_camera, row 3: pose is not finite (contains -inf)"
    );
    // A scenes batch offered as frames is refused too.
    let (s, _) = generate(&GenSpec::default()).unwrap();
    assert!(tx.append(Table::Frames, scenes_batch(&s).unwrap()).is_err());
}

#[test]
fn a_foreign_file_in_place_of_a_data_file_is_corrupt_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::create(dir.path()).unwrap();
    let mut tx = ds.begin("frames").unwrap();
    tx.append(Table::Frames, frames(0, 1)).unwrap();
    tx.commit().unwrap();
    let m = ds.latest().unwrap();
    let f = &m.tables["frames"].files[0];
    // Same name, same size recorded: a file of another layout (scene ids as integers).
    let foreign = RecordBatch::try_new(
        Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("scene_id", arrow::datatypes::DataType::Int64, false),
        ])),
        vec![Arc::new(arrow::array::Int64Array::from(vec![1, 2]))],
    )
    .unwrap();
    let path = dir.path().join(&f.path);
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        foreign.schema(),
        None,
    )
    .unwrap();
    w.write(&foreign).unwrap();
    w.close().unwrap();
    let mut m = m.clone();
    m.tables.get_mut("frames").unwrap().files[0].bytes = std::fs::metadata(&path).unwrap().len();
    let err = ds
        .read_table(&m, Table::Frames, Some(&["scene_id"]))
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("not a frames file of this schema") && msg.ends_with(&f.path),
        "{msg}"
    );
}

#[test]
fn a_racing_writer_loses_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::create(dir.path()).unwrap();
    let mut a = ds.begin("a").unwrap();
    let mut b = ds.begin("b").unwrap();
    a.append(Table::Frames, frames(0, 1)).unwrap();
    b.append(Table::Frames, frames(1, 1)).unwrap();
    a.commit().unwrap();
    let err = b.commit().unwrap_err();
    assert!(matches!(err, Error::Conflict { version: 1 }), "{err}");
    // The loser's files are gone; the winner's are all that is left.
    let m = ds.latest().unwrap();
    let listed: Vec<String> = m.tables["frames"]
        .files
        .iter()
        .map(|f| f.path.clone())
        .collect();
    assert_eq!(data_files(dir.path()), listed);
}

#[test]
fn an_abandoned_transaction_leaves_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::create(dir.path()).unwrap();
    let opts = WriteOptions {
        row_group_rows: 2,
        ..WriteOptions::default()
    };
    let mut tx = ds.begin_with("abandoned", opts).unwrap();
    tx.append(Table::Frames, frames(0, 5)).unwrap();
    drop(tx);
    assert!(
        data_files(dir.path()).is_empty(),
        "{:?}",
        data_files(dir.path())
    );
    assert_eq!(ds.latest_version().unwrap(), 0);
}

#[test]
fn missing_and_corrupt_datasets_say_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let err = Dataset::open(dir.path().join("nope")).unwrap_err();
    assert!(err.is_user_error());
    assert!(
        err.to_string().starts_with("no spatialsv dataset at "),
        "{err}"
    );
    let ds = Dataset::create(dir.path()).unwrap();
    std::fs::write(
        dir.path().join(crate::manifest::manifest_path(1)),
        b"{ not json",
    )
    .unwrap();
    let err = ds.latest().unwrap_err().to_string();
    assert!(err.contains("manifest does not parse"), "{err}");
    assert!(err.ends_with("v0000000001.json"), "{err}");
}

#[cfg(feature = "failpoints")]
/// Child process of the crash tests: commits into `SPATIALSV_CRASH_DS` with small row
/// groups, and is killed by the crash point named in `SPATIALSV_CRASH_AT`.
#[test]
#[ignore = "run only as the child process of the crash tests"]
fn crash_child() {
    let path = std::env::var("SPATIALSV_CRASH_DS").expect("SPATIALSV_CRASH_DS");
    let ds = Dataset::open(path).unwrap();
    let opts = WriteOptions {
        row_group_rows: 3,
        ..WriteOptions::default()
    };
    let mut tx = ds.begin_with("doomed", opts).unwrap();
    tx.append(Table::Frames, frames(7, 5)).unwrap();
    tx.commit().unwrap();
}

#[cfg(feature = "failpoints")]
fn crash_at(point: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::create(dir.path()).unwrap();
    let mut tx = ds.begin("committed").unwrap();
    tx.append(Table::Frames, frames(0, 2)).unwrap();
    tx.commit().unwrap();
    let before = ds.latest().unwrap();

    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "dataset::tests::crash_child",
            "--include-ignored",
            "--nocapture",
        ])
        .env(CRASH_ENV, point)
        .env("SPATIALSV_CRASH_DS", dir.path())
        .status()
        .unwrap();
    assert!(!status.success(), "the child should have died at {point}");

    // Readers still see exactly the last committed version.
    assert_eq!(ds.latest().unwrap(), before);
    assert_eq!(rows(&ds, Table::Frames), 8);
    // Re-running the commit completes it, without duplicates.
    let mut tx = ds.begin("retry").unwrap();
    tx.append(Table::Frames, frames(7, 5)).unwrap();
    let out = tx.commit().unwrap();
    assert_eq!((out.version, out.added["frames"].rows), (2, 20));
    assert_eq!(rows(&ds, Table::Frames), 28);
}

#[cfg(feature = "failpoints")]
#[test]
fn a_writer_killed_mid_data_file_leaves_the_last_version() {
    crash_at("mid-data-file");
}

#[cfg(feature = "failpoints")]
#[test]
fn a_writer_killed_before_the_manifest_leaves_the_last_version() {
    crash_at("before-manifest");
}

#[test]
fn a_lost_race_rebases_disjoint_rows_and_restages_overlapping_ones() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::create(dir.path()).unwrap();
    let a = frames(1, 1);
    let b = frames(2, 1);
    // Two commits from version 0 with different rows: the second loses, then rebases its
    // files onto version 1 unchanged and publishes version 2.
    let mut first = ds.begin("first").unwrap();
    let mut second = ds.begin("second").unwrap();
    first.append(Table::Frames, a.clone()).unwrap();
    second.append(Table::Frames, b.clone()).unwrap();
    first.commit().unwrap();
    second.close_files().unwrap();
    assert!(matches!(
        second.publish(),
        Err(Error::Conflict { version: 1 })
    ));
    let files_before = data_files(dir.path()).len();
    assert!(second.rebase().unwrap());
    let out = second.publish().unwrap();
    assert_eq!(out.version, 2);
    assert_eq!(
        data_files(dir.path()).len(),
        files_before,
        "no file was rewritten"
    );
    let m = ds.manifest(2).unwrap();
    assert_eq!(m.parent, Some(1));
    assert_eq!(rows(&ds, Table::Frames), a.num_rows() + b.num_rows());
    ds.check_files(&m).unwrap();

    // The same rows offered by a commit that lost to them: no rebase; staged again, they
    // add nothing.
    let mut late = ds.begin("late").unwrap();
    let mut winner = ds.begin("winner").unwrap();
    let c = frames(3, 1);
    late.append(Table::Frames, c.clone()).unwrap();
    winner.append(Table::Frames, c.clone()).unwrap();
    winner.commit().unwrap();
    late.close_files().unwrap();
    assert!(matches!(late.publish(), Err(Error::Conflict { .. })));
    assert!(!late.rebase().unwrap());
    drop(late);
    let (_, again) = ds
        .commit_retrying("late again", &WriteOptions::default(), |tx| {
            tx.append(Table::Frames, c.clone())
        })
        .unwrap();
    assert!(!again.published);
    assert_eq!(
        rows(&ds, Table::Frames),
        a.num_rows() + b.num_rows() + c.num_rows()
    );
}
