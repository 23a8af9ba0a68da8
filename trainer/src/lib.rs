//! The SpatialSV model, losses, metrics, training and evaluation (burn 0.21).
//!
//! What is here today: the choice of compute backend and the evaluation metrics
//! ([`metrics`]: depth AbsRel / delta1 / RMSE with median or scale-and-shift alignment,
//! camera RRA / RTA / AUC@30 over frame pairs, Umeyama Sim(3) and Chamfer distances). The
//! model, data loader, training loop, eval command and exports arrive with the rest of issue 4
//! ("The SpatialSV model and trainer in burn"); until then `spatialsv train`, `eval` and
//! `export` say they are not built.
//!
//! Backends: burn's pure-Rust CPU backend `flex` by default; built with `--features cuda`,
//! burn-cuda. Both are wrapped in `Autodiff` for training.

mod backend;
pub mod data;
mod error;
pub mod eval;
pub mod export;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod train;
pub mod training;

pub use backend::{BACKEND_NAME, Backend, TrainBackend, default_device};
pub use error::{Result, TrainError};
