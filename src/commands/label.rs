//! `spatialsv label`: pseudo-label unlabeled video with a teacher.

use std::path::PathBuf;

use super::{CliError, CliResult};

/// Run a trained teacher over every clip of unlabeled frames, apply the confidence filters and
/// commit the `pseudo_labels` table.
///
/// Example:
///   spatialsv label --dataset ds --teacher runs/teacher --config configs/label.toml --shard 0/4
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
#[allow(dead_code)] // read once the command lands
pub struct Args {
    /// Dataset directory.
    #[arg(long)]
    dataset: PathBuf,
    /// Run directory of the teacher.
    #[arg(long)]
    teacher: PathBuf,
    /// Labelling config (TOML).
    #[arg(long)]
    config: Option<PathBuf>,
    /// This process's share of the clips, K/N.
    #[arg(long)]
    shard: Option<String>,
}

pub fn run(_args: Args) -> CliResult {
    Err(CliError::NotBuilt {
        command: "label",
        issue: "issue 5, pseudo-labels with confidence filtering",
    })
}
