//! SQL over a dataset version with DataFusion.
//!
//! Every table of the chosen version is registered from its manifest's file list (never by
//! listing directories, which could show files of an unfinished commit), with the canonical
//! schema; tables without files are registered empty, so every table name always resolves.
//! Filter pushdown into the Parquet scan is on: a query that filters on metadata reads the
//! `image` and `depth` blobs only for rows that pass.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use spatialsv_schemas::Table;

use crate::udf;
use spatialsv_store::Dataset;
use spatialsv_store::manifest::Manifest;
use spatialsv_store::{Error, Result};

/// How query results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// A JSON array of row objects.
    Json,
}

/// A query's result.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// Result schema (also for empty results).
    pub schema: SchemaRef,
    /// Result rows.
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// A DataFusion session over one version of a dataset.
pub struct SqlSession {
    ctx: SessionContext,
    runtime: tokio::runtime::Runtime,
    manifest: Manifest,
    location: String,
}

impl std::fmt::Debug for SqlSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSession")
            .field("dataset", &self.location)
            .field("version", &self.manifest.version)
            .finish_non_exhaustive()
    }
}

/// Turns a DataFusion error into one line the user can act on.
fn sql_error(e: DataFusionError, tables: &[&str]) -> Error {
    let msg = e.strip_backtrace().replace('\n', " ");
    let msg = msg.trim().to_string();
    if msg.contains("not found") && msg.to_lowercase().contains("table") {
        return Error::User(format!("{msg} (tables: {})", tables.join(", ")));
    }
    match e.find_root() {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => Error::User(msg),
        DataFusionError::ArrowError(..) | DataFusionError::Execution(_) => {
            Error::User(format!("query failed: {msg}"))
        }
        _ => Error::Internal(msg),
    }
}

/// The session is read-only: queries only. No DDL (`CREATE TABLE`, `DROP TABLE`), no DML
/// (`INSERT`, `COPY ... TO` a file), no `SET`: a dataset changes only through commits.
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// The refusal of a statement that would write, as one line that says so.
fn read_only_error(e: DataFusionError, sql: &str) -> std::result::Result<Error, DataFusionError> {
    let msg = e.strip_backtrace();
    let refused = [
        "DDL not supported",
        "DML not supported",
        "Statement not supported",
    ];
    if refused.iter().any(|r| msg.contains(r)) {
        let verb = sql
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase();
        return Ok(Error::User(format!(
            "SQL sessions are read-only: '{verb} ...' is refused (queries only: SELECT, WITH, \
             EXPLAIN, SHOW, DESCRIBE; datasets change only through spatialsv commits)"
        )));
    }
    Err(e)
}

impl SqlSession {
    /// Opens a session over `version` of `ds` (the latest when `None`).
    pub fn open(ds: &Dataset, version: Option<u64>) -> Result<Self> {
        Self::open_on(ds, version, &crate::distributed::Cluster::default())
    }

