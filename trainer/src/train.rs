//! The 3D model's training loop behind `spatialsv train` (supervised or semi-supervised).
//!
//! The run directory and everything the loops share (claiming, resuming, seeds, the
//! optimiser, metrics, checkpoints, the run's row) are [`crate::run`]'s; this file holds the
//! 3D model's batches and step. AdamW with linear warm-up then cosine decay, gradient-norm
//! clipping, a seed that makes runs repeatable, and `--resume` that continues exactly (model,
//! optimiser moments, data sampler state and step are all restored). Repeatability holds for
//! one training per process (the CLI): the backend's random generator, used for
//! initialisation, is process-global.

use std::path::Path;
use std::sync::Arc;

use burn::config::Config as _;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset as _;
use burn::module::Module;
use burn::optim::Optimizer;
use burn::record::DefaultRecorder;

use spatialsv_schemas::Split;
use spatialsv_store::Dataset;

use crate::backend::{TrainBackend as B, default_device};
use crate::config::TrainConfig;
use crate::data::{
    Augment, ClipBatch, ClipBatcher, ClipDataset, ClipSample, FrameStore, sample_clips,
};
use crate::error::{Result, TrainError};
use crate::loss::LossConfig;
use crate::model::SpatialSv;
use crate::pseudo::{PseudoBatch, load_pseudo_set, pseudo_batch};
use crate::run::{
    Loop, Resumed, Run, RunDir, RunKind, RunRole, Schedule, Seeds, adamw, io_err, load_model,
};
use crate::training::train_step;

/// Progress reports of a running loop.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// Steps done.
    pub step: usize,
    /// Total loss of the step.
    pub loss: f32,
}

impl StepReport {
    /// The line `train` ends with: the step reached by this call (`last`, the newest report)
    /// in `seconds`, or that the run in `out` was already at `steps`.
    pub fn summary(last: Option<&StepReport>, steps: usize, seconds: f64, out: &Path) -> String {
        match last {
            Some(r) => format!(
                "trained to step {} in {seconds:.1}s, last loss {:.4}; checkpoints and metrics in {}",
                r.step,
                r.loss,
                out.display()
            ),
            None => already_done(steps, out),
        }
    }
}

/// The line of a `train` call that had nothing left to do.
pub(crate) fn already_done(steps: usize, out: &Path) -> String {
    format!(
        "nothing to do: the run in {} is already at step {steps}",
        out.display()
    )
}

