//! The command line as a user meets it: help, exit codes, one-line errors, outputs.

use std::io::Write;
use std::process::{Command, Stdio};

use super::{fails, ok, spatialsv, tiny};

const COMMANDS: [&str; 12] = [
    "synth", "ingest", "sql", "log", "migrate", "train", "label", "eval", "export", "demo",
    "study", "serve",
];

#[test]
fn help_lists_every_command_each_with_an_example() {
    let help = ok(&["--help"]);
    for c in COMMANDS {
        assert!(
            help.contains(&format!("  {c} ")),
            "{c} missing from --help:\n{help}"
        );
        let sub = ok(&[c, "--help"]);
        assert!(
            sub.contains("Example"),
            "`{c} --help` has no example:\n{sub}"
        );
        assert!(
            sub.contains(&format!("spatialsv {c}")),
            "`{c} --help` example does not use {c}:\n{sub}"
        );
    }
}

#[test]
fn label_mistakes_are_one_line_with_exit_code_2() {
    let d = tiny();
    let d = d.to_str().unwrap();
    let missing = tempfile::tempdir().unwrap();
    let m = missing.path().to_str().unwrap();
    for (args, says) in [
        (
            vec!["label", "--dataset", d, "--teacher", m],
            "no checkpoint in run directory",
        ),
        (
            vec!["label", "--dataset", d, "--teacher", m, "--shard", "3/2"],
            "--shard '3/2' is not K/N",
        ),
        (
            vec![
                "eval",
                "--dataset",
                d,
                "--pseudo-labels",
                "--groundtruth",
                m,
                "--out",
                m,
            ],
            "the dataset has no pseudo-labels",
        ),
        (
            vec![
                "label",
                "import",
                "--from",
                m,
                "--dataset",
                d,
                "--teacher-name",
                "vggt",
            ],
            "no manifest.json (made by `spatialsv label export-clips`)",
        ),
        (
            vec!["label", "export-clips", "--dataset", d, "--out", m],
            "no clips of unlabeled frames (ingest video first)",
        ),
    ] {
        let (code, err) = fails(&args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn study_mistakes_are_one_line_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("study");
    let o = out.to_str().unwrap();
    for (args, says) in [
        (
            vec![
                "study",
                "spatialsv",
                "--rows",
                "text_only,text_3dd",
                "--out",
                o,
            ],
            "--rows: unknown row(s) text_3dd; the rows are text_only, text_3d,",
        ),
        (
            vec!["study", "spatialsv", "--batch", "0", "--out", o],
            "--batch: must be at least 1",
        ),
    ] {
        let (code, err) = fails(&args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(!out.exists(), "{args:?} wrote {o}");
    }
}

#[test]
fn log_lists_versions_newest_first() {
    let out = ok(&["log", "--dataset", tiny().to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("dataset ") && lines[0].ends_with("(3 versions)"),
        "{out}"
    );
    assert!(lines[1].starts_with("version"), "{out}");
    assert!(lines[2].starts_with("v2 "), "{out}");
    assert!(
        lines[2].contains("frames +8 (12 duplicates skipped)"),
        "{out}"
    );
    assert!(lines[2].ends_with("frames 20, scenes 5"), "{out}");
    assert!(
        lines[3].starts_with("v1 ") && lines[3].contains("frames +12"),
        "{out}"
    );
    assert!(
        lines[4].starts_with("v0 ") && lines[4].contains("create"),
        "{out}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "log",
        "--dataset",
        tiny().to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
}

#[test]
fn sql_prints_table_csv_and_json() {
    let d = tiny();
    let d = d.to_str().unwrap();
    let q = "SELECT split, count(*) AS frames FROM frames GROUP BY split ORDER BY split";
    let table = ok(&["sql", "--dataset", d, q]);
    assert!(table.contains("| split | frames |"), "{table}");
    assert!(table.contains("| train | 12     |"), "{table}");
    assert_eq!(
        ok(&["sql", "--dataset", d, "--format", "csv", q]),
        "split,frames\ntest,4\ntrain,12\nval,4\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["sql", "--dataset", d, "--format", "json", q])).unwrap();
    assert_eq!(json[1]["split"], "train");
    assert_eq!(json[1]["frames"], 12);
    // Time travel to version 1.
    let v1 = ok(&[
        "sql",
        "--dataset",
        d,
        "--version",
        "1",
        "--format",
        "csv",
        "SELECT count(*) AS n FROM frames",
    ]);
    assert_eq!(v1, "n\n12\n");
}

#[test]
fn user_mistakes_exit_2_with_one_clear_line() {
    let d = tiny();
    let d = d.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["sql", "--dataset", "/no/such/dataset", "SELECT 1"],
            "error: no spatialsv dataset at /no/such/dataset",
        ),
        (
            vec!["log", "--dataset", "/no/such/dataset"],
            "error: no spatialsv dataset at /no/such/dataset",
        ),
        (
            vec!["sql", "--dataset", d, "SELECT * FROM framez"],
            "(tables: scenes, frames, clips",
        ),
        (
            vec!["sql", "--dataset", d, "SELECT colour FROM frames"],
            "No field named colour",
        ),
        (vec!["sql", "--dataset", d, "SELEKT 1"], "error: "),
        (
            vec!["sql", "--dataset", d, "--version", "7", "SELECT 1"],
            "has no version 7 (latest is 2)",
        ),
        (
            vec!["sql", "--dataset", d, "--format", "xml", "SELECT 1"],
            "invalid value 'xml'",
        ),
    ];
    for (args, needle) in cases {
        let (code, err) = fails(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{args:?}: {err}"
        );
        if args[0] != "sql" || !args.contains(&"--format") {
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        }
    }
}

#[test]
fn sql_without_a_query_reads_statements_from_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spatialsv"))
        .args([
            "sql",
            "--dataset",
            tiny().to_str().unwrap(),
            "--format",
            "csv",
        ])
        .env("CI", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT count(*) AS n\n  FROM scenes;\n\\d\nSELECT nope FROM frames;\nSELECT 2 AS two;\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with("n\n5\n"), "{stdout}");
    assert!(
        stdout.contains("pseudo_labels,"),
        "\\d lists tables: {stdout}"
    );
    assert!(
        stdout.ends_with("two\n2\n"),
        "statements after an error still run: {stdout}"
    );
    assert!(stderr.contains("No field named nope"), "{stderr}");
    // A failed statement makes the exit code say so.
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let _ = spatialsv;
}

#[test]
fn a_reader_that_stops_early_gets_no_panic() {
    // Like `spatialsv sql ... | head -1`: the reader closes the pipe after the first line.
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_spatialsv"))
        .args([
            "sql",
            "--dataset",
            tiny().to_str().unwrap(),
            "--format",
            "csv",
            "SELECT * FROM generate_series(1, 300000)",
        ])
        .env("CI", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
}
