//! What every training loop shares, so that a loop holds only its model's step: the run
//! directory ([`RunDir`]: every file's name, the run's kind, its checkpoints), the run
//! scaffold ([`Run`]: claiming or resuming a directory, named seed streams, the optimiser,
//! metrics, the checkpoint cadence, the finished run's row) and atomic checkpoints.
//!
//! A new model family writes its loop as: [`Run::claim`], build the model, [`Run::resume`],
//! then per step its forward and backward, [`Run::record`] and [`Run::end_step`], and
//! [`Run::finish`] with its [`RunRole`].

mod checkpoint;
mod dir;

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, Optimizer};
use spatialsv_schemas::Table;
use spatialsv_store::datagen::SplitMix64;
use spatialsv_store::rows::now_ns;
use spatialsv_store::{CODE_VERSION, Dataset};

pub(crate) use checkpoint::{TrainState, io_err, resume_from, save_checkpoint};
pub use checkpoint::{
    load_inference_model, load_inference_model_at, load_model, spatial_checkpoint,
};
pub use dir::{Checkpoint, RunDir, RunKind, RunRole};

use crate::backend::{BACKEND_NAME, TrainBackend as B};
use crate::error::{Result, TrainError};

/// The loops whose random streams are named here. Each stream's salt is fixed: it was chosen
/// when the loop was written, and every golden value and resumed run depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loop {
    /// The 3D model's loop (`train.rs`).
    Spatial,
    /// The multimodal model's loop (`mllm/train.rs`).
    Mllm,
}

impl Loop {
    /// Salt of the clip sampler's stream (which clips, flips and CutMix partners).
    fn sampler_salt(self) -> u64 {
        match self {
            Loop::Spatial => 0x5A3B_1E5D,
            Loop::Mllm => 0x0D1A_106E,
        }
    }

    /// Salt of the per-step seed (image perturbations of a step's clips).
    fn step_salt(self) -> u64 {
        match self {
            Loop::Spatial => 0,
            Loop::Mllm => 0x51,
        }
    }
}

/// The named random streams of a loop, all derived from the run's one `seed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeds {
    seed: u64,
    of: Loop,
}

impl Seeds {
    /// The streams of loop `of` for a run seeded `seed`.
    pub fn new(seed: u64, of: Loop) -> Seeds {
        Seeds { seed, of }
    }

    /// The run's seed (the backend's initialisation).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A fresh clip sampler (a resumed run restores its saved state instead).
    pub fn sampler(&self) -> SplitMix64 {
        SplitMix64::new(self.seed ^ self.of.sampler_salt())
    }

    /// The seed of step `step`'s image perturbations.
    pub fn step(&self, step: usize) -> u64 {
        self.seed ^ ((step as u64) << 20) ^ self.of.step_salt()
    }
}

/// The optimiser every loop uses: AdamW with weight decay and gradient-norm clipping.
pub fn adamw<M: AutodiffModule<B>>(
    weight_decay: f32,
    grad_clip_norm: f32,
) -> OptimizerAdaptor<AdamW, M, B> {
    AdamWConfig::new()
        .with_weight_decay(weight_decay)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(grad_clip_norm)))
        .init::<B, M>()
}

/// How long a run is and how often it saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Optimiser steps in all.
    pub steps: usize,
    /// A checkpoint (and a metrics commit) every this many steps, and at the last.
    pub checkpoint_every: usize,
}

/// Where a loop starts: the model and optimiser (restored from a checkpoint with `--resume`),
/// the step, the clip sampler, and the checkpoint it came from (for what else it holds, such
/// as the weight average).
#[derive(Debug)]
pub struct Resumed<M, O> {
    /// The model.
    pub model: M,
    /// The optimiser.
    pub optim: O,
    /// Steps already done.
    pub start: usize,
    /// The clip sampler.
    pub sampler: SplitMix64,
    /// The checkpoint resumed from, if any.
    pub checkpoint: Option<Checkpoint>,
}

