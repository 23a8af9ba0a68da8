//! The training loop behind `spatialsv train`.
//!
//! A run directory holds everything about a run:
//!
//! ```text
//! runs/NAME/config.toml                 the resolved training config
//! runs/NAME/model.json                  the resolved model config
//! runs/NAME/baseline.json               the training median depth for eval's baselines
//! runs/NAME/checkpoints/step-NNNNNNNN/  model.mpk, optim.mpk, state.json (written to a
//!                                       temporary directory, then renamed: atomic)
//! runs/NAME/latest                      name of the newest complete checkpoint
//! runs/NAME/_spatialsv, data/           a spatialsv dataset with the `metrics` (one row per
//!                                       step and loss term) and `runs` tables:
//!                                       `spatialsv sql --dataset runs/NAME "SELECT ..."`
//! ```
//!
//! AdamW with linear warm-up then cosine decay, gradient-norm clipping, a seed that makes
//! runs repeatable, and `--resume` that continues exactly (model, optimiser moments, data
//! sampler state and step are all restored). Repeatability holds for one training per process
//! (the CLI): the backend's random generator, used for initialisation, is process-global.

use std::path::Path;

use burn::config::Config as _;
use burn::grad_clipping::GradientClippingConfig;
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset as _;
use burn::module::Module;
use burn::optim::{AdamWConfig, Optimizer};
use burn::record::DefaultRecorder;
use burn::tensor::backend::Backend as _;

use spatialsv_pipeline::datagen::SplitMix64;
use spatialsv_pipeline::rows::now_ns;
use spatialsv_pipeline::{CODE_VERSION, Dataset};
use spatialsv_schemas::{Split, Table};

use crate::backend::{BACKEND_NAME, TrainBackend as B, default_device};
use crate::checkpoint::{
    TrainState, claim_run_dir, io_err, latest_checkpoint, load_model, resume_from, save_checkpoint,
};
use crate::config::TrainConfig;
use crate::data::{
    Augment, ClipBatch, ClipBatcher, ClipDataset, ClipSample, FrameStore, sample_clips,
};
use crate::error::{Result, TrainError};
use crate::loss::LossConfig;
use crate::model::SpatialSv;
use crate::pseudo::{PseudoBatch, load_pseudo_set, pseudo_batch};
use crate::training::train_step;

/// Progress reports of a running loop.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// Steps done.
    pub step: usize,
    /// Total loss of the step.
    pub loss: f32,
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
    let resolved = spatialsv_pipeline::to_toml(config)?;
    let config_path = claim_run_dir(out, &resolved, resume)?;
    std::fs::write(&config_path, &resolved).map_err(|e| io_err("writing", &config_path, e))?;
    model_cfg
        .save(out.join("model.json"))
        .map_err(|e| io_err("writing", &out.join("model.json"), e))?;

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
    let stats_path = out.join(crate::eval::BASELINE_FILE);
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
            config.pseudo_labels.as_deref().unwrap_or("latest"),
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

    B::seed(&device, config.seed);
    let mut model = model_cfg.init::<B>(&device);
    if let Some(init_from) = &config.init_from {
        let (init, init_cfg) = load_model(init_from)?;
        if init_cfg != model_cfg {
            return Err(TrainError::User(format!(
                "init_from {}: its model config differs from this run's (preset or image size)",
                init_from.display()
            )));
        }
        model = init;
    }
    let mut optim = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(config.grad_clip_norm)))
        .init::<B, SpatialSv<B>>();
    let mut sampler = SplitMix64::new(config.seed ^ 0x5A3B_1E5D);
    let mut start = 0;
    let mut ema: Option<SpatialSv<B>> = None;
    let recorder = DefaultRecorder::new();
    if resume && let Some(dir) = latest_checkpoint(out) {
        let (m, o, state) = resume_from(&dir, model, optim)?;
        (model, optim) = (m, o);
        sampler = SplitMix64::new(state.sampler_state);
        start = state.step;
        if config.ema_decay > 0.0 && dir.join("ema.mpk").exists() {
            ema = Some(
                model
                    .clone()
                    .load_file(dir.join("ema"), &recorder, &device)
                    .map_err(|e| {
                        TrainError::corrupt(dir.join("ema.mpk"), "unloadable weight average", e)
                    })?,
            );
        }
    }
    if config.ema_decay > 0.0 && ema.is_none() {
        ema = Some(model.clone());
    }

    let run_id = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let metrics_ds = Dataset::open_or_create(out)?;
    let mut pending: Vec<(usize, &'static str, f64)> = Vec::new();
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
    for step in start..config.steps {
        let clips = sample_clips(&scenes, n_labeled, v, config.max_gap, &mut sampler);
        let step_seed = config.seed ^ ((step as u64) << 20);
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
        for (name, value) in &losses.terms {
            pending.push((step, name, f64::from(*value)));
        }
        pending.push((step, "lr", lr));
        let total = losses
            .terms
            .iter()
            .find(|t| t.0 == "loss/total")
            .map_or(f32::NAN, |t| t.1);
        on_step(&StepReport {
            step: step + 1,
            loss: total,
        });
        let done = step + 1;
        if done % config.checkpoint_every.max(1) == 0 || done == config.steps {
            // Weights, optimiser state and sampler state, atomically.
            let _span = tracing::info_span!("train checkpoint", step = done).entered();
            let state = TrainState {
                step: done,
                sampler_state: sampler.state(),
                dataset_version: manifest.version,
            };
            save_checkpoint(out, &model, ema.as_ref(), optim.to_record(), &state)?;
            commit_metrics(&metrics_ds, &run_id, std::mem::take(&mut pending))?;
        }
    }
    commit_run(
        &metrics_ds,
        &run_id,
        if pseudo.is_some() {
            "student"
        } else {
            "teacher"
        },
        dataset,
        manifest.version,
        &resolved,
        config.seed,
        out,
    )?;
    Ok(model)
}

pub(crate) fn commit_metrics(
    ds: &Dataset,
    run_id: &str,
    rows: Vec<(usize, &'static str, f64)>,
) -> Result<()> {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
    };
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

#[allow(clippy::too_many_arguments)]
pub(crate) fn commit_run(
    ds: &Dataset,
    run_id: &str,
    role: &str,
    data: &Dataset,
    version: u64,
    config: &str,
    seed: u64,
    out: &Path,
) -> Result<()> {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
    let now = now_ns();
    let s = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v])) };
    let cols: Vec<ArrayRef> = vec![
        s(run_id),
        s(role),
        s(&data.location()),
        Arc::new(Int64Array::from(vec![version as i64])),
        s(config),
        s(&blake3::hash(config.as_bytes()).to_hex()),
        s(CODE_VERSION),
        Arc::new(Int64Array::from(vec![seed as i64])),
        s(BACKEND_NAME),
        Arc::new(TimestampNanosecondArray::from(vec![now]).with_timezone("UTC")),
        Arc::new(TimestampNanosecondArray::from(vec![Some(now)]).with_timezone("UTC")),
        s("finished"),
        s(&out.join("latest").display().to_string()),
    ];
    let batch = RecordBatch::try_new(Table::Runs.schema(), cols)?;
    let mut tx = ds.begin(format!("train {run_id}: run"))?;
    tx.append(Table::Runs, batch)?;
    tx.commit()?;
    Ok(())
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
            spatialsv_pipeline::to_toml(&cfg).unwrap(),
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
        let (reloaded, _) = load_model(&dir.path().join("runs/a")).unwrap();
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
