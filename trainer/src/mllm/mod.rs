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

use burn::config::Config as _;
use burn::module::Module;
use burn::record::DefaultRecorder;

pub use config::{MllmConfig, SpatialOnly, Target3d};
pub use model::{MllmModelConfig, SpatialMllm};
pub use tokenizer::Tokenizer;

use crate::backend::{Backend as Inner, default_device};
use crate::error::{Result, TrainError};
use crate::run::{RunDir, RunKind};
use data::QaItem;

/// The run's tokenizer when resuming, else one built over every question, option and answer
/// of the dataset (all splits, so evaluation never meets an unknown word; a word seen only in
/// test questions keeps its random embedding) and saved into the run.
pub(crate) fn load_tokenizer_or_build(
    run: &RunDir,
    resume: bool,
    all: &[QaItem],
) -> Result<Tokenizer> {
    if resume && run.vocab_path().exists() {
        return Tokenizer::load(&run.vocab_path());
    }
    let tok = tokenizer_for(all);
    tok.save(&run.vocab_path(), &run.hf_tokenizer_path())?;
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
pub fn load_mllm(run: &RunDir) -> Result<LoadedMllm> {
    run.require_kind(RunKind::Mllm)?;
    let c = run.require_checkpoint()?;
    let path = run.sizes_path(RunKind::Mllm);
    let sizes = MllmModelConfig::load(&path)
        .map_err(|e| TrainError::corrupt(&path, "unreadable model config", e))?;
    let config: MllmConfig = run.load_config()?;
    let tokenizer = Tokenizer::load(&run.vocab_path())?;
    let device = default_device();
    let model = sizes
        .init::<Inner>(&device)
        .load_file(c.model_stem(), &DefaultRecorder::new(), &device)
        .map_err(|e| {
            TrainError::corrupt(
                c.model_path(),
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