/// One training run in progress: its directory, resolved config, seeds, schedule and the
/// metrics not yet committed.
#[derive(Debug)]
pub struct Run {
    dir: RunDir,
    resolved: String,
    seeds: Seeds,
    schedule: Schedule,
    resume: bool,
    metrics: Option<Dataset>,
    pending: Vec<(usize, &'static str, f64)>,
}

impl Run {
    /// Claims `out` for a run whose resolved config is `resolved`: creates its checkpoints
    /// folder; a new run refuses a directory that already holds one, `--resume` refuses a
    /// missing run or a config other than the run's own. Writes nothing else
    /// ([`Run::write_config`] does, once the loop has checked its inputs).
    pub fn claim(
        out: &Path,
        resolved: String,
        resume: bool,
        seeds: Seeds,
        schedule: Schedule,
    ) -> Result<Run> {
        let dir = RunDir::new(out);
        checkpoint::claim_run_dir(&dir, &resolved, resume)?;
        Ok(Run {
            dir,
            resolved,
            seeds,
            schedule,
            resume,
            metrics: None,
            pending: Vec::new(),
        })
    }

    /// The run directory.
    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    /// The named seed streams.
    pub fn seeds(&self) -> Seeds {
        self.seeds
    }

    /// Writes the resolved config into the run directory.
    pub fn write_config(&self) -> Result<()> {
        let path = self.dir.config_path();
        std::fs::write(&path, &self.resolved).map_err(|e| io_err("writing", &path, e))
    }

    /// With `--resume` and a checkpoint: the checkpoint's weights, optimiser moments, step and
    /// sampler state, and the checkpoint (for what else it holds). Otherwise the inputs, step
    /// 0, a fresh sampler and no checkpoint.
    pub fn resume<M, O>(&self, model: M, optim: O) -> Result<Resumed<M, O>>
    where
        M: AutodiffModule<B>,
        O: Optimizer<M, B>,
    {
        if self.resume
            && let Some(c) = self.dir.latest()
        {
            let (model, optim, state) = resume_from(&c, model, optim)?;
            return Ok(Resumed {
                model,
                optim,
                start: state.step,
                sampler: SplitMix64::new(state.sampler_state),
                checkpoint: Some(c),
            });
        }
        Ok(Resumed {
            model,
            optim,
            start: 0,
            sampler: self.seeds.sampler(),
            checkpoint: None,
        })
    }

    /// Notes step `step`'s named values (losses, learning rate) for the metrics table.
    pub fn record(&mut self, step: usize, values: impl IntoIterator<Item = (&'static str, f64)>) {
        self.pending
            .extend(values.into_iter().map(|(name, v)| (step, name, v)));
    }

    /// After step `done` (1-based): on the checkpoint cadence and at the last step, saves the
    /// model (with its weight average), the optimiser and the sampler atomically and commits
    /// the metrics recorded since the last checkpoint.
    pub fn end_step<M: burn::module::Module<B>, R: burn::record::Record<B>>(
        &mut self,
        done: usize,
        model: &M,
        ema: Option<&M>,
        optim: impl FnOnce() -> R,
        sampler: &SplitMix64,
        dataset_version: u64,
    ) -> Result<()> {
        let Schedule {
            steps,
            checkpoint_every,
        } = self.schedule;
        if !done.is_multiple_of(checkpoint_every.max(1)) && done != steps {
            return Ok(());
        }
        let _span = tracing::info_span!("train checkpoint", step = done).entered();
        let state = TrainState {
            step: done,
            sampler_state: sampler.state(),
            dataset_version,
        };
        save_checkpoint(&self.dir, model, ema, optim(), &state)?;
        let rows = std::mem::take(&mut self.pending);
        let run_id = self.dir.run_id();
        commit_metrics(self.metrics()?, &run_id, rows)
    }

    /// The run directory's own dataset (metrics and runs tables), opened on first use.
    fn metrics(&mut self) -> Result<&Dataset> {
        if self.metrics.is_none() {
            self.metrics = Some(Dataset::open_or_create(self.dir.root())?);
        }
        self.metrics
            .as_ref()
            .ok_or_else(|| TrainError::Internal("the run's metrics dataset is not open".into()))
    }

    /// Commits the finished run's row (role, data, config and its hash, code version, seed,
    /// backend) into the run directory's `runs` table.
    pub fn finish(mut self, role: RunRole, data: &Dataset, version: u64) -> Result<()> {
        let run_id = self.dir.run_id();
        let latest = self.dir.latest_pointer().display().to_string();
        let (resolved, seed) = (self.resolved.clone(), self.seeds.seed());
        let ds = self.metrics()?;
        let now = now_ns();
        let s = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v])) };
        let cols: Vec<ArrayRef> = vec![
            s(&run_id),
            s(role.as_str()),
            s(&data.location()),
            Arc::new(Int64Array::from(vec![version as i64])),
            s(&resolved),
            s(&blake3::hash(resolved.as_bytes()).to_hex()),
            s(CODE_VERSION),
            Arc::new(Int64Array::from(vec![seed as i64])),
            s(BACKEND_NAME),
            Arc::new(TimestampNanosecondArray::from(vec![now]).with_timezone("UTC")),
            Arc::new(TimestampNanosecondArray::from(vec![Some(now)]).with_timezone("UTC")),
            s("finished"),
            s(&latest),
        ];
        let batch = RecordBatch::try_new(Table::Runs.schema(), cols)?;
        let mut tx = ds.begin(format!("train {run_id}: run"))?;
        tx.append(Table::Runs, batch)?;
        tx.commit()?;
        Ok(())
    }
}

