//! Throughput of the model on this machine's backend: inference and training clips/s, the
//! achieved GFLOP/s against the model's counted FLOPs, and a plain matrix product through the
//! same backend in the same process (the achievable peak the model's figure is a fraction of,
//! so the ratio means the same on any machine). `spatialsv bench` and the `throughput` bench
//! target run it; docs/performance.md records the figures.

use std::time::Instant;

use burn::optim::AdamWConfig;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Tensor};
use serde::Serialize;

use crate::loss::{LossConfig, Targets};
use crate::model::{SpatialSv, SpatialSvConfig};
use crate::training::train_step;
use crate::{BACKEND_NAME, Backend, Preset, TrainBackend, default_device};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Model preset.
    pub preset: Preset,
    /// Clips per batch.
    pub batch: usize,
    /// Frames per clip.
    pub frames: usize,
    /// Timed iterations of each kind (after one warm-up).
    pub steps: usize,
    /// Side of the square matrices of the peak measurement (0: skip it).
    pub matmul: usize,
}

/// What was measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Backend name.
    pub backend: &'static str,
    /// Model preset.
    pub preset: String,
    /// Clips per batch.
    pub batch: usize,
    /// Frames per clip.
    pub frames: usize,
    /// Input size (height, width).
    pub image: [usize; 2],
    /// Counted forward FLOPs per clip.
    pub forward_flops_per_clip: f64,
    /// f32 matrix product through the backend, GFLOP/s (None when skipped).
    pub matmul_gflops: Option<f64>,
    /// Side of that product.
    pub matmul_n: usize,
    /// Forward-only clips/s.
    pub inference_clips_per_s: f64,
    /// Forward, backward and AdamW clips/s.
    pub training_clips_per_s: f64,
}

impl BenchReport {
    /// Achieved inference GFLOP/s.
    pub fn inference_gflops(&self) -> f64 {
        self.inference_clips_per_s * self.forward_flops_per_clip / 1e9
    }

    /// Achieved training GFLOP/s (a step counted as 3x the forward pass).
    pub fn training_gflops(&self) -> f64 {
        3.0 * self.training_clips_per_s * self.forward_flops_per_clip / 1e9
    }

    /// The report as lines for a terminal.
    pub fn lines(&self) -> Vec<String> {
        let of_peak = |g: f64| match self.matmul_gflops {
            Some(p) => format!(", {:.1}% of the matmul peak", 100.0 * g / p),
            None => String::new(),
        };
        let mut out = vec![
            format!(
                "{} preset on {}: batch {} clips x {} frames at {}x{}",
                self.preset, self.backend, self.batch, self.frames, self.image[1], self.image[0]
            ),
            format!(
                "  counted forward FLOPs per clip: {:.3} GFLOP",
                self.forward_flops_per_clip / 1e9
            ),
        ];
        if let Some(p) = self.matmul_gflops {
            out.push(format!(
                "  matmul {n}x{n}x{n} through the backend: {p:.1} GFLOP/s",
                n = self.matmul_n
            ));
        }
        out.push(format!(
            "  inference: {:8.2} clips/s, {:8.1} GFLOP/s achieved{}",
            self.inference_clips_per_s,
            self.inference_gflops(),
            of_peak(self.inference_gflops())
        ));
        out.push(format!(
            "  training:  {:8.2} clips/s, {:8.1} GFLOP/s achieved (3x forward counted){}",
            self.training_clips_per_s,
            self.training_gflops(),
            of_peak(self.training_gflops())
        ));
        out
    }
}

/// GFLOP/s of an `n`^3 f32 matrix product through the backend. The `reps` products are
/// queued and their sums read back once at the end, so an asynchronous backend (a GPU) is
/// timed to completion without paying a device round trip per product.
pub fn matmul_gflops(n: usize, reps: usize) -> f64 {
    matmul_gflops_on::<Backend>(&default_device(), n, reps)
}

