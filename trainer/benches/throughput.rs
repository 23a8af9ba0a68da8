//! Training and inference throughput of the SpatialSV model. Run:
//! `cargo bench -p spatialsv-trainer --bench throughput` (`--features spatialsv-trainer/cuda`
//! on a GPU machine; options `-- --preset tiny|small|base --batch N --frames V --steps N`).
//!
//! Reports clips/s for inference (forward only) and training (forward, backward, AdamW), the
//! model's counted FLOPs per clip (`SpatialSvConfig::forward_flops`; training counted as 3x),
//! and the achieved GFLOP/s, so the backend's efficiency can be compared across machines.

use std::time::Instant;

use burn::optim::AdamWConfig;
use burn::tensor::{Distribution, Tensor};
use spatialsv_trainer::loss::{LossConfig, Targets};
use spatialsv_trainer::model::{SpatialSv, SpatialSvConfig};
use spatialsv_trainer::training::train_step;
use spatialsv_trainer::{BACKEND_NAME, Backend, TrainBackend, default_device};

fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1).cloned())
}

fn main() {
    let preset = arg("--preset").unwrap_or_else(|| "tiny".into());
    let cfg = match preset.as_str() {
        "small" => SpatialSvConfig::small(),
        "base" => SpatialSvConfig::base(),
        _ => SpatialSvConfig::tiny(),
    };
    let b: usize = arg("--batch").and_then(|v| v.parse().ok()).unwrap_or(2);
    let v: usize = arg("--frames").and_then(|v| v.parse().ok()).unwrap_or(3);
    let steps: usize = arg("--steps").and_then(|v| v.parse().ok()).unwrap_or(10);
    let (h, w) = (cfg.image_height, cfg.image_width);
    let device = default_device();
    let flops = cfg.forward_flops(v);
    println!("== {preset} preset on {BACKEND_NAME}: batch {b} clips x {v} frames at {w}x{h}");
    println!("  counted forward FLOPs per clip: {:.3} GFLOP", flops / 1e9);

    // Inference.
    let model = cfg.init::<Backend>(&device);
    let images =
        Tensor::<Backend, 5>::random([b, v, 3, h, w], Distribution::Normal(0.0, 1.0), &device);
    let _ = model.forward(images.clone()).depth.into_data(); // warm-up
    let t = Instant::now();
    for _ in 0..steps {
        let _ = model.forward(images.clone()).depth.into_data();
    }
    let dt = t.elapsed().as_secs_f64() / steps as f64;
    println!(
        "  inference: {:8.2} clips/s, {:8.1} GFLOP/s achieved",
        b as f64 / dt,
        b as f64 * flops / dt / 1e9
    );

    // Training steps.
    let mut model: SpatialSv<TrainBackend> = cfg.init(&device);
    let mut optim = AdamWConfig::new().init::<TrainBackend, SpatialSv<TrainBackend>>();
    let images =
        Tensor::<TrainBackend, 5>::random([b, v, 3, h, w], Distribution::Normal(0.0, 1.0), &device);
    let targets = Targets::labeled(
        Tensor::random([b, v, h, w], Distribution::Uniform(0.5, 2.0), &device),
        Tensor::random([b, v, 6, h, w], Distribution::Normal(0.0, 1.0), &device),
        Tensor::random([b, v, 3, h, w], Distribution::Normal(0.0, 1.0), &device),
        Tensor::ones([b, v, h, w], &device),
    );
    let loss = LossConfig::new();
    let (m, _) =
        train_step(model, &mut optim, images.clone(), &targets, &loss, 1e-4, 0).expect("step");
    model = m;
    let t = Instant::now();
    for s in 0..steps {
        let (m, _) = train_step(
            model,
            &mut optim,
            images.clone(),
            &targets,
            &loss,
            1e-4,
            s + 1,
        )
        .expect("step");
        model = m;
    }
    let dt = t.elapsed().as_secs_f64() / steps as f64;
    println!(
        "  training:  {:8.2} clips/s, {:8.1} GFLOP/s achieved (3x forward counted)",
        b as f64 / dt,
        3.0 * b as f64 * flops / dt / 1e9
    );
}
