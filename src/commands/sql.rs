//! `spatialsv sql`: query a dataset with SQL (DataFusion).

use super::Context;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use spatialsv_sql::{OutputFormat, SqlSession, render};

use super::{CliError, CliResult};

/// Query a dataset with SQL. Every table of the chosen version (frames, scenes, clips,
/// quarantine, pseudo_labels, runs, metrics) is registered from its manifest, with the 3D
/// functions rotation_angle_deg(pose_a, pose_b), viewing_angle_deg(pose_a, pose_b),
/// camera_distance_m(pose_a, pose_b), valid_depth_ratio(depth) and byte_length(blob).
/// Binary columns print as `<N bytes>`. Without a query, reads statements from stdin (an
/// interactive prompt on a terminal; end each with `;`, `\d` lists tables, `\q` quits).
///
/// Examples:
///   spatialsv sql --dataset ds "SELECT split, count(*) FROM frames GROUP BY split"
///   spatialsv sql --dataset ds --format csv "SELECT scene_id, frame_idx,
///       rotation_angle_deg(world_from_camera,
///         LAG(world_from_camera) OVER (PARTITION BY scene_id ORDER BY frame_idx)) AS turn_deg
///       FROM frames"
///   spatialsv sql --dataset ds --version 1 --format json "SELECT * FROM scenes"
///
/// Distributed (datafusion-distributed): start `spatialsv worker --listen HOST:PORT` on
/// each machine (with the same AWS_* / --storage-option access to the dataset), then
///   spatialsv sql --dataset s3://bucket/ds --workers h1:8500,h2:8500,h3:8500 "SELECT ..."
/// runs the file scans and partial aggregations on the workers (docs/scale.md).
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Dataset: a directory, or s3://bucket/prefix on S3-compatible object storage.
    #[arg(long)]
    dataset: PathBuf,
    /// Dataset version to query (default: the latest).
    #[arg(long)]
    version: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Run queries across these `spatialsv worker` processes (host:port or URLs,
    /// comma-separated) instead of in this process alone.
    #[arg(long, value_delimiter = ',')]
    workers: Vec<String>,
    /// With --workers: bytes of Parquet per scan task (smaller spreads a scan over more
    /// tasks and workers; by default small scans stay in one task).
    #[arg(long, requires = "workers")]
    bytes_per_task: Option<usize>,
    /// Print the physical plan the query would run (with --workers: its stages and tasks)
    /// instead of running it.
    #[arg(long, requires = "query")]
    plan: bool,
    /// The SQL statement; omit it for an interactive prompt.
    query: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

impl From<Format> for OutputFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Table => OutputFormat::Table,
            Format::Csv => OutputFormat::Csv,
            Format::Json => OutputFormat::Json,
        }
    }
}

fn run_one(session: &SqlSession, sql: &str, format: OutputFormat) -> Result<(), CliError> {
    let result = session.query(sql)?;
    let text = render(&result, format)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(super::stdout_error)
}

fn describe_tables(session: &SqlSession, format: OutputFormat) -> Result<(), CliError> {
    run_one(
        session,
        "SELECT table_name, count(*) AS columns FROM information_schema.columns \
         WHERE table_schema = 'public' GROUP BY table_name ORDER BY table_name",
        format,
    )
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    let ds = ctx.open(&args.dataset)?;
    let cluster = spatialsv_sql::distributed::Cluster {
        workers: spatialsv_sql::distributed::parse_workers(&args.workers)?,
        bytes_per_task: args.bytes_per_task,
    };
    let session = SqlSession::open_on(&ds, args.version, &cluster)?;
    let format = OutputFormat::from(args.format);
    if let Some(q) = &args.query {
        if args.plan {
            let text = session.plan(q)?;
            let mut out = std::io::stdout().lock();
            return out
                .write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(super::stdout_error);
        }
        return run_one(&session, q, format);
    }
    interactive(&session, format)
}

/// Reads `;`-terminated statements from stdin; errors are printed and the loop goes on.
/// Piped input returns an error at the end if any statement failed (so scripts notice).
fn interactive(session: &SqlSession, format: OutputFormat) -> CliResult {
    let tty = std::io::stdin().is_terminal();
    if tty {
        eprintln!(
            "spatialsv sql: dataset version {}. End statements with ';'. \\d lists tables, \\q quits.",
            session.version()
        );
    }
    let prompt = |continuation: bool| {
        if tty {
            eprint!(
                "{}",
                if continuation {
                    "      ...> "
                } else {
                    "spatialsv> "
                }
            );
            let _ = std::io::stderr().flush();
        }
    };
    let mut failed = 0usize;
    let mut buf = String::new();
    prompt(false);
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| CliError::User(format!("reading stdin: {e}")))?;
        let trimmed = line.trim();
        if buf.is_empty() {
            match trimmed {
                "\\q" | "quit" | "exit" => return finish(failed, tty),
                "\\d" => {
                    if let Err(e) = describe_tables(session, format) {
                        failed += 1;
                        eprintln!("error: {}", e.describe().1);
                    }
                    prompt(false);
                    continue;
                }
                "" => {
                    prompt(false);
                    continue;
                }
                _ => {}
            }
        }
        buf.push_str(&line);
        buf.push('\n');
        if trimmed.ends_with(';') {
            let stmt = buf.trim().trim_end_matches(';').to_string();
            buf.clear();
            if let Err(e) = run_one(session, &stmt, format) {
                failed += 1;
                eprintln!("error: {}", e.describe().1);
            }
        }
        prompt(!buf.is_empty());
    }
    let rest = buf.trim().trim_end_matches(';');
    if !rest.is_empty()
        && let Err(e) = run_one(session, rest, format)
    {
        failed += 1;
        eprintln!("error: {}", e.describe().1);
    }
    if tty {
        eprintln!();
    }
    finish(failed, tty)
}

/// A script (stdin not a terminal) that had a failing statement exits with an error, so
/// callers notice; a person at the prompt has already seen each error.
fn finish(failed: usize, tty: bool) -> CliResult {
    if failed > 0 && !tty {
        Err(CliError::User(format!("{failed} statement(s) failed")))
    } else {
        Ok(())
    }
}

/// Serve SQL plan fragments to `spatialsv sql --workers ...` coordinators
/// (datafusion-distributed over Arrow Flight). A worker holds no dataset: it reads the files
/// a coordinator's plan names, from local paths or object storage (with its own AWS_*
/// environment and --storage-option), and knows the 3D functions. Runs until stopped.
///
/// Example:
///   spatialsv worker --listen 0.0.0.0:8500
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct WorkerArgs {
    /// Address to listen on (port 0 picks a free port; the line printed at start says which).
    #[arg(long, default_value = "127.0.0.1:8500")]
    listen: std::net::SocketAddr,
}

pub fn run_worker(args: WorkerArgs, ctx: &Context) -> CliResult {
    spatialsv_sql::distributed::serve_worker(args.listen, &ctx.storage)?;
    Ok(())
}
