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
