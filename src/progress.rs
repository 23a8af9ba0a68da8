//! Progress bars (indicatif), drawn only here in the binary: on a terminal, silent when
//! stderr is not a terminal or when `CI` is set, so logs stay clean. Libraries report their
//! progress through [`spatialsv_store::Progress`]; [`Bar`] draws it.

use std::io::IsTerminal;
use std::sync::Mutex;

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

/// A library job's progress drawn as a bar, created when the job says how much it has to do.
#[derive(Debug, Default)]
pub struct Bar {
    bar: Mutex<Option<ProgressBar>>,
}

impl Bar {
    /// A bar that appears when the job starts.
    pub fn new() -> Bar {
        Bar::default()
    }

    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Ok(guard) = self.bar.lock()
            && let Some(b) = guard.as_ref()
        {
            f(b);
        }
    }
}

impl spatialsv_store::Progress for Bar {
    fn start(&self, total: u64, unit: &'static str) {
        if let Ok(mut guard) = self.bar.lock() {
            *guard = Some(bar(total, unit));
        }
    }

    fn advance(&self, n: u64) {
        self.with(|b| b.inc(n));
    }

    fn message(&self, message: &str) {
        let m = message.to_string();
        self.with(|b| b.set_message(m));
    }

    fn tick(&self) {
        self.with(ProgressBar::tick);
    }

    fn finish(&self) {
        self.with(ProgressBar::finish_and_clear);
    }
}
