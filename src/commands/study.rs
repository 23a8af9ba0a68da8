//! `spatialsv study`: an experiment repeated over training seeds, with paired differences
//! and intervals. The protocols are `spatialsv_lab::semi`'s and `spatialsv_lab::spatialsv`'s;
//! this file parses their arguments.

use std::path::PathBuf;

use spatialsv_lab::semi::SemiStudy;
use spatialsv_lab::spatialsv::SpatialsvStudy;

use super::{CliError, CliResult, Context};

/// Repeat an experiment over training seeds on one fixed world and report paired
/// differences. `semi`: the demo's semi-supervised protocol (teacher, single-pass and fused
/// labels, the student and three supervised-only controls) once per seed into OUT/seed-N;
/// then, per test set (A: scan rooms, B: video rooms) and metric, each arm's mean and spread
/// over seeds, and the paired difference student - arm per seed with its mean and a 95%
/// t-interval. With --ablations, the student is also trained without one stage at a time and
/// compared the same way. Writes OUT/study.md and OUT/study.json. Reruns skip finished steps (each seed
/// is a resumable demo). A quick seed takes about 10 minutes on a 2-core CPU.
///
/// Example:
///   spatialsv study semi --seeds 0,1,2 --quick --out out/study
///   spatialsv study semi --seeds 0,1,2 --quick --ablations --out out/study
#[derive(Debug, Clone, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Which study: `semi` (pseudo-labels and the semi-supervised student).
    kind: Kind,
    /// Training seeds, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    /// Seed of the world every run shares.
    #[arg(long, default_value_t = 0)]
    world_seed: u64,
    /// The demo's short budget.
    #[arg(long)]
    quick: bool,
    /// Output directory.
    #[arg(long, default_value = "out/study")]
    out: PathBuf,
    /// `spatialsv` only: use at most this many training questions per run (0 = all).
    #[arg(long, default_value_t = 0)]
    max_questions: usize,
    /// `spatialsv` only: instead of the study, the QA set size pilot: text only and text +
    /// 3D on the first seed at each of these question caps.
    #[arg(long, value_delimiter = ',')]
    pilot: Vec<usize>,
    /// `spatialsv` only: every row of the full table, at the --quick budget.
    #[arg(long)]
    all_rows: bool,
    /// Steps of every run (and, for `spatialsv`, of its 3D teacher), overriding the budget:
    /// e.g. a longer `spatialsv` study on a GPU. Use a new --out for a new budget (finished
    /// runs of another budget would be continued, not restarted).
    #[arg(long)]
    steps: Option<usize>,
    /// `spatialsv` only: samples per step of every multimodal run (default 8).
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// `spatialsv` only: run only these rows (names as in docs/mllm.md, comma-separated;
    /// default: the budget's rows). Pairs are compared where both rows ran.
    #[arg(long, value_delimiter = ',')]
    rows: Vec<String>,
    /// Also train, per seed, the student without one of its stages, each compared with the
    /// student like the controls: `ablation_single_pass` (the single-pass labels instead of
    /// the fused ones), `ablation_no_noise` (no strong perturbation of its pseudo clips) and
    /// `ablation_fewer_videos` (the labels of 6 of the unlabeled videos only).
    #[arg(long)]
    ablations: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Kind {
    /// The semi-supervised protocol of `demo`.
    Semi,
    /// The SpatialSV regime: the small multimodal model with text and 3D losses, its controls
    /// and the semi-supervised rows (the paper's tables in miniature; docs/mllm.md).
    Spatialsv,
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    if args.seeds.is_empty() {
        return Err(CliError::User("--seeds: give at least one seed".into()));
    }
    match args.kind {
        Kind::Semi => {
            let study = SemiStudy {
                seeds: args.seeds,
                world_seed: args.world_seed,
                quick: args.quick,
                out: args.out,
                ablations: args.ablations,
            };
            ctx.lab(|env| spatialsv_lab::semi::run(&study, env).map(|_| ()))
        }
        Kind::Spatialsv => {
            let study = SpatialsvStudy {
                seeds: args.seeds,
                quick: args.quick,
                all_rows: args.all_rows || !args.quick,
                rows: args.rows,
                out: args.out,
                max_questions: args.max_questions,
                steps: args.steps,
                batch: args.batch,
                pilot: args.pilot,
            };
            ctx.lab(|env| spatialsv_lab::spatialsv::run(&study, env))
        }
    }
}
