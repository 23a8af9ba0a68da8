//! `spatialsv qa`: spatial questions from a dataset's 3D data.

use super::Context;
use std::path::PathBuf;

use spatialsv_lab::jobs::Qa;
use spatialsv_qa::{Family, QaOptions};

use super::{CliError, CliResult};

/// Generate spatial questions and answers from a dataset's geometry into its `qa` table.
///
/// Every labeled scene is cut into clips of --views frames spread over the whole scene; for
/// each clip and question family, answers are computed from the true poses, depth and
/// annotated objects (never by a model), cases too close to ambiguous are dropped, and
/// --per-clip questions are drawn with --seed. Fixed-option families are then balanced so
/// no answer is more common than the median answer. Families: camera_motion, camera_turn,
/// camera_distance (poses only: they run on real scans too), point_closer, point_depth (depth
/// only), object_closer, object_distance, relative_direction, object_count,
/// appearance_order, view_taking (annotated objects: the `objects` and `object_views` tables).
/// A dataset without objects gets the families that need none, and the summary says so.
/// Rerunning with the same options adds nothing (rows are keyed). Details: docs/qa.md.
///
/// Example:
///   spatialsv qa --dataset ds
///   spatialsv qa --dataset ds --per-clip 8 --families camera_motion,object_closer --seed 1
///   spatialsv sql --dataset ds "SELECT family, count(*) FROM qa GROUP BY family"
#[derive(Debug, Clone, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Dataset: a directory, or s3://bucket/prefix on S3-compatible object storage.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Questions per clip and family (at most).
    #[arg(long, default_value_t = 4)]
    pub per_clip: usize,
    /// Comma-separated families (all when omitted).
    #[arg(long, value_delimiter = ',')]
    pub families: Vec<String>,
    /// Seed of every draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Views shown with each question.
    #[arg(long, default_value_t = 4)]
    pub views: usize,
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    let families = args
        .families
        .iter()
        .map(|f| f.trim().parse::<Family>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::User)?;
    let job = Qa {
        dataset: args.dataset,
        options: QaOptions {
            per_clip: args.per_clip,
            families,
            seed: args.seed,
            views: args.views,
            ..QaOptions::default()
        },
    };
    ctx.lab(|env| job.run(env))
}
