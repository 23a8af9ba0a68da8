//! burn's CPU backends on the SpatialSV model, in one process: burn-flex (this build's
//! backend, with the trainer's own resize and convolution nodes), burn-ndarray (threads and
//! SIMD) and burn-candle. Each runs the same
//! preset, batch, steps and matrix product as `spatialsv bench` (`trainer::bench::run_on`),
//! and each figure is printed beside burn-flex's from the same run. Run:
//!
//! ```text
//! cargo bench -p spatialsv-trainer --features bench-backends --bench backends
//! ```
//!
//! (options `-- --preset tiny|small|base --batch N --frames V --steps N --matmul N
//! --only flex,ndarray,candle`). A backend that cannot run the model (an operation it does
//! not implement) is reported with the panic's message and the others go on.
//! docs/performance.md records what this printed.

// burn 0.21 deprecates burn-candle (it is still measured here: the issue asks whether another CPU
// backend runs this model faster).
#![allow(deprecated)]

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::backend::{Autodiff, Candle, Flex, NdArray};
use common::{arg, num, preset};
use spatialsv_trainer::bench::{BenchOptions, BenchReport, run_on};

fn main() {
    let opts = BenchOptions {
        preset: preset(),
        batch: num("--batch", 2),
        frames: num("--frames", 3),
        steps: num("--steps", 10),
        matmul: num("--matmul", 1024),
    };
    let only = arg("--only").unwrap_or_else(|| "flex,ndarray,candle".into());
    let mut rows: Vec<(&str, Result<BenchReport, String>)> = Vec::new();
    for name in only.split(',') {
        let result = catch_unwind(AssertUnwindSafe(|| match name {
            "flex" => run_on::<Autodiff<Flex>>(&Default::default(), "flex", &opts),
            "ndarray" => run_on::<Autodiff<NdArray>>(&Default::default(), "ndarray", &opts),
            "candle" => run_on::<Autodiff<Candle>>(&Default::default(), "candle", &opts),
            other => panic!("unknown backend {other:?} (flex, ndarray, candle)"),
        }))
        .map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into())
        });
        if let Ok(r) = &result {
            for line in r.lines() {
                println!("{line}");
            }
        }
        rows.push((name, result));
    }
    let flex = rows.iter().find_map(|(n, r)| match (n, r) {
        (&"flex", Ok(r)) => Some(r.clone()),
        _ => None,
    });
    println!();
    println!(
        "{:<18} {:>12} {:>12} {:>12} {:>10} {:>10}",
        "backend", "matmul GF/s", "infer clip/s", "train clip/s", "infer/flex", "train/flex"
    );
    for (name, r) in &rows {
        match r {
            Ok(r) => {
                let ratio = |x: f64, f: fn(&BenchReport) -> f64| {
                    flex.as_ref()
                        .map_or("-".to_string(), |fl| format!("{:.2}x", x / f(fl)))
                };
                println!(
                    "{:<18} {:>12} {:>12.2} {:>12.2} {:>10} {:>10}",
                    r.backend,
                    r.matmul_gflops.map_or("-".into(), |g| format!("{g:.1}")),
                    r.inference_clips_per_s,
                    r.training_clips_per_s,
                    ratio(r.inference_clips_per_s, |f| f.inference_clips_per_s),
                    ratio(r.training_clips_per_s, |f| f.training_clips_per_s),
                );
            }
            Err(e) => println!("{name:<18} could not run the model: {e}"),
        }
    }
}
