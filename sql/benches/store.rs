//! Store and SQL benchmark. Run: `cargo bench -p spatialsv-pipeline --bench store`
//! (options: `-- --frames N --sql-rows N --dir PATH --workers URL,URL --bytes-per-task N`;
//! `--frames 0` skips the commit benchmark; `--workers` also times the SQL queries on
//! `spatialsv worker` processes, as scripts/bench-scale does).
//!
//! 1. Commit throughput: frames with image- and depth-sized blobs committed into a new
//!    dataset (validation, content hashing, de-duplication, sorting, Parquet encoding, fsync),
//!    against the I/O limit measured in the same run on the same disk: writing the same bytes
//!    to one file with fsync, and `std::fs::copy` of that file with fsync.
//! 2. SQL latency on a 100k-frame metadata table for typical curation queries, against a plain
//!    Parquet scan of the same files' metadata columns in the same process.
//!
//! Figures are printed as absolute numbers and as ratios to the baselines; the machines here
//! are shared and noisy, so only the ratios are meant to be compared across runs.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use spatialsv_schemas::{SourceKind, Table};
use spatialsv_sql::SqlSession;
use spatialsv_store::Dataset;
use spatialsv_store::datagen::{SplitMix64, pose_of, split_of};
use spatialsv_store::rows::{DepthMap, FrameRow, SceneRow, frames_batch, scenes_batch};

struct Opts {
    frames: usize,
    sql_rows: usize,
    dir: Option<PathBuf>,
    /// `spatialsv worker` URLs: also time the SQL queries on the first one and on all.
    workers: Vec<String>,
    /// Bytes of Parquet per distributed scan task.
    bytes_per_task: Option<usize>,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        frames: 2000,
        sql_rows: 100_000,
        dir: None,
        workers: Vec::new(),
        bytes_per_task: None,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let next = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--frames" => o.frames = next.parse().unwrap_or(o.frames),
            "--sql-rows" => o.sql_rows = next.parse().unwrap_or(o.sql_rows),
            "--dir" => o.dir = Some(PathBuf::from(next)),
            "--workers" => o.workers = next.split(',').map(str::to_string).collect(),
            "--bytes-per-task" => o.bytes_per_task = next.parse().ok(),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

fn random_bytes(rng: &mut SplitMix64, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(n);
    v
}

/// Frames of `frames_per_scene` per scene with blobs of the given sizes (random bytes: the
/// store never decodes them, and random bytes defeat compression as JPEG/PNG do).
fn rows(
    n: usize,
    frames_per_scene: usize,
    image_bytes: usize,
    depth_bytes: usize,
    seed: u64,
) -> Vec<FrameRow> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|i| {
            let scene = i / frames_per_scene;
            let idx = i % frames_per_scene;
            let intrinsics = [525.0, 525.0, 319.5, 239.5];
            FrameRow {
                scene_id: format!("scene{scene:05}"),
                frame_idx: idx as i64,
                timestamp_ns: idx as i64 * 33_333_333,
                source: SourceKind::Scan,
                split: split_of(scene),
                image: random_bytes(&mut rng, image_bytes),
                image_codec: "jpeg".into(),
                width: 640,
                height: 480,
                depth: (depth_bytes > 0).then(|| DepthMap {
                    png16: random_bytes(&mut rng, depth_bytes),
                    scale_m: 0.001,
                    width: 640,
                    height: 480,
                    intrinsics,
                }),
                intrinsics: Some(intrinsics),
                camera_model: "pinhole".into(),
                distortion: Vec::new(),
                world_from_camera: Some(pose_of(idx, scene as f64)),
                pose_source: Some("groundtruth".into()),
                source_uri: format!("bench://{scene}/{idx}"),
            }
        })
        .collect()
}

