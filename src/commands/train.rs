//! `spatialsv train`: train the SpatialSV model.

use super::Context;
use std::path::PathBuf;

use spatialsv_lab::jobs::Train;

use super::CliResult;

/// Train the SpatialSV model (depth, ray-map and point-map heads over a ViT encoder and an
/// alternating-attention trunk) on the labeled scans of a dataset's train split. Writes the
/// resolved config, atomic checkpoints and per-step metrics (a dataset: query it with
/// `spatialsv sql --dataset RUN_DIR`) into --out; --resume continues a run exactly.
/// CPU (burn flex) by default; built with `--features cuda`, on the GPU.
///
/// A config with `kind = "mllm"` (configs/mllm.toml) trains the small multimodal model
/// instead: text loss on the dataset's spatial questions (`spatialsv qa`) plus the 3D losses of
/// its taps (docs/mllm.md).
///
/// Example:
///   spatialsv train --dataset ds --config configs/train.toml --out runs/teacher
///   spatialsv train --dataset ds --config configs/mllm.toml --out runs/mllm
///   spatialsv sql --dataset runs/teacher "SELECT step, value FROM metrics WHERE name = 'loss/total' ORDER BY step"
#[derive(Debug, Clone, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Dataset: a directory, or s3://bucket/prefix on S3-compatible object storage.
    #[arg(long)]
    dataset: PathBuf,
    /// Training config (TOML; keys of configs/train.toml). Defaults when omitted.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run directory for checkpoints, config and metrics.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    let job = Train {
        dataset: args.dataset,
        config: args.config,
        out: args.out,
        resume: args.resume,
    };
    ctx.lab(|env| job.run(env))
}
