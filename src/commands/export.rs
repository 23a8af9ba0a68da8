//! `spatialsv export`: 3D exports of what a model believes.

use super::Context;
use std::path::PathBuf;

use spatialsv_trainer::export::export_scene;

use super::{CliResult, CommandLine, quote};

/// Write what the model believes for one labeled scene: predicted and true point clouds as
/// coloured binary PLY (pred.ply, gt.ply; MeshLab, CloudCompare, Open3D), per-frame PNGs of
/// image | true depth | predicted depth | confidence (frames/), and camera trajectories in the
/// TUM format (trajectory_gt.txt, trajectory_pred.txt). Predictions are Sim(3)-aligned to the
/// truth per clip, so what differs is the model's error, not its unknown scale.
///
/// Example:
///   spatialsv export --checkpoint runs/teacher --dataset ds --scene synth_scan_004 --out export/
#[derive(Debug, Clone, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Run directory of the checkpoint (its newest checkpoint is used).
    #[arg(long)]
    pub(crate) checkpoint: PathBuf,
    /// Dataset: a directory, or s3://bucket/prefix on S3-compatible object storage.
    #[arg(long)]
    pub(crate) dataset: PathBuf,
    /// Scene to export (a labeled scene of the dataset).
    #[arg(long)]
    pub(crate) scene: String,
    /// Output directory.
    #[arg(long)]
    pub(crate) out: PathBuf,
}

impl CommandLine for Args {
    fn command_line(&self) -> String {
        format!(
            "spatialsv export --checkpoint {} --dataset {} --scene {} --out {}",
            quote(&self.checkpoint),
            quote(&self.dataset),
            quote(&self.scene),
            quote(&self.out)
        )
    }
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    let ds = ctx.open(&args.dataset)?;
    let s = export_scene(&ds, &args.checkpoint, &args.scene, &args.out)?;
    out!("{}", s.line(&args.scene, &args.out));
    Ok(())
}