    /// Opens a session whose queries run across a cluster of `spatialsv worker` processes
    /// (see [`crate::distributed`]); a cluster without workers means a local session.
    pub fn open_on(
        ds: &Dataset,
        version: Option<u64>,
        cluster: &crate::distributed::Cluster,
    ) -> Result<Self> {
        let version = match version {
            Some(v) => v,
            None => ds.latest_version()?,
        };
        let manifest = ds.manifest(version)?;
        // A listed file that is gone would otherwise read as an empty table.
        ds.check_files(&manifest)?;
        let mut config = SessionConfig::new().with_information_schema(true);
        {
            let opts = config.options_mut();
            opts.execution.parquet.pushdown_filters = true;
            opts.execution.parquet.reorder_filters = true;
            // No file-level statistics at planning time: DataFusion 55 takes a file's sort
            // order from its first row group's `sorting_columns`, but our files are sorted
            // within each row group only, so a file of several row groups would be claimed
            // sorted when it is not (and a distributed shuffle then merges "sorted" streams
            // that are not: wrong ORDER BY results, seen in tests/it/s3.rs). Row-group and
            // page pruning read the footers at scan time and are unaffected.
            opts.execution.collect_statistics = false;
        }
        let ctx = if cluster.workers.is_empty() {
            SessionContext::new_with_config(config)
        } else {
            SessionContext::new_with_state(crate::distributed::coordinator_state(config, cluster)?)
        };
        // Object storage: the query engine reads the same objects through a client of its
        // own (its connections live on this session's runtime).
        if let Some((base, store)) = ds.storage().sql_object_store()? {
            let url = datafusion::execution::object_store::ObjectStoreUrl::parse(&base)
                .map_err(|e| Error::Internal(format!("object-store URL {base}: {e}")))?;
            ctx.register_object_store(url.as_ref(), store);
        }
        udf::register(&ctx);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("starting the query runtime: {e}")))?;
        let session = Self {
            ctx,
            runtime,
            manifest,
            location: ds.location(),
        };
        session.register_tables(ds)?;
        Ok(session)
    }

    fn register_tables(&self, ds: &Dataset) -> Result<()> {
        let root = ds.storage().root_url();
        for table in Table::ALL {
            let schema = table.schema();
            let files = self
                .manifest
                .tables
                .get(table.name())
                .map(|t| t.files.as_slice())
                .unwrap_or(&[]);
            let provider: Arc<dyn datafusion::catalog::TableProvider> = if files.is_empty() {
                // An empty table scans as an EmptyExec, which distributed plans can encode.
                Arc::new(datafusion::catalog::empty::EmptyTable::new(schema))
            } else {
                let urls = files
                    .iter()
                    .map(|f| {
                        ListingTableUrl::parse(format!("{root}{}", f.path.replace('%', "%25")))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| Error::Internal(format!("file URL: {e}")))?;
                let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                    .with_file_extension(".parquet");
                let config = ListingTableConfig::new_with_multi_paths(urls)
                    .with_listing_options(options)
                    .with_schema(schema);
                Arc::new(ListingTable::try_new(config).map_err(|e| Error::Internal(e.to_string()))?)
            };
            self.ctx
                .register_table(table.name(), provider)
                .map_err(|e| Error::Internal(e.to_string()))?;
        }
        Ok(())
    }

    /// The version being queried.
    pub fn version(&self) -> u64 {
        self.manifest.version
    }

    /// The DataFusion context, for callers that want to build plans themselves.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The physical plan `sql` would run, as text: with workers, its stages and the tasks of
    /// each (datafusion-distributed's rendering), else DataFusion's indented plan.
    pub fn plan(&self, sql: &str) -> Result<String> {
        self.runtime.block_on(async {
            let df = self.dataframe(sql).await?;
            let plan = df.create_physical_plan().await.map_err(table_error)?;
            Ok(datafusion_distributed::display_plan_ascii(
                plan.as_ref(),
                false,
            ))
        })
    }

    /// Runs one SQL statement and collects its result.
    pub fn query(&self, sql: &str) -> Result<QueryResult> {
        self.runtime.block_on(async {
            let df = self.dataframe(sql).await?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let batches = df.collect().await.map_err(table_error)?;
            Ok(QueryResult { schema, batches })
        })
    }

    /// Plans `sql` under the read-only options, with our errors.
    async fn dataframe(&self, sql: &str) -> Result<datafusion::dataframe::DataFrame> {
        self.ctx
            .sql_with_options(sql, read_only())
            .await
            .map_err(|e| read_only_error(e, sql).unwrap_or_else(table_error))
    }
}

/// A DataFusion error as ours, with the table names for "no such table" hints.
fn table_error(e: DataFusionError) -> Error {
    let tables: Vec<&str> = Table::ALL.iter().map(|t| t.name()).collect();
    sql_error(e, &tables)
}

