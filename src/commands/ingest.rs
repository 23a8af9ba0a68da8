//! `spatialsv ingest`: import scans and videos into a dataset.

use std::path::PathBuf;

use super::{CliError, CliResult};

/// Import 3D scans or videos into a dataset, normalising every frame to the canonical
/// conventions (camera-to-world, OpenCV axes, metres) and quarantining bad frames.
///
/// Examples:
///   spatialsv ingest scannet /data/scannet/scene0000_00 --dataset ds
///   spatialsv ingest auto /data/tum/rgbd_dataset_freiburg1_desk --dataset ds
///   spatialsv ingest video clips/*.mp4 --dataset ds --fps 2 --clip-len 8
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
#[allow(dead_code)] // read once the command lands
pub struct Args {
    /// Source layout.
    #[arg(value_enum)]
    format: Format,
    /// Files or directories to import.
    #[arg(required = true)]
    src: Vec<PathBuf>,
    /// Dataset directory (created if missing).
    #[arg(long)]
    dataset: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Scannet,
    Tum,
    Sevenscenes,
    Colmap,
    Nerfstudio,
    Auto,
    Video,
}

pub fn run(_args: Args) -> CliResult {
    Err(CliError::NotBuilt {
        command: "ingest",
        issue: "issue 3, ingestion of scans and video",
    })
}
