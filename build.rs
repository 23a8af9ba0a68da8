//! Tells the integration tests which external servers this build must test against.
//!
//! Tests that need an S3-compatible server, a Slurm cluster or `kubernetes-validate` are
//! `#[ignore]`d (reported as ignored, never as passed) unless the build is told that those
//! tools are there: `.ci/run` installs them and sets `SPATIALSV_REQUIRE_S3=1` and
//! `SPATIALSV_REQUIRE_SLURM=1`, which turn the cfgs `spatialsv_s3` and `spatialsv_slurm` on.
//! Once a test runs (in CI, or asked for with `cargo test -- --ignored`), a missing server
//! fails it.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(spatialsv_s3)");
    println!("cargo:rustc-check-cfg=cfg(spatialsv_slurm)");
    for (var, cfg) in [
        ("SPATIALSV_REQUIRE_S3", "spatialsv_s3"),
        ("SPATIALSV_REQUIRE_SLURM", "spatialsv_slurm"),
    ] {
        println!("cargo:rerun-if-env-changed={var}");
        if std::env::var(var).is_ok_and(|v| v == "1") {
            println!("cargo:rustc-cfg={cfg}");
        }
    }
}
