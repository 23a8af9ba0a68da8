//! Training and inference throughput of the SpatialSV model: `trainer::bench`, the same
//! measurement as `spatialsv bench`. Run: `cargo bench -p spatialsv-trainer --bench throughput`
//! (`--features spatialsv-trainer/cuda` on a GPU machine; options
//! `-- --preset tiny|small|base --batch N --frames V --steps N --matmul N`).

use spatialsv_trainer::Preset;
use spatialsv_trainer::bench::{BenchOptions, run};

fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1).cloned())
}

fn num(name: &str, default: usize) -> usize {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let preset = match arg("--preset").as_deref() {
        Some("small") => Preset::Small,
        Some("base") => Preset::Base,
        _ => Preset::Tiny,
    };
    let report = run(&BenchOptions {
        preset,
        batch: num("--batch", 2),
        frames: num("--frames", 3),
        steps: num("--steps", 10),
        matmul: num("--matmul", 1024),
    });
    for line in report.lines() {
        println!("{line}");
    }
}
