//! `spatialsv migrate`: upgrades a dataset to this build's table schema version.

use super::Context;
use std::path::PathBuf;

use super::CliResult;

/// Upgrade a dataset written by an older spatialsv to this build's table schema version.
///
/// Rewrites only the tables whose layout changed (schema 1 -> 2: `pseudo_labels`, whose
/// columns were renamed after what they hold) and publishes the result as a new version; the
/// other tables keep their files. Safe to interrupt and to rerun: a crash leaves the dataset
/// at its last version, and a current dataset is left as it is.
///
/// Example:
///   spatialsv migrate --dataset ds
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Dataset: a directory, or s3://bucket/prefix on S3-compatible object storage.
    #[arg(long)]
    dataset: PathBuf,
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    let ds = ctx.open(&args.dataset)?;
    let out = ds.migrate()?;
    if out.rewritten.is_empty() {
        out!(
            "dataset {} is readable at schema version {} (it is at {}); nothing to migrate",
            ds.location(),
            out.to,
            out.from
        );
    } else {
        let tables: Vec<String> = out
            .rewritten
            .iter()
            .map(|(t, n)| format!("{t} ({n} rows)"))
            .collect();
        out!(
            "migrated dataset {} from schema version {} to {}: rewrote {}; now version v{}",
            ds.location(),
            out.from,
            out.to,
            tables.join(", "),
            out.version
        );
    }
    Ok(())
}
