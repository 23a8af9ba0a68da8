//! `spatialsv label`: pseudo-label unlabeled video with a teacher.

use std::path::PathBuf;

use spatialsv_labeler::LabelConfig;
use spatialsv_labeler::job::{Shard, label, load_teachers};
use spatialsv_pipeline::Dataset;

use super::{CliError, CliResult, CommandLine, quote};

/// Run a trained teacher over every clip of unlabeled frames (video), recover cameras from
/// its ray maps, apply the confidence, multi-view geometric, pose-cycle and frame-acceptance
/// filters, and commit the `pseudo_labels` table (f16 depth, quantised confidence, keep mask,
/// cameras, per-filter pixel counts, verdict and provenance). Resumable: clips already
/// labelled by the same teacher and config are skipped. --shard K/N takes the clips whose id
/// hashes to K, so N processes (threads, Slurm array tasks, Kubernetes indexed jobs) share the
/// work; their commits do not collide.
///
/// Example:
///   spatialsv label --dataset ds --teacher runs/teacher --config configs/label.toml --shard 0/4
///   spatialsv label --dataset ds --teacher runs/t0 --teacher runs/t1 --config fused.toml
///   spatialsv sql --dataset ds "SELECT scene_id, avg(CAST(accepted AS INT)) AS accepted, sum(px_removed_geometric) AS geo FROM pseudo_labels GROUP BY scene_id"
#[derive(Debug, Clone, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Dataset directory.
    #[arg(long)]
    pub(crate) dataset: PathBuf,
    /// Run directory of the teacher (its newest checkpoint is used). Repeat it for an
    /// ensemble (same image size and clip length; needs [fusion] enabled): every member
    /// runs every pass and all passes are fused.
    #[arg(long, required = true)]
    pub(crate) teacher: Vec<PathBuf>,
    /// Labelling config (TOML; keys of configs/label.toml). Defaults when omitted.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// This process's share of the clips, K/N (0 <= K < N).
    #[arg(long, default_value = "0/1", allow_hyphen_values = true)]
    pub(crate) shard: String,
}

impl CommandLine for Args {
    fn command_line(&self) -> String {
        let mut line = format!("spatialsv label --dataset {}", quote(&self.dataset));
        for t in &self.teacher {
            line.push_str(&format!(" --teacher {}", quote(t)));
        }
        if let Some(c) = &self.config {
            line.push_str(&format!(" --config {}", quote(c)));
        }
        if self.shard != "0/1" {
            line.push_str(&format!(" --shard {}", self.shard));
        }
        line
    }
}

pub fn run(args: Args) -> CliResult {
    let shard: Shard = args.shard.parse().map_err(CliError::User)?;
    let config: LabelConfig = match &args.config {
        Some(p) => spatialsv_pipeline::load_toml(p)?,
        None => LabelConfig::default(),
    };
    let ds = Dataset::open(&args.dataset)?;
    let teacher = load_teachers(&args.teacher)?;
    let t = std::time::Instant::now();
    let bar = spatialsv_pipeline::bar(0, "frames");
    let report = label(&ds, &teacher, &config, shard, |p| {
        bar.set_length(p.frames_total as u64);
        bar.set_position(p.frames_done as u64);
        let rate = p.frames_done as f64 / t.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("{rate:.1} frames/s"));
    });
    bar.finish_and_clear();
    let r = report?;
    let secs = t.elapsed().as_secs_f64();
    out!(
        "teacher {} config {}: shard {}/{} holds {} of {} clips; {} already labelled, {} labelled now",
        &r.teacher_hash[..12],
        &r.config_hash[..12],
        shard.index,
        shard.count,
        r.clips_in_shard,
        r.clips_total,
        r.clips_skipped,
        r.clips_labeled
    );
    out!(
        "{} frames labelled in {secs:.1}s ({:.1} frames/s), {} accepted ({:.0}%); versions {:?}",
        r.frames_labeled,
        r.frames_labeled as f64 / secs.max(1e-9),
        r.frames_accepted,
        100.0 * r.frames_accepted as f64 / r.frames_labeled.max(1) as f64,
        r.versions
    );
    Ok(())
}
