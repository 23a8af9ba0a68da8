//! Video ingestion through the `ffmpeg` command-line tools (Debian's `ffmpeg` package).
//!
//! Why a CLI pipe rather than linking libav: the decoders are the same, but a pipe needs no
//! `-dev` packages or bindgen at build time, cannot crash our process on a corrupt file, and
//! lets ffmpeg run its decoder and JPEG encoder on their own threads while we store frames.
//! (docs/ingest.md says more.)
//!
//! One `ffmpeg` process per file decodes the first video stream, keeps the sampled frames
//! (`select` filter: every N-th frame, or at most F per second by presentation time), logs each
//! kept frame's exact PTS (`showinfo`, with `-copyts` so they equal ffprobe's), and encodes it
//! as JPEG into a pipe. We split the JPEG stream, pair each image with its PTS, and commit
//! frames plus `clips` of consecutive samples.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use serde_json::Value;
use spatialsv_schemas::{SourceKind, Table};

use super::{IngestReport, SceneReport, SplitChoice};
use spatialsv_store::progress::Progress;
use spatialsv_store::rows::{
    ClipRow, FrameRow, QuarantineRow, SceneRow, clips_batch, frames_batch, now_ns,
    quarantine_batch, scenes_batch,
};
use spatialsv_store::{Dataset, WriteOptions};
use spatialsv_store::{Error, Result};

/// File extensions taken as video when a directory is given.
pub const VIDEO_EXTENSIONS: [&str; 5] = ["mp4", "mov", "mkv", "avi", "webm"];

/// How frames are sampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// Every frame.
    All,
    /// Every N-th decoded frame.
    Stride(usize),
    /// At most F frames per second of presentation time.
    Fps(f64),
}

/// ffmpeg's `-q:v` (31 worst .. 2 best) for a JPEG quality of 1-100.
pub fn ffmpeg_jpeg_q(quality: u8) -> u32 {
    (31.0 - (f64::from(quality.clamp(1, 100)) - 1.0) * 29.0 / 99.0).round() as u32
}

/// Options of a video ingest.
#[derive(Debug, Clone)]
pub struct VideoOptions {
    /// Frame sampling.
    pub sampling: Sampling,
    /// Consecutive samples per clip.
    pub clip_len: usize,
    /// JPEG quality, 1-100 (mapped to ffmpeg's `-q:v` 31-2).
    pub jpeg_quality: u8,
    /// Split assignment.
    pub split: SplitChoice,
    /// Parquet layout.
    pub write: WriteOptions,
}

impl Default for VideoOptions {
    fn default() -> Self {
        Self {
            sampling: Sampling::All,
            clip_len: 8,
            jpeg_quality: 90,
            split: SplitChoice::Auto,
            write: WriteOptions::default(),
        }
    }
}

const INSTALL_HINT: &str = "install it with your package manager (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg)";

/// The error for a tool that could not be started: when it is missing, say how to install it.
fn spawn_error(tool: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::User(format!(
            "{tool} was not found on PATH; video ingest needs it: {INSTALL_HINT}"
        ))
    } else {
        Error::User(format!("cannot run {tool} ({e}); {INSTALL_HINT}"))
    }
}

/// Checks that `ffmpeg` and `ffprobe` are on PATH; the error says how to install them.
///
/// A look at PATH, not a `-version` run: starting both tools took about 140 ms, a third of
/// ingesting a 10-second clip (docs/performance.md). A tool that is present but cannot run
/// is reported when it is started, with the same hint.
pub fn check_ffmpeg() -> Result<()> {
    for tool in ["ffmpeg", "ffprobe"] {
        if !on_path(tool) {
            return Err(Error::User(format!(
                "{tool} was not found on PATH; video ingest needs it: {INSTALL_HINT}"
            )));
        }
    }
    Ok(())
}

