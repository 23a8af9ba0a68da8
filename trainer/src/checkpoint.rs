//! Checkpoints of a run directory: atomic saves (a temporary directory renamed into place,
//! then the `latest` pointer), the newest checkpoint (or a message that says what the run
//! directory holds instead), and loading a model for evaluation and labelling.
//!
//! ```text
//! runs/NAME/checkpoints/step-NNNNNNNN/  model.mpk, optim.mpk, state.json
//! runs/NAME/latest                      name of the newest complete checkpoint
//! ```

use std::path::{Path, PathBuf};

use burn::config::Config as _;
use burn::module::Module;
use burn::record::{DefaultRecorder, Record, Recorder};
use serde::{Deserialize, Serialize};

use crate::backend::{TrainBackend as B, default_device};
use crate::error::{Result, TrainError};
use crate::model::{SpatialSv, SpatialSvConfig};

/// What is saved with each checkpoint besides the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TrainState {
    pub(crate) step: usize,
    pub(crate) sampler_state: u64,
    pub(crate) dataset_version: u64,
}

pub(crate) fn io_err(action: &'static str, path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io {
        action,
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

pub(crate) fn checkpoint_dir(out: &Path, step: usize) -> PathBuf {
    out.join("checkpoints").join(format!("step-{step:08}"))
}

/// The newest complete checkpoint of a run, if any.
pub fn latest_checkpoint(out: &Path) -> Option<PathBuf> {
    let name = std::fs::read_to_string(out.join("latest")).ok()?;
    let dir = out.join("checkpoints").join(name.trim());
    dir.join("state.json").exists().then_some(dir)
}

/// Whether the run in `out` has its checkpoint of step `steps` as its newest (it finished).
pub fn finished(out: &Path, steps: usize) -> bool {
    latest_checkpoint(out).is_some_and(|dir| dir == checkpoint_dir(out, steps))
}

/// The checkpoints a run directory holds (complete ones: with their `state.json`), oldest
/// first.
fn checkpoints(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out.join("checkpoints"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("state.json").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("step-"))
        .collect();
    names.sort();
    names
}

/// The newest checkpoint of a run, or a user error that says what the run directory holds
/// instead (nothing, or a `latest` pointer to a step that is gone).
pub fn require_checkpoint(out: &Path) -> Result<PathBuf> {
    if let Some(dir) = latest_checkpoint(out) {
        return Ok(dir);
    }
    let present = checkpoints(out);
    let pointer = std::fs::read_to_string(out.join("latest")).ok();
    Err(TrainError::User(match (pointer, present.is_empty()) {
        (_, true) => format!("no checkpoint in run directory {}", out.display()),
        (Some(p), false) => format!(
            "run {}: `latest` names {} but that checkpoint is missing or incomplete; present: {} \
             (write one of them into {})",
            out.display(),
            p.trim(),
            present.join(", "),
            out.join("latest").display()
        ),
        (None, false) => format!(
            "run {}: no `latest` pointer, but checkpoints {} are present (write the newest \
             into {})",
            out.display(),
            present.join(", "),
            out.join("latest").display()
        ),
    }))
}

/// Prepares `out` for a run whose resolved config is `resolved`: creates `checkpoints/`;
/// a new run refuses a directory that already holds one, `--resume` refuses a config other
/// than the run's own. Returns the path of the run's `config.toml` (not written here).
pub(crate) fn claim_run_dir(out: &Path, resolved: &str, resume: bool) -> Result<PathBuf> {
    std::fs::create_dir_all(out.join("checkpoints"))
        .map_err(|e| io_err("creating the run directory", out, e))?;
    let config_path = out.join("config.toml");
    if resume {
        let saved = std::fs::read_to_string(&config_path)
            .map_err(|e| io_err("--resume: reading the run's config", &config_path, e))?;
        if saved != resolved {
            return Err(TrainError::User(format!(
                "--resume: the config differs from the one the run started with; use the run's own: {}",
                config_path.display()
            )));
        }
    } else if latest_checkpoint(out).is_some() {
        return Err(TrainError::User(format!(
            "{} already holds a run; pass --resume to continue it or choose another --out",
            out.display()
        )));
    }
    Ok(config_path)
}

/// Loads checkpoint `dir` into a run's `model` and `optim`: weights, optimiser moments and the
/// loop's state.
pub(crate) fn resume_from<M, O>(dir: &Path, model: M, optim: O) -> Result<(M, O, TrainState)>
where
    M: burn::module::AutodiffModule<B>,
    O: burn::optim::Optimizer<M, B>,
{
    let device = default_device();
    let recorder = DefaultRecorder::new();
    let state: TrainState = serde_json::from_str(
        &std::fs::read_to_string(dir.join("state.json"))
            .map_err(|e| io_err("reading checkpoint state", dir, e))?,
    )
    .map_err(|e| TrainError::corrupt(dir.join("state.json"), "unreadable checkpoint state", e))?;
    let model = model
        .load_file(dir.join("model"), &recorder, &device)
        .map_err(|e| TrainError::corrupt(dir.join("model.mpk"), "unloadable checkpoint", e))?;
    let record = recorder
        .load(dir.join("optim"), &device)
        .map_err(|e| TrainError::corrupt(dir.join("optim.mpk"), "unloadable optimiser state", e))?;
    Ok((model, optim.load_record(record), state))
}

/// Loads the model of a run's newest checkpoint on the inference backend: what evaluation,
/// export and labelling run. (Forward passes on the autodiff backend without a backward keep
/// their graphs alive: an evaluation grew by about 24 MB per clip.)
pub fn load_inference_model(
    out: &Path,
) -> Result<(SpatialSv<crate::backend::Backend>, SpatialSvConfig)> {
    use burn::module::AutodiffModule as _;
    let (model, cfg) = load_model(out)?;
    Ok((model.valid(), cfg))
}

/// Loads the model of a run's newest checkpoint on the training backend (to start a run from
/// it, `init_from`); inference wants [`load_inference_model`].
pub fn load_model(out: &Path) -> Result<(SpatialSv<B>, SpatialSvConfig)> {
    if out.join(crate::mllm::MODEL_FILE).exists() {
        return Err(TrainError::User(format!(
            "run {} is a multimodal (mllm) run: evaluate it with `eval --qa` or `ask`",
            out.display()
        )));
    }
    let dir = require_checkpoint(out)?;
    let weights = weights_file(&dir);
    let cfg_path = out.join("model.json");
    let cfg = SpatialSvConfig::load(&cfg_path)
        .map_err(|e| TrainError::corrupt(&cfg_path, "unreadable model config", e))?;
    let device = default_device();
    let model = cfg
        .init::<B>(&device)
        .load_file(weights.with_extension(""), &DefaultRecorder::new(), &device)
        .map_err(|e| {
            TrainError::corrupt(
                weights.clone(),
                "checkpoint does not load into this run's model (damaged, or written for another model config)",
                e,
            )
        })?;
    Ok((model, cfg))
}

/// The weights a checkpoint directory is used with: the moving average (`ema.mpk`) of a run
/// trained with `ema_decay > 0`, else the trained weights (`model.mpk`).
pub fn weights_file(checkpoint: &Path) -> std::path::PathBuf {
    let ema = checkpoint.join("ema.mpk");
    if ema.exists() {
        ema
    } else {
        checkpoint.join("model.mpk")
    }
}

/// Saves a checkpoint of step `state.step` atomically: weights, optimiser record and state
/// into a temporary directory renamed into place, then the `latest` pointer.
pub(crate) fn save_checkpoint<R: Record<B>, M: Module<B>>(
    out: &Path,
    model: &M,
    ema: Option<&M>,
    optim: R,
    state: &TrainState,
) -> Result<()> {
    let recorder = DefaultRecorder::new();
    let done = state.step;
    let tmp = out.join("checkpoints").join(format!(".tmp-step-{done:08}"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| io_err("writing a checkpoint", &tmp, e))?;
    model
        .clone()
        .save_file(tmp.join("model"), &recorder)
        .map_err(|e| io_err("saving a checkpoint", &tmp, e))?;
    if let Some(ema) = ema {
        ema.clone()
            .save_file(tmp.join("ema"), &recorder)
            .map_err(|e| io_err("saving a checkpoint", &tmp, e))?;
    }
    recorder
        .record(optim, tmp.join("optim"))
        .map_err(|e| io_err("saving a checkpoint", &tmp, e))?;
    let json =
        serde_json::to_string_pretty(state).map_err(|e| TrainError::Internal(e.to_string()))?;
    std::fs::write(tmp.join("state.json"), json).map_err(|e| io_err("writing", &tmp, e))?;
    let dir = checkpoint_dir(out, done);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(|e| io_err("publishing a checkpoint", &dir, e))?;
    let latest_tmp = out.join(".latest.tmp");
    std::fs::write(&latest_tmp, format!("step-{done:08}\n"))
        .map_err(|e| io_err("writing", &latest_tmp, e))?;
    std::fs::rename(&latest_tmp, out.join("latest")).map_err(|e| io_err("writing", out, e))?;
    tracing::info!(step = done, dir = %dir.display(), "checkpoint saved");
    Ok(())
}
