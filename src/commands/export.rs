//! `spatialsv export`: 3D exports of what a model believes.

use super::Context;
use std::path::PathBuf;

use spatialsv_lab::jobs::Export;

use super::CliResult;

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
    checkpoint: PathBuf,
    /// Dataset: a directory, or s3://bucket/prefix on S3-compatible object storage.
    #[arg(long)]
    dataset: PathBuf,
    /// Scene to export (a labeled scene of the dataset).
    #[arg(long)]
    scene: String,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    let job = Export {
        checkpoint: args.checkpoint,
        dataset: args.dataset,
        scene: args.scene,
        out: args.out,
    };
    ctx.lab(|env| job.run(env))
}
