//! The experiments of spatialsv: protocols, statistics and reports, as a library the binary's
//! `demo` and `study` commands drive (only the binary depends on it).
//!
//! - [`jobs`]: the jobs experiments are made of (synth, ingest, train, label, export, qa) as
//!   typed values with their command lines, run against the libraries; the binary's commands
//!   run the same values;
//! - [`demo`]: the whole method end to end on the synthetic world;
//! - [`recipe`]: the semi-supervised recipe (teacher, student, the supervised-only controls),
//!   its arms and ablations;
//! - [`runner`]: one resumable step runner (`OUT/.done/` markers) that numbers and prints
//!   every step with its command line;
//! - [`stats`]: means and t-intervals, paired differences, verdicts, the bootstrap;
//! - [`semi`]: `study semi`: the demo over seeds, its ablations, the aggregation and tables;
//! - [`spatialsv`]: `study spatialsv`: the multimodal rows, budget and base config, the study
//!   and its pilot;
//! - [`report`]: the demo's report (`report.md`, a self-contained `report.html`, plots).
//!
//! The synthetic world's layout and test sets are `spatialsv_ingest::synth`'s
//! ([`WorldLayout`], [`TestSet`]).

pub mod demo;
pub mod error;
pub mod jobs;
pub mod recipe;
pub mod report;
pub mod runner;
pub mod semi;
pub mod spatialsv;
pub mod stats;

pub use error::{LabError, Result};
pub use jobs::{Env, write_json};
pub use runner::{Job, Lanes, Markers, Output, Runner, Step};
pub use spatialsv_ingest::synth::{SynthManifest, TestSet, WorldLayout};

/// Writes `value` as TOML to `path` (a run's or a labelling's config).
pub fn write_toml(path: &std::path::Path, value: &impl serde::Serialize) -> Result<()> {
    let text = spatialsv_store::to_toml(value)?;
    std::fs::write(path, text).map_err(LabError::output("writing", path))
}
