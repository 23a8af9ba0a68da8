//! `spatialsv ingest`: import scans and videos into a dataset.

use super::Context;
use spatialsv_ingest::synth::WorldLayout;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use spatialsv_ingest::video::{Sampling, VideoOptions, ingest_videos, video_files};
use spatialsv_ingest::{
    IngestOptions, IngestReport, ScanFormat, SplitChoice, detect, ingest_scans, list_scenes,
};
use spatialsv_labeler::job::Shard;
use spatialsv_schemas::Split;
use spatialsv_store::{Dataset, WriteOptions};

use super::{CliError, CliResult};

/// Import 3D scans or videos into a dataset (created if missing), normalising every frame to
/// the canonical conventions (camera-to-world, OpenCV axes, metres, intrinsics in stored
/// pixels). Bad frames go to the `quarantine` table with their reason; the rest goes on.
/// Re-running an interrupted or finished ingest adds only what is missing.
///
/// SRC is a scene directory, or a directory with scenes anywhere below it (scans; up to 6
/// levels, symbolic-link loops walked once), or video files and directories of them
/// (video). `auto` also takes the videos it finds, lists what it found and the folders it
/// skipped with why, and on a synthetic world (`world.json`) ingests scans and videos in one
/// command, leaving out the hidden ground truth. `--split auto` takes the split of a
/// `train` / `val` / `test` folder on the way below SRC, else hashes the scene id.
///
/// Examples:
///   spatialsv ingest scannet /data/scannet/scans --dataset ds
///   spatialsv ingest auto /data/tum/rgbd_dataset_freiburg1_desk --dataset ds --split test
///   spatialsv ingest auto out/demo/world --dataset ds
///   spatialsv ingest video clips/ --dataset ds --fps 2 --clip-len 8
#[derive(Debug, Clone, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Source layout; `auto` recognises scan layouts and says which it chose.
    #[arg(value_enum)]
    format: Format,
    /// Scene directories, parents of scene directories, or video files/directories.
    #[arg(required = true)]
    src: Vec<PathBuf>,
    /// Dataset: a directory or s3://bucket/prefix (created if missing).
    #[arg(long)]
    dataset: PathBuf,
    /// Split of the ingested scenes: `auto` takes a `train` / `val` / `test` folder between SRC
    /// and the scene, else hashes the scene id (80% train, 10% val, 10% test).
    #[arg(long, default_value = "auto")]
    split: String,
    /// Scans: worker threads reading and checking frames (default: one per core). Video
    /// decoding runs in ffmpeg's own threads.
    #[arg(long)]
    jobs: Option<usize>,
    /// TOML file of Parquet layout options (the keys of configs/store.toml).
    #[arg(long)]
    store_config: Option<PathBuf>,
    /// Scans: intrinsics fx,fy,cx,cy (stored-image pixels) instead of the layout's; also
    /// accepted as four separate values.
    #[arg(long, value_delimiter = ',', num_args = 1..=4, allow_negative_numbers = true)]
    intrinsics: Option<Vec<f64>>,
    /// TUM: largest colour-depth / colour-pose time difference, seconds.
    #[arg(long, default_value_t = TUM_MAX_DT_S, allow_negative_numbers = true)]
    tum_max_dt: f64,
    /// Scans: commit after this many frames, so an interrupted run keeps its progress.
    #[arg(long, default_value_t = COMMIT_EVERY)]
    commit_every: usize,
    /// Video: keep at most F frames per second of presentation time.
    #[arg(long, conflicts_with = "stride", allow_negative_numbers = true)]
    fps: Option<f64>,
    /// Video: keep every N-th frame.
    #[arg(long)]
    stride: Option<usize>,
    /// Video: consecutive samples per clip.
    #[arg(long, default_value_t = CLIP_LEN)]
    clip_len: usize,
    /// Video: JPEG quality of stored frames (1-100).
    #[arg(long, default_value_t = JPEG_QUALITY, value_parser = clap::value_parser!(u8).range(1..=100))]
    jpeg_quality: u8,
    /// This process's share of the scenes and video files (by a hash of the scene id or the
    /// file name): K/N (0 <= K < N); `slurm` for a Slurm array task; `k8s/N` for a
    /// Kubernetes Indexed Job of N completions (as for `label`).
    #[arg(long, default_value = "0/1", allow_hyphen_values = true)]
    shard: String,
}

#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum)]
enum Format {
    Scannet,
    Tum,
    Sevenscenes,
    Colmap,
    Nerfstudio,
    Auto,
    Video,
}

impl Format {
    fn scan(self) -> Option<ScanFormat> {
        match self {
            Format::Scannet => Some(ScanFormat::Scannet),
            Format::Tum => Some(ScanFormat::Tum),
            Format::Sevenscenes => Some(ScanFormat::SevenScenes),
            Format::Colmap => Some(ScanFormat::Colmap),
            Format::Nerfstudio => Some(ScanFormat::Nerfstudio),
            Format::Auto | Format::Video => None,
        }
    }
}