/// Whether an executable file named `tool` is in one of PATH's directories.
fn on_path(tool: &str) -> bool {
    #[cfg(unix)]
    fn executable(m: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::PermissionsExt as _;
        m.is_file() && m.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    fn executable(m: &std::fs::Metadata) -> bool {
        m.is_file()
    }
    let exe = format!("{tool}{}", std::env::consts::EXE_SUFFIX);
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .any(|dir| std::fs::metadata(dir.join(&exe)).is_ok_and(|m| executable(&m)))
    })
}

/// What ffprobe says of a file's first video stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Codec name (e.g. `h264`).
    pub codec: String,
    /// Frame size.
    pub width: u32,
    /// Frame size.
    pub height: u32,
    /// Stream time base as (num, den).
    pub time_base: (i64, i64),
    /// Frame count from the container, when it says.
    pub nb_frames: Option<u64>,
    /// Duration in seconds, when known.
    pub duration_s: Option<f64>,
    /// Average frame rate, when known.
    pub avg_fps: Option<f64>,
}

fn ratio(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.split_once('/')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Runs ffprobe on `path`.
pub fn probe(path: &Path) -> Result<Probe> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg("stream=codec_name,width,height,time_base,nb_frames,duration,avg_frame_rate:format=duration")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .map_err(|e| spawn_error("ffprobe", e))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let Some(s) = v.get("streams").and_then(|s| s.get(0)) else {
        let why = stderr
            .lines()
            .next()
            .unwrap_or("no video stream")
            .trim()
            .to_string();
        return Err(Error::corrupt(
            path,
            format!("not a readable video ({why})"),
        ));
    };
    let get = |k: &str| s.get(k).and_then(Value::as_str);
    let num = |k: &str| s.get(k).and_then(Value::as_u64);
    Ok(Probe {
        codec: get("codec_name").unwrap_or("?").to_string(),
        width: num("width").unwrap_or(0) as u32,
        height: num("height").unwrap_or(0) as u32,
        time_base: get("time_base").and_then(ratio).unwrap_or((1, 1_000_000)),
        nb_frames: get("nb_frames").and_then(|n| n.parse().ok()),
        // Containers such as Matroska give the duration for the file, not the stream.
        duration_s: get("duration")
            .or_else(|| v.get("format")?.get("duration")?.as_str())
            .and_then(|d| d.parse().ok()),
        avg_fps: get("avg_frame_rate")
            .and_then(ratio)
            .filter(|r| r.1 != 0 && r.0 != 0)
            .map(|(a, b)| a as f64 / b as f64),
    })
}

/// The `select` filter expression of a sampling.
pub fn select_expr(s: Sampling) -> String {
    match s {
        Sampling::All => "1".into(),
        Sampling::Stride(n) => format!("not(mod(n\\,{}))", n.max(1)),
        // A small tolerance keeps exact multiples (e.g. 25 fps sampled at 5 fps) on the grid.
        Sampling::Fps(f) => format!(
            "isnan(prev_selected_t)+gte(t-prev_selected_t\\,{:.9})",
            (1.0 / f) * 0.999
        ),
    }
}

/// One decoded, sampled frame.
#[derive(Debug, Clone)]
pub struct SampledFrame {
    /// Presentation timestamp in nanoseconds (equal to ffprobe's `pts_time`).
    pub pts_ns: i64,
    /// JPEG bytes.
    pub jpeg: Vec<u8>,
}

/// What decoding a file gave.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    /// Frames decoded and handed on.
    pub frames: usize,
    /// ffmpeg's error lines (corrupt or truncated data).
    pub errors: Vec<String>,
    /// Whether ffmpeg exited successfully.
    pub exit_ok: bool,
}

/// Splits a stream of concatenated JPEGs at their end-of-image markers. Entropy-coded data
/// never contains `FF D9` (0xFF bytes are stuffed), so the first EOI after an SOI ends it.
/// Markers may be split between two reads; bytes already searched are not searched again.
#[derive(Default)]
struct JpegSplitter {
    buf: Vec<u8>,
    /// Where the next search for an EOI starts (the buffer holds one image's prefix).
    scanned: usize,
}

