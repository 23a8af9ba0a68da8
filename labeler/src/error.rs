//! The labeler's error type: whose fault an error is, as in the pipeline and the trainer.

use spatialsv_trainer::TrainError;

/// Result alias of this crate.
pub type Result<T, E = LabelError> = std::result::Result<T, E>;

/// What can go wrong while labelling or scoring labels.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// The dataset could not be read or refused a write.
    #[error(transparent)]
    Pipeline(#[from] spatialsv_store::Error),
    /// The teacher could not be loaded or run.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The user's input does not allow the work (bad config, missing teacher, no ground
    /// truth, a malformed ground-truth file).
    #[error("{0}")]
    User(String),
    /// A fault of ours; please report it.
    #[error("internal error: {0}")]
    Internal(String),
}

impl LabelError {
    /// Whether the user can fix this by changing their input (exit code 2).
    pub fn is_user_error(&self) -> bool {
        match self {
            LabelError::Pipeline(e) => e.is_user_error(),
            LabelError::Train(e) => e.is_user_error(),
            LabelError::User(_) => true,
            LabelError::Internal(_) => false,
        }
    }
}

/// A batch whose columns are not what its table declares, met after the store checked it on
/// read: a fault of ours.
impl From<spatialsv_schemas::SchemaError> for LabelError {
    fn from(e: spatialsv_schemas::SchemaError) -> Self {
        LabelError::Internal(format!("reading a batch: {e}"))
    }
}
