//! One file per subcommand. Each defines its clap `Args` (doc comments with an example become
//! `--help`) and a `run` function.

/// Writes one line to standard output; a closed stdout becomes [`CliError::ClosedStdout`].
pub fn write_stdout(line: std::fmt::Arguments<'_>) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(stdout_error)
}

/// An error writing to stdout: a closed pipe is the reader's choice, anything else is ours.
pub fn stdout_error(e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        CliError::ClosedStdout
    } else {
        CliError::Other(anyhow::Error::new(e).context("writing to standard output"))
    }
}

/// One line on standard output for the libraries' jobs; a closed stdout is
/// [`spatialsv_lab::LabError::Closed`].
fn say(line: &str) -> spatialsv_lab::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").map_err(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            spatialsv_lab::LabError::Closed
        } else {
            spatialsv_lab::LabError::output("writing", "standard output")(e)
        }
    })
}

/// `println!` for commands: a line on stdout, returning early with
/// [`CliError::ClosedStdout`] when the reader has gone.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::commands::write_stdout(format_args!($($arg)*))?
    };
}

mod ask;
mod bench;
mod demo;
mod eval;
mod export;
mod export_mllm;
mod ingest;
mod label;
mod log;
mod migrate;
mod qa;
mod serve;
mod sql;
mod study;
mod synth;
mod teacher;
mod train;

use clap::{Parser, Subcommand};

/// spatialsv: datasets, pseudo-labels and training for 3D spatial supervision of multimodal
/// models.
///
/// Ingest 3D scans and raw video into a versioned Parquet dataset, query it with SQL, train a
/// teacher on labeled scans, pseudo-label unlabeled video with confidence filters, and train a
/// student semi-supervised.
#[derive(Debug, Parser)]
#[command(name = "spatialsv", version)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug). SPATIALSV_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// An object-store option for `s3://` datasets, as KEY=VALUE (repeatable): endpoint,
    /// region, access_key_id, secret_access_key, session_token, allow_http,
    /// virtual_hosted_style_request, ... (the `object_store` S3 keys; see docs/store.md).
    /// Applied on top of the standard AWS_* environment variables. Values are never printed.
    #[arg(long = "storage-option", value_name = "KEY=VALUE", global = true, value_parser = parse_storage_option)]
    pub storage_options: Vec<(String, String)>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Synth(synth::Args),
    Ingest(ingest::Args),
    Sql(sql::Args),
    Worker(sql::WorkerArgs),
    Log(log::Args),
    Migrate(migrate::Args),
    Qa(qa::Args),
    Train(train::Args),
    Label(label::Args),
    Teacher(teacher::Args),
    Eval(eval::Args),
    Ask(ask::Args),
    Export(export::Args),
    ExportMllm(export_mllm::Args),
    Demo(demo::Args),
    Study(study::Args),
    Bench(bench::Args),
    Serve(serve::Args),
}

/// An error of the command line, with the exit code it maps to.
#[derive(Debug)]
pub enum CliError {
    /// The user asked for something wrong: exit code 2.
    User(String),
    /// Anything else (I/O, corrupt data, a bug): exit code 1.
    Other(anyhow::Error),
    /// Standard output was closed by its reader (`spatialsv sql ... | head`): the command
    /// stops there and exits with success, like other Unix tools.
    ClosedStdout,
}

impl CliError {
    /// Exit code and the single line to print.
    pub fn describe(&self) -> (u8, String) {
        match self {
            CliError::User(m) => (2, m.clone()),
            CliError::Other(e) => (1, format!("{e:#}").replace('\n', " ")),
            CliError::ClosedStdout => (0, String::new()),
        }
    }
}

/// Errors of the libraries, each knowing whether the user caused it (exit code 2).
macro_rules! user_or_other {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for CliError {
            fn from(e: $error) -> Self {
                if e.is_user_error() {
                    CliError::User(e.to_string())
                } else {
                    CliError::Other(e.into())
                }
            }
        }
    )*};
}

user_or_other!(
    spatialsv_store::Error,
    spatialsv_trainer::TrainError,
    spatialsv_labeler::LabelError,
);

impl From<spatialsv_lab::LabError> for CliError {
    fn from(e: spatialsv_lab::LabError) -> Self {
        match e {
            spatialsv_lab::LabError::Closed => CliError::ClosedStdout,
            e if e.is_user_error() => CliError::User(e.to_string()),
            e => CliError::Other(e.into()),
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::Other(e)
    }
}

pub type CliResult = Result<(), CliError>;

/// Writes `value` as pretty JSON to `dir/name`, creating `dir`; returns the path.
pub fn write_json(
    dir: &std::path::Path,
    name: &str,
    value: &impl serde::Serialize,
) -> Result<std::path::PathBuf, CliError> {
    Ok(spatialsv_lab::write_json(dir, name, value)?)
}

/// `KEY=VALUE` of `--storage-option` (the value may contain `=`; it is never echoed back).
fn parse_storage_option(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err("expected KEY=VALUE (e.g. endpoint=http://127.0.0.1:8333)".to_string()),
    }
}

/// What every command takes from the global flags: the object-store options of
/// `--storage-option`, given to each dataset it opens (the libraries keep no process-wide
/// settings).
#[derive(Debug, Default)]
pub struct Context {
    /// `--storage-option KEY=VALUE` pairs.
    pub storage: spatialsv_store::StorageOptions,
}

impl Context {
    /// Opens the dataset at `path` (a directory or `s3://...`) with this command's options.
    pub fn open(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<spatialsv_store::Dataset, spatialsv_store::Error> {
        spatialsv_store::Dataset::open_with(path, &self.storage)
    }

    /// Runs `f` with a [`spatialsv_lab::Env`] of this command: its storage options, lines on
    /// standard output, warnings on standard error, progress drawn as a bar.
    pub fn lab<T>(
        &self,
        f: impl FnOnce(&spatialsv_lab::Env) -> spatialsv_lab::Result<T>,
    ) -> Result<T, CliError> {
        let bar = crate::progress::Bar::new();
        let env = spatialsv_lab::Env::new(&self.storage, &bar, &say, &|w| eprintln!("{w}"));
        Ok(f(&env)?)
    }

    /// Opens the dataset at `path`, creating an empty one if there is none.
    pub fn open_or_create(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<spatialsv_store::Dataset, spatialsv_store::Error> {
        spatialsv_store::Dataset::open_or_create_with(path, &self.storage)
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> CliResult {
    let ctx = &Context {
        storage: spatialsv_store::StorageOptions::new(cli.storage_options),
    };
    match cli.command {
        Command::Synth(a) => synth::run(a, ctx),
        Command::Ingest(a) => ingest::run(a, ctx),
        Command::Sql(a) => sql::run(a, ctx),
        Command::Worker(a) => sql::run_worker(a, ctx),
        Command::Log(a) => log::run(a, ctx),
        Command::Migrate(a) => migrate::run(a, ctx),
        Command::Qa(a) => qa::run(a, ctx),
        Command::Train(a) => train::run(a, ctx),
        Command::Label(a) => label::run(a, ctx),
        Command::Teacher(a) => teacher::run(a, ctx),
        Command::Serve(a) => serve::run(a, ctx),
        Command::Eval(a) => eval::run(a, ctx),
        Command::Ask(a) => ask::run(a, ctx),
        Command::Export(a) => export::run(a, ctx),
        Command::ExportMllm(a) => export_mllm::run(a, ctx),
        Command::Demo(a) => demo::run(a, ctx),
        Command::Study(a) => study::run(a, ctx),
        Command::Bench(a) => bench::run(a, ctx),
    }
}
