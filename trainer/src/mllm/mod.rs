//! The small multimodal model in the SpatialSV regime: spatial questions answered by a causal
//! language model over visual tokens, trained with its text loss plus visual supervision of
//! four of its layers' visual hidden states through the 3D model's DPT heads
//! (docs/mllm.md).
//!
//! - [`tokenizer`]: word-level ids over the question generator's vocabulary, also written as a
//!   Hugging Face `tokenizer.json`;
//! - [`model`]: vision tower, connector, causal language model, taps, projectors, heads;
//! - [`config`]: `configs/mllm.toml`; [`data`]: questions, samples, the masked text loss;
//! - [`train`]: the loop; [`eval`]: `eval --qa` and greedy answers for `ask`.

pub mod bench;
pub mod config;
pub mod data;
pub mod eval;
pub mod export;
pub mod model;
pub mod tokenizer;
pub mod train;

use std::path::Path;

use burn::config::Config as _;
use burn::module::Module;
use burn::record::DefaultRecorder;

pub use config::{MllmConfig, SpatialOnly, Target3d};
pub use model::{MllmModelConfig, SpatialMllm};
pub use tokenizer::Tokenizer;

use crate::backend::{Backend as Inner, default_device};
use crate::checkpoint::require_checkpoint;
use crate::error::{Result, TrainError};
use data::QaItem;

/// The model sizes' file in a multimodal run directory (its presence marks the run's kind).
pub const MODEL_FILE: &str = "mllm.json";

/// The run's tokenizer when resuming, else one built over every question, option and answer
/// of the dataset (all splits, so evaluation never meets an unknown word; a word seen only in
/// test questions keeps its random embedding) and saved into the run.
pub(crate) fn load_tokenizer_or_build(
    out: &Path,
    resume: bool,
    all: &[QaItem],
) -> Result<Tokenizer> {
    if resume && out.join(tokenizer::VOCAB_FILE).exists() {
        return Tokenizer::load(out);
    }
    let tok = tokenizer_for(all);
    tok.save(out)?;
    Ok(tok)
}

/// A tokenizer over every question, option and answer of `items`.
pub fn tokenizer_for(items: &[QaItem]) -> Tokenizer {
    Tokenizer::build(items.iter().flat_map(|q| {
        [q.question.as_str(), q.answer.as_str()]
            .into_iter()
            .chain(q.options.iter().map(String::as_str))
    }))
}

/// A multimodal run loaded for inference: model, sizes, tokenizer and training config.
pub struct LoadedMllm {
    /// The model on the inference backend.
    pub model: SpatialMllm<Inner>,
    /// Its sizes.
    pub sizes: MllmModelConfig,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// The config it was trained with.
    pub config: MllmConfig,
}

impl std::fmt::Debug for LoadedMllm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedMllm")
            .field("sizes", &self.sizes)
            .finish_non_exhaustive()
    }
}

/// Loads a multimodal run's newest checkpoint; a 3D model's run is a one-line user error.
pub fn load_mllm(out: &Path) -> Result<LoadedMllm> {
    if !out.join(MODEL_FILE).exists() {
        if out.join("model.json").exists() {
            return Err(TrainError::User(format!(
                "run {} is a 3D model run (spatialsv train with configs/train.toml), not a multimodal one: evaluate it with `eval` without --qa",
                out.display()
            )));
        }
        require_checkpoint(out)?;
        return Err(TrainError::User(format!(
            "run {} has no {MODEL_FILE}: not a multimodal run",
            out.display()
        )));
    }
    let dir = require_checkpoint(out)?;
    let path = out.join(MODEL_FILE);
    let sizes = MllmModelConfig::load(&path)
        .map_err(|e| TrainError::corrupt(&path, "unreadable model config", e))?;
    let config: MllmConfig = spatialsv_pipeline::load_toml(&out.join("config.toml"))?;
    let tokenizer = Tokenizer::load(out)?;
    let device = default_device();
    let model = sizes
        .init::<Inner>(&device)
        .load_file(dir.join("model"), &DefaultRecorder::new(), &device)
        .map_err(|e| {
            TrainError::corrupt(
                dir.join("model.mpk"),
                "checkpoint does not load into this run's model",
                e,
            )
        })?;
    Ok(LoadedMllm {
        model,
        sizes,
        tokenizer,
        config,
    })
}