const SOI: [u8; 2] = [0xFF, 0xD8];
const EOI: [u8; 2] = [0xFF, 0xD9];

fn find_marker(buf: &[u8], from: usize, marker: [u8; 2]) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == marker)
        .map(|p| p + from)
}

impl JpegSplitter {
    fn push(&mut self, data: &[u8], out: &mut Vec<Vec<u8>>) {
        self.buf.extend_from_slice(data);
        loop {
            let Some(start) = find_marker(&self.buf, 0, SOI) else {
                // Nothing but a possible first byte of the next SOI is worth keeping.
                let keep = usize::from(self.buf.last() == Some(&0xFF));
                self.buf.drain(..self.buf.len() - keep);
                self.scanned = 0;
                return;
            };
            if start > 0 {
                self.buf.drain(..start);
                self.scanned = self.scanned.saturating_sub(start);
            }
            match find_marker(&self.buf, self.scanned.max(2), EOI) {
                None => {
                    // The last byte may be the 0xFF of an EOI whose second byte is to come.
                    self.scanned = self.buf.len().saturating_sub(1).max(2);
                    return;
                }
                Some(e) => {
                    out.push(self.buf[..e + 2].to_vec());
                    self.buf.drain(..e + 2);
                    self.scanned = 0;
                }
            }
        }
    }
}

/// Parses a showinfo frame line's `pts:` value.
fn showinfo_pts(line: &str) -> Option<i64> {
    if !line.contains("Parsed_showinfo") || !line.contains(" n:") {
        return None;
    }
    let rest = line.split(" pts:").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

fn showinfo_time_base(line: &str) -> Option<(i64, i64)> {
    if !line.contains("Parsed_showinfo") {
        return None;
    }
    let rest = line.split("config in time_base:").nth(1)?;
    ratio(rest.split(',').next()?.trim())
}

fn is_error_line(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    !line.contains("Parsed_showinfo")
        && (l.contains("error")
            || l.contains("invalid")
            || l.contains("corrupt")
            || l.contains("truncat")
            || l.contains("missing"))
}

/// How ffmpeg's decoder spreads its work over threads.
///
/// Frame threading decodes several frames at once and is what makes decoding scale with cores
/// (an H.264 stream usually has one slice per frame, so slice threading alone keeps one core
/// busy). On a valid stream both give bit-identical frames (tested); on a damaged one, frame
/// threading conceals errors differently from run to run (one more or one fewer frame, a
/// repeated timestamp). So a file is decoded with frame threading, and decoded again with
/// slice threading when that pass met any damage: the same input always gives the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeThreads {
    /// Frames and slices in parallel (ffmpeg's default).
    Frame,
    /// Slices only: output that never varies, also on damaged input.
    Slice,
}

impl DecodeThreads {
    fn thread_type(self) -> &'static str {
        match self {
            DecodeThreads::Frame => "frame+slice",
            DecodeThreads::Slice => "slice",
        }
    }
}

