//! `spatialsv demo`: the whole method end to end on the synthetic world.

use std::path::PathBuf;

use super::{CliError, CliResult};

/// Run the whole pipeline on the embedded synthetic world: synth, ingest, train a teacher,
/// pseudo-label videos, train semi-supervised and supervised-only students, evaluate, report.
///
/// Example:
///   spatialsv demo --quick --seed 1 --out out/demo
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
#[allow(dead_code)] // read once the command lands
pub struct Args {
    /// A smaller run that finishes in minutes on a laptop-class CPU.
    #[arg(long)]
    quick: bool,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
}

pub fn run(_args: Args) -> CliResult {
    Err(CliError::NotBuilt {
        command: "demo",
        issue: "issue 5, the end-to-end demo",
    })
}
