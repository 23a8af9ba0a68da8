//! Errors of the DA3 port: whose fault each is.

use std::path::PathBuf;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Da3Error {
    /// The checkpoint folder or one of its files is not a DA3 checkpoint (the user's).
    #[error("{0}")]
    BadCheckpoint(String),
    /// A DA3 variant or option this port does not have (the user's choice).
    #[error("{0}")]
    Unsupported(String),
    /// An input (image, size) the model cannot take (the user's).
    #[error("{0}")]
    BadInput(String),
    /// A file that could not be read.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Da3Error {
    /// Whether the user can fix it (exit code 2).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Da3Error::Internal(_))
            && !matches!(self, Da3Error::Io { source, .. } if source.kind() != std::io::ErrorKind::NotFound)
    }
}

/// Result of the port.
pub type Result<T> = std::result::Result<T, Da3Error>;
