//! Command-line options shared by the trainer's bench targets (`-- --name value`).

use spatialsv_trainer::Preset;

/// The value after `name`, if given.
pub fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1).cloned())
}

/// A number after `name`, or `default`.
pub fn num(name: &str, default: usize) -> usize {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `--preset`, tiny when not given.
pub fn preset() -> Preset {
    arg("--preset").map_or(Preset::Tiny, |p| {
        p.parse().unwrap_or_else(|e: String| panic!("{e}"))
    })
}
