mod cli;
mod fixture;
mod hostile;
mod ingest;
mod label;
mod layouts;
mod qa;
mod readers;
mod s3;
mod serve;

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

/// The built `spatialsv` binary with `args`, with `CI` set so no progress is drawn, for a
/// test to add its environment to.
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spatialsv"));
    c.args(args).env("CI", "true").env_remove("SPATIALSV_LOG");
    c
}

/// Runs the built `spatialsv` binary with `args` (see [`command`]).
pub fn spatialsv(args: &[&str]) -> Output {
    command(args).output().expect("running spatialsv")
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

/// Copies a directory tree (files and directories only).
pub fn copy_dir(src: &std::path::Path, dst: &std::path::Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// A fresh directory under cargo's target tmp dir for a fixture that several tests of this
/// process share (built once, read by many; tests that change it work on a copy).
pub fn shared_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("it-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
