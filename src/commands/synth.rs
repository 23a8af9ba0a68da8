//! `spatialsv synth`: render the synthetic world (labeled scans + unlabeled videos).

use std::path::PathBuf;

use spatialsv_pipeline::synth::{SynthOptions, synthesize};

use super::{CliError, CliResult, CommandLine, quote};

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
#[derive(Debug, Clone, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Output directory.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Random seed; the same seed renders the same world.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Number of labeled scan scenes (a third of them, at least one, are test scenes).
    #[arg(long, default_value_t = SynthOptions::default().scenes)]
    pub(crate) scenes: usize,
    /// Number of unlabeled videos.
    #[arg(long, default_value_t = SynthOptions::default().videos)]
    pub(crate) videos: usize,
    /// Frames per scene and per video.
    #[arg(long, default_value_t = SynthOptions::default().frames)]
    pub(crate) frames: usize,
    /// Resolution as WIDTHxHEIGHT (even numbers).
    #[arg(long, default_value = "160x120")]
    pub(crate) resolution: String,
}

impl CommandLine for Args {
    fn command_line(&self) -> String {
        format!(
            "spatialsv synth --out {} --seed {} --scenes {} --videos {} --frames {} --resolution {}",
            quote(&self.out),
            self.seed,
            self.scenes,
            self.videos,
            self.frames,
            self.resolution
        )
    }
}

pub fn run(args: Args) -> CliResult {
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
    let opts = SynthOptions {
        seed: args.seed,
        scenes: args.scenes,
        videos: args.videos,
        frames: args.frames,
        width: w,
        height: h,
        ..SynthOptions::default()
    };
    let t = std::time::Instant::now();
    let m = synthesize(&args.out, &opts)?;
    let train = m.scans.iter().filter(|s| s.1 == "train").count();
    out!(
        "rendered {} scan scenes ({train} train, {} test) and {} videos of {} frames at {w}x{h} in {:.1}s into {}",
        m.scans.len(),
        m.scans.len() - train,
        m.videos.len(),
        opts.frames,
        t.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}
