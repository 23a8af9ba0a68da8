//! `spatialsv bench --mllm`: the multimodal model's throughput, questions answered (one
//! greedy decoding step each) and trained per second, and the achieved GFLOP/s against the
//! model's counted FLOPs ([`MllmModelConfig::forward_flops`]; training counted as three
//! forward passes with the 3D heads), beside an f32 matrix product in the same process.

use std::time::Instant;

use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::{Distribution, Int, Tensor};
use serde::Serialize;

use super::data::text_loss;
use super::model::{MllmModelConfig, SpatialMllm};
use crate::backend::{BACKEND_NAME, Backend, TrainBackend, default_device};
use crate::loss::{LossConfig, Targets, normalize_targets, spatial_loss};

/// What the multimodal bench measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MllmBench {
    /// Backend.
    pub backend: &'static str,
    /// Samples per batch.
    pub batch: usize,
    /// Views per sample.
    pub views: usize,
    /// Text tokens per sample.
    pub text: usize,
    /// Questions answered per second (one decoding step, no 3D heads).
    pub answered_per_s: f64,
    /// Questions trained per second (text + 3D losses, backward, AdamW).
    pub trained_per_s: f64,
    /// Counted FLOPs of one answering forward pass.
    pub answer_flops: f64,
    /// Counted FLOPs of one forward pass with the 3D heads.
    pub train_forward_flops: f64,
    /// GFLOP/s of the matrix product.
    pub matmul_gflops: f64,
}

impl MllmBench {
    /// Report lines.
    pub fn lines(&self) -> Vec<String> {
        let answer = self.answered_per_s * self.answer_flops / 1e9;
        let train = self.trained_per_s * 3.0 * self.train_forward_flops / 1e9;
        vec![
            format!(
                "multimodal model on {}: batch {}, {} views, {} text tokens",
                self.backend, self.batch, self.views, self.text
            ),
            format!(
                "answering: {:.1} questions/s (one decoding step), {answer:.2} GFLOP/s ({:.1}% of the matmul peak)",
                self.answered_per_s,
                100.0 * answer / self.matmul_gflops.max(1e-9)
            ),
            format!(
                "training: {:.1} questions/s (text + 3D), {train:.2} GFLOP/s ({:.1}% of the matmul peak)",
                self.trained_per_s,
                100.0 * train / self.matmul_gflops.max(1e-9)
            ),
            format!(
                "f32 matmul 1024^3 in the same process: {:.2} GFLOP/s",
                self.matmul_gflops
            ),
        ]
    }
}

/// Runs the bench on the study's model sizes (48x32 images, head width 16, a 200-word
/// vocabulary) with random inputs.
pub fn run(batch: usize, views: usize, steps: usize) -> MllmBench {
    let (b, v, steps, t) = (batch.max(1), views.max(1), steps.max(1), 28);
    let cfg = MllmModelConfig::new(32, 48, 8, 64, 2, 96, 4, 4, 16, 200, v, 48);
    let device = default_device();
    let matmul = crate::bench::matmul_gflops(1024, 5);
    let model: SpatialMllm<Backend> = cfg.init(&device);
    let images =
        Tensor::<Backend, 5>::random([b, v, 3, 32, 48], Distribution::Normal(0.0, 1.0), &device);
    let tokens =
        Tensor::<Backend, 2, Int>::random([b, t], Distribution::Uniform(5.0, 199.0), &device);
    let _ = model
        .forward(images.clone(), tokens.clone(), false)
        .logits
        .into_data();
    let clock = Instant::now();
    for _ in 0..steps {
        let _ = model
            .forward(images.clone(), tokens.clone(), false)
            .logits
            .into_data();
    }
    let answered = (b * steps) as f64 / clock.elapsed().as_secs_f64();

    let mut model: SpatialMllm<TrainBackend> = cfg.init(&device);
    let mut optim = AdamWConfig::new().init::<TrainBackend, SpatialMllm<TrainBackend>>();
    let images = Tensor::<TrainBackend, 5>::random(
        [b, v, 3, 32, 48],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let tokens =
        Tensor::<TrainBackend, 2, Int>::random([b, t], Distribution::Uniform(5.0, 199.0), &device);
    let weights = Tensor::<TrainBackend, 2>::ones([b, t], &device);
    let targets = normalize_targets(Targets::labeled(
        Tensor::random([b, v, 32, 48], Distribution::Uniform(0.5, 2.0), &device),
        Tensor::random([b, v, 6, 32, 48], Distribution::Normal(0.0, 1.0), &device),
        Tensor::random([b, v, 3, 32, 48], Distribution::Normal(0.0, 1.0), &device),
        Tensor::ones([b, v, 32, 48], &device),
    ))
    .0;
    let loss = LossConfig::new();
    let mut elapsed = 0.0;
    for s in 0..=steps {
        let clock = Instant::now();
        let out = model.forward(images.clone(), tokens.clone(), true);
        let mut total = text_loss(out.logits, tokens.clone(), weights.clone());
        if let Some(p) = &out.prediction {
            total = total + spatial_loss(&loss, p, &targets).total;
        }
        let _: f32 = total.clone().into_scalar();
        let grads = GradientsParams::from_grads(total.backward(), &model);
        model = optim.step(1e-4, model, grads);
        if s > 0 {
            elapsed += clock.elapsed().as_secs_f64();
        }
    }
    MllmBench {
        backend: BACKEND_NAME,
        batch: b,
        views: v,
        text: t,
        answered_per_s: answered,
        trained_per_s: (b * steps) as f64 / elapsed,
        answer_flops: cfg.forward_flops(v, t, false),
        train_forward_flops: cfg.forward_flops(v, t, true),
        matmul_gflops: matmul,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_runs_and_counts_the_heads() {
        let _rng = crate::backend::rng_guard();
        let r = run(1, 2, 1);
        assert!(r.answered_per_s > 0.0 && r.trained_per_s > 0.0);
        assert!(r.train_forward_flops > r.answer_flops);
        assert!(r.lines()[1].contains("questions/s"));
    }
}
