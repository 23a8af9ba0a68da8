//! Ingest benchmark. Run: `cargo bench -p spatialsv-pipeline --bench ingest`
//! (options: `-- --frames N --resolution WxH --video FILE --no-scans`). Needs ffmpeg.
//!
//! 1. Scan ingest (ScanNet layout from the synthetic world: JPEG colour, 16-bit PNG depth,
//!    pose and intrinsics text) into a fresh dataset, against a plain copy of the same files
//!    in the same run (the I/O limit), without and with a final `sync`.
//! 2. Video ingest of real clips (default: `tests/fixtures/video/bikes.mp4`, H.264 High
//!    profile, and the same clip transcoded here to MPEG-4 Part 2 in AVI, an older codec; or
//!    `--video FILE`) against two baselines at the same sampling, in the same run:
//!    `ffmpeg -i FILE -f null -` (decoding alone) and ffmpeg writing the sampled frames as JPEG
//!    files at the same quality (what `ns-process-data` does for nerfstudio).
//!
//! Each contender runs several times (5 for scans, 3 for video), interleaved; medians are reported, with ratios (these
//! machines are shared and noisy: compare ratios, not absolute numbers).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use spatialsv_ingest::synth::{SynthOptions, synthesize};
use spatialsv_ingest::video::{
    DecodeThreads, Sampling, VideoOptions, decode, ingest_videos, select_expr,
};
use spatialsv_ingest::{IngestOptions, ScanFormat, ingest_scans, list_scenes};
use spatialsv_store::Dataset;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench_scans(root: &Path, frames: usize, w: u32, h: u32) {
    let world = root.join("world");
    let opts = SynthOptions {
        scenes: 4,
        videos: 0,
        frames,
        width: w,
        height: h,
        ..SynthOptions::default()
    };
    let t = Instant::now();
    synthesize(&world, &opts, &spatialsv_store::Silent).expect("synth");
    println!(
        "== scan ingest: 4 ScanNet-layout scenes x {frames} frames at {w}x{h} (rendered in {:.1}s)",
        t.elapsed().as_secs_f64()
    );
    let mut files = Vec::new();
    files_under(&world.join("scans"), &mut files);
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let n_frames = 4 * frames;
    let (mut copies, mut synced, mut ingests, mut unchecked) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..5 {
        // Baseline: copy every file (into the page cache), then one `sync` to make it durable
        // as the store's commit is; both figures are reported.
        let dest = root.join(format!("copy{round}"));
        std::fs::create_dir_all(&dest).expect("mkdir");
        let t = Instant::now();
        for (i, f) in files.iter().enumerate() {
            std::fs::copy(f, dest.join(format!("{i}"))).expect("copy");
        }
        copies.push(t.elapsed());
        Command::new("sync").status().expect("sync");
        synced.push(t.elapsed());
        let _ = std::fs::remove_dir_all(&dest);

        for (check_pairs, times) in [(8, &mut ingests), (0, &mut unchecked)] {
            let t = Instant::now();
            let ds =
                Dataset::create(root.join(format!("ds{round}-{check_pairs}"))).expect("dataset");
            let iopts = IngestOptions {
                check_pairs,
                ..IngestOptions::default()
            };
            let scenes = list_scenes(Some(ScanFormat::Scannet), &[world.join("scans")], &iopts)
                .expect("list");
            let r = ingest_scans(&ds, &scenes, &iopts, "bench", &spatialsv_store::Silent)
                .expect("ingest");
            assert_eq!(r.ingested(), n_frames);
            times.push(t.elapsed());
        }
    }
    let (copy, copy_sync, ingest, no_check) = (
        median(copies),
        median(synced),
        median(ingests),
        median(unchecked),
    );
    let mbs = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    let fps = |d: Duration| n_frames as f64 / d.as_secs_f64();
    println!(
        "  input: {} files, {:.1} MB",
        files.len(),
        bytes as f64 / 1e6
    );
    println!(
        "  copy baseline        {:8.1} MB/s  {:8.0} frames/s (page cache, no sync)",
        mbs(copy),
        fps(copy)
    );
    println!(
        "  copy+sync baseline   {:8.1} MB/s  {:8.0} frames/s",
        mbs(copy_sync),
        fps(copy_sync)
    );
    println!(
        "  spatialsv ingest     {:8.1} MB/s  {:8.0} frames/s (durable: fsync'd)",
        mbs(ingest),
        fps(ingest)
    );
    println!(
        "  ... without self-check {:8.1} MB/s  {:8.0} frames/s",
        mbs(no_check),
        fps(no_check)
    );
    println!(
        "  ingest / copy        {:.2}x of the plain copy, {:.2}x of copy+sync (target >= 0.5)",
        copy.as_secs_f64() / ingest.as_secs_f64(),
        copy_sync.as_secs_f64() / ingest.as_secs_f64()
    );
}