/// Replaces binary columns by `<N bytes>` (blobs are unreadable in a terminal and huge in
/// text formats), and for CSV renders nested columns (lists, structs) as text.
fn printable(batch: &RecordBatch, flatten_nested: bool) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    let opts = FormatOptions::default().with_null("");
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        let summary = |len: Option<usize>| len.map(|n| format!("<{n} bytes>"));
        let replaced: Option<StringArray> = match col.data_type() {
            DataType::Binary => Some(
                col.as_binary::<i32>()
                    .iter()
                    .map(|v| summary(v.map(<[u8]>::len)))
                    .collect(),
            ),
            DataType::LargeBinary => Some(
                col.as_binary::<i64>()
                    .iter()
                    .map(|v| summary(v.map(<[u8]>::len)))
                    .collect(),
            ),
            DataType::BinaryView => Some(
                col.as_binary_view()
                    .iter()
                    .map(|v| summary(v.map(<[u8]>::len)))
                    .collect(),
            ),
            DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
            | DataType::Struct(_)
            | DataType::Map(..)
                if flatten_nested =>
            {
                let f = ArrayFormatter::try_new(col.as_ref(), &opts)?;
                Some(
                    (0..col.len())
                        .map(|i| (!col.is_null(i)).then(|| f.value(i).to_string()))
                        .collect(),
                )
            }
            _ => None,
        };
        match replaced {
            Some(s) => {
                fields.push(Field::new(field.name(), DataType::Utf8, true));
                cols.push(Arc::new(s));
            }
            None => {
                fields.push(field.as_ref().clone());
                cols.push(col.clone());
            }
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// Renders a result in `format`.
pub fn render(result: &QueryResult, format: OutputFormat) -> Result<String> {
    let batches: Vec<RecordBatch> = result
        .batches
        .iter()
        .map(|b| printable(b, format == OutputFormat::Csv))
        .collect::<Result<_>>()?;
    match format {
        OutputFormat::Table => {
            if batches.is_empty() {
                // Still show the header of an empty result.
                let empty = RecordBatch::new_empty(result.schema.clone());
                let empty = printable(&empty, false)?;
                return Ok(format!(
                    "{}\n(0 rows)\n",
                    arrow::util::pretty::pretty_format_batches(&[empty])?
                ));
            }
            let n: usize = batches.iter().map(RecordBatch::num_rows).sum();
            let table = arrow::util::pretty::pretty_format_batches(&batches)?;
            Ok(format!(
                "{table}\n({n} row{})\n",
                if n == 1 { "" } else { "s" }
            ))
        }
        OutputFormat::Csv => {
            let mut out = Vec::new();
            {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut out);
                if batches.is_empty() {
                    let empty = printable(&RecordBatch::new_empty(result.schema.clone()), true)?;
                    w.write(&empty)?;
                }
                for b in &batches {
                    w.write(b)?;
                }
            }
            String::from_utf8(out).map_err(|e| Error::Internal(e.to_string()))
        }
        OutputFormat::Json => {
            let mut out = Vec::new();
            {
                let mut w = arrow::json::ArrayWriter::new(&mut out);
                for b in &batches {
                    w.write(b)?;
                }
                w.finish()?;
            }
            let mut s = String::from_utf8(out).map_err(|e| Error::Internal(e.to_string()))?;
            if s.is_empty() {
                s.push_str("[]");
            }
            s.push('\n');
            Ok(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::Float64Array;
    use arrow::datatypes::Int64Type;

    use super::*;
    use spatialsv_store::datagen::build_fixture;

    fn session() -> (tempfile::TempDir, SqlSession) {
        let dir = tempfile::tempdir().unwrap();
        let ds = build_fixture(&dir.path().join("ds")).unwrap();
        let s = SqlSession::open(&ds, None).unwrap();
        (dir, s)
    }

    fn one_i64(s: &SqlSession, sql: &str) -> i64 {
        let r = s.query(sql).unwrap();
        r.batches[0].column(0).as_primitive::<Int64Type>().value(0)
    }

    fn f64s(s: &SqlSession, sql: &str) -> Vec<Option<f64>> {
        let r = s.query(sql).unwrap();
        r.batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .unwrap()
                    .iter()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn files_sorted_only_within_row_groups_still_sort_and_group_right() {
        // Scenes appended last-first in one commit, one row group per scene: each row group
        // is sorted (and says so in its metadata), the file is not. Planning must not take
        // the file for sorted (DataFusion infers file order from the first row group).
        let dir = tempfile::tempdir().unwrap();
        let ds = Dataset::create(dir.path().join("ds")).unwrap();
        let (_, mut frames) =
            spatialsv_store::datagen::generate(&spatialsv_store::datagen::GenSpec {
                scenes: 3,
                frames_per_scene: 4,
                ..Default::default()
            })
            .unwrap();
        frames.sort_by(|a, b| b.scene_id.cmp(&a.scene_id));
        let options = spatialsv_store::WriteOptions {
            row_group_rows: 4,
            ..Default::default()
        };
        let mut tx = ds.begin_with("test", options).unwrap();
        for scene in frames.chunks(4) {
            tx.append(
                Table::Frames,
                spatialsv_store::rows::frames_batch(scene).unwrap(),
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let s = SqlSession::open(&ds, None).unwrap();
        let text = |sql: &str| render(&s.query(sql).unwrap(), OutputFormat::Csv).unwrap();
        let ids: Vec<String> = text("SELECT scene_id FROM frames ORDER BY scene_id, frame_idx")
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        let groups =
            text("SELECT scene_id, count(*) AS n FROM frames GROUP BY scene_id ORDER BY scene_id");
        assert_eq!(groups.lines().count(), 4, "{groups}");
        assert!(
            groups.lines().skip(1).all(|l| l.ends_with(",4")),
            "{groups}"
        );
    }

    #[test]
    fn every_table_is_registered_even_when_empty() {
        let (_d, s) = session();
        assert_eq!(one_i64(&s, "SELECT count(*) FROM frames"), 20);
        assert_eq!(one_i64(&s, "SELECT count(*) FROM scenes"), 5);
        for t in Table::ALL {
            s.query(&format!("SELECT * FROM {}", t.name())).unwrap();
        }
        assert_eq!(one_i64(&s, "SELECT count(*) FROM quarantine"), 0);
    }

    #[test]
    fn statements_that_write_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ds = build_fixture(&dir.path().join("ds")).unwrap();
        let s = SqlSession::open(&ds, None).unwrap();
        let out = dir.path().join("leak.csv");
        for sql in [
            "CREATE TABLE t AS SELECT * FROM scenes".to_string(),
            "DROP TABLE frames".to_string(),
            "INSERT INTO scenes SELECT * FROM scenes".to_string(),
            format!("COPY (SELECT 1) TO '{}'", out.display()),
            "SET datafusion.execution.batch_size = 1".to_string(),
        ] {
            let err = s.query(&sql).unwrap_err();
            assert!(err.is_user_error(), "{sql}: {err}");
            assert!(
                err.to_string().starts_with("SQL sessions are read-only"),
                "{sql}: {err}"
            );
        }
        assert!(!out.exists(), "COPY wrote a file");
        assert_eq!(one_i64(&s, "SELECT count(*) FROM frames"), 20);
    }

    #[test]
    fn a_pose_of_the_wrong_length_is_an_error_not_null() {
        let (_d, s) = session();
        let fifteen = vec!["0.0"; 15].join(", ");
        let err = s
            .query(&format!(
                "SELECT rotation_angle_deg(make_array({fifteen}), world_from_camera) FROM frames"
            ))
            .unwrap_err();
        assert!(err.is_user_error(), "{err}");
        assert!(err.to_string().contains("this one has 15"), "{err}");
        let seventeen = vec!["0.0"; 17].join(", ");
        assert!(
            s.query(&format!(
                "SELECT camera_distance_m(world_from_camera, make_array({seventeen})) FROM frames"
            ))
            .unwrap_err()
            .to_string()
            .contains("this one has 17")
        );
    }

    #[test]
    fn a_missing_or_truncated_data_file_fails_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let ds = build_fixture(&dir.path().join("ds")).unwrap();
        let m = ds.latest().unwrap();
        let f = &m.tables["frames"].files[0];
        let path = dir.path().join("ds").join(&f.path);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = SqlSession::open(&ds, None).unwrap_err().to_string();
        assert!(
            err.contains("manifest recorded") && err.ends_with(&f.path),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
        let err = SqlSession::open(&ds, None).unwrap_err().to_string();
        assert!(
            err.contains("is missing") && err.ends_with(&f.path),
            "{err}"
        );
        // The store's own readers refuse it too, instead of returning fewer rows.
        let err = ds
            .read_table(&m, Table::Frames, None)
            .unwrap_err()
            .to_string();
        assert!(err.ends_with(&f.path), "{err}");
    }

    #[test]
    fn old_versions_stay_queryable() {
        let dir = tempfile::tempdir().unwrap();
        let ds = build_fixture(&dir.path().join("ds")).unwrap();
        let v1 = SqlSession::open(&ds, Some(1)).unwrap();
        assert_eq!(one_i64(&v1, "SELECT count(*) FROM frames"), 12);
        let err = SqlSession::open(&ds, Some(9)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("dataset {} has no version 9 (latest is 2)", ds.location())
        );
    }

    #[test]
    fn splits_come_from_scenes_and_filters_prune() {
        let (_d, s) = session();
        let r = s
            .query("SELECT split, count(*) AS n FROM frames GROUP BY split ORDER BY split")
            .unwrap();
        let text = render(&r, OutputFormat::Csv).unwrap();
        assert_eq!(text, "split,n\ntest,4\ntrain,12\nval,4\n");
        assert_eq!(
            one_i64(
                &s,
                "SELECT count(*) FROM frames WHERE scene_id = 'gen0001' AND frame_idx >= 2"
            ),
            2
        );
    }

    #[test]
    fn pose_udfs_over_consecutive_frames() {
        let (_d, s) = session();
        // datagen yaws each frame 5 degrees more and moves 0.1 m along x.
        let turns = f64s(
            &s,
            "SELECT rotation_angle_deg(world_from_camera, LAG(world_from_camera) OVER (PARTITION BY scene_id ORDER BY frame_idx)) \
             FROM frames WHERE scene_id = 'gen0000' ORDER BY frame_idx",
        );
        assert_eq!(turns.len(), 4);
        assert_eq!(turns[0], None);
        for t in &turns[1..] {
            assert!((t.unwrap() - 5.0).abs() < 1e-9, "{t:?}");
        }
        let views = f64s(
            &s,
            "SELECT viewing_angle_deg(a.world_from_camera, b.world_from_camera) FROM frames a JOIN frames b \
             ON a.scene_id = b.scene_id AND b.frame_idx = a.frame_idx + 2 WHERE a.scene_id = 'gen0000' ORDER BY a.frame_idx",
        );
        assert_eq!(views.len(), 2);
        assert!(
            views.iter().all(|v| (v.unwrap() - 10.0).abs() < 1e-9),
            "{views:?}"
        );
        let dist = f64s(
            &s,
            "SELECT camera_distance_m(a.world_from_camera, b.world_from_camera) FROM frames a JOIN frames b \
             ON a.scene_id = b.scene_id AND b.frame_idx = a.frame_idx + 3 WHERE a.scene_id = 'gen0002'",
        );
        assert_eq!(dist.len(), 1);
        assert!((dist[0].unwrap() - 0.3).abs() < 1e-9, "{dist:?}");
    }

    #[test]
    fn valid_depth_ratio_udf_matches_the_generator() {
        let (_d, s) = session();
        // datagen leaves ~10% holes.
        let ratios = f64s(&s, "SELECT valid_depth_ratio(depth) FROM frames");
        assert_eq!(ratios.len(), 20);
        let mean: f64 = ratios.iter().map(|r| r.unwrap()).sum::<f64>() / 20.0;
        assert!((0.8..0.97).contains(&mean), "{mean}");
        // A NULL depth (video) gives NULL, not an error.
        assert_eq!(f64s(&s, "SELECT valid_depth_ratio(NULL)"), vec![None]);
        // byte_length gives the size of the blob the generator made.
        let (_, rows) =
            spatialsv_store::datagen::generate(&spatialsv_store::datagen::GenSpec::default())
                .unwrap();
        let want = rows[0].depth.as_ref().unwrap().png16.len() as i64;
        let got = one_i64(
            &s,
            "SELECT byte_length(depth) FROM frames WHERE scene_id = 'gen0000' AND frame_idx = 0",
        );
        assert_eq!(got, want);
        assert_eq!(
            f64s(&s, "SELECT CAST(byte_length(NULL) AS DOUBLE)"),
            vec![None]
        );
    }

    #[test]
    fn user_mistakes_are_one_line_user_errors() {
        let (_d, s) = session();
        for (sql, needle) in [
            ("SELECT * FROM framez", "tables: scenes, frames"),
            ("SELECT no_such_column FROM frames", "no_such_column"),
            ("SELEC 1", "SELEC"),
            (
                "SELECT rotation_angle_deg(frame_idx, frame_idx) FROM frames",
                "takes two 4x4 poses",
            ),
        ] {
            let err = s.query(sql).unwrap_err();
            assert!(err.is_user_error(), "{sql}: {err:?}");
            let msg = err.to_string();
            assert!(msg.contains(needle), "{sql}: {msg}");
            assert!(!msg.contains('\n'), "{sql}: {msg}");
        }
    }

    #[test]
    fn formats_render_blobs_as_sizes() {
        let (_d, s) = session();
        let r = s
            .query("SELECT scene_id, frame_idx, image, world_from_camera FROM frames ORDER BY scene_id, frame_idx LIMIT 2")
            .unwrap();
        let table = render(&r, OutputFormat::Table).unwrap();
        assert!(
            table.contains("gen0000") && table.contains(" bytes>") && table.ends_with("(2 rows)\n"),
            "{table}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(&r, OutputFormat::Json).unwrap()).unwrap();
        let rows = json.as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["frame_idx"], 1);
        assert!(rows[0]["image"].as_str().unwrap().ends_with(" bytes>"));
        assert_eq!(rows[0]["world_from_camera"].as_array().unwrap().len(), 16);
        let csv = render(&r, OutputFormat::Csv).unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("scene_id,frame_idx,image,world_from_camera")
        );
        assert!(lines.next().unwrap().starts_with("gen0000,0,<"));
        // An empty result keeps its header in every format.
        let empty = s.query("SELECT scene_id FROM frames WHERE false").unwrap();
        assert_eq!(render(&empty, OutputFormat::Csv).unwrap(), "scene_id\n");
        assert_eq!(render(&empty, OutputFormat::Json).unwrap(), "[]\n");
        assert!(
            render(&empty, OutputFormat::Table)
                .unwrap()
                .contains("scene_id")
        );
    }
}
