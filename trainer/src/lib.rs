//! The SpatialSV model, losses, metrics, training and evaluation (burn 0.21).
//!
//! - [`model`]: ViT patch encoder, alternating frame/global attention trunk with camera
//!   tokens, four taps with projectors, DPT-style depth, ray-map and point-map heads.
//! - [`loss`]: confidence-aware regression, depth gradients, normals, target normalisation,
//!   trimming of pseudo-labels' largest losses.
//! - [`data`]: burn `Dataset`/`Batcher` over the store; [`pseudo`]: pseudo-labelled clips,
//!   strong perturbations, CutMix.
//! - [`config`]: the training config; [`run`]: the run directory, the scaffold every
//!   training loop shares (claim, resume, seeds, optimiser, metrics, checkpoints).
//! - [`train`]: `spatialsv train` (supervised or semi-supervised); [`training`]: one step.
//! - [`infer`]: the inference seam (load a run, prepare images, predict, cameras from rays)
//!   that evaluation, export and the labeller use.
//! - [`metrics`], [`eval`]: `spatialsv eval`; [`export`]: PLY, PNG and trajectory exports.
//! - [`conv`]: the model's convolutions, with an exact, faster backward pass on the CPU.
//! - [`resize`]: the heads' bilinear resizes (burn's, by matrix products on a GPU, and
//!   exact table-driven CPU kernels with their own backward pass).
//! - [`mllm`]: the small multimodal model in the SpatialSV regime (text + 3D losses).
//! - [`bench`]: `spatialsv bench`: clips/s and GFLOP/s against a matmul through the backend.
//!
//! Backends: burn's pure-Rust CPU backend `flex` by default; built with `--features cuda`,
//! burn-cuda. Both are wrapped in `Autodiff` for training.

mod backend;
pub mod bench;
pub mod config;
pub mod conv;
pub mod data;
pub mod ema;
mod error;
pub mod eval;
pub mod export;
pub mod infer;
pub mod loss;
pub mod metrics;
pub mod mllm;
pub mod model;
pub mod pseudo;
pub mod resize;
pub mod run;
pub mod train;
pub mod training;

pub use backend::{BACKEND_NAME, Backend, TrainBackend, default_device};
pub use config::{Preset, PseudoTargets, TrainConfig};
pub use error::{Result, TrainError};
pub use run::{RunDir, RunKind, RunRole};
