//! `spatialsv label`: pseudo-label unlabeled video with a teacher.

use super::Context;
use std::path::PathBuf;

use spatialsv_lab::jobs::{Label, quote};
use spatialsv_labeler::LabelConfig;
use spatialsv_labeler::external::{export_clips, import};
use spatialsv_labeler::job::Shard;

use super::{CliError, CliResult};

/// Run a trained teacher over every clip of unlabeled frames (video), recover cameras from
/// its ray maps, apply the confidence, multi-view geometric, pose-cycle and frame-acceptance
/// filters, and commit the `pseudo_labels` table (f16 depth, quantised confidence, keep mask,
/// cameras, per-filter pixel counts, verdict and provenance). Resumable: clips already
/// labelled by the same teacher and config are skipped. --shard K/N takes the clips whose id
/// hashes to K, so N processes (threads, Slurm array tasks, Kubernetes indexed jobs) share the
/// work; their commits do not collide.
///
/// A teacher run elsewhere (VGGT, Depth Anything 3): `label export-clips` writes the clips,
/// the model writes one .npz per clip, `label import` brings them in through the same
/// filters (docs/labeling.md, "Bring your own teacher").
///
/// Example:
///   spatialsv label --dataset ds --teacher runs/teacher --config configs/label.toml --shard 0/4
///   spatialsv label --dataset ds --teacher runs/t0 --teacher runs/t1 --config fused.toml
///   spatialsv label --dataset ds --teacher DA3-SMALL/
///   spatialsv label export-clips --dataset ds --out clips/
///   python3 scripts/teacher_vggt.py clips/ && spatialsv label import --from clips/ --dataset ds --teacher-name vggt
///   spatialsv sql --dataset ds "SELECT scene_id, avg(CAST(accepted AS INT)) AS accepted, sum(px_removed_geometric) AS geo FROM pseudo_labels GROUP BY scene_id"
#[derive(Debug, Clone, clap::Args)]
#[command(
    verbatim_doc_comment,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Args {
    /// An external teacher's side of labelling instead.
    #[command(subcommand)]
    external: Option<External>,
    /// Dataset: a directory, or s3://bucket/prefix on S3-compatible object storage.
    #[arg(long, required = true)]
    dataset: Option<PathBuf>,
    /// Run directory of the teacher (its newest checkpoint is used), or a Depth Anything 3
    /// checkpoint folder (config.json + model.safetensors; docs/da3.md). Repeat it for an
    /// ensemble (same image size and clip length; needs [fusion] enabled): every member
    /// runs every pass and all passes are fused.
    #[arg(long, required = true)]
    teacher: Vec<PathBuf>,
    /// Labelling config (TOML; keys of configs/label.toml). Defaults when omitted.
    #[arg(long)]
    config: Option<PathBuf>,
    /// This process's share of the clips: K/N (0 <= K < N); `slurm` for a Slurm array task
    /// (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT); `k8s/N` for a
    /// Kubernetes Indexed Job of N completions (JOB_COMPLETION_INDEX).
    #[arg(long, default_value = "0/1", allow_hyphen_values = true)]
    shard: String,
    /// With a Depth Anything 3 teacher: its processing resolution (the longest side; the
    /// label grid is that size). Default: the reference's 504.
    #[arg(long)]
    process_res: Option<u32>,
}

/// `label export-clips` and `label import`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum External {
    /// Write the clips of unlabeled frames as image folders plus `manifest.json` (clip id,
    /// scene, frame ids, files, stored sizes, where the teacher's .npz goes), for a model run
    /// outside spatialsv. A rerun keeps the images already written.
    ///
    /// Example:
    ///   spatialsv label export-clips --dataset ds --out clips/ --shard 0/4
    #[command(verbatim_doc_comment)]
    ExportClips {
        /// Dataset: a directory, or s3://bucket/prefix on S3-compatible object storage.
        #[arg(long)]
        dataset: PathBuf,
        /// Export directory.
        #[arg(long)]
        out: PathBuf,
        /// This process's share of the clips: K/N, `slurm` or `k8s/N` (as for `label`).
        #[arg(long, default_value = "0/1", allow_hyphen_values = true)]
        shard: String,
    },
    /// Import an external teacher's .npz files (one per exported clip: depth, depth_conf,
    /// extrinsic, intrinsic and the preprocessing applied; docs/labeling.md) as
    /// pseudo-labels: each file is validated (shapes, finite values, rigid extrinsics, the
    /// clip and its frames exist), mapped back to the stored image geometry, converted to
    /// camera-to-reference poses, filtered like `label` (the teacher's confidence, the
    /// multi-view geometric round trip, acceptance) and committed with its provenance. A bad
    /// file is reported with its name and skipped; a rerun imports only what is new.
    ///
    /// Example:
    ///   spatialsv label import --from clips/ --dataset ds --teacher-name vggt --config configs/label.toml
    #[command(verbatim_doc_comment)]
    Import {
        /// Export directory holding `manifest.json` and the teacher's `labels/*.npz`.
        #[arg(long)]
        from: PathBuf,
        /// Dataset: a directory, or s3://bucket/prefix on S3-compatible object storage.
        #[arg(long)]
        dataset: PathBuf,
        /// Name of the teacher (recorded with the labels).
        #[arg(long)]
        teacher_name: String,
        /// Labelling config (its confidence, geometric and acceptance filters apply).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    if let Some(e) = args.external {
        return run_external(e, ctx);
    }
    let Some(dataset) = args.dataset else {
        return Err(CliError::User("--dataset is required".into()));
    };
    let job = Label {
        dataset,
        teachers: args.teacher,
        config: args.config,
        shard: Shard::resolve(&args.shard, |k| std::env::var(k).ok())?,
        process_res: args.process_res,
    };
    ctx.lab(|env| job.run(env))
}

fn run_external(e: External, ctx: &Context) -> CliResult {
    match e {
        External::ExportClips {
            dataset,
            out,
            shard,
        } => {
            let shard = Shard::resolve(&shard, |k| std::env::var(k).ok())?;
            let ds = ctx.open(&dataset)?;
            let bar = crate::progress::bar(0, "frames");
            let r = export_clips(&ds, &out, shard, |p| {
                bar.set_length(p.frames_total as u64);
                bar.set_position(p.frames_done as u64);
            });
            bar.finish_and_clear();
            let r = r?;
            out!(
                "{} clips, {} frames ({} already there) exported; manifest {}",
                r.clips,
                r.frames,
                r.frames_existing,
                r.manifest.display()
            );
            out!(
                "next: run the teacher so it writes {}/labels/<clip>.npz (scripts/teacher_vggt.py), then `spatialsv label import --from {} --dataset {} --teacher-name NAME`",
                out.display(),
                quote(&out),
                quote(&dataset)
            );
            Ok(())
        }
        External::Import {
            from,
            dataset,
            teacher_name,
            config,
        } => {
            let config: LabelConfig = match &config {
                Some(p) => spatialsv_store::load_toml(p)?,
                None => LabelConfig::default(),
            };
            let ds = ctx.open(&dataset)?;
            let bar = crate::progress::bar(0, "frames");
            let r = import(&ds, &from, &teacher_name, &config, |p| {
                bar.set_length(p.frames_total as u64);
                bar.set_position(p.frames_done as u64);
            });
            bar.finish_and_clear();
            let r = r?;
            for line in r.lines(&teacher_name) {
                out!("{line}");
            }
            Ok(())
        }
    }
}
