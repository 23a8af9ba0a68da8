//! Label throughput: frames/s of the whole label job (decode, teacher, filters, commit)
//! against the teacher's forward pass alone on the same windows, in the same process, with the
//! teacher's counted FLOPs per frame. Run: `cargo bench -p spatialsv-labeler --bench label`
//! (`--features spatialsv-labeler/cuda` on a GPU machine; needs ffmpeg for the synthetic
//! videos; options `-- --videos N --frames N`).
//!
//! The teacher is freshly initialised (its weights do not change the work done); every
//! configuration labels the same frames into its own dataset.

use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use spatialsv_ingest::synth::{SynthOptions, synthesize};
use spatialsv_ingest::video::{VideoOptions, ingest_videos};
use spatialsv_labeler::LabelConfig;
use spatialsv_labeler::job::{Shard, label, load_teacher};
use spatialsv_store::Dataset;
use spatialsv_trainer::TrainConfig;
use spatialsv_trainer::train::train;
use spatialsv_trainer::{BACKEND_NAME, Backend, default_device};

fn arg(name: &str) -> Option<usize> {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = SynthOptions {
        scenes: 3,
        videos: arg("--videos").unwrap_or(4),
        frames: arg("--frames").unwrap_or(48),
        ..SynthOptions::default()
    };
    synthesize(&dir.path().join("world"), &opts, &spatialsv_store::Silent)
        .expect("synth (needs ffmpeg)");
    // The teacher: the default config, one step on the scan scene (weights are irrelevant).
    let scans = Dataset::create(dir.path().join("scans")).expect("dataset");
    {
        use spatialsv_ingest::{IngestOptions, ScanFormat, SplitChoice, ingest_scans, list_scenes};
        let io = IngestOptions {
            split: SplitChoice::Fixed(spatialsv_schemas::Split::Train),
            ..IngestOptions::default()
        };
        {
            let src = dir.path().join("world/scans/train");
            let scenes = list_scenes(Some(ScanFormat::Scannet), &[src], &io).expect("scenes");
            ingest_scans(&scans, &scenes, &io, "bench", &spatialsv_store::Silent).expect("ingest");
        }
    }
    let tcfg = TrainConfig {
        steps: 1,
        warmup_steps: 1,
        ..TrainConfig::default()
    };
    let run = dir.path().join("teacher");
    train(&scans, &tcfg, &run, false, |_| {}).expect("teacher");
    let teacher = load_teacher(&run).expect("load teacher");
    // The forward-only baseline runs the same run's model directly.
    let direct = spatialsv_trainer::infer::SpatialRun::load(&run).expect("load the run");
    let videos: Vec<_> = (0..opts.videos)
        .map(|v| {
            dir.path()
                .join(format!("world/videos/synth_video_{v:03}.mp4"))
        })
        .collect();
    let frames = opts.videos * opts.frames;
    let (h, w, v) = (tcfg.image_height, tcfg.image_width, tcfg.clip_len);
    let per_frame = direct.sizes.forward_flops(v) / v as f64;
    println!(
        "== label throughput on {BACKEND_NAME}: {} videos x {} frames, teacher tiny at {w}x{h}, windows of {v}",
        opts.videos, opts.frames
    );
    println!("  teacher forward per frame: {:.3} GFLOP", per_frame / 1e9);

    // Baseline: the forward pass alone over as many windows, batch 4.
    let device = default_device();
    let windows = frames / v;
    let images =
        Tensor::<Backend, 5>::random([4, v, 3, h, w], Distribution::Normal(0.0, 1.0), &device);
    let _ = direct.model.forward(images.clone()).depth.into_data();
    let t = Instant::now();
    for _ in 0..windows.div_ceil(4) {
        let _ = direct.model.forward(images.clone()).depth.into_data();
    }
    let forward = windows.div_ceil(4) as f64 * 4.0 * v as f64 / t.elapsed().as_secs_f64();
    println!(
        "  forward only:            {forward:8.1} frames/s  {:6.1} GFLOP/s",
        forward * per_frame / 1e9
    );

    let mut cameras_off = LabelConfig::default();
    cameras_off.camera.enabled = false;
    let mut geometry_off = cameras_off.clone();
    geometry_off.geometric.enabled = false;
    let mut fused = LabelConfig::default();
    fused.fusion.enabled = true;
    let mut fused_no_flips = fused.clone();
    fused_no_flips.fusion.flips = false;
    // Teacher runs per labelled frame, as frames of forward passes: a single pass runs each
    // window (of v frames) once, or v times with the pose cycles; fused runs one window per
    // start and gap (about one per frame per gap), twice with flips.
    let passes =
        |f: &LabelConfig| (f.fusion.gaps.len() as f64) * if f.fusion.flips { 2.0 } else { 1.0 };
    for (name, runs, cfg) in [
        ("label, all filters", v as f64, LabelConfig::default()),
        ("label, no pose cycles", 1.0, cameras_off),
        ("label, confidence only", 1.0, geometry_off),
        ("label, fused", passes(&fused) * v as f64, fused),
        (
            "label, fused, no flips",
            passes(&fused_no_flips) * v as f64,
            fused_no_flips,
        ),
    ] {
        let ds = Dataset::create(dir.path().join(name.replace([' ', ','], "_"))).expect("dataset");
        ingest_videos(
            &ds,
            &videos,
            &VideoOptions::default(),
            "bench",
            &spatialsv_store::Silent,
        )
        .expect("video ingest");
        let t = Instant::now();
        let r = label(&ds, &teacher, &cfg, Shard::ALL, |_| {}).expect("label");
        let fps = r.frames_labeled as f64 / t.elapsed().as_secs_f64();
        println!(
            "  {name:<24} {fps:8.1} frames/s  {:6.1} GFLOP/s  {:.2}x forward-only  ({} frames, {runs} teacher frame-passes per frame)",
            fps * per_frame * runs / 1e9,
            fps / forward,
            r.frames_labeled
        );
    }
}