/// [`matmul_gflops`] through any backend `B`.
pub fn matmul_gflops_on<B: burn::tensor::backend::Backend>(
    device: &B::Device,
    n: usize,
    reps: usize,
) -> f64 {
    let a = Tensor::<B, 2>::random([n, n], Distribution::Normal(0.0, 1.0), device);
    let b = Tensor::<B, 2>::random([n, n], Distribution::Normal(0.0, 1.0), device);
    let _ = a.clone().matmul(b.clone()).sum().into_data(); // warm-up (and kernel selection)
    let reps = reps.max(1);
    let t = Instant::now();
    let mut total = a.clone().matmul(b.clone()).sum();
    for _ in 1..reps {
        total = total + a.clone().matmul(b.clone()).sum();
    }
    let _ = total.into_data();
    2.0 * (n as f64).powi(3) * reps as f64 / t.elapsed().as_secs_f64() / 1e9
}

/// Runs the measurements on this build's backend.
pub fn run(opts: &BenchOptions) -> BenchReport {
    run_on::<TrainBackend>(&default_device(), BACKEND_NAME, opts)
}

/// Runs the measurements on any autodiff backend `B` (inference on its inner backend): the
/// same model and steps, so other burn backends can be compared with this build's in one
/// process (the `backends` bench target).
pub fn run_on<B: AutodiffBackend>(
    device: &B::Device,
    backend: &'static str,
    opts: &BenchOptions,
) -> BenchReport {
    let cfg: SpatialSvConfig = opts.preset.model();
    let (b, v, steps) = (opts.batch.max(1), opts.frames.max(1), opts.steps.max(1));
    let (h, w) = (cfg.image_height, cfg.image_width);
    let matmul_gflops =
        (opts.matmul > 0).then(|| matmul_gflops_on::<B::InnerBackend>(device, opts.matmul, 5));

    let model = cfg.init::<B::InnerBackend>(device);
    let images = Tensor::<B::InnerBackend, 5>::random(
        [b, v, 3, h, w],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let _ = model.forward(images.clone()).depth.into_data(); // warm-up
    let t = Instant::now();
    for _ in 0..steps {
        let _ = model.forward(images.clone()).depth.into_data();
    }
    let inference = b as f64 * steps as f64 / t.elapsed().as_secs_f64();

    let mut model: SpatialSv<B> = cfg.init(device);
    let mut optim = AdamWConfig::new().init::<B, SpatialSv<B>>();
    let images = Tensor::<B, 5>::random([b, v, 3, h, w], Distribution::Normal(0.0, 1.0), device);
    let targets = Targets::labeled(
        Tensor::random([b, v, h, w], Distribution::Uniform(0.5, 2.0), device),
        Tensor::random([b, v, 6, h, w], Distribution::Normal(0.0, 1.0), device),
        Tensor::random([b, v, 3, h, w], Distribution::Normal(0.0, 1.0), device),
        Tensor::ones([b, v, h, w], device),
    );
    let loss = LossConfig::new();
    let mut elapsed = 0.0;
    for s in 0..=steps {
        let t = Instant::now();
        // train_step reads every loss term back, so each step is timed to completion.
        let (m, _) = train_step(model, &mut optim, images.clone(), &targets, &loss, 1e-4, s)
            .expect("random targets give finite losses");
        model = m;
        if s > 0 {
            elapsed += t.elapsed().as_secs_f64(); // step 0 is the warm-up
        }
    }
    BenchReport {
        backend,
        preset: opts.preset.to_string(),
        batch: b,
        frames: v,
        image: [h, w],
        forward_flops_per_clip: cfg.forward_flops(v),
        matmul_gflops,
        matmul_n: opts.matmul,
        inference_clips_per_s: inference,
        training_clips_per_s: b as f64 * steps as f64 / elapsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bench runs end to end on a tiny input and reports positive, consistent figures.
    #[test]
    fn bench_reports_consistent_figures() {
        let _rng = crate::backend::rng_guard();
        let r = run(&BenchOptions {
            preset: Preset::Tiny,
            batch: 1,
            frames: 2,
            steps: 1,
            matmul: 64,
        });
        assert!(r.inference_clips_per_s > 0.0 && r.training_clips_per_s > 0.0);
        assert!(r.matmul_gflops.is_some_and(|g| g > 0.0));
        assert_eq!(r.image, [64, 80]);
        let lines = r.lines();
        assert!(lines[0].starts_with("tiny preset on"), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("of the matmul peak")));
        let g = r.training_gflops() / r.training_clips_per_s;
        assert!((g - 3.0 * r.forward_flops_per_clip / 1e9).abs() < 1e-9);
    }
}
