//! The Parquet files must be readable by independent readers with the documented column
//! names. Runs `tests/readers.py` (pyarrow, DuckDB, Polars; `.ci/run` installs them).

use std::process::Command;

use spatialsv_schemas::Table;

use super::{repo, tiny};

#[test]
fn pyarrow_duckdb_and_polars_read_the_fixture() {
    let mut args = vec![
        repo().join("tests/readers.py").display().to_string(),
        tiny().display().to_string(),
    ];
    for table in [Table::Frames, Table::Scenes] {
        let cols: Vec<String> = table
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        args.push(format!("{}={}", table.name(), cols.join(",")));
    }
    let out = Command::new("python3")
        .args(&args)
        .output()
        .expect("running python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "independent readers disagree (or are missing: pip install pyarrow duckdb polars):\n{stdout}\n{stderr}"
    );
    for reader in ["pyarrow", "duckdb", "polars"] {
        assert!(
            stdout.contains(&format!("{reader} frames: 20 rows, 28 columns ok")),
            "{stdout}"
        );
    }
}