/// Commits one metrics row per (step, name, value) into the run's dataset.
fn commit_metrics(ds: &Dataset, run_id: &str, rows: Vec<(usize, &'static str, f64)>) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len();
    let now = now_ns();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![run_id; n])),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.0 as i64),
        )),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
        Arc::new(TimestampNanosecondArray::from(vec![now; n]).with_timezone("UTC")),
    ];
    let batch = RecordBatch::try_new(Table::Metrics.schema(), cols)?;
    let mut tx = ds.begin(format!("train {run_id}: metrics"))?;
    tx.append(Table::Metrics, batch)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resuming_a_directory_without_a_run_is_the_users_mistake_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("nothing");
        let schedule = Schedule {
            steps: 2,
            checkpoint_every: 1,
        };
        let err = Run::claim(
            &out,
            "x = 1\n".into(),
            true,
            Seeds::new(0, Loop::Spatial),
            schedule,
        )
        .unwrap_err();
        assert!(err.is_user_error(), "{err}");
        assert!(
            err.to_string().contains("holds no run to continue"),
            "{err}"
        );
        assert!(!out.exists());
        // A new run claims it; resuming it with another config is refused.
        let run = Run::claim(
            &out,
            "x = 1\n".into(),
            false,
            Seeds::new(0, Loop::Spatial),
            schedule,
        )
        .unwrap();
        run.write_config().unwrap();
        assert!(run.dir().checkpoints_dir().is_dir());
        let err = Run::claim(
            &out,
            "x = 2\n".into(),
            true,
            Seeds::new(0, Loop::Spatial),
            schedule,
        )
        .unwrap_err();
        assert!(err.to_string().contains("config differs"), "{err}");
    }

    #[test]
    fn seed_streams_keep_the_loops_historic_values() {
        // These values are what the loops computed inline before the scaffold; golden
        // training values and resumed runs depend on them.
        let s = Seeds::new(7, Loop::Spatial);
        assert_eq!(
            s.sampler().state(),
            SplitMix64::new(7 ^ 0x5A3B_1E5D).state()
        );
        assert_eq!(s.step(3), 7 ^ (3 << 20));
        let m = Seeds::new(7, Loop::Mllm);
        assert_eq!(
            m.sampler().state(),
            SplitMix64::new(7 ^ 0x0D1A_106E).state()
        );
        assert_eq!(m.step(3), 7 ^ (3 << 20) ^ 0x51);
    }
}
