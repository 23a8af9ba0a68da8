//! Progress bars for long jobs: drawn on a terminal, silent when stderr is not a terminal or
//! when `CI` is set, so logs stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether progress should be drawn.
pub fn progress_enabled() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// A bar over `total` items of `unit` (e.g. "frames"), with rate and ETA.
pub fn bar(total: u64, unit: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if !progress_enabled() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    let template =
        format!("{{spinner}} {{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} ETA {{eta}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}
