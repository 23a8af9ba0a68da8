//! The labeler's error type.

use spatialsv_trainer::TrainError;

/// Result alias of this crate.
pub type Result<T, E = LabelError> = std::result::Result<T, E>;

/// What can go wrong while labelling or scoring labels.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// The dataset could not be read or refused a write.
    #[error(transparent)]
    Pipeline(#[from] spatialsv_pipeline::Error),
    /// The teacher could not be loaded or run.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The input does not allow the work (bad config, missing teacher, no ground truth).
    #[error("{0}")]
    Data(String),
}

impl LabelError {
    /// Whether the user can fix this by changing their input (exit code 2).
    pub fn is_user_error(&self) -> bool {
        match self {
            LabelError::Pipeline(e) => e.is_user_error(),
            LabelError::Train(e) => e.is_user_error(),
            LabelError::Data(_) => true,
        }
    }
}
