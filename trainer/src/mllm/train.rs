//! The multimodal model's training loop (`spatialsv train --config configs/mllm.toml`).
//!
//! A run directory like the 3D model's (`config.toml`, checkpoints, `latest`, the metrics and
//! runs tables), with `mllm.json` (the model sizes), `vocab.json` and `tokenizer.json`. Every
//! step draws `batch_size - spatial` questions of the QA rooms and `spatial` text-free clips;
//! the loss is the answer tokens' cross-entropy, plus `loss_3d` times the 3D losses of the
//! taps' predictions on every sample (when `targets` is not empty), plus `distill_weight`
//! times the distillation loss (when `distill`). `--resume` continues exactly.

use std::path::Path;
use std::sync::Arc;

use burn::config::Config as _;
use burn::data::dataloader::batcher::Batcher;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use spatialsv_schemas::Split;
use spatialsv_store::{Dataset, FrameRef, FrameStore};

use super::config::{MllmConfig, SpatialOnly, Target3d};
use super::data::{
    Sample, encode_item, frames_of, ids_tensor, qa_rooms, read_qa, text_loss, text_rows,
};
use super::load_tokenizer_or_build;
use super::model::{MllmModelConfig, SpatialMllm};
use super::tokenizer::PAD;
use crate::backend::{Backend as Inner, TrainBackend as B, default_device};
use crate::data::{Augment, ClipBatch, ClipBatcher, ClipSample, load_clip};
use crate::error::{Result, TrainError};
use crate::loss::{LossConfig, spatial_loss};
use crate::model::SpatialSv;
use crate::pseudo::{PseudoBatch, load_pseudo_set, pseudo_batch};
use crate::run::{Loop, Resumed, Run, RunDir, RunKind, RunRole, Schedule, Seeds, adamw, io_err};

/// What a run trained on, reported when it starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MllmPlan {
    /// Training questions used.
    pub questions: usize,
    /// Rooms whose questions are used.
    pub qa_rooms: usize,
    /// Text-free clips available (rooms) or pseudo-labelled groups (videos).
    pub spatial_clips: usize,
}

impl MllmPlan {
    /// The line a multimodal run prints when it starts.
    pub fn line(&self) -> String {
        format!(
            "multimodal run on {} training questions from {} rooms; {} text-free clips or groups",
            self.questions, self.qa_rooms, self.spatial_clips
        )
    }
}

/// Progress of a running loop.
#[derive(Debug, Clone, PartialEq)]
pub struct MllmStep {
    /// Steps done.
    pub step: usize,
    /// Total loss.
    pub loss: f32,
    /// Text loss.
    pub text: f32,
}

impl MllmStep {
    /// The line `train` ends with (as [`crate::train::StepReport::summary`], with the text
    /// loss).
    pub fn summary(last: Option<&MllmStep>, steps: usize, seconds: f64, out: &Path) -> String {
        match last {
            Some(r) => format!(
                "trained to step {} in {seconds:.1}s, last loss {:.4} (text {:.4}); checkpoints and metrics in {}",
                r.step,
                r.loss,
                r.text,
                out.display()
            ),
            None => crate::train::already_done(steps, out),
        }
    }
}

/// The loss weights for the chosen 3D targets (depth: depth and its gradients; points:
/// points and normals; rays: rays).
pub fn loss_for(targets: &[Target3d]) -> LossConfig {
    let on = |t: Target3d| if targets.contains(&t) { 1.0 } else { 0.0 };
    LossConfig::new()
        .with_depth(on(Target3d::Depth))
        .with_depth_gradient(on(Target3d::Depth))
        .with_points(on(Target3d::Points))
        .with_normals(0.5 * on(Target3d::Points))
        .with_rays(on(Target3d::Rays))
}

