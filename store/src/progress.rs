//! Progress of long library jobs (ingest, synth, questions, evaluation, exports), reported
//! through a [`Progress`] the caller passes in. Libraries never draw: the binary draws bars
//! on a terminal (and stays quiet in CI); tests, benches and other callers pass [`Silent`].

/// Receives a job's progress. Every method has a do-nothing default.
pub trait Progress: Send + Sync {
    /// The job has `total` items of `unit` (e.g. `frames`) to do.
    fn start(&self, total: u64, unit: &'static str) {
        let _ = (total, unit);
    }

    /// `n` more items are done.
    fn advance(&self, n: u64) {
        let _ = n;
    }

    /// The item being worked on (a scene id, a file name).
    fn message(&self, message: &str) {
        let _ = message;
    }

    /// Still alive, no item finished (a long decode).
    fn tick(&self) {}

    /// The job is over.
    fn finish(&self) {}
}

/// Progress nobody watches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}

/// A progress that forwards to another, for jobs that go back over some items (a failed
/// commit staged again): it reports the furthest position reached, never less.
#[derive(Debug, Default)]
pub struct Position {
    at: std::sync::atomic::AtomicU64,
}

impl Position {
    /// Moves to `pos` on `p` if that is further than before.
    pub fn advance_to(&self, p: &dyn Progress, pos: u64) {
        use std::sync::atomic::Ordering;
        let before = self.at.fetch_max(pos, Ordering::Relaxed);
        if pos > before {
            p.advance(pos - before);
        }
    }

    /// The furthest position reached.
    pub fn get(&self) -> u64 {
        self.at.load(std::sync::atomic::Ordering::Relaxed)
    }
}
