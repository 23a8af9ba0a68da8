//! `spatialsv`: the command-line entry point. Thin glue: parse arguments, call a library
//! function, print the result; errors print once, on one line, with an exit code that says
//! whose fault they are (2: the user's input; 1: anything else).

mod commands;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use crate::commands::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match commands::run(cli) {
        Ok(()) | Err(commands::CliError::ClosedStdout) => ExitCode::SUCCESS,
        Err(e) => {
            let (code, msg) = e.describe();
            eprintln!("error: {msg}");
            ExitCode::from(code)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SPATIALSV_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
