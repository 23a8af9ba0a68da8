//! `spatialsv serve` in a real browser: Chromium through Playwright (tests/serve_browser.py)
//! against a small labelled world, and the API's answers to mistakes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::{ok, repo};

/// Kills the server when the test ends, passed or not.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_browser_shows_frames_labels_points_and_answers_sql() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("world");
    let w = w.to_str().unwrap();
    ok(&[
        "synth",
        "--out",
        w,
        "--seed",
        "6",
        "--scenes",
        "2",
        "--videos",
        "2",
        "--frames",
        "8",
        "--resolution",
        "48x36",
    ]);
    let ds = dir.path().join("ds");
    let d = ds.to_str().unwrap();
    ok(&["ingest", "auto", w, "--dataset", d]);
    let cfg = dir.path().join("teacher.toml");
    std::fs::write(
        &cfg,
        "image_height = 16\nimage_width = 24\nsteps = 2\nwarmup_steps = 1\nbatch_size = 1\n",
    )
    .unwrap();
    let runs = dir.path().join("runs");
    let teacher = runs.join("teacher");
    ok(&[
        "train",
        "--dataset",
        d,
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        teacher.to_str().unwrap(),
    ]);
    let lax = dir.path().join("lax.toml");
    std::fs::write(&lax, "[acceptance]\nmin_kept_fraction = 0.0\n").unwrap();
    ok(&[
        "label",
        "--dataset",
        d,
        "--teacher",
        teacher.to_str().unwrap(),
        "--config",
        lax.to_str().unwrap(),
    ]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_spatialsv"))
        .args(["serve", "--dataset", d, "--port", "0", "--runs"])
        .arg(&runs)
        .env("CI", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting spatialsv serve");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();

    let py = Command::new("python3")
        .arg(repo().join("tests/serve_browser.py"))
        .args([
            url.as_str(),
            "SELECT split, count(*) AS frames FROM frames GROUP BY split ORDER BY split",
            "2",
        ])
        .output()
        .expect("running python3");
    let out = String::from_utf8_lossy(&py.stdout);
    assert!(
        py.status.success() && out.starts_with("ok "),
        "the browser test failed (needs: pip install playwright; apt-get install chromium):\n{out}\n{}",
        String::from_utf8_lossy(&py.stderr)
    );
    drop(server);
}
