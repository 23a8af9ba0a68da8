//! Checkpoints of a run directory: atomic saves (a temporary directory renamed into place,
//! then the `latest` pointer), resuming from one, and loading a 3D model for evaluation,
//! labelling and `init_from`. File names are [`RunDir`]'s and [`Checkpoint`]'s.

use burn::config::Config as _;
use burn::module::Module;
use burn::record::{DefaultRecorder, Record, Recorder};
use serde::{Deserialize, Serialize};

use super::dir::{Checkpoint, RunDir, RunKind};
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

pub(crate) fn io_err(
    action: &'static str,
    path: &std::path::Path,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> TrainError {
    TrainError::Io {
        action,
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// Prepares a run directory for a run whose resolved config is `resolved`: creates its
/// checkpoints folder; a new run refuses a directory that already holds one, `--resume`
/// refuses a directory without a run and a config other than the run's own.
pub(super) fn claim_run_dir(run: &RunDir, resolved: &str, resume: bool) -> Result<()> {
    let config_path = run.config_path();
    if resume {
        if !config_path.exists() {
            return Err(TrainError::User(format!(
                "--resume: {} holds no run to continue (no {}); start it without --resume",
                run.root().display(),
                config_path.display()
            )));
        }
        let saved = std::fs::read_to_string(&config_path)
            .map_err(|e| io_err("--resume: reading the run's config", &config_path, e))?;
        if saved != resolved {
            return Err(TrainError::User(format!(
                "--resume: the config differs from the one the run started with; use the run's own: {}",
                config_path.display()
            )));
        }
    } else if run.latest().is_some() {
        return Err(TrainError::User(format!(
            "{} already holds a run; pass --resume to continue it or choose another --out",
            run.root().display()
        )));
    }
    let checkpoints = run.checkpoints_dir();
    std::fs::create_dir_all(&checkpoints)
        .map_err(|e| io_err("creating the run directory", run.root(), e))?;
    Ok(())
}

/// Loads checkpoint `c` into a run's `model` and `optim`: weights, optimiser moments and the
/// loop's state.
pub(crate) fn resume_from<M, O>(c: &Checkpoint, model: M, optim: O) -> Result<(M, O, TrainState)>
where
    M: burn::module::AutodiffModule<B>,
    O: burn::optim::Optimizer<M, B>,
{
    let device = default_device();
    let recorder = DefaultRecorder::new();
    let state: TrainState = serde_json::from_str(
        &std::fs::read_to_string(c.state_path())
            .map_err(|e| io_err("reading checkpoint state", c.dir(), e))?,
    )
    .map_err(|e| TrainError::corrupt(c.state_path(), "unreadable checkpoint state", e))?;
    let model = model
        .load_file(c.model_stem(), &recorder, &device)
        .map_err(|e| TrainError::corrupt(c.model_path(), "unloadable checkpoint", e))?;
    let record = recorder
        .load(c.optim_stem(), &device)
        .map_err(|e| TrainError::corrupt(c.optim_path(), "unloadable optimiser state", e))?;
    Ok((model, optim.load_record(record), state))
}

/// Loads the 3D model of a run's checkpoint `checkpoint` on the inference backend: what
/// evaluation, export and labelling run. (Forward passes on the autodiff backend without a backward keep
/// their graphs alive: an evaluation grew by about 24 MB per clip.)
pub fn load_inference_model_at(
    run: &RunDir,
    checkpoint: &Checkpoint,
) -> Result<(SpatialSv<crate::backend::Backend>, SpatialSvConfig)> {
    use burn::module::AutodiffModule as _;
    let (model, cfg) = load_model_at(run, checkpoint)?;
    Ok((model.valid(), cfg))
}

/// [`load_inference_model_at`] the newest checkpoint.
pub fn load_inference_model(
    run: &RunDir,
) -> Result<(SpatialSv<crate::backend::Backend>, SpatialSvConfig)> {
    load_inference_model_at(run, &spatial_checkpoint(run)?)
}

/// The newest checkpoint of a 3D run (a multimodal run is refused first, by name).
pub fn spatial_checkpoint(run: &RunDir) -> Result<Checkpoint> {
    if run.kind() == Some(RunKind::Mllm) {
        run.require_kind(RunKind::Spatial)?;
    }
    run.require_checkpoint()
}

/// Loads the 3D model of a run's newest checkpoint on the training backend (to start a run
/// from it, `init_from`); inference wants [`load_inference_model`].
pub fn load_model(run: &RunDir) -> Result<(SpatialSv<B>, SpatialSvConfig)> {
    load_model_at(run, &spatial_checkpoint(run)?)
}

/// Loads the 3D model of `run` from its checkpoint `c` (on the training backend).
fn load_model_at(run: &RunDir, c: &Checkpoint) -> Result<(SpatialSv<B>, SpatialSvConfig)> {
    let weights = c.weights_path();
    let cfg_path = run.sizes_path(RunKind::Spatial);
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

/// Saves a checkpoint of step `state.step` atomically: weights, optimiser record and state
/// into a temporary directory renamed into place, then the `latest` pointer.
pub(crate) fn save_checkpoint<R: Record<B>, M: Module<B>>(
    run: &RunDir,
    model: &M,
    ema: Option<&M>,
    optim: R,
    state: &TrainState,
) -> Result<()> {
    let recorder = DefaultRecorder::new();
    let done = state.step;
    let tmp = run.checkpoint_staging(done);
    let _ = std::fs::remove_dir_all(tmp.dir());
    std::fs::create_dir_all(tmp.dir()).map_err(|e| io_err("writing a checkpoint", tmp.dir(), e))?;
    model
        .clone()
        .save_file(tmp.model_stem(), &recorder)
        .map_err(|e| io_err("saving a checkpoint", tmp.dir(), e))?;
    if let Some(ema) = ema {
        ema.clone()
            .save_file(tmp.ema_stem(), &recorder)
            .map_err(|e| io_err("saving a checkpoint", tmp.dir(), e))?;
    }
    recorder
        .record(optim, tmp.optim_stem())
        .map_err(|e| io_err("saving a checkpoint", tmp.dir(), e))?;
    let json =
        serde_json::to_string_pretty(state).map_err(|e| TrainError::Internal(e.to_string()))?;
    std::fs::write(tmp.state_path(), json).map_err(|e| io_err("writing", tmp.dir(), e))?;
    let dir = run.checkpoint(done);
    let _ = std::fs::remove_dir_all(dir.dir());
    std::fs::rename(tmp.dir(), dir.dir())
        .map_err(|e| io_err("publishing a checkpoint", dir.dir(), e))?;
    run.publish_latest(done)
        .map_err(|e| io_err("writing", &run.latest_pointer(), e))?;
    tracing::info!(step = done, dir = %dir.dir().display(), "checkpoint saved");
    Ok(())
}
