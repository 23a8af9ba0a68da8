//! Pseudo-labels: a teacher trained on labeled scans labels unlabeled video with depth,
//! cameras and confidence; filters decide what deserves trust.
//!
//! - [`config`]: `configs/label.toml`, every threshold named.
//! - [`filters`]: the confidence, geometric, camera and acceptance filters as pure functions.
//! - [`fusion`]: many teacher passes fused into one label per frame (scale-aligned median
//!   depth, spread as confidence, pose-graph cameras).
//! - [`external`]: `spatialsv label export-clips` / `label import`: clips out to a teacher
//!   run elsewhere (VGGT, Depth Anything 3), its `.npz` files back in as pseudo-labels.
//! - [`da3`]: a Depth Anything 3 checkpoint folder as the teacher.
//! - [`job`]: `spatialsv label`: sharded, resumable, streamed teacher inference and commits.
//! - [`quality`]: pseudo-labels scored against the hidden ground truth `spatialsv synth`
//!   writes aside.

pub mod config;
pub mod da3;
mod error;
pub mod external;
pub mod filters;
pub mod fusion;
pub mod job;
pub mod quality;

pub use config::LabelConfig;
pub use error::{LabelError, Result};
