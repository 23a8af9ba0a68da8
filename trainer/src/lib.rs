//! The SpatialSV model, losses, metrics, training and evaluation (burn 0.21).
//!
//! What is here today: the choice of compute backend. The model, data loader, training loop,
//! metrics and exports arrive with issue 4 ("The SpatialSV model and trainer in burn"); until
//! then `spatialsv train`, `eval` and `export` say they are not built.
//!
//! Backends: burn's pure-Rust CPU backend `flex` by default; built with `--features cuda`,
//! burn-cuda. Both are wrapped in `Autodiff` for training.

mod backend;

pub use backend::{BACKEND_NAME, Backend, TrainBackend, default_device};
