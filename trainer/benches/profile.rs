//! Where the time goes: a training step and a labelling batch of a preset, part by part, beside
//! a plain matrix product through the same backend in the same process. Run:
//! `cargo bench -p spatialsv-trainer --bench profile` (options
//! `-- --preset tiny|small|base --batch N --frames V --label-batch N --steps N`).
//!
//! 1. Matmul peak: a 1024^3 f32 product through the backend on all threads and inside a
//!    one-thread rayon pool: the achievable GFLOP/s every other figure is a fraction of.
//! 2. Inference (a labelling batch: `--label-batch` windows of `--frames` views): forward
//!    only, timed part by part with `SpatialSv::forward_marked` (the CPU backend is eager, so
//!    the time between two marks is that part's), with each part's counted FLOPs.
//!    Then the heads' bilinear resizes alone, burn's `interpolate` (the CPU's) against two
//!    matrix products (the GPU's), forward and backward.
//! 3. A training step: data (decode, augment, targets for one batch from a real ingested
//!    synthetic scene), forward on the autodiff backend (part by part), loss, backward and the
//!    optimiser step, with training counted as 3x the forward FLOPs.
//!
//! docs/performance.md records what this printed and what was changed because of it.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::data::dataloader::batcher::Batcher;
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::{Distribution, Tensor};
use common::{num, preset};
use spatialsv_ingest::synth::{SynthOptions, synthesize};
use spatialsv_ingest::{IngestOptions, ScanFormat, ingest_scans, list_scenes};
use spatialsv_schemas::Split;
use spatialsv_store::Dataset;
use spatialsv_store::datagen::SplitMix64;
use spatialsv_trainer::bench::matmul_gflops;
use spatialsv_trainer::data::{
    Augment, ClipBatch, ClipBatcher, ClipDataset, FrameStore, sample_clips,
};
use spatialsv_trainer::loss::{LossConfig, spatial_loss};
use spatialsv_trainer::model::{SpatialSv, SpatialSvConfig};
use spatialsv_trainer::resize::{resize, resize_by_interpolate, resize_by_matmul};
use spatialsv_trainer::{BACKEND_NAME, Backend, TrainBackend, default_device};

/// Time per named part, accumulated over repetitions.
#[derive(Default)]
struct Parts {
    order: Vec<&'static str>,
    time: BTreeMap<&'static str, Duration>,
    last: Option<Instant>,
}

impl Parts {
    fn start(&mut self) {
        self.last = Some(Instant::now());
    }
    fn mark(&mut self, name: &'static str) {
        let now = Instant::now();
        let dt = now - self.last.unwrap_or(now);
        self.last = Some(now);
        if !self.time.contains_key(name) {
            self.order.push(name);
        }
        *self.time.entry(name).or_default() += dt;
    }
    fn total(&self) -> Duration {
        self.time.values().sum()
    }
    /// Prints each part: ms per repetition, share, counted GFLOP and GFLOP/s and % of peak.
    fn print(&self, reps: usize, flops: &BTreeMap<&str, f64>, peak: f64) {
        let total = self.total().as_secs_f64();
        println!(
            "  {:<32} {:>9} {:>6} {:>9} {:>8} {:>7}",
            "part", "ms", "share", "GFLOP", "GFLOP/s", "of peak"
        );
        for name in &self.order {
            let t = self.time[name].as_secs_f64() / reps as f64;
            let share = self.time[name].as_secs_f64() / total;
            match flops.get(name) {
                Some(f) => println!(
                    "  {:<32} {:>9.2} {:>5.1}% {:>9.4} {:>8.1} {:>6.1}%",
                    name,
                    t * 1e3,
                    100.0 * share,
                    f / 1e9,
                    f / t / 1e9,
                    100.0 * f / t / 1e9 / peak
                ),
                None => println!(
                    "  {:<32} {:>9.2} {:>5.1}% {:>9} {:>8} {:>7}",
                    name,
                    t * 1e3,
                    100.0 * share,
                    "-",
                    "-",
                    "-"
                ),
            }
        }
        let all: f64 = flops.values().sum();
        let t = total / reps as f64;
        println!(
            "  {:<32} {:>9.2} {:>5.1}% {:>9.4} {:>8.1} {:>6.1}%",
            "total",
            t * 1e3,
            100.0,
            all / 1e9,
            all / t / 1e9,
            100.0 * all / t / 1e9 / peak
        );
    }
}