fn batches(rows: &[FrameRow], per_batch: usize) -> Vec<RecordBatch> {
    rows.chunks(per_batch)
        .map(|c| frames_batch(c).expect("batch"))
        .collect()
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn bench_commit(root: &Path, n: usize) {
    println!(
        "== commit throughput: {n} frames, 60 KB image + 120 KB depth blobs each (median of 3 rounds)"
    );
    let rows = rows(n, 100, 60_000, 120_000, 1);
    let blob_bytes: u64 = rows
        .iter()
        .map(|r| (r.image.len() + r.depth.as_ref().map_or(0, |d| d.png16.len())) as u64)
        .sum();
    let input = batches(&rows, 128);
    drop(rows);

    // Three rounds of (write, copy, commit), each into fresh files, so that page-cache and
    // disk-allocation effects fall on every contender alike; medians are reported.
    let (mut writes, mut copies, mut commits) = (Vec::new(), Vec::new(), Vec::new());
    let mut written = 0;
    let mut last = None;
    for round in 0..3 {
        // Baseline 1: the same blob bytes written to one file, fsync'd.
        let raw = root.join(format!("raw{round}.bin"));
        let t = Instant::now();
        {
            let mut f =
                std::io::BufWriter::with_capacity(1 << 20, File::create(&raw).expect("create"));
            for b in &input {
                for name in ["image", "depth"] {
                    let col = b.column_by_name(name).expect("col");
                    let bin = col
                        .as_any()
                        .downcast_ref::<arrow::array::BinaryArray>()
                        .expect("binary");
                    f.write_all(bin.value_data()).expect("write");
                }
            }
            let f = f.into_inner().expect("flush");
            f.sync_all().expect("sync");
        }
        writes.push(t.elapsed());
        // Baseline 2: a plain copy of that file, fsync'd.
        let t = Instant::now();
        let copy = root.join(format!("copy{round}.bin"));
        std::fs::copy(&raw, &copy).expect("copy");
        File::open(&copy).and_then(|f| f.sync_all()).expect("sync");
        copies.push(t.elapsed());
        let _ = std::fs::remove_file(&raw);
        let _ = std::fs::remove_file(&copy);

        // The store: a fresh dataset, one commit.
        let t = Instant::now();
        let ds = Dataset::create(root.join(format!("commit-ds{round}"))).expect("create dataset");
        let mut tx = ds.begin("bench").expect("begin");
        for b in input.iter().cloned() {
            tx.append(Table::Frames, b).expect("append");
        }
        let out = tx.commit().expect("commit");
        commits.push(t.elapsed());
        written = out.added["frames"].bytes;
        last = Some(ds);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (write_time, copy_time, commit_time) = (
        median(&mut writes),
        median(&mut copies),
        median(&mut commits),
    );
    let ds = last.expect("a round ran");

    // Re-committing the same frames: every row is a duplicate.
    let t = Instant::now();
    let mut tx = ds.begin("bench again").expect("begin");
    for b in input.iter().cloned() {
        tx.append(Table::Frames, b).expect("append");
    }
    let again = tx.commit().expect("commit");
    let dedup_time = t.elapsed();
    assert!(!again.published);

    let mb = blob_bytes as f64 / 1e6;
    println!(
        "  blob bytes           {mb:.1} MB (Parquet written: {:.1} MB)",
        written as f64 / 1e6
    );
    println!(
        "  write+fsync baseline {:8.1} MB/s  ({:.2}s)",
        mb_per_s(blob_bytes, write_time),
        write_time.as_secs_f64()
    );
    println!(
        "  copy+fsync baseline  {:8.1} MB/s  ({:.2}s)",
        mb_per_s(blob_bytes, copy_time),
        copy_time.as_secs_f64()
    );
    println!(
        "  store commit         {:8.1} MB/s  {:8.0} rows/s  ({:.2}s)",
        mb_per_s(blob_bytes, commit_time),
        n as f64 / commit_time.as_secs_f64(),
        commit_time.as_secs_f64()
    );
    println!(
        "  commit / copy        {:.2}x of the copy throughput",
        copy_time.as_secs_f64() / commit_time.as_secs_f64()
    );
    println!(
        "  commit / write       {:.2}x of the write throughput",
        write_time.as_secs_f64() / commit_time.as_secs_f64()
    );
    println!(
        "  re-commit (all duplicates) {:.2}s, {:8.0} rows/s",
        dedup_time.as_secs_f64(),
        n as f64 / dedup_time.as_secs_f64()
    );
}

fn median_time(mut f: impl FnMut() -> usize, runs: usize) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..runs {
        let t = Instant::now();
        n = f();
        times.push(t.elapsed());
    }
    times.sort();
    (times[times.len() / 2], n)
}

fn bench_sql(root: &Path, n: usize, workers: &[String], bytes_per_task: Option<usize>) {
    println!("== SQL latency on a {n}-frame metadata table (median of 5)");
    let per_scene = 100;
    let rows = rows(n, per_scene, 16, 0, 2);
    let scenes: Vec<SceneRow> = (0..n.div_ceil(per_scene))
        .map(|s| SceneRow {
            scene_id: format!("scene{s:05}"),
            source: SourceKind::Scan,
            source_uri: format!("bench://{s}"),
            dataset_format: "scannet".into(),
            split: split_of(s),
            num_frames: per_scene as i64,
            num_quarantined: 0,
            ingested_at_ns: 0,
        })
        .collect();
    let ds = Dataset::create(root.join("sql-ds")).expect("create dataset");
    let mut tx = ds.begin("bench").expect("begin");
    tx.append(Table::Scenes, scenes_batch(&scenes).expect("scenes"))
        .expect("append");
    for b in batches(&rows, 8192) {
        tx.append(Table::Frames, b).expect("append");
    }
    tx.commit().expect("commit");
    drop(rows);

    // Baseline: read the metadata columns of every frames file with the plain Parquet reader.
    let manifest = ds.latest().expect("manifest");
    let files: Vec<PathBuf> = manifest.tables["frames"]
        .files
        .iter()
        .map(|f| root.join("sql-ds").join(&f.path))
        .collect();
    let (scan, scanned) = median_time(
        || {
            let mut n = 0;
            for p in &files {
                let b = ParquetRecordBatchReaderBuilder::try_new(File::open(p).expect("open"))
                    .expect("parquet");
                let mask = ProjectionMask::roots(b.parquet_schema(), [0, 1, 2, 4, 24]);
                for batch in b.with_projection(mask).build().expect("reader") {
                    n += batch.expect("batch").num_rows();
                }
            }
            n
        },
        5,
    );
    println!(
        "  baseline: Parquet scan of 5 metadata columns  {:7.1} ms ({scanned} rows)",
        scan.as_secs_f64() * 1e3
    );

    let session = SqlSession::open(&ds, None).expect("session");
    let queries = [
        (
            "count by split",
            "SELECT split, count(*) FROM frames GROUP BY split",
        ),
        (
            "full scan, UDF per row, by scene",
            "SELECT scene_id, count(*), avg(timestamp_ns), \
             max(rotation_angle_deg(world_from_camera, world_from_camera)) FROM frames \
             GROUP BY scene_id ORDER BY scene_id LIMIT 5",
        ),
        (
            "one scene",
            "SELECT frame_idx, timestamp_ns FROM frames WHERE scene_id = 'scene00500'",
        ),
        (
            "motion per scene (window + UDF)",
            "SELECT scene_id, sum(d) FROM (SELECT scene_id, camera_distance_m(world_from_camera, \
             LAG(world_from_camera) OVER (PARTITION BY scene_id ORDER BY frame_idx)) AS d FROM frames) \
             GROUP BY scene_id ORDER BY 2 DESC LIMIT 10",
        ),
        (
            "join scenes",
            "SELECT s.dataset_format, count(*) FROM frames f JOIN scenes s ON f.scene_id = s.scene_id \
             WHERE f.split = 'test' GROUP BY s.dataset_format",
        ),
    ];
    let mut local = Vec::new();
    for (name, sql) in queries {
        let (t, rows) = median_time(|| session.query(sql).expect("query").num_rows(), 5);
        println!(
            "  {name:<34} {:7.1} ms ({rows} rows)  {:5.2}x the baseline scan",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / scan.as_secs_f64()
        );
        local.push(t);
    }
    if workers.is_empty() {
        return;
    }
    // The same queries on 1 worker and on all of them (datafusion-distributed), against the
    // one-process times above, measured in this same run.
    let urls = spatialsv_sql::distributed::parse_workers(workers).expect("worker URLs");
    for n in [1, urls.len()] {
        let cluster = spatialsv_sql::distributed::Cluster {
            workers: urls[..n].to_vec(),
            bytes_per_task,
        };
        let session = SqlSession::open_on(&ds, None, &cluster).expect("distributed session");
        println!(
            "== the same on {n} worker(s) (bytes per task: {})",
            bytes_per_task.map_or("default".to_string(), |b| b.to_string())
        );
        for ((name, sql), base) in queries.iter().zip(&local) {
            let (t, rows) = median_time(|| session.query(sql).expect("query").num_rows(), 5);
            println!(
                "  {name:<34} {:7.1} ms ({rows} rows)  {:5.2}x one process",
                t.as_secs_f64() * 1e3,
                t.as_secs_f64() / base.as_secs_f64()
            );
        }
    }
}

fn main() {
    let opts = parse_opts();
    let tmp;
    let root = match &opts.dir {
        Some(d) => {
            std::fs::create_dir_all(d).expect("bench dir");
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().to_path_buf()
        }
    };
    if opts.frames > 0 {
        bench_commit(&root, opts.frames);
    }
    bench_sql(&root, opts.sql_rows, &opts.workers, opts.bytes_per_task);
}
