//! The trainer's error type.

use crate::training::NonFiniteLoss;

/// Result alias of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// What can go wrong while training or evaluating.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The dataset could not be read (missing, corrupt) or refused a write.
    #[error(transparent)]
    Pipeline(#[from] spatialsv_pipeline::Error),
    /// The data does not allow the requested work (no labeled frames in a split, ...).
    #[error("{0}")]
    Data(String),
    /// Training produced a non-finite loss.
    #[error(transparent)]
    Diverged(#[from] NonFiniteLoss),
}

impl TrainError {
    /// Whether the user can fix this by changing their input (exit code 2).
    pub fn is_user_error(&self) -> bool {
        match self {
            TrainError::Pipeline(e) => e.is_user_error(),
            TrainError::Data(_) | TrainError::Diverged(_) => true,
        }
    }
}
