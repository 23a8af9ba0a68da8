//! `spatialsv synth`: render the synthetic world (labeled scans + unlabeled videos).

use std::path::PathBuf;

use super::{CliError, CliResult};

/// Render the embedded synthetic world: procedural indoor rooms ray-cast on the CPU, written as
/// labeled scans (ScanNet layout) and unlabeled MP4 videos with hidden ground truth.
///
/// Example:
///   spatialsv synth --out data/synth --seed 7 --scenes 6 --videos 3
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
#[allow(dead_code)] // read once the command lands
pub struct Args {
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Random seed; the same seed renders the same world.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of labeled scan scenes.
    #[arg(long)]
    scenes: Option<usize>,
    /// Number of unlabeled videos.
    #[arg(long)]
    videos: Option<usize>,
    /// Frames per scene or video.
    #[arg(long)]
    frames: Option<usize>,
    /// Resolution as WIDTHxHEIGHT.
    #[arg(long)]
    resolution: Option<String>,
}

pub fn run(_args: Args) -> CliResult {
    Err(CliError::NotBuilt {
        command: "synth",
        issue: "issue 3, ingestion and the synthetic world",
    })
}