/// Decodes and samples `path`, calling `on_frames` with batches of frames as they arrive so
/// that memory does not grow with the video's length.
pub fn decode(
    path: &Path,
    opts: &VideoOptions,
    threads: DecodeThreads,
    mut on_frames: impl FnMut(Vec<SampledFrame>) -> Result<()>,
) -> Result<Decoded> {
    let q = ffmpeg_jpeg_q(opts.jpeg_quality);
    let mut child = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "info",
            "-thread_type",
            threads.thread_type(),
            "-copyts",
            "-i",
        ])
        .arg(path)
        .args(["-map", "0:v:0", "-an", "-sn", "-dn", "-vf"])
        .arg(format!("select={},showinfo", select_expr(opts.sampling)))
        .args([
            "-fps_mode",
            "passthrough",
            "-pix_fmt",
            "yuvj420p",
            "-c:v",
            "mjpeg",
            "-q:v",
        ])
        .arg(q.to_string())
        .args(["-f", "image2pipe", "pipe:1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error("ffmpeg", e))?;
    let (Some(mut stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(Error::Internal("ffmpeg pipes missing".into()));
    };
    // stderr carries one showinfo line per kept frame, in order; a thread drains it so ffmpeg
    // never blocks on a full pipe.
    let (pts_tx, pts_rx) = mpsc::channel::<(i64, (i64, i64))>();
    let err_thread = std::thread::spawn(move || {
        let mut errors = Vec::new();
        let mut tb = (1, 1);
        // Lines as bytes: ffmpeg echoes the file name, which need not be UTF-8, and a line
        // that is not must not end the draining (ffmpeg would block and lose timestamps).
        for line in BufReader::new(stderr).split(b'\n').map_while(|l| l.ok()) {
            let line = String::from_utf8_lossy(&line);
            if let Some(t) = showinfo_time_base(&line) {
                tb = t;
            } else if let Some(p) = showinfo_pts(&line) {
                let _ = pts_tx.send((p, tb));
            } else if is_error_line(&line) && errors.len() < 50 {
                errors.push(line.trim().to_string());
            }
        }
        errors
    });
    let mut splitter = JpegSplitter::default();
    let mut chunk = vec![0u8; 1 << 16];
    let mut jpegs = Vec::new();
    let mut decoded = Decoded::default();
    let mut pending = Vec::new();
    let mut result = Ok(());
    loop {
        let n = match stdout.read(&mut chunk) {
            Ok(0) => 0,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                result = Err(Error::io("reading ffmpeg output for", path)(e));
                0
            }
        };
        if n > 0 {
            splitter.push(&chunk[..n], &mut jpegs);
        }
        for jpeg in jpegs.drain(..) {
            match pts_rx.recv() {
                Ok((pts, (num, den))) => {
                    let pts_ns = (i128::from(pts) * i128::from(num) * 1_000_000_000
                        / i128::from(den.max(1))) as i64;
                    pending.push(SampledFrame { pts_ns, jpeg });
                }
                Err(_) => decoded
                    .errors
                    .push("ffmpeg produced an image without a timestamp".into()),
            }
        }
        if pending.len() >= 64 || (n == 0 && !pending.is_empty()) {
            let batch = std::mem::take(&mut pending);
            decoded.frames += batch.len();
            if let Err(e) = on_frames(batch) {
                result = Err(e);
            }
        }
        if n == 0 || result.is_err() {
            break;
        }
    }
    if result.is_err() {
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(Error::io("waiting for ffmpeg on", path))?;
    decoded.errors.extend(err_thread.join().unwrap_or_default());
    decoded.exit_ok = status.success();
    result.map(|()| decoded)
}

/// Lists the video files of `srcs` (files as given, directories searched one level deep).
pub fn video_files(srcs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for src in srcs {
        if src.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(src)
                .map_err(Error::io("listing", src))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                    })
                })
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(Error::User(format!(
                    "no video files ({}) in {}",
                    VIDEO_EXTENSIONS.join(", "),
                    src.display()
                )));
            }
            files.extend(found);
        } else if src.is_file() {
            files.push(src.clone());
        } else {
            return Err(Error::User(format!(
                "source does not exist: {}",
                src.display()
            )));
        }
    }
    Ok(files)
}