/// `ffmpeg -i FILE [-vf select=...] -f null -` (decoding and sampling alone), or with
/// `jpegs`, the sampled frames written as JPEG files at ingest's default quality (90, ffmpeg's
/// `-q:v 4`) into that directory.
fn ffmpeg_baseline(file: &Path, sampling: Sampling, jpegs: Option<&Path>) -> Duration {
    let t = Instant::now();
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-nostdin", "-i"]).arg(file);
    if sampling != Sampling::All {
        cmd.args([
            "-vf",
            &format!("select={}", select_expr(sampling)),
            "-fps_mode",
            "passthrough",
        ]);
    }
    match jpegs {
        Some(dir) => {
            std::fs::create_dir_all(dir).expect("mkdir");
            cmd.args(["-q:v", "4"]).arg(dir.join("frame_%05d.jpg"));
        }
        None => {
            cmd.args(["-f", "null", "-"]);
        }
    }
    let ok = cmd
        .stdout(Stdio::null())
        .status()
        .expect("ffmpeg")
        .success();
    assert!(ok);
    t.elapsed()
}

fn bench_video(root: &Path, file: &Path) {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let root = &root.join(stem);
    println!(
        "== video ingest of {} vs ffmpeg decoding only (-f null) and ffmpeg writing JPEG files, same sampling",
        file.display()
    );
    for (k, sampling) in [Sampling::All, Sampling::Stride(5), Sampling::Fps(2.0)]
        .into_iter()
        .enumerate()
    {
        let (mut ffs, mut jpgs, mut ours) = (Vec::new(), Vec::new(), Vec::new());
        let mut frames = 0;
        for round in 0..3 {
            ffs.push(ffmpeg_baseline(file, sampling, None));
            let jdir = root.join(format!("j{k}-{round}"));
            jpgs.push(ffmpeg_baseline(file, sampling, Some(&jdir)));
            let _ = std::fs::remove_dir_all(&jdir);
            let ds = Dataset::create(root.join(format!("v{k}-{round}"))).expect("dataset");
            let opts = VideoOptions {
                sampling,
                ..VideoOptions::default()
            };
            let t = Instant::now();
            let r = ingest_videos(
                &ds,
                &[file.to_path_buf()],
                &opts,
                "bench",
                &spatialsv_store::Silent,
            )
            .expect("ingest");
            ours.push(t.elapsed());
            frames = r.ingested();
        }
        // Our decoding stage alone (ffmpeg to JPEG through the pipe, split, timestamps), with
        // the old slice-only threading and with frame threading, for the before/after ratio.
        let (mut slices, mut framed) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            for (threads, times) in [
                (DecodeThreads::Slice, &mut slices),
                (DecodeThreads::Frame, &mut framed),
            ] {
                let opts = VideoOptions {
                    sampling,
                    ..VideoOptions::default()
                };
                let t = Instant::now();
                decode(file, &opts, threads, |_| Ok(())).expect("decode");
                times.push(t.elapsed());
            }
        }
        let (sl, fr) = (median(slices), median(framed));
        println!(
            "  {:<12} decode stage: slice threads {:6.1} ms, frame threads {:6.1} ms ({:.2}x)",
            format!("{sampling:?}"),
            sl.as_secs_f64() * 1e3,
            fr.as_secs_f64() * 1e3,
            sl.as_secs_f64() / fr.as_secs_f64()
        );
        let (ff, jpg, us) = (median(ffs), median(jpgs), median(ours));
        println!(
            "  {:<12} decode {:6.1} ms, JPEG files {:6.1} ms, spatialsv ingest {:6.1} ms ({frames} frames, {:.0} frames/s): {:.2}x decode-only (target >= 0.7), {:.2}x JPEG extraction (target >= 1.0)",
            format!("{sampling:?}"),
            ff.as_secs_f64() * 1e3,
            jpg.as_secs_f64() * 1e3,
            us.as_secs_f64() * 1e3,
            frames as f64 / us.as_secs_f64(),
            ff.as_secs_f64() / us.as_secs_f64(),
            jpg.as_secs_f64() / us.as_secs_f64()
        );
    }
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let frames: usize = arg("--frames").and_then(|v| v.parse().ok()).unwrap_or(100);
    let (w, h) = arg("--resolution")
        .and_then(|r| {
            let (w, h) = r.split_once('x')?;
            Some((w.parse().ok()?, h.parse().ok()?))
        })
        .unwrap_or((640, 480));
    if !std::env::args().any(|a| a == "--no-scans") {
        bench_scans(tmp.path(), frames, w, h);
    }
    match arg("--video").map(PathBuf::from) {
        Some(video) => bench_video(tmp.path(), &video),
        None => {
            let bikes =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/video/bikes.mp4");
            bench_video(tmp.path(), &bikes);
            // The same real footage in an older codec and container: MPEG-4 Part 2 in AVI.
            let avi = tmp.path().join("bikes_mpeg4.avi");
            let ok = Command::new("ffmpeg")
                .args(["-v", "error", "-nostdin", "-i"])
                .arg(&bikes)
                .args(["-c:v", "mpeg4", "-vtag", "XVID", "-q:v", "3", "-an"])
                .arg(&avi)
                .status()
                .expect("ffmpeg")
                .success();
            assert!(ok, "transcoding to AVI failed");
            bench_video(tmp.path(), &avi);
        }
    }
}
