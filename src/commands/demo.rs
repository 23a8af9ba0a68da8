//! `spatialsv demo`: the whole method end to end on the synthetic world.
//!
//! The protocol is `spatialsv_lab::demo`'s; this file parses its arguments.

use std::path::PathBuf;

use spatialsv_lab::demo::{Demo, WorldSize, run as run_demo};

use super::{CliResult, Context};

/// Run the whole method on the embedded synthetic world, with no download: synth (4 labeled
/// scan rooms, 24 short unlabeled videos of other rooms, and two held-out test sets: A, 6 scan
/// rooms; B, 6 video rooms decoded from H.264 with their true depth and poses) -> ingest ->
/// train a teacher on the labeled scans -> pseudo-label the videos twice, one teacher pass
/// per frame and fused from many passes (configs/label.toml [fusion]) -> fine-tune, with the
/// same steps, schedule and start, a semi-supervised student (labeled + accepted fused
/// pseudo-labels, 1:2) and three supervised-only controls (the student's batch size; the
/// student's labeled clips alone; the student's batch size with its strong perturbations) ->
/// evaluate them all on test sets A and B -> score both labellings against the hidden ground
/// truth (the go/no-go) -> spatial questions (`qa`) and the small multimodal model's
/// semi-supervised rows (quick: three at 150 steps; full: the whole table), scored by
/// `eval --qa` -> write OUT/report.md and a self-contained OUT/report.html beside PLY
/// point clouds. Reruns skip finished steps. --quick takes about 10 minutes on a 2-core CPU
/// (release build); the full run about 25. The multi-seed comparison is `spatialsv study`.
///
/// Example (from a checkout: cargo run --release -- demo ...):
///   spatialsv demo --quick --seed 1 --out out/demo
///   spatialsv demo --label-config my-label.toml --out out/demo-strict
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The short budget (under 10 minutes on a 2-core CPU, release build).
    #[arg(long)]
    quick: bool,
    /// Seed of the initialisations and the sampling (and of the world, unless --world-seed).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seed of the synthetic world (default: --seed); `study` holds it fixed across seeds.
    #[arg(long)]
    world_seed: Option<u64>,
    /// Output directory.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    /// Labelling config (keys of configs/label.toml); the defaults when omitted.
    #[arg(long)]
    label_config: Option<PathBuf>,
    /// Model preset of every run: tiny (CPU), or small / base at 224x224 (GPU builds; far too
    /// slow on a CPU).
    #[arg(long, default_value = "tiny")]
    preset: spatialsv_trainer::Preset,
    /// Training steps of every model, overriding the budget (smoke tests).
    #[arg(long, hide = true)]
    steps: Option<usize>,
    /// World size as scenes,videos,frames,WIDTHxHEIGHT[,test_scenes,test_videos,video_frames],
    /// overriding the default (smoke tests).
    #[arg(long, hide = true)]
    world: Option<WorldSize>,
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    let demo = Demo {
        quick: args.quick,
        seed: args.seed,
        world_seed: args.world_seed,
        out: args.out,
        label_config: args.label_config,
        preset: args.preset,
        steps: args.steps,
        world: args.world,
    };
    ctx.lab(|env| run_demo(&demo, env).map(|_| ()))
}