/// Ingests video files: frames, clips and a scene per file; problems go to quarantine.
pub fn ingest_videos(
    ds: &Dataset,
    files: &[PathBuf],
    opts: &VideoOptions,
    operation: &str,
    progress: &dyn Progress,
) -> Result<IngestReport> {
    check_ffmpeg()?;
    let mut ids = std::collections::BTreeSet::new();
    for f in files {
        if !ids.insert(scene_id_of(f)) {
            return Err(Error::User(format!(
                "two videos would get the same scene id '{}' (file stem); rename one: {}",
                scene_id_of(f),
                f.display()
            )));
        }
    }
    progress.start(files.len() as u64, "videos");
    let mut report = IngestReport::default();
    for file in files {
        progress.message(&file.display().to_string());
        let _span = tracing::info_span!("ingest video", file = %file.display()).entered();
        // One commit per file; a lost race with another writer decodes the file again on
        // top of the winner's version (keyed rows: only what is missing is added). A
        // frame-threaded pass that meets damaged data is not committed: the file is decoded
        // again with slice threading (see [`DecodeThreads`]).
        let damaged = std::cell::Cell::new(false);
        let attempt = |threads: DecodeThreads| {
            ds.commit_retrying(
                &format!("{operation}: {}", file.display()),
                &opts.write,
                |tx| {
                    let (rep, clean) = ingest_one(tx, file, opts, threads, progress)?;
                    if !clean && threads == DecodeThreads::Frame {
                        damaged.set(true);
                        return Err(Error::Internal(
                            "damaged stream: decode again with slice threading".into(),
                        ));
                    }
                    Ok(rep)
                },
            )
        };
        let (rep, out) = match attempt(DecodeThreads::Frame) {
            Err(_) if damaged.get() => {
                tracing::info!(file = %file.display(), "damaged stream; decoding with slice threads");
                attempt(DecodeThreads::Slice)?
            }
            other => other?,
        };
        report.version = out.version;
        report.scenes.push(rep);
        progress.advance(1);
    }
    progress.finish();
    if report.scenes.is_empty() {
        report.version = ds.latest_version()?;
    }
    Ok(report)
}

fn scene_id_of(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "video".into())
}

