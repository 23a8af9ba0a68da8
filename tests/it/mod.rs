mod cli;
mod fixture;
mod hostile;
mod ingest;
mod label;
mod layouts;
mod readers;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed two-version fixture dataset.
pub fn tiny() -> PathBuf {
    repo().join("tests/fixtures/tiny")
}

/// Runs the built `spatialsv` binary with `args`, with `CI` set so no progress is drawn.
pub fn spatialsv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spatialsv"))
        .args(args)
        .env("CI", "true")
        .env_remove("SPATIALSV_LOG")
        .output()
        .expect("running spatialsv")
}

/// Stdout of a run, which must have succeeded.
pub fn ok(args: &[&str]) -> String {
    let out = spatialsv(args);
    assert!(
        out.status.success(),
        "spatialsv {args:?} failed with {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Exit code and stderr of a run, which must have failed.
pub fn fails(args: &[&str]) -> (i32, String) {
    let out = spatialsv(args);
    assert!(
        !out.status.success(),
        "spatialsv {args:?} unexpectedly succeeded"
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
