//! The spatialsv dataset store: versioned Parquet datasets on a local disk or S3, and the
//! rows, codecs and geometry every stage shares. No query engine: SQL is `spatialsv-sql`,
//! ingestion `spatialsv-ingest`, spatial questions `spatialsv-qa`.
//!
//! - [`Dataset`] and [`Transaction`]: atomic, idempotent commits of schema-checked batches
//!   into Hive-partitioned Parquet files published by numbered manifests.
//! - [`rows`]: row structs and batch builders importers use.
//! - [`labels`]: `pseudo_labels` rows and their compact per-pixel encodings.
//! - [`FrameStore`] ([`frames`]): random access to the frames of a version, the read side
//!   the trainer and the labeller share.

mod config;
pub mod datagen;
mod dataset;
mod error;
pub mod frames;
pub mod geometry;
pub mod hash;
pub mod labels;
pub mod manifest;
pub mod media;
mod migrate;
pub mod objects;
pub mod progress;
pub mod rows;
mod storage;

pub use config::{load_toml, parse_toml, to_toml};
pub use dataset::{
    CODE_VERSION, COMMIT_TRIES, CRASH_ENV, CommitOutcome, Dataset, Transaction, WriteOptions,
    crash_point,
};
pub use error::{Error, Result};
pub use frames::{FrameIndex, FrameRef, FrameStore, RawFrame, SceneFrames};
pub use hash::{Digest, Labelling, Selector};
pub use manifest::{AddedStats, DataFile, Manifest, TableFiles};
pub use migrate::MigrateOutcome;
pub use progress::{Progress, Silent};
pub use storage::{
    LocalStorage, ObjectWriter, PART_BYTES, S3Storage, Storage, StorageOptions, client_for_bucket,
    is_object_store_url, open_location, parse_s3_url,
};