const TUM_MAX_DT_S: f64 = 0.02;
const COMMIT_EVERY: usize = 2000;
const CLIP_LEN: usize = 8;
const JPEG_QUALITY: u8 = 90;

fn split_choice(s: &str) -> Result<SplitChoice, CliError> {
    if s == "auto" {
        return Ok(SplitChoice::Auto);
    }
    s.parse::<Split>()
        .map(SplitChoice::Fixed)
        .map_err(|e| CliError::User(format!("--split: {e} or auto")))
}

/// `--intrinsics`: four finite numbers with positive focal lengths.
fn intrinsics(v: &[f64]) -> Result<[f64; 4], CliError> {
    let k: [f64; 4] = v.try_into().map_err(|_| {
        CliError::User(format!(
            "--intrinsics takes four numbers fx,fy,cx,cy (got {})",
            v.len()
        ))
    })?;
    if !k.iter().all(|x| x.is_finite()) || k[0] <= 0.0 || k[1] <= 0.0 {
        return Err(CliError::User(format!(
            "--intrinsics {},{},{},{}: focal lengths must be positive and every value finite",
            k[0], k[1], k[2], k[3]
        )));
    }
    Ok(k)
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    let split = split_choice(&args.split)?;
    if args.stride == Some(0) {
        return Err(CliError::User("--stride must be at least 1".into()));
    }
    if let Some(f) = args.fps
        && !(f.is_finite() && f > 0.0)
    {
        return Err(CliError::User(format!(
            "--fps {f}: must be a positive number of frames per second"
        )));
    }
    if args.clip_len == 0 {
        return Err(CliError::User(
            "--clip-len 0: a clip holds at least 1 frame".into(),
        ));
    }
    if !(args.tum_max_dt.is_finite() && args.tum_max_dt >= 0.0) {
        return Err(CliError::User(format!(
            "--tum-max-dt {}: must be a non-negative number of seconds",
            args.tum_max_dt
        )));
    }
    if args.commit_every == 0 {
        return Err(CliError::User("--commit-every must be at least 1".into()));
    }
    if args.jobs == Some(0) {
        return Err(CliError::User("--jobs must be at least 1".into()));
    }
    let intrinsics = args.intrinsics.as_deref().map(intrinsics).transpose()?;
    let shard = Shard::resolve(&args.shard, |k| std::env::var(k).ok())?;

    let write = match &args.store_config {
        Some(p) => spatialsv_store::load_toml::<WriteOptions>(p)?,
        None => WriteOptions::default(),
    };
    if args.format == Format::Auto {
        return run_auto(ctx, &args, split, intrinsics, write, shard);
    }
    let ds = ctx.open_or_create(&args.dataset)?;
    let srcs: Vec<String> = args.src.iter().map(|p| p.display().to_string()).collect();
    let operation = format!("ingest {:?} {}", args.format, srcs.join(" ")).to_lowercase();
    let report = if args.format == Format::Video {
        let opts = video_options(&args, split, write.clone());
        let mut files = video_files(&args.src)?;
        files.retain(|f| shard.owns(&video_key(f)));
        // One commit per file, each named after its file.
        ingest_videos(
            &ds,
            &files,
            &opts,
            "ingest video",
            &crate::progress::Bar::new(),
        )?
    } else {
        let opts = scan_options(&args, split, intrinsics, write);
        let mut scenes = list_scenes(args.format.scan(), &args.src, &opts)?;
        scenes.retain(|s| shard.owns(&s.scene_id));
        ingest_scans(
            &ds,
            &scenes,
            &opts,
            &operation,
            &crate::progress::Bar::new(),
        )?
    };
    print_report(&report, &ds)
}

/// What a video file is sharded by: its file name, the same on every machine that mounts
/// the sources (wherever they are mounted).
fn video_key(file: &Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string())
}

/// The options of a scan ingest from the arguments.
fn scan_options(
    args: &Args,
    split: SplitChoice,
    intrinsics: Option<[f64; 4]>,
    write: WriteOptions,
) -> IngestOptions {
    IngestOptions {
        split,
        tum_max_dt_s: args.tum_max_dt,
        intrinsics,
        jobs: args.jobs,
        commit_every_frames: args.commit_every,
        write,
        ..IngestOptions::default()
    }
}

/// The options of a video ingest from the arguments.
fn video_options(args: &Args, split: SplitChoice, write: WriteOptions) -> VideoOptions {
    VideoOptions {
        sampling: match (args.fps, args.stride) {
            (Some(f), _) => Sampling::Fps(f),
            (None, Some(n)) => Sampling::Stride(n),
            (None, None) => Sampling::All,
        },
        clip_len: args.clip_len,
        write,
        jpeg_quality: args.jpeg_quality,
        split,
    }
}

