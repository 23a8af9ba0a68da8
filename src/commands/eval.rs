//! `spatialsv eval`: evaluate a checkpoint.

use std::path::PathBuf;

use spatialsv_pipeline::Dataset;
use spatialsv_schemas::Split;
use spatialsv_trainer::eval::{EvalReport, Scores, evaluate};

use super::{CliError, CliResult};

/// Evaluate a checkpoint on held-out scenes: depth AbsRel / delta1 / RMSE (median-scaled and
/// least-squares scale-and-shift), camera RRA@15, RTA@15 and AUC@30 over frame pairs (cameras
/// recovered from the predicted ray maps), point-map Chamfer after Umeyama Sim(3) alignment;
/// overall and per scene, beside two trivial baselines (the training median depth everywhere;
/// identity motion). Prints a table and writes DIR/eval.json.
///
/// Example:
///   spatialsv eval --dataset ds --checkpoint runs/teacher --split test --out eval/teacher
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Dataset directory.
    #[arg(long)]
    dataset: PathBuf,
    /// Run directory of the checkpoint (its newest checkpoint is used).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Split to evaluate on.
    #[arg(long, default_value = "test")]
    split: String,
    /// Output directory for eval.json.
    #[arg(long)]
    out: PathBuf,
}

fn row(name: &str, s: &Scores) -> String {
    format!(
        "{name:<20} {:>5} {:>8.4} {:>7.3} {:>7.4} {:>8.4} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>8.4} | {:>8.4} {:>7.3}",
        s.clips,
        s.abs_rel,
        s.delta1,
        s.rmse,
        s.abs_rel_lsq,
        s.rra15,
        s.rta15,
        s.auc30,
        s.accuracy,
        s.chamfer,
        s.baseline_abs_rel,
        s.baseline_auc30
    )
}

fn print(r: &EvalReport) {
    println!(
        "{:<20} {:>5} {:>8} {:>7} {:>7} {:>8} {:>7} {:>7} {:>7} {:>7} {:>8} | {:>8} {:>7}",
        "scene",
        "clips",
        "AbsRel",
        "d1",
        "RMSE",
        "AbsRel*",
        "RRA15",
        "RTA15",
        "AUC30",
        "acc",
        "chamfer",
        "base_AR",
        "base_AUC"
    );
    for (scene, s) in &r.scenes {
        println!("{}", row(scene, s));
    }
    println!("{}", row("overall", &r.overall));
    println!(
        "AbsRel/d1/RMSE median-scaled; AbsRel* least-squares scale and shift; acc and chamfer in metres after Sim(3); base_*: trivial baselines"
    );
}

pub fn run(args: Args) -> CliResult {
    let split: Split = args
        .split
        .parse()
        .map_err(|e| CliError::User(format!("--split: {e}")))?;
    let ds = Dataset::open(&args.dataset)?;
    let report = evaluate(&ds, &args.checkpoint, split)?;
    print(&report);
    std::fs::create_dir_all(&args.out).map_err(|e| {
        CliError::User(format!(
            "cannot create output directory ({e}): {}",
            args.out.display()
        ))
    })?;
    let path = args.out.join("eval.json");
    let json = serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?;
    std::fs::write(&path, json)
        .map_err(|e| CliError::User(format!("cannot write ({e}): {}", path.display())))?;
    println!("wrote {}", path.display());
    Ok(())
}