fn main() {
    let preset = preset();
    let cfg: SpatialSvConfig = preset.model();
    let b = num("--batch", 2);
    let v = num("--frames", 3);
    let lb = num("--label-batch", 4);
    let steps = num("--steps", 10);
    let (h, w) = (cfg.image_height, cfg.image_width);
    let device = default_device();
    let threads = rayon::current_num_threads();
    println!("== profile: {preset} preset on {BACKEND_NAME}, {threads} rayon threads");

    // 1. The matmul peak, all threads and one.
    let peak = matmul_gflops(1024, 5);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("one-thread pool")
        .install(|| matmul_gflops(1024, 3));
    println!(
        "  matmul 1024^3 through the backend: {peak:.1} GFLOP/s on {threads} threads, {one:.1} GFLOP/s on one"
    );
    let flops_of = |clips: usize, scale: f64| -> BTreeMap<&str, f64> {
        cfg.forward_flops_by_part(v)
            .into_iter()
            .map(|(n, f)| (n, f * clips as f64 * scale))
            .collect()
    };

    // 2. Inference: a labelling batch.
    let model = cfg.init::<Backend>(&device);
    let images =
        Tensor::<Backend, 5>::random([lb, v, 3, h, w], Distribution::Normal(0.0, 1.0), &device);
    let _ = model.forward(images.clone()).depth.into_data(); // warm-up
    let mut parts = Parts::default();
    for _ in 0..steps {
        parts.start();
        let p = model.forward_marked(images.clone(), &mut |n| parts.mark(n));
        let _ = p.depth.into_data();
        parts.mark("outputs: read back");
    }
    println!(
        "\n== inference, {lb} clips x {v} frames at {w}x{h} ({:.1} clips/s)",
        lb as f64 * steps as f64 / parts.total().as_secs_f64()
    );
    parts.print(steps, &flops_of(lb, 1.0), peak);

    // 2b. The heads' resizes, two ways, on the shapes one head resizes (forward, and forward
    // plus backward on the autodiff backend), in this process.
    let (gh, gw) = cfg.grid();
    let f = cfg.head_width;
    let n = lb * v;
    let shapes: Vec<([usize; 4], [usize; 2])> = vec![
        ([n, f, gh, gw], [gh * 4, gw * 4]),
        ([n, f, gh, gw], [gh * 2, gw * 2]),
        ([n, f, gh, gw], [gh.div_ceil(2), gw.div_ceil(2)]),
        ([n, f, gh.div_ceil(2), gw.div_ceil(2)], [gh, gw]),
        ([n, f, gh, gw], [gh * 2, gw * 2]),
        ([n, f, gh * 2, gw * 2], [gh * 4, gw * 4]),
        ([n, f / 2, gh * 4, gw * 4], [h, w]),
    ];
    type Resize<B> = fn(Tensor<B, 4>, [usize; 2]) -> Tensor<B, 4>;
    let methods: [(&str, Resize<Backend>, Resize<TrainBackend>); 3] = [
        (
            "burn interpolate",
            resize_by_interpolate,
            resize_by_interpolate,
        ),
        ("two matmuls", resize_by_matmul, resize_by_matmul),
        ("the model's resize", resize, resize),
    ];
    println!(
        "\n== one head's {} resizes ({n} maps each), ms per head",
        shapes.len()
    );
    let mut base = None;
    for (name, fwd, train) in methods {
        let inputs: Vec<Tensor<Backend, 4>> = shapes
            .iter()
            .map(|(s, _)| Tensor::random(*s, Distribution::Normal(0.0, 1.0), &device))
            .collect();
        let t = Instant::now();
        for _ in 0..steps {
            for (x, (_, size)) in inputs.iter().zip(&shapes) {
                let _ = fwd(x.clone(), *size).into_data();
            }
        }
        let forward = t.elapsed().as_secs_f64() / steps as f64;
        let t = Instant::now();
        for _ in 0..steps {
            for (x, (_, size)) in inputs.iter().zip(&shapes) {
                let x = Tensor::<TrainBackend, 4>::from_inner(x.clone()).require_grad();
                let grads = train(x.clone(), *size).sum().backward();
                let _ = x.grad(&grads).map(|g| g.into_data());
            }
        }
        let both = t.elapsed().as_secs_f64() / steps as f64;
        let (bf, bb) = *base.get_or_insert((forward, both));
        println!(
            "  {name:<18} forward {:7.2} ms ({:.2}x), forward+backward {:7.2} ms ({:.2}x)",
            forward * 1e3,
            bf / forward,
            both * 1e3,
            bb / both
        );
    }

    // 3. Training steps, with the data of a real (synthetic, ingested) scene.
    let dir = tempfile::tempdir().expect("temp dir");
    let world = dir.path().join("world");
    synthesize(
        &world,
        &SynthOptions {
            scenes: 1,
            videos: 0,
            frames: 24,
            ..SynthOptions::default()
        },
        &spatialsv_store::Silent,
    )
    .expect("synth");
    let ds = Dataset::create(dir.path().join("ds")).expect("dataset");
    let iopts = IngestOptions {
        split: spatialsv_ingest::SplitChoice::Fixed(Split::Train),
        ..IngestOptions::default()
    };
    let scenes =
        list_scenes(Some(ScanFormat::Scannet), &[world.join("scans")], &iopts).expect("list");
    ingest_scans(&ds, &scenes, &iopts, "profile", &spatialsv_store::Silent).expect("ingest");
    let manifest = ds.latest().expect("manifest");
    let store = Arc::new(FrameStore::new(ds.clone(), &manifest, 64));
    let labeled = store
        .labeled_scenes(&manifest, Split::Train)
        .expect("scenes");
    let batcher = ClipBatcher {
        frames: v,
        height: h,
        width: w,
    };
    let aug = Augment {
        colour: 0.2,
        blur: 0.0,
    };
    let mut rng = SplitMix64::new(1);
    let mut next_batch = |step: usize| -> ClipBatch<TrainBackend> {
        let clips = sample_clips(&labeled, b, v, 3, &mut rng);
        let data = ClipDataset::new(store.clone(), clips, w, h, aug, step as u64);
        let samples = (0..b).map(|i| data.try_get(i).expect("clip")).collect();
        batcher.batch(samples, &device)
    };

    let mut model: SpatialSv<TrainBackend> = cfg.init(&device);
    let mut optim = AdamWConfig::new().init::<TrainBackend, SpatialSv<TrainBackend>>();
    let loss_cfg = LossConfig::new();
    let mut parts = Parts::default();
    for step in 0..=steps {
        if step == 1 {
            parts = Parts::default(); // step 0 is the warm-up
        }
        parts.start();
        let batch = next_batch(step);
        parts.mark("data: decode, augment, targets");
        let pred = model.forward_marked(batch.images, &mut |n| parts.mark(n));
        let terms = spatial_loss(&loss_cfg, &pred, &batch.targets);
        let total: f32 = terms.total.clone().into_scalar();
        assert!(total.is_finite());
        parts.mark("loss");
        let grads = terms.total.backward();
        parts.mark("backward");
        let grads = GradientsParams::from_grads(grads, &model);
        model = optim.step(1e-4, model, grads);
        parts.mark("optimiser (AdamW)");
    }
    let _ = model.valid();
    println!(
        "\n== training, {b} clips x {v} frames at {w}x{h} ({:.2} clips/s; backward counted as 2x forward)",
        b as f64 * steps as f64 / parts.total().as_secs_f64()
    );
    let mut flops = flops_of(b, 1.0);
    flops.insert("backward", cfg.forward_flops(v) * b as f64 * 2.0);
    parts.print(steps, &flops, peak);
}
