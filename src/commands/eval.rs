//! `spatialsv eval`: evaluate a checkpoint.

use std::path::PathBuf;

use super::{CliError, CliResult};

/// Evaluate a checkpoint on held-out scenes: depth AbsRel / delta1 / RMSE, camera RRA, RTA and
/// AUC@30, point-map Chamfer after Sim(3) alignment; overall and per scene.
///
/// Example:
///   spatialsv eval --dataset ds --checkpoint runs/teacher --split test --out eval/teacher
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
#[allow(dead_code)] // read once the command lands
pub struct Args {
    /// Dataset directory.
    #[arg(long)]
    dataset: PathBuf,
    /// Run directory of the checkpoint.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Split to evaluate on.
    #[arg(long, default_value = "test")]
    split: String,
    /// Output directory for the JSON report.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(_args: Args) -> CliResult {
    Err(CliError::NotBuilt {
        command: "eval",
        issue: "issue 4, metrics and eval",
    })
}
