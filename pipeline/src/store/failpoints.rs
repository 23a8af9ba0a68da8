//! Crash points for the crash tests: a process that commits aborts itself at a named point
//! when `SPATIALSV_CRASH_AT` names it. Compiled in only with the `failpoints` feature (test
//! builds); in a release binary a crash point is nothing at all.

/// Environment variable naming a point at which a committing process aborts itself, for
/// crash tests: `mid-data-file` or `before-manifest`. Honoured only by builds with the
/// `failpoints` feature (test builds); release binaries ignore it.
pub const CRASH_ENV: &str = "SPATIALSV_CRASH_AT";

/// Aborts the process when `SPATIALSV_CRASH_AT` names this point (crash tests; compiled in
/// only with the `failpoints` feature).
#[cfg(feature = "failpoints")]
pub fn crash_point(name: &str) {
    if std::env::var(CRASH_ENV).is_ok_and(|v| v == name) {
        eprintln!("spatialsv: {CRASH_ENV}={name}: aborting on purpose");
        std::process::abort();
    }
}

/// Without the `failpoints` feature a crash point is nothing at all.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn crash_point(_name: &str) {}