/// `ingest auto`: walks every source for scan layouts (any depth up to
/// `detect::MAX_DEPTH`, symbolic-link loops walked once) and video files, lists what it
/// found and skipped, then ingests the scans and the videos; `--split auto` takes the split
/// from `train` / `val` / `test` folders on the way.
fn run_auto(
    ctx: &Context,
    args: &Args,
    split: SplitChoice,
    intrinsics: Option<[f64; 4]>,
    write: WriteOptions,
    shard: Shard,
) -> CliResult {
    let mut scenes = 0;
    let mut videos: Vec<(PathBuf, Option<Split>)> = Vec::new();
    for src in &args.src {
        if !src.exists() {
            return Err(CliError::User(format!(
                "source does not exist: {}",
                src.display()
            )));
        }
        let mut w = detect::walk(None, src, detect::MAX_DEPTH, true);
        // A synthetic world (`spatialsv synth`): its hidden truth and the test rooms' videos
        // stay out; its unlabeled videos are training data (as the demo ingests them).
        let synthetic = WorldLayout::is_world(src);
        let world = WorldLayout::new(src);
        if synthetic {
            for (d, why) in [
                (
                    world.groundtruth(),
                    "the videos' hidden ground truth of a synthetic world: never ingested",
                ),
                (
                    world.test_videos(),
                    "the test video rooms as H.264: ingested with their truth from scans/test_video",
                ),
            ] {
                if d.exists() {
                    w.videos.retain(|v| !v.starts_with(&d));
                    w.skipped.retain(|(p, _)| !p.starts_with(&d));
                    w.skipped.push((d, why.to_string()));
                }
            }
        }
        let mut by_layout: BTreeMap<String, usize> = BTreeMap::new();
        for (f, root) in &w.scenes {
            let hint = detect::split_below(src, root)
                .map_or_else(|| "split by hash".to_string(), |s| format!("{s} by folder"));
            *by_layout.entry(format!("{f} ({hint})")).or_default() += 1;
        }
        for (layout, n) in &by_layout {
            out!("found {n} {layout} scene(s) below {}", src.display());
        }
        if !w.videos.is_empty() {
            out!(
                "found {} video file(s) below {}",
                w.videos.len(),
                src.display()
            );
        }
        for (dir, why) in &w.skipped {
            out!("skipped {}: {why}", dir.display());
        }
        scenes += w.scenes.len();
        videos.extend(w.videos.iter().map(|v| {
            let hint = detect::split_below(src, v);
            let unlabeled = synthetic && v.starts_with(world.videos());
            (v.clone(), if unlabeled { Some(Split::Train) } else { hint })
        }));
    }
    if scenes == 0 && videos.is_empty() {
        let srcs: Vec<String> = args.src.iter().map(|p| p.display().to_string()).collect();
        return Err(CliError::User(format!(
            "no known scan layout (scannet, tum, sevenscenes, colmap, nerfstudio) or video found in {} or below",
            srcs.join(", ")
        )));
    }
    let ds = ctx.open_or_create(&args.dataset)?;
    if scenes > 0 {
        let opts = scan_options(args, split, intrinsics, write.clone());
        let srcs: Vec<String> = args.src.iter().map(|p| p.display().to_string()).collect();
        let mut found = list_scenes(None, &args.src, &opts)?;
        found.retain(|s| shard.owns(&s.scene_id));
        let r = ingest_scans(
            &ds,
            &found,
            &opts,
            &format!("ingest auto {}", srcs.join(" ")),
            &crate::progress::Bar::new(),
        )?;
        print_report(&r, &ds)?;
    }
    videos.retain(|(v, _)| shard.owns(&video_key(v)));
    // Videos, grouped by the split their folder gives (with --split auto).
    let mut groups: BTreeMap<Option<&'static str>, (SplitChoice, Vec<PathBuf>)> = BTreeMap::new();
    for (v, hint) in videos {
        let hint = match split {
            SplitChoice::Auto => hint,
            SplitChoice::Fixed(_) => None,
        };
        groups
            .entry(hint.map(|s| s.as_str()))
            .or_insert((hint.map_or(split, SplitChoice::Fixed), Vec::new()))
            .1
            .push(v);
    }
    for (choice, files) in groups.into_values() {
        let r = ingest_videos(
            &ds,
            &files,
            &video_options(args, choice, write.clone()),
            "ingest video",
            &crate::progress::Bar::new(),
        )?;
        print_report(&r, &ds)?;
    }
    Ok(())
}

fn print_report(r: &IngestReport, ds: &Dataset) -> CliResult {
    for line in r.lines(&ds.location()) {
        out!("{line}");
    }
    for s in &r.scenes {
        for w in &s.warnings {
            eprintln!("warning: {w}");
        }
    }
    Ok(())
}
