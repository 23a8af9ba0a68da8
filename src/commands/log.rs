//! `spatialsv log`: the version history of a dataset.

use super::Context;
use std::path::PathBuf;

use spatialsv_store::Manifest;

use super::CliResult;

/// List the versions of a dataset: when each was committed, by what, what it added (rows,
/// duplicates skipped) and the table sizes after it.
///
/// Example:
///   spatialsv log --dataset tests/fixtures/tiny
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Dataset: a directory, or s3://bucket/prefix on S3-compatible object storage.
    #[arg(long)]
    dataset: PathBuf,
    /// Print the raw manifests as a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

fn added_summary(m: &Manifest) -> String {
    let parts: Vec<String> = m
        .added
        .iter()
        .map(|(t, s)| {
            if s.duplicates > 0 {
                format!(
                    "{t} +{} ({} duplicate{} skipped)",
                    s.rows,
                    s.duplicates,
                    if s.duplicates == 1 { "" } else { "s" }
                )
            } else {
                format!("{t} +{}", s.rows)
            }
        })
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

fn totals(m: &Manifest) -> String {
    let parts: Vec<String> = m
        .tables
        .iter()
        .map(|(t, f)| format!("{t} {}", f.rows()))
        .collect();
    if parts.is_empty() {
        "(empty)".into()
    } else {
        parts.join(", ")
    }
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    let ds = ctx.open(&args.dataset)?;
    let history = ds.history()?;
    if args.json {
        let json = serde_json::to_string_pretty(&history).map_err(anyhow::Error::from)?;
        out!("{json}");
        return Ok(());
    }
    out!("dataset {} ({} versions)", ds.location(), history.len());
    let rows: Vec<[String; 5]> = history
        .iter()
        .rev()
        .map(|m| {
            [
                format!("v{}", m.version),
                m.created_at.clone(),
                m.operation.clone(),
                added_summary(m),
                totals(m),
            ]
        })
        .collect();
    let header = [
        "version",
        "committed (UTC)",
        "operation",
        "added",
        "rows after",
    ];
    let mut width = header.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            if i == 4 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    out!("{}", line(header));
    for r in &rows {
        out!("{}", line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    // The row counts above come from the manifests: say so when the files behind the newest
    // version are not all there.
    if let Some(latest) = history.last() {
        ds.check_files(latest)?;
    }
    Ok(())
}
