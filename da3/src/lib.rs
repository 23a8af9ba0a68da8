//! Depth Anything 3 in burn, exact against the reference implementation (PyPI
//! `depth-anything-3` 0.1.1): the DINOv2 backbone as DA3 uses it ([`vit`]), the dual DPT
//! head ([`dpt`]), the camera decoder and encoder ([`camera`]), the whole network and its
//! checkpoint folders ([`model`]), their configs and presets ([`config`]), the reference's
//! preprocessing ([`preprocess`]). Golden fixtures
//! from `scripts/da3_goldens.py` hold every stage to the reference (`da3/tests/`).

pub mod camera;
pub mod config;
pub mod dpt;
pub mod error;
pub mod model;
pub mod preprocess;
pub mod vit;

pub use config::{CheckpointConfig, Structure, licence, preset};
pub use error::{Da3Error, Result};
pub use model::{Checkpoint, Da3Net, KnownCameras, Prediction, is_checkpoint_dir, load};
pub use preprocess::{Batch, Placement, ResizeMethod, prepare_batch};
pub use vit::RefViewStrategy;