/// Stages one file; also says whether ffmpeg decoded it cleanly (no error, no repeated
/// timestamp, a successful exit).
fn ingest_one(
    tx: &mut spatialsv_store::Transaction<'_>,
    file: &Path,
    opts: &VideoOptions,
    threads: DecodeThreads,
    progress: &dyn Progress,
) -> Result<(SceneReport, bool)> {
    let scene_id = scene_id_of(file);
    let split = opts.split.of(&scene_id);
    let uri = file.display().to_string();
    let mut rep = SceneReport {
        scene_id: scene_id.clone(),
        format: "video".into(),
        split: split.to_string(),
        ..SceneReport::default()
    };
    let quarantine = |reason: &str, detail: String| QuarantineRow {
        source_uri: uri.clone(),
        scene_id: Some(scene_id.clone()),
        frame_idx: None,
        stage: "ingest".into(),
        reason: reason.into(),
        detail,
        quarantined_at_ns: now_ns(),
    };
    let mut next_idx = 0i64;
    let mut timestamps: Vec<i64> = Vec::new();
    let mut repeated = 0usize;
    // ffprobe (for the expected frame count) runs while ffmpeg decodes.
    let (probed, decoded) = std::thread::scope(|scope| {
        let probing = scope.spawn(|| probe(file));
        let decoded = decode(file, opts, threads, |frames| {
            // A damaged stream can repeat (or step back in) presentation time: keep the
            // first frame of each timestamp, so timestamps are unique and increasing.
            let mut fresh = Vec::with_capacity(frames.len());
            let mut last = timestamps.last().copied();
            for f in frames {
                if last.is_some_and(|t| f.pts_ns <= t) {
                    repeated += 1;
                } else {
                    last = Some(f.pts_ns);
                    fresh.push(f);
                }
            }
            let rows: Vec<FrameRow> = fresh
                .into_iter()
                .map(|f| {
                    let idx = next_idx;
                    next_idx += 1;
                    timestamps.push(f.pts_ns);
                    let (w, h) = spatialsv_store::media::image_dims(&f.jpeg).unwrap_or((0, 0));
                    FrameRow {
                        scene_id: scene_id.clone(),
                        frame_idx: idx,
                        timestamp_ns: f.pts_ns,
                        source: SourceKind::Video,
                        split,
                        image: f.jpeg,
                        image_codec: "jpeg".into(),
                        width: w as i32,
                        height: h as i32,
                        depth: None,
                        intrinsics: None,
                        camera_model: "unknown".into(),
                        distortion: Vec::new(),
                        world_from_camera: None,
                        pose_source: None,
                        source_uri: format!("{uri}#t={:.6}", f.pts_ns as f64 / 1e9),
                    }
                })
                .collect();
            let n = rows.len();
            let staged = tx.append(Table::Frames, frames_batch(&rows)?)?;
            rep.ingested += staged;
            rep.duplicates += n - staged;
            progress.tick();
            Ok(())
        });
        let probed = probing
            .join()
            .unwrap_or_else(|_| Err(Error::Internal("ffprobe thread panicked".into())));
        (probed, decoded)
    });
    let mut decoded = decoded?;
    let clean = decoded.errors.is_empty() && decoded.exit_ok && repeated == 0;
    if threads == DecodeThreads::Frame && !clean {
        return Ok((rep, false));
    }
    if repeated > 0 {
        decoded.errors.push(format!(
            "{repeated} decoded frames repeated an earlier timestamp and were dropped"
        ));
    }
    let got = decoded.frames - repeated;
    let probe = match probed {
        Ok(p) => p,
        Err(e) if got == 0 => {
            rep.quarantined.insert("unreadable_video".into(), 1);
            tx.append(
                Table::Quarantine,
                quarantine_batch(&[quarantine("unreadable_video", e.to_string())])?,
            )?;
            return Ok((rep, clean));
        }
        Err(e) => {
            rep.warnings.push(format!(
                "{}: ffprobe failed ({e}); truncation cannot be checked",
                file.display()
            ));
            Probe {
                codec: "?".into(),
                width: 0,
                height: 0,
                time_base: (1, 1),
                nb_frames: None,
                duration_s: None,
                avg_fps: None,
            }
        }
    };
    rep.notes.push(format!(
        "{} {}x{}, {} frames, {:.2} fps",
        probe.codec,
        probe.width,
        probe.height,
        probe
            .nb_frames
            .map(|n| n.to_string())
            .unwrap_or_else(|| "?".into()),
        probe.avg_fps.unwrap_or(0.0)
    ));
    rep.frames_found = got;
    // How many frames a complete decode would have sampled, to detect truncation.
    let total = probe
        .nb_frames
        .or_else(|| Some((probe.duration_s? * probe.avg_fps?).round() as u64))
        .unwrap_or(0) as usize;
    let expected = match opts.sampling {
        Sampling::All => total,
        Sampling::Stride(n) => total.div_ceil(n.max(1)),
        Sampling::Fps(f) => probe
            .duration_s
            .map(|d| (d * f).floor() as usize + 1)
            .unwrap_or(0)
            .min(total.max(1)),
    };
    let first_error = decoded.errors.first().cloned().unwrap_or_default();
    let mut q = Vec::new();
    if got == 0 {
        q.push(quarantine(
            "undecodable_video",
            format!("no frame decoded; ffmpeg: {first_error}"),
        ));
    } else if expected > 0 && got + 1 < expected {
        q.push(quarantine(
            "truncated_video",
            format!("decoded {got} of {expected} expected sampled frames; the rest is missing or corrupt; ffmpeg: {first_error}"),
        ));
    } else if !decoded.errors.is_empty() {
        q.push(quarantine(
            "corrupt_video_data",
            format!("all {got} frames decoded, with errors; ffmpeg: {first_error}"),
        ));
    }
    for row in &q {
        *rep.quarantined.entry(row.reason.clone()).or_default() += 1;
        rep.warnings
            .push(format!("{}: {}", file.display(), row.detail));
    }
    if !q.is_empty() {
        tx.append(Table::Quarantine, quarantine_batch(&q)?)?;
    }
    if got > 0 {
        let clips: Vec<ClipRow> = timestamps
            .chunks(opts.clip_len.max(1))
            .enumerate()
            .filter(|(_, c)| c.len() >= 2 || opts.clip_len <= 1)
            .map(|(k, c)| {
                let first = (k * opts.clip_len.max(1)) as i64;
                ClipRow {
                    clip_id: format!("{scene_id}/{first}"),
                    scene_id: scene_id.clone(),
                    split,
                    frame_indices: (first..first + c.len() as i64).collect(),
                    start_timestamp_ns: c[0],
                    end_timestamp_ns: c[c.len() - 1],
                }
            })
            .collect();
        if !clips.is_empty() {
            tx.append(Table::Clips, clips_batch(&clips)?)?;
        }
        tx.append(
            Table::Scenes,
            scenes_batch(&[SceneRow {
                scene_id: scene_id.clone(),
                source: SourceKind::Video,
                source_uri: uri.clone(),
                dataset_format: "video".into(),
                split,
                num_frames: got as i64,
                num_quarantined: 0,
                ingested_at_ns: now_ns(),
            }])?,
        )?;
    }
    tracing::info!(
        frames = got,
        ingested = rep.ingested,
        duplicates = rep.duplicates,
        "video staged"
    );
    Ok((rep, clean))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_stream_is_split_across_reads() {
        let a = [0xFF, 0xD8, 1, 2, 0xFF, 0x00, 3, 0xFF, 0xD9];
        let b = [0xFF, 0xD8, 9, 0xFF, 0xD9];
        let stream: Vec<u8> = a.iter().chain(&b).copied().collect();
        // Every read size, so every marker is split between two reads at some point.
        for size in 1..=stream.len() {
            let mut s = JpegSplitter::default();
            let mut out = Vec::new();
            for piece in stream.chunks(size) {
                s.push(piece, &mut out);
            }
            assert_eq!(out, vec![a.to_vec(), b.to_vec()], "reads of {size} bytes");
        }
    }

    /// On a valid stream, frame-threaded decoding gives exactly the frames and timestamps of
    /// slice-threaded decoding (what makes the faster default safe).
    #[test]
    fn frame_and_slice_threading_give_the_same_frames() {
        let bikes = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/video/bikes.mp4");
        let opts = VideoOptions {
            sampling: Sampling::Stride(3),
            ..VideoOptions::default()
        };
        let run = |threads| {
            let mut frames = Vec::new();
            let d = decode(&bikes, &opts, threads, |batch| {
                frames.extend(batch.into_iter().map(|f| (f.pts_ns, blake3::hash(&f.jpeg))));
                Ok(())
            })
            .expect("decode");
            assert!(d.errors.is_empty() && d.exit_ok, "{:?}", d.errors);
            frames
        };
        let (frame, slice) = (run(DecodeThreads::Frame), run(DecodeThreads::Slice));
        assert_eq!(frame.len(), 84);
        assert_eq!(frame, slice);
    }

    #[test]
    fn showinfo_lines() {
        let cfg =
            "[Parsed_showinfo_1 @ 0x5623b4ec9500] config in time_base: 1/12800, frame_rate: 25/1";
        assert_eq!(showinfo_time_base(cfg), Some((1, 12800)));
        let line = "[Parsed_showinfo_1 @ 0x5623b4ec9500] n:   0 pts:    512 pts_time:0.04    pos:       48 fmt:yuv420p";
        assert_eq!(showinfo_pts(line), Some(512));
        assert_eq!(showinfo_pts(cfg), None);
    }

    #[test]
    fn select_expressions() {
        assert_eq!(select_expr(Sampling::Stride(5)), "not(mod(n\\,5))");
        assert!(
            select_expr(Sampling::Fps(2.0))
                .starts_with("isnan(prev_selected_t)+gte(t-prev_selected_t\\,0.4995")
        );
    }
}
