//! Training and inference throughput of the SpatialSV model: `trainer::bench`, the same
//! measurement as `spatialsv bench`. Run: `cargo bench -p spatialsv-trainer --bench throughput`
//! (`--features spatialsv-trainer/cuda` on a GPU machine; options
//! `-- --preset tiny|small|base --batch N --frames V --steps N --matmul N`).

mod common;

use common::{num, preset};
use spatialsv_trainer::bench::{BenchOptions, run};

fn main() {
    let report = run(&BenchOptions {
        preset: preset(),
        batch: num("--batch", 2),
        frames: num("--frames", 3),
        steps: num("--steps", 10),
        matmul: num("--matmul", 1024),
    });
    for line in report.lines() {
        println!("{line}");
    }
}
