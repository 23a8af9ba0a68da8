//! `spatialsv export-mllm`: questions and 3D targets for PyTorch MLLM trainers.

use super::Context;
use std::path::PathBuf;

use spatialsv_trainer::mllm::export::{ExportOptions, Format, conversation_file, export};

use super::{CliError, CliResult};

/// Export the dataset's spatial questions for the PyTorch multimodal trainers people already
/// use: LLaVA or LLaMA-Factory `sharegpt` conversations (one `<image>` tag per image; images
/// written as files under images/), each sample with `sample_kind` (`qa`, or `spatial_only`
/// for pseudo-labelled video clips without text, with --spatial-only) and `targets_3d`, the
/// path of a per-clip .safetensors file: depth, confidence, keep_mask, rays, points,
/// intrinsics and poses (units and frames in docs/mllm.md), plus the Hugging Face
/// tokenizer.json of the questions' words.
///
/// Example:
///   spatialsv export-mllm --dataset ds --out export/llava
///   spatialsv export-mllm --dataset ds --out export/sharegpt --format sharegpt --split train --spatial-only 4
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Dataset: a directory, or s3://bucket/prefix on S3-compatible object storage.
    #[arg(long)]
    dataset: PathBuf,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Conversation format: llava or sharegpt.
    #[arg(long, default_value = "llava")]
    format: String,
    /// Splits to export (comma-separated; all when omitted).
    #[arg(long, value_delimiter = ',')]
    split: Vec<String>,
    /// Size of the exported 3D targets, WIDTHxHEIGHT.
    #[arg(long, default_value = "160x120")]
    size: String,
    /// Also export pseudo-labelled video clips of this many views as text-free samples.
    #[arg(long)]
    spatial_only: Option<usize>,
    /// The labelling those come from: `latest`, a teacher-hash prefix or TEACHER:CONFIG.
    #[arg(long, default_value = "latest")]
    pseudo_labels: String,
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    let format = match args.format.as_str() {
        "llava" => Format::Llava,
        "sharegpt" => Format::Sharegpt,
        other => {
            return Err(CliError::User(format!(
                "--format {other}: expected llava or sharegpt"
            )));
        }
    };
    let bad_size = || {
        CliError::User(format!(
            "--size {}: expected WIDTHxHEIGHT, e.g. 160x120",
            args.size
        ))
    };
    let (w, h) = args.size.split_once('x').ok_or_else(bad_size)?;
    let size: (usize, usize) = (
        w.parse().map_err(|_| bad_size())?,
        h.parse().map_err(|_| bad_size())?,
    );
    if size.0 == 0 || size.1 == 0 || size.0 > 4096 || size.1 > 4096 {
        return Err(bad_size());
    }
    let splits = args
        .split
        .iter()
        .map(|s| {
            s.parse::<spatialsv_schemas::Split>()
                .map_err(|e| CliError::User(format!("--split: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ds = ctx.open(&args.dataset)?;
    let summary = export(
        &ds,
        &args.out,
        &ExportOptions {
            format,
            splits,
            size,
            spatial_only: args
                .spatial_only
                .map(|v| (v, args.pseudo_labels.parse().unwrap_or_default())),
        },
        &crate::progress::Bar::new(),
    )?;
    out!(
        "exported {} questions and {} text-free clips ({} images, {} target files) to {}, with tokenizer.json",
        summary.qa,
        summary.spatial_only,
        summary.images,
        summary.targets,
        conversation_file(&args.out, format).display()
    );
    Ok(())
}