/// Rotates the 3D targets of `samples` by one (sample k gets sample k+1's), images kept: the
/// shuffled-targets control.
fn shuffle_targets(samples: &mut [ClipSample]) {
    if samples.len() < 2 {
        return;
    }
    let first = samples[0].clone();
    let n = samples.len();
    for k in 0..n {
        let src = if k + 1 < n {
            samples[k + 1].clone()
        } else {
            first.clone()
        };
        let s = &mut samples[k];
        s.depth = src.depth;
        s.points = src.points;
        s.rays = src.rays;
        s.valid = src.valid;
        s.geometry = src.geometry;
    }
}

/// Trains the multimodal model on `dataset` into `out`.
pub fn train_mllm(
    dataset: &Dataset,
    config: &MllmConfig,
    out: &Path,
    resume: bool,
    mut on_start: impl FnMut(&MllmPlan),
    mut on_step: impl FnMut(&MllmStep),
) -> Result<SpatialMllm<B>> {
    config.validate()?;
    let device = default_device();
    let mut run = Run::claim(
        out,
        spatialsv_store::to_toml(config)?,
        resume,
        Seeds::new(config.seed, Loop::Mllm),
        Schedule {
            steps: config.steps,
            checkpoint_every: config.checkpoint_every,
        },
    )?;

    let manifest = dataset.latest()?;
    let store = Arc::new(FrameStore::new(
        dataset.clone(),
        &manifest,
        config.cache_row_groups,
    ));
    let index = store.frame_index()?;
    let all = read_qa(dataset, &manifest, None)?;
    if all.is_empty() {
        return Err(TrainError::User(format!(
            "{} has no questions: run `spatialsv qa --dataset {}` first",
            dataset.location(),
            dataset.location()
        )));
    }
    let tok = load_tokenizer_or_build(run.dir(), resume, &all)?;
    // Rooms: the train split's labeled scenes; the QA share of them by hash.
    let train_scenes: Vec<String> = store
        .labeled_scenes(&manifest, Split::Train)?
        .into_keys()
        .collect();
    let rooms = qa_rooms(&train_scenes, config.qa_share);
    let mut items: Vec<_> = all
        .iter()
        .filter(|q| q.split == Split::Train && rooms.contains(&q.scene_id))
        .filter(|q| q.frames.len() == config.views)
        .filter_map(|q| frames_of(&index, &q.scene_id, &q.frames).map(|f| (q.clone(), f)))
        .collect();
    if config.max_questions > 0 {
        items.truncate(config.max_questions);
    }
    if items.is_empty() {
        return Err(TrainError::User(format!(
            "no training questions with {} views in {} (generate them with `spatialsv qa --views {}`)",
            config.views,
            dataset.location(),
            config.views
        )));
    }
    let encoded: Vec<(Vec<usize>, Vec<usize>)> = items
        .iter()
        .map(|(q, _)| encode_item(&tok, q))
        .collect::<Result<_>>()?;
    if let Some(long) = encoded.iter().map(|(p, a)| p.len() + a.len()).max()
        && long > config.max_text
    {
        return Err(TrainError::User(format!(
            "a question and answer take {long} tokens, more than max_text = {}",
            config.max_text
        )));
    }
    let (v, h, w) = (config.views, config.image_height, config.image_width);
    let n_spatial = config.spatial_per_batch();
    let room_clips: Vec<Vec<FrameRef>> = if config.spatial_only == SpatialOnly::Rooms {
        let scenes = store.labeled_scenes(&manifest, Split::Train)?;
        scenes
            .iter()
            .filter(|(s, _)| !rooms.contains(s))
            .flat_map(|(_, frames)| {
                spatialsv_qa::clips(frames.len(), v)
                    .into_iter()
                    .filter(|c| c.len() == v)
                    .map(|c| c.iter().map(|i| frames[*i]).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            })
            .collect()
    } else {
        Vec::new()
    };
    if config.spatial_only == SpatialOnly::Rooms && room_clips.is_empty() {
        return Err(TrainError::User(
            "spatial_only = \"rooms\": the training rooms outside the QA share have no clip of `views` labeled frames".into(),
        ));
    }
    // Pseudo-labels are stored at the teacher's image size: loaded there, resampled to ours.
    let label_size = super::data::pseudo_label_size(dataset, &manifest)?.unwrap_or((w, h));
    let pseudo = if config.spatial_only == SpatialOnly::Videos {
        Some(load_pseudo_set(
            dataset,
            &manifest,
            &store,
            &config.pseudo_labels.parse().unwrap_or_default(),
            v,
            label_size.0,
            label_size.1,
            0,
        )?)
    } else {
        None
    };
    on_start(&MllmPlan {
        questions: items.len(),
        qa_rooms: rooms.len(),
        spatial_clips: room_clips.len() + pseudo.as_ref().map_or(0, |p| p.clips.len()),
    });

    // The 3D teacher for distillation, on the inference backend (no gradient).
    let teacher: Option<SpatialSv<Inner>> = match (&config.distill, &config.distill_from) {
        (true, Some(dir)) => Some(crate::run::load_inference_model(&RunDir::new(dir))?.0),
        _ => None,
    };
    let teacher_width = match &config.distill_from {
        Some(dir) if config.distill => {
            let sizes = RunDir::new(dir).sizes_path(RunKind::Spatial);
            crate::model::SpatialSvConfig::load(&sizes)
                .map_err(|e| TrainError::corrupt(&sizes, "unreadable model config", e))?
                .width
        }
        _ => 64,
    };
    let model_cfg = MllmModelConfig::new(
        h,
        w,
        config.patch,
        config.vision_width,
        config.vision_layers,
        config.width,
        config.layers,
        config.heads,
        config.head_width,
        tok.len(),
        config.views,
        config.max_text,
    )
    .with_teacher_width(teacher_width);
    run.write_config()?;
    let sizes = run.dir().sizes_path(RunKind::Mllm);
    model_cfg
        .save(&sizes)
        .map_err(|e| io_err("writing", &sizes, e))?;

    let model =
        crate::backend::seeded_init::<B, _>(&device, config.seed, || model_cfg.init::<B>(&device));
    let optim = adamw::<SpatialMllm<B>>(config.weight_decay, config.grad_clip_norm);
    let Resumed {
        mut model,
        mut optim,
        start,
        mut sampler,
        ..
    } = run.resume(model, optim)?;
    if config.freeze_vision {
        model = model.freeze_vision();
    }

    let use_3d = !config.targets.is_empty();
    let loss_cfg =
        loss_for(&config.targets).with_trim_fraction(if pseudo.is_some() { 0.1 } else { 0.0 });
    let batcher = ClipBatcher {
        frames: v,
        height: h,
        width: w,
    };
    let pad = tok.id(PAD).unwrap_or(0);
    let light = Augment {
        colour: 0.1,
        blur: 0.0,
    };
    let seeds = run.seeds();
    for step in start..config.steps {
        let step_seed = seeds.step(step);
        let n_qa = config.batch_size - n_spatial;
        let picks: Vec<usize> = (0..n_qa)
            .map(|_| (sampler.next_u64() % items.len() as u64) as usize)
            .collect();
        let mut clips: Vec<ClipSample> = picks
            .iter()
            .enumerate()
            .map(|(k, i)| load_clip(&store, &items[*i].1, w, h, light, step_seed ^ k as u64))
            .collect::<Result<_>>()?;
        if config.shuffle_targets {
            shuffle_targets(&mut clips);
        }
        let mut samples: Vec<Sample> = clips
            .into_iter()
            .zip(&picks)
            .map(|(clip, i)| Sample {
                clip,
                text: Some(encoded[*i].clone()),
            })
            .collect();
        if n_spatial > 0 {
            let extra: Vec<ClipSample> = match &pseudo {
                Some(set) => pseudo_batch(
                    set,
                    &store,
                    &PseudoBatch {
                        clips: n_spatial,
                        size: (v, label_size.1, label_size.0),
                        max_gap: 3,
                        strong: light,
                        geometry: false,
                        cutmix: 0.0,
                        flip: 0.0,
                        seed: step_seed,
                    },
                    &mut sampler,
                )?
                .iter()
                .map(|c| super::data::resize_clip(c, label_size, (w, h)))
                .collect(),
                None => (0..n_spatial)
                    .map(|k| {
                        let c =
                            &room_clips[(sampler.next_u64() % room_clips.len() as u64) as usize];
                        load_clip(&store, c, w, h, light, step_seed ^ (1000 + k as u64))
                    })
                    .collect::<Result<_>>()?,
            };
            samples.extend(extra.into_iter().map(|clip| Sample { clip, text: None }));
        }
        let texts: Vec<Option<(Vec<usize>, Vec<usize>)>> =
            samples.iter().map(|s| s.text.clone()).collect();
        let (tokens, targets, weights, t) = text_rows(&texts, pad);
        let b = samples.len();
        let ClipBatch {
            images,
            targets: targets_3d,
        } = batcher.batch(samples.into_iter().map(|s| s.clip).collect(), &device);
        let teacher_pooled = teacher.as_ref().map(|tm| {
            let [th, tw] = tm.image_size();
            let inner = images.clone().inner();
            let resized =
                crate::resize::resize_by_interpolate(inner.reshape([b * v, 3, h, w]), [th, tw])
                    .reshape([b, v, 3, th, tw]);
            Tensor::<B, 3>::from_inner(tm.pooled_features(resized))
        });
        let outp = model.forward(images, ids_tensor::<B>(tokens, b, t, &device), use_3d);
        let l_text = text_loss(
            outp.logits,
            ids_tensor::<B>(targets, b, t, &device),
            Tensor::from_data(TensorData::new(weights, [b, t]), &device),
        );
        let mut total = l_text.clone();
        let mut terms: Vec<(&'static str, Tensor<B, 1>)> = vec![("loss/text", l_text)];
        if let Some(p) = &outp.prediction {
            let l3 = spatial_loss(&loss_cfg, p, &targets_3d);
            total = total + l3.total.clone() * config.loss_3d;
            terms.push(("loss/3d", l3.total));
        }
        if let Some(tp) = teacher_pooled {
            let a = outp.pooled;
            let dot = (a.clone() * tp.clone()).sum_dim(2);
            let na = a.powf_scalar(2.0).sum_dim(2).sqrt().clamp_min(1e-6);
            let nb = tp.powf_scalar(2.0).sum_dim(2).sqrt().clamp_min(1e-6);
            let l_d = (dot / (na * nb)).mean().neg() + 1.0;
            total = total + l_d.clone() * config.distill_weight;
            terms.push(("loss/distill", l_d));
        }
        terms.push(("loss/total", total.clone()));
        let mut values = Vec::new();
        for (name, v) in &terms {
            let x: f32 = v.clone().into_scalar().elem();
            if !x.is_finite() {
                return Err(crate::training::NonFiniteLoss {
                    step,
                    term: name,
                    value: x,
                }
                .into());
            }
            values.push((*name, x));
        }
        let lr = config.lr_at(step);
        let grads = GradientsParams::from_grads(total.backward(), &model);
        model = optim.step(lr, model, grads);
        run.record(
            step,
            values
                .iter()
                .map(|(name, x)| (*name, f64::from(*x)))
                .chain([("lr", lr)]),
        );
        let get = |n: &str| values.iter().find(|v| v.0 == n).map_or(f32::NAN, |v| v.1);
        on_step(&MllmStep {
            step: step + 1,
            loss: get("loss/total"),
            text: get("loss/text"),
        });
        run.end_step(
            step + 1,
            &model,
            None,
            || optim.to_record(),
            &sampler,
            manifest.version,
        )?;
    }
    run.finish(RunRole::Mllm, dataset, manifest.version)?;
    Ok(model)
}
