//! `spatialsv bench`: the model's throughput on this machine's backend.

use super::Context;
use std::path::PathBuf;

use spatialsv_trainer::Preset;
use spatialsv_trainer::bench::{BenchOptions, run as run_bench};

use super::CliResult;

/// Measure the model's throughput on this machine's backend (the CPU, or the GPU in a build
/// with `--features cuda`): inference and training clips/s on random inputs, the achieved
/// GFLOP/s against the model's counted FLOPs, and a plain f32 matrix product through the same
/// backend in the same process, so the achieved fraction of the machine's matmul peak is
/// comparable between machines. docs/performance.md has the figures measured so far.
///
/// Example:
///   spatialsv bench
///   spatialsv bench --preset small --batch 8 --matmul 4096 --json bench.json
///   spatialsv bench --mllm --batch 8 --frames 4
#[derive(Debug, Clone, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Model preset: tiny (CPU), small or base (GPU).
    #[arg(long, default_value = "tiny")]
    preset: Preset,
    /// Clips per batch.
    #[arg(long, default_value_t = 2)]
    batch: usize,
    /// Frames per clip.
    #[arg(long, default_value_t = 3)]
    frames: usize,
    /// Timed iterations of inference and of training (after one warm-up each).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Side of the square f32 matrix product measured as the peak (0 skips it).
    #[arg(long, default_value_t = 1024)]
    matmul: usize,
    /// Measure the small multimodal model instead (questions answered and trained per
    /// second; --batch samples of --frames views).
    #[arg(long)]
    mllm: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(args: Args, _ctx: &Context) -> CliResult {
    if args.mllm {
        let r = spatialsv_trainer::mllm::bench::run(args.batch, args.frames, args.steps);
        for line in r.lines() {
            out!("{line}");
        }
        if let Some(path) = &args.json {
            let text = serde_json::to_string_pretty(&r).map_err(anyhow::Error::new)?;
            std::fs::write(path, text + "\n").map_err(|e| {
                anyhow::Error::new(e).context(format!("writing {}", path.display()))
            })?;
        }
        return Ok(());
    }
    let report = run_bench(&BenchOptions {
        preset: args.preset,
        batch: args.batch,
        frames: args.frames,
        steps: args.steps,
        matmul: args.matmul,
    });
    for line in report.lines() {
        out!("{line}");
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(anyhow::Error::new)?;
        std::fs::write(path, text + "\n")
            .map_err(|e| anyhow::Error::new(e).context(format!("writing {}", path.display())))?;
    }
    Ok(())
}
