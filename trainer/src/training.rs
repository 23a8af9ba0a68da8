//! One optimisation step, written out so each part is visible (in the shape of burn's
//! `custom-training-loop` example): forward, loss terms, a finiteness check that names the
//! step and the term, backward, optimiser step.
//! The loop around it (data, schedule, checkpoints, metrics) is [`crate::train`].

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};

use crate::loss::{LossConfig, Targets, spatial_loss};
use crate::model::SpatialSv;

/// A training step that produced a non-finite loss: which step, which term, what value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "training diverged at step {step}: {term} is {value}; lower the learning rate or check the inputs"
)]
pub struct NonFiniteLoss {
    /// Optimiser step.
    pub step: usize,
    /// Loss term name.
    pub term: &'static str,
    /// Its value.
    pub value: f32,
}

/// Loss values of one step, for logging.
#[derive(Debug, Clone, PartialEq)]
pub struct StepLosses {
    /// (name, value) of every term.
    pub terms: Vec<(&'static str, f32)>,
}

/// Runs one step on `images` `[b, v, 3, h, w]` against normalised `targets`.
pub fn train_step<B, O>(
    model: SpatialSv<B>,
    optim: &mut O,
    images: Tensor<B, 5>,
    targets: &Targets<B>,
    loss_cfg: &LossConfig,
    lr: f64,
    step: usize,
) -> Result<(SpatialSv<B>, StepLosses), NonFiniteLoss>
where
    B: AutodiffBackend,
    SpatialSv<B>: AutodiffModule<B>,
    O: Optimizer<SpatialSv<B>, B>,
{
    let pred = model.forward(images);
    let terms = spatial_loss(loss_cfg, &pred, targets);
    let mut values = Vec::new();
    for (name, t) in terms.named() {
        let v: f32 = t.into_scalar().elem();
        if !v.is_finite() {
            return Err(NonFiniteLoss {
                step,
                term: name,
                value: v,
            });
        }
        values.push((name, v));
    }
    let grads = terms.total.backward();
    let grads = GradientsParams::from_grads(grads, &model);
    let model = optim.step(lr, model, grads);
    Ok((model, StepLosses { terms: values }))
}

#[cfg(test)]
mod tests {
    use burn::optim::AdamWConfig;
    use burn::tensor::{Distribution, TensorData};

    use super::*;
    use crate::backend::{TrainBackend as B, default_device};
    use crate::loss::{channel_norm, normalize_targets};

    /// A clip of two views of a slanted plane, with depth, points and rays made by hand.
    fn plane_clip(h: usize, w: usize) -> (Tensor<B, 5>, Targets<B>) {
        let device = default_device();
        let f = w as f32;
        let (mut depth, mut pts, mut rays) = (
            Vec::new(),
            vec![0.0f32; 2 * 3 * h * w],
            vec![0.0f32; 2 * 6 * h * w],
        );
        for v in 0..2 {
            for y in 0..h {
                for x in 0..w {
                    let (u, vv) = (
                        (x as f32 + 0.5 - w as f32 / 2.0) / f,
                        (y as f32 + 0.5 - h as f32 / 2.0) / f,
                    );
                    let z = 2.0 + 0.8 * u + 0.3 * v as f32;
                    depth.push(z);
                    let i = y * w + x;
                    let base = v * 3 * h * w;
                    pts[base + i] = u * z;
                    pts[base + h * w + i] = vv * z;
                    pts[base + 2 * h * w + i] = z;
                    let n = (u * u + vv * vv + 1.0).sqrt();
                    let rb = v * 6 * h * w;
                    for (c, val) in [u / n, vv / n, 1.0 / n].iter().enumerate() {
                        rays[rb + (3 + c) * h * w + i] = *val;
                    }
                }
            }
        }
        let t = Targets::labeled(
            Tensor::from_data(TensorData::new(depth, [1, 2, h, w]), &device),
            Tensor::from_data(TensorData::new(rays, [1, 2, 6, h, w]), &device),
            Tensor::from_data(TensorData::new(pts, [1, 2, 3, h, w]), &device),
            Tensor::ones([1, 2, h, w], &device),
        );
        let images =
            Tensor::<B, 5>::random([1, 2, 3, h, w], Distribution::Normal(0.0, 1.0), &device);
        (images, normalize_targets(t).0)
    }

    /// Plain regression error (no confidence weighting) of a prediction.
    fn error(model: &SpatialSv<B>, images: Tensor<B, 5>, t: &Targets<B>) -> f32 {
        let p = model.forward(images);
        let d = (p.depth - t.depth.clone()).abs().mean();
        let pts = channel_norm(p.points - t.points.clone()).mean();
        let r = channel_norm(p.rays - t.rays.clone()).mean();
        (d + pts + r).into_scalar()
    }

    #[test]
    fn overfits_a_single_clip() {
        let _rng = crate::backend::rng_guard();
        let device = default_device();
        let cfg = crate::backend::test_model_config(32, 16);
        let mut model = cfg.init::<B>(&device);
        let (images, targets) = plane_clip(16, 16);
        let before = error(&model, images.clone(), &targets);
        let mut optim = AdamWConfig::new()
            .with_weight_decay(0.0)
            .init::<B, SpatialSv<B>>();
        let loss_cfg = LossConfig::new();
        for step in 0..150 {
            let (m, _) = train_step(
                model,
                &mut optim,
                images.clone(),
                &targets,
                &loss_cfg,
                3e-3,
                step,
            )
            .unwrap();
            model = m;
        }
        let after = error(&model, images, &targets);
        eprintln!("overfit: regression error {before} -> {after}");
        assert!(
            after * 10.0 < before,
            "error fell only from {before} to {after}"
        );
    }

    #[test]
    fn a_non_finite_loss_names_the_step_and_term() {
        let _rng = crate::backend::rng_guard();
        let device = default_device();
        let cfg = crate::backend::test_model_config(16, 8);
        let model = cfg.init::<B>(&device);
        let (images, mut targets) = plane_clip(16, 16);
        targets.points = targets.points * f32::NAN;
        let mut optim = AdamWConfig::new().init::<B, SpatialSv<B>>();
        let err = train_step(
            model,
            &mut optim,
            images,
            &targets,
            &LossConfig::new(),
            1e-3,
            7,
        )
        .unwrap_err();
        assert_eq!((err.step, err.term), (7, "loss/points"));
        assert!(
            err.to_string()
                .starts_with("training diverged at step 7: loss/points is NaN"),
            "{err}"
        );
    }
}
