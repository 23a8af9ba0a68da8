//! `spatialsv train`: train the SpatialSV model.

use std::path::PathBuf;

use super::{CliError, CliResult};

/// Train the SpatialSV model (depth, ray-map and point-map heads) on a dataset, supervised or
/// semi-supervised with accepted pseudo-labels.
///
/// Example:
///   spatialsv train --dataset ds --config configs/train.toml --out runs/teacher
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
#[allow(dead_code)] // read once the command lands
pub struct Args {
    /// Dataset directory.
    #[arg(long)]
    dataset: PathBuf,
    /// Training config (TOML).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run directory for checkpoints, config and metrics.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
}

pub fn run(_args: Args) -> CliResult {
    Err(CliError::NotBuilt {
        command: "train",
        issue: "issue 4, the SpatialSV model and trainer",
    })
}
