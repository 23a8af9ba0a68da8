//! `spatialsv export`: 3D exports of what a model believes.

use std::path::PathBuf;

use super::{CliError, CliResult};

/// Write predicted and ground-truth point clouds (binary PLY), depth and confidence images and
/// camera trajectories for one scene.
///
/// Example:
///   spatialsv export --checkpoint runs/teacher --dataset ds --scene scene0003 --out export/
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
#[allow(dead_code)] // read once the command lands
pub struct Args {
    /// Run directory of the checkpoint.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Dataset directory.
    #[arg(long)]
    dataset: PathBuf,
    /// Scene to export.
    #[arg(long)]
    scene: String,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(_args: Args) -> CliResult {
    Err(CliError::NotBuilt {
        command: "export",
        issue: "issue 4, 3D exports",
    })
}
