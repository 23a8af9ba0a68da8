//! Failpoints for the crash and object-store tests: a process that commits aborts itself at
//! a named point when `SPATIALSV_CRASH_AT` names it; the S3 backend can report a lost
//! response or use small upload parts. Compiled in only with the `failpoints` feature (test
//! builds); in a release binary each is nothing at all.

/// Environment variable naming a point at which a committing process aborts itself, for
/// crash tests: `mid-data-file`, `before-manifest` or (S3) `mid-upload`. Honoured only by builds with the
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

/// Names a path fragment: a successful create of a matching path reports a lost
/// response (the server accepted, the client saw an error), to test how the commit
/// resolves it.
#[cfg(feature = "failpoints")]
pub const LOSE_RESPONSE_ENV: &str = "SPATIALSV_LOSE_RESPONSE";

#[cfg(feature = "failpoints")]
pub(crate) fn lose_response<T>(
    path: &str,
    res: object_store::Result<T>,
) -> object_store::Result<T> {
    match (&res, std::env::var(LOSE_RESPONSE_ENV)) {
        (Ok(_), Ok(frag)) if !frag.is_empty() && path.contains(&frag) => {
            tracing::warn!(path, "{LOSE_RESPONSE_ENV}: reporting a lost response");
            Err(object_store::Error::Generic {
                store: "S3",
                source: "simulated lost response (the server accepted the request)".into(),
            })
        }
        _ => res,
    }
}

/// Overrides the multipart part size, so a crash test can stop a small file's upload
/// between parts (the part-size minimum is only checked when an upload completes).
#[cfg(feature = "failpoints")]
pub const PART_BYTES_ENV: &str = "SPATIALSV_S3_PART_BYTES";

#[cfg(feature = "failpoints")]
pub(crate) fn part_bytes(default: usize) -> usize {
    std::env::var(PART_BYTES_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(default)
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn part_bytes(default: usize) -> usize {
    default
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn lose_response<T>(
    _path: &str,
    res: object_store::Result<T>,
) -> object_store::Result<T> {
    res
}
