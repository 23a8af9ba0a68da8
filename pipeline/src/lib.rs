//! The spatialsv pipeline: the versioned Parquet dataset store, SQL over it, and ingestion.
//!
//! - [`Dataset`] and [`Transaction`]: atomic, idempotent commits of schema-checked batches
//!   into Hive-partitioned Parquet files published by numbered manifests.
//! - [`SqlSession`]: DataFusion over one dataset version, with 3D curation UDFs ([`udf`]).
//! - [`rows`]: row structs and batch builders importers use.
//! - [`labels`]: `pseudo_labels` rows and their compact per-pixel encodings.
//! - [`FrameStore`] ([`frames`]): random access to the frames of a version, the read side
//!   the trainer and the labeller share.

mod config;
pub mod datagen;
pub mod distributed;
mod error;
pub mod frames;
pub mod geometry;
pub mod ingest;
pub mod labels;
pub mod manifest;
pub mod media;
mod migrate;
pub mod objects;
mod progress;
pub mod qa;
pub mod rows;
mod sql;
mod storage;
mod store;
pub mod synth;
pub mod udf;

pub use config::{load_toml, parse_toml, to_toml};
pub use error::{Error, Result};
pub use frames::{FrameIndex, FrameRef, FrameStore, RawFrame, SceneFrames};
pub use manifest::{AddedStats, DataFile, Manifest, TableFiles};
pub use migrate::MigrateOutcome;
pub use progress::{bar, progress_enabled};
pub use sql::{OutputFormat, QueryResult, SqlSession, render};
pub use storage::{
    LocalStorage, ObjectWriter, PART_BYTES, S3Storage, Storage, is_object_store_url, open_location,
    parse_s3_url, set_storage_options,
};
pub use store::{
    CODE_VERSION, COMMIT_TRIES, CRASH_ENV, CommitOutcome, Dataset, Transaction, WriteOptions,
    crash_point,
};
