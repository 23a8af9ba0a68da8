//! `spatialsv train`: train the SpatialSV model.

use super::Context;
use std::path::PathBuf;

use spatialsv_trainer::TrainConfig;
use spatialsv_trainer::mllm::MllmConfig;
use spatialsv_trainer::mllm::train::train_mllm;
use spatialsv_trainer::train::train;

use super::{CliError, CliResult, CommandLine, quote};

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
    pub(crate) dataset: PathBuf,
    /// Training config (TOML; keys of configs/train.toml). Defaults when omitted.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Run directory for checkpoints, config and metrics.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub(crate) resume: bool,
}

impl CommandLine for Args {
    fn command_line(&self) -> String {
        let mut line = format!("spatialsv train --dataset {}", quote(&self.dataset));
        if let Some(c) = &self.config {
            line.push_str(&format!(" --config {}", quote(c)));
        }
        line.push_str(&format!(" --out {}", quote(&self.out)));
        if self.resume {
            line.push_str(" --resume");
        }
        line
    }
}

/// Trains the multimodal model (a config with `kind = "mllm"`).
fn run_mllm(ctx: &Context, args: &Args, text: &str, path: &std::path::Path) -> CliResult {
    let config: MllmConfig = spatialsv_store::parse_toml(text, &path.display().to_string())?;
    let ds = ctx.open(&args.dataset)?;
    let bar = crate::progress::bar(config.steps as u64, "steps");
    let t = std::time::Instant::now();
    let mut last = None;
    let mut plan = None;
    let result = train_mllm(
        &ds,
        &config,
        &args.out,
        args.resume,
        |p| plan = Some(p.clone()),
        |r| {
            bar.set_position(r.step as u64);
            let rate =
                r.step as f64 * config.batch_size as f64 / t.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "loss {:.4} (text {:.4}), {rate:.1} samples/s",
                r.loss, r.text
            ));
            last = Some(r.clone());
        },
    );
    bar.finish_and_clear();
    result?;
    if let Some(p) = plan {
        out!(
            "multimodal run on {} training questions from {} rooms; {} text-free clips or groups",
            p.questions,
            p.qa_rooms,
            p.spatial_clips
        );
    }
    match last {
        Some(r) => out!(
            "trained to step {} in {:.1}s, last loss {:.4} (text {:.4}); checkpoints and metrics in {}",
            r.step,
            t.elapsed().as_secs_f64(),
            r.loss,
            r.text,
            args.out.display()
        ),
        None => out!(
            "nothing to do: the run in {} is already at step {}",
            args.out.display(),
            config.steps
        ),
    }
    Ok(())
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    if let Some(p) = &args.config {
        let text = std::fs::read_to_string(p).map_err(|e| {
            CliError::User(format!("cannot read the config ({e}): {}", p.display()))
        })?;
        if MllmConfig::is_mllm_toml(&text) {
            return run_mllm(ctx, &args, &text, p);
        }
    }
    let config: TrainConfig = match &args.config {
        Some(p) => spatialsv_store::load_toml(p)?,
        None => TrainConfig::default(),
    };
    let ds = ctx.open(&args.dataset)?;
    let bar = crate::progress::bar(config.steps as u64, "steps");
    let t = std::time::Instant::now();
    let clips_per_step = config.batch_size as f64;
    let mut last = None;
    let result = train(&ds, &config, &args.out, args.resume, |r| {
        bar.set_position(r.step as u64);
        let rate = r.step as f64 * clips_per_step / t.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("loss {:.4}, {rate:.1} clips/s", r.loss));
        last = Some(r.clone());
    });
    bar.finish_and_clear();
    let _model = result?;
    match last {
        Some(r) => out!(
            "trained to step {} in {:.1}s, last loss {:.4}; checkpoints and metrics in {}",
            r.step,
            t.elapsed().as_secs_f64(),
            r.loss,
            args.out.display()
        ),
        None => out!(
            "nothing to do: the run in {} is already at step {}",
            args.out.display(),
            config.steps
        ),
    }
    Ok(())
}
