//! `spatialsv synth`: render the synthetic world (labeled scans + unlabeled videos).

use super::Context;
use std::path::PathBuf;

use spatialsv_ingest::synth::SynthOptions;
use spatialsv_lab::jobs::Synth;

use super::{CliError, CliResult};

/// Render the embedded synthetic world: procedural indoor rooms (walls, floor, ceiling,
/// furniture-like boxes, spheres and cylinders, textured and lit) ray-cast on the CPU along
/// hand-held-like camera trajectories. Writes labeled scans in the ScanNet layout
/// (scans/train/*, scans/test/*), unlabeled H.264 videos of other rooms (videos/*.mp4) with
/// their true depth and poses kept aside for evaluation (groundtruth/*), and world.json.
/// The same seed and options always give the same world. Videos need ffmpeg.
///
/// Example:
///   spatialsv synth --out data/synth --seed 7
///   spatialsv ingest scannet data/synth/scans/train --dataset ds --split train
///   spatialsv ingest scannet data/synth/scans/test --dataset ds --split test
///   spatialsv ingest video data/synth/videos --dataset ds --clip-len 8
///
/// With --test-videos N, N more rooms are filmed and kept as test set B: ingest them with
///   spatialsv ingest scannet data/synth/scans/test_video --dataset ds --split test
#[derive(Debug, Clone, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Random seed; the same seed renders the same world.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of labeled scan scenes (--test-scenes of them are test scenes).
    #[arg(long, default_value_t = SynthOptions::default().scenes)]
    scenes: usize,
    /// Of the scan scenes, how many are held out as test (0: a third, at least one).
    #[arg(long, default_value_t = 0)]
    test_scenes: usize,
    /// Number of unlabeled videos.
    #[arg(long, default_value_t = SynthOptions::default().videos)]
    videos: usize,
    /// Number of held-out video test rooms (videos_test/*.mp4, and scans/test_video/* with
    /// their decoded frames and true depth and poses, for `eval`).
    #[arg(long, default_value_t = 0)]
    test_videos: usize,
    /// Frames per scan scene and per test video.
    #[arg(long, default_value_t = SynthOptions::default().frames)]
    frames: usize,
    /// Frames per unlabeled video (0: --frames).
    #[arg(long, default_value_t = 0)]
    video_frames: usize,
    /// Also film the test scan rooms as H.264 (scans/test_h264/*: same rooms and
    /// trajectories, colour decoded from the video) to measure the codec's effect.
    #[arg(long)]
    codec_check: bool,
    /// Resolution as WIDTHxHEIGHT (even numbers).
    #[arg(long, default_value = "160x120")]
    resolution: String,
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    let (w, h) = args
        .resolution
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .ok_or_else(|| {
            CliError::User(format!(
                "--resolution: expected WIDTHxHEIGHT, got '{}'",
                args.resolution
            ))
        })?;
    let job = Synth {
        out: args.out,
        options: SynthOptions {
            seed: args.seed,
            scenes: args.scenes,
            test_scenes: args.test_scenes,
            videos: args.videos,
            test_videos: args.test_videos,
            frames: args.frames,
            video_frames: args.video_frames,
            codec_check: args.codec_check,
            width: w,
            height: h,
            ..SynthOptions::default()
        },
    };
    ctx.lab(|env| job.run(env).map(|_| ()))
}
