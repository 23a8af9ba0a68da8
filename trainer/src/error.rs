//! The trainer's error type. Variants say whose fault an error is, like the pipeline's: the
//! user's input (exit code 2) or a corrupt file, an I/O failure or a bug of ours (exit 1).

use std::path::PathBuf;

use crate::training::NonFiniteLoss;

/// Result alias of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// What can go wrong while training or evaluating.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The dataset could not be read (missing, corrupt) or refused a write.
    #[error(transparent)]
    Pipeline(#[from] spatialsv_store::Error),
    /// The user's input does not allow the work: a bad config value, a selection that is
    /// empty, a split without labeled frames.
    #[error("{0}")]
    User(String),
    /// A file that exists but cannot be understood (a damaged checkpoint, an image that
    /// does not decode).
    #[error("{message}: {}", path.display())]
    Corrupt {
        /// The file, or the frame (`dataset/scene#frame`).
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An operating-system failure on a path (a full disk, a permission), or a record that
    /// could not be written there.
    #[error("{action} failed ({source}): {}", path.display())]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The path it was done on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A fault of ours (an invariant broken); please report it.
    #[error("internal error: {0}")]
    Internal(String),
    /// Training produced a non-finite loss.
    #[error(transparent)]
    Diverged(#[from] NonFiniteLoss),
}

impl TrainError {
    /// Whether the user can fix this by changing their input (exit code 2).
    pub fn is_user_error(&self) -> bool {
        match self {
            TrainError::Pipeline(e) => e.is_user_error(),
            TrainError::User(_) | TrainError::Diverged(_) => true,
            TrainError::Corrupt { .. } | TrainError::Io { .. } | TrainError::Internal(_) => false,
        }
    }

    /// An I/O failure of `action` on `path`.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> TrainError {
        let path = path.into();
        move |e| TrainError::Io {
            action,
            path,
            source: Box::new(e),
        }
    }

    /// A file that cannot be understood. Only the first line of `why` is kept (burn's
    /// record errors append pages of advice).
    pub fn corrupt(path: impl Into<PathBuf>, what: &str, why: impl std::fmt::Display) -> Self {
        let why = why.to_string();
        let first = why.lines().next().unwrap_or("").trim();
        let first: String = first.chars().take(160).collect();
        TrainError::Corrupt {
            path: path.into(),
            message: if first.is_empty() {
                what.to_string()
            } else {
                format!("{what} ({first})")
            },
        }
    }
}

impl From<arrow::error::ArrowError> for TrainError {
    fn from(e: arrow::error::ArrowError) -> Self {
        TrainError::Internal(format!("arrow: {e}"))
    }
}

/// A batch whose columns are not what its table declares, met after the store checked it on
/// read: a fault of ours.
impl From<spatialsv_schemas::SchemaError> for TrainError {
    fn from(e: spatialsv_schemas::SchemaError) -> Self {
        TrainError::Internal(format!("reading a batch: {e}"))
    }
}