/// Trains on the train split of `dataset` into `out`, continuing from the newest checkpoint
/// when `resume` is set. Calls `on_step` after every step.
pub fn train(
    dataset: &Dataset,
    config: &TrainConfig,
    out: &Path,
    resume: bool,
    mut on_step: impl FnMut(&StepReport),
) -> Result<SpatialSv<B>> {
    let model_cfg = config.model()?;
    let device = default_device();
    let mut run = Run::claim(
        out,
        spatialsv_store::to_toml(config)?,
        resume,
        Seeds::new(config.seed, Loop::Spatial),
        Schedule {
            steps: config.steps,
            checkpoint_every: config.checkpoint_every,
        },
    )?;
    run.write_config()?;
    let sizes = run.dir().sizes_path(RunKind::Spatial);
    model_cfg
        .save(&sizes)
        .map_err(|e| io_err("writing", &sizes, e))?;

    let manifest = dataset.latest()?;
    let store = Arc::new(FrameStore::new(
        dataset.clone(),
        &manifest,
        config.cache_row_groups,
    ));
    let batcher = ClipBatcher {
        frames: config.clip_len,
        height: config.image_height,
        width: config.image_width,
    };
    let scenes = store.labeled_scenes(&manifest, Split::Train)?;
    if scenes.values().all(|f| f.len() < config.clip_len) {
        return Err(TrainError::User(format!(
            "the train split of {} has no scene with {} labeled frames (depth and pose)",
            dataset.location(),
            config.clip_len
        )));
    }

    // What the trivial baselines of `eval` need from this run's training data (measured once:
    // a resumed run keeps the file it started with).
    let stats_path = run.dir().baseline_path();
    if !(resume && stats_path.exists()) {
        let stats = crate::eval::BaselineStats {
            train_median_depth: crate::eval::train_median_depth(&store, dataset, config)?,
            dataset: dataset.location(),
            dataset_version: manifest.version,
        };
        let json = serde_json::to_string_pretty(&stats)
            .map_err(|e| TrainError::Internal(e.to_string()))?;
        std::fs::write(&stats_path, json).map_err(|e| io_err("writing", &stats_path, e))?;
    }

    let (n_labeled, n_pseudo) = config.batch_split()?;
    let pseudo_geometry = config.pseudo_geometry();
    let pseudo = if config.semi_supervised() {
        Some(load_pseudo_set(
            dataset,
            &manifest,
            &store,
            &config.pseudo_label_selector(),
            config.clip_len,
            config.image_width,
            config.image_height,
            config.pseudo_max_scenes,
        )?)
    } else {
        None
    };
    let strong = Augment {
        colour: config.strong_colour,
        blur: config.strong_blur,
    };

    let mut model =
        crate::backend::seeded_init::<B, _>(&device, config.seed, || model_cfg.init::<B>(&device));
    if let Some(init_from) = &config.init_from {
        let (init, init_cfg) = load_model(&RunDir::new(init_from))?;
        if init_cfg != model_cfg {
            return Err(TrainError::User(format!(
                "init_from {}: its model config differs from this run's (preset or image size)",
                init_from.display()
            )));
        }
        model = init;
    }
    let optim = adamw::<SpatialSv<B>>(config.weight_decay, config.grad_clip_norm);
    let Resumed {
        model: m,
        mut optim,
        start,
        mut sampler,
        checkpoint: resumed,
    } = run.resume(model, optim)?;
    model = m;
    let mut ema: Option<SpatialSv<B>> = None;
    if let Some(c) = resumed
        && config.ema_decay > 0.0
        && c.ema_path().exists()
    {
        ema = Some(
            model
                .clone()
                .load_file(c.ema_stem(), &DefaultRecorder::new(), &device)
                .map_err(|e| TrainError::corrupt(c.ema_path(), "unloadable weight average", e))?,
        );
    }
    if config.ema_decay > 0.0 && ema.is_none() {
        ema = Some(model.clone());
    }

    let loss_cfg = LossConfig::new().with_trim_fraction(if pseudo.is_some() {
        config.pseudo_trim
    } else {
        0.0
    });
    let aug = if config.strong_labeled {
        strong
    } else {
        Augment {
            colour: config.augment_colour,
            blur: config.augment_blur,
        }
    };
    let (v, h, w) = (config.clip_len, config.image_height, config.image_width);
    let seeds = run.seeds();
    for step in start..config.steps {
        let clips = sample_clips(&scenes, n_labeled, v, config.max_gap, &mut sampler);
        let step_seed = seeds.step(step);
        let data = ClipDataset::new(store.clone(), clips, w, h, aug, step_seed);
        let mut samples: Vec<ClipSample> = (0..data.len())
            .map(|i| data.try_get(i))
            .collect::<Result<_>>()?;
        if config.strong_labeled && config.strong_flip > 0.0 {
            for s in samples.iter_mut() {
                if sampler.next_f64() < config.strong_flip {
                    crate::pseudo::flip_clip(s, v, w, h);
                }
            }
        }
        if config.strong_labeled && samples.len() > 1 {
            for k in 0..samples.len() {
                if sampler.next_f64() < config.cutmix {
                    let other =
                        (k + 1 + (sampler.next_u64() % (samples.len() - 1) as u64) as usize)
                            % samples.len();
                    let src = samples[other].clone();
                    crate::pseudo::cutmix(&mut samples[k], &src, v, w, h, &mut sampler);
                }
            }
        }
        if let Some(set) = &pseudo {
            samples.extend(pseudo_batch(
                set,
                &store,
                &PseudoBatch {
                    clips: n_pseudo,
                    size: (v, h, w),
                    max_gap: config.max_gap,
                    strong,
                    geometry: pseudo_geometry,
                    cutmix: config.cutmix,
                    flip: config.strong_flip,
                    seed: step_seed,
                },
                &mut sampler,
            )?);
        }
        let ClipBatch { images, targets } = batcher.batch(samples, &device);
        let lr = config.lr_at(step);
        let (m, losses) = train_step(model, &mut optim, images, &targets, &loss_cfg, lr, step)?;
        model = m;
        if let Some(e) = ema.take() {
            ema = Some(crate::ema::ema_update(e, &model, config.ema_decay));
        }
        run.record(
            step,
            losses
                .terms
                .iter()
                .map(|(name, value)| (*name, f64::from(*value)))
                .chain([("lr", lr)]),
        );
        let total = losses
            .terms
            .iter()
            .find(|t| t.0 == "loss/total")
            .map_or(f32::NAN, |t| t.1);
        on_step(&StepReport {
            step: step + 1,
            loss: total,
        });
        run.end_step(
            step + 1,
            &model,
            ema.as_ref(),
            || optim.to_record(),
            &sampler,
            manifest.version,
        )?;
    }
    let role = if pseudo.is_some() {
        RunRole::Student
    } else {
        RunRole::Teacher
    };
    run.finish(role, dataset, manifest.version)?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};

    use super::*;
    use crate::data::tests::synthetic_dataset;

    fn tiny_config() -> TrainConfig {
        TrainConfig {
            image_height: 16,
            image_width: 24,
            batch_size: 1,
            clip_len: 2,
            steps: 4,
            checkpoint_every: 2,
            warmup_steps: 1,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn resume_continues_exactly_and_reload_predicts_the_same() {
        let _rng = crate::backend::rng_guard();
        let dir = tempfile::tempdir().unwrap();
        let (ds, _) = synthetic_dataset(dir.path());
        let cfg = tiny_config();
        // Straight through: 4 steps.
        let straight = train(&ds, &cfg, &dir.path().join("runs/a"), false, |_| {}).unwrap();
        // Interrupted after 2 steps, then resumed.
        let half = TrainConfig {
            steps: 2,
            ..cfg.clone()
        };
        train(&ds, &half, &dir.path().join("runs/b"), false, |_| {}).unwrap();
        // The config of a resumed run must be the run's own: rewrite it to the full length.
        std::fs::write(
            dir.path().join("runs/b/config.toml"),
            spatialsv_store::to_toml(&cfg).unwrap(),
        )
        .unwrap();
        let mut steps = Vec::new();
        let resumed = train(&ds, &cfg, &dir.path().join("runs/b"), true, |r| {
            steps.push(r.step)
        })
        .unwrap();
        assert_eq!(steps, vec![3, 4]);
        let device = default_device();
        let images =
            Tensor::<B, 5>::random([1, 2, 3, 16, 24], Distribution::Normal(0.0, 1.0), &device);
        let a = straight.forward(images.clone()).depth;
        let b = resumed.forward(images.clone()).depth;
        let diff = (a.clone() - b).abs().max().into_scalar();
        assert!(diff < 1e-5, "resumed run differs by {diff}");
        let (reloaded, _) = load_model(&RunDir::new(dir.path().join("runs/a"))).unwrap();
        let c = reloaded.forward(images).depth;
        assert!((a - c).abs().max().into_scalar() < 1e-6);
        // The run directory is a dataset: metrics and the run row are queryable.
        let m = Dataset::open(dir.path().join("runs/a")).unwrap();
        let latest = m.latest().unwrap();
        assert_eq!(latest.rows("metrics"), 4 * 7);
        assert_eq!(latest.rows("runs"), 1);
        // Starting over an existing run without --resume is refused.
        let err = train(&ds, &cfg, &dir.path().join("runs/a"), false, |_| {}).unwrap_err();
        assert!(err.to_string().contains("already holds a run"), "{err}");
    }
}
