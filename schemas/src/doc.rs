//! Text renderings of the schemas: a compact snapshot per table (reviewed in diffs) and the
//! Markdown reference `docs/schemas.md`. Both are generated, and tests fail when the files on
//! disk drift from the code.

use std::fmt::Write;

use arrow::datatypes::Field;

use crate::{CONVENTIONS, META_DESCRIPTION, META_DOC, META_UNIT, SCHEMA_VERSION, Table};

fn unit(f: &Field) -> &str {
    f.metadata()
        .get(META_UNIT)
        .map(String::as_str)
        .unwrap_or("")
}

fn doc(f: &Field) -> &str {
    f.metadata().get(META_DOC).map(String::as_str).unwrap_or("")
}

/// One line per column: name, type, nullability, unit. Used for the schema snapshot tests.
pub fn render_snapshot(table: Table) -> String {
    let schema = table.schema();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "table {} (schema version {SCHEMA_VERSION})",
        table.name()
    );
    let _ = writeln!(out, "key: {}", table.key_columns().join(", "));
    let _ = writeln!(
        out,
        "partitioned by: {}",
        table.partition_columns().join(", ")
    );
    let _ = writeln!(out, "sorted by: {}", table.sort_columns().join(", "));
    for f in schema.fields() {
        let null = if f.is_nullable() { "null" } else { "not null" };
        let u = match unit(f) {
            "" => String::new(),
            u => format!(" [{u}]"),
        };
        let _ = writeln!(out, "  {}: {} {null}{u}", f.name(), f.data_type());
    }
    out
}

/// The full Markdown reference of every table (the content of `docs/schemas.md`).
pub fn render_markdown() -> String {
    let mut out = String::new();
    out.push_str("# Table schemas\n\n");
    out.push_str(
        "Generated from the `schemas` crate (`spatialsv_schemas::render_markdown`); a test fails \
         when this file and the code disagree. Regenerate with\n\
         `SPATIALSV_BLESS=1 cargo test -p spatialsv-schemas`.\n\n",
    );
    let _ = writeln!(out, "Schema version: **{SCHEMA_VERSION}**.\n");
    let _ = writeln!(out, "Conventions: {CONVENTIONS}.\n");
    out.push_str(
        "Every table is stored as Parquet files listed in the dataset manifest; the key \
         columns identify a row (committing a row whose key is already present adds nothing), \
         the partition columns name the Hive directories (`split=train/`) and stay inside the \
         files too, and each file is sorted by the sort columns.\n",
    );
    for table in Table::ALL {
        let schema = table.schema();
        let _ = writeln!(out, "\n## `{}`\n", table.name());
        if let Some(d) = schema.metadata().get(META_DESCRIPTION) {
            let _ = writeln!(out, "{d}\n");
        }
        let _ = writeln!(out, "- key: `{}`", table.key_columns().join("`, `"));
        let parts = table.partition_columns();
        if parts.is_empty() {
            let _ = writeln!(out, "- partitioned by: (none)");
        } else {
            let _ = writeln!(out, "- partitioned by: `{}`", parts.join("`, `"));
        }
        let _ = writeln!(
            out,
            "- sorted by: `{}`\n",
            table.sort_columns().join("`, `")
        );
        out.push_str("| column | type | nullable | unit | meaning |\n");
        out.push_str("|---|---|---|---|---|\n");
        for f in schema.fields() {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} | {} | {} |",
                f.name(),
                f.data_type(),
                if f.is_nullable() { "yes" } else { "no" },
                unit(f),
                doc(f).replace('|', "\\|"),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// Compares `actual` with the file at `path`; with `SPATIALSV_BLESS=1` rewrites the file
    /// instead (a deliberate schema change is reviewed as a diff of these files).
    fn check_or_bless(path: PathBuf, actual: &str) {
        if std::env::var_os("SPATIALSV_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            expected == actual,
            "{} is out of date with the code; if the change is deliberate, rerun with \
             SPATIALSV_BLESS=1 and review the diff.\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }

    #[test]
    fn schema_snapshots() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("snapshots");
        for table in Table::ALL {
            check_or_bless(
                dir.join(format!("{}.txt", table.name())),
                &render_snapshot(table),
            );
        }
    }

    #[test]
    fn docs_schemas_md_matches_code() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas.md");
        check_or_bless(path, &render_markdown());
    }

    #[test]
    fn every_column_is_documented() {
        for table in Table::ALL {
            for f in table.schema().fields() {
                assert!(
                    !doc(f).is_empty(),
                    "{}.{} has no doc",
                    table.name(),
                    f.name()
                );
            }
        }
    }
}
