//! The pipeline's error type. Variants say whose fault it is: the user's input, a corrupt
//! file, the environment (I/O), or a bug of ours; the binary maps user errors to exit code 2.

use std::path::PathBuf;

use spatialsv_schemas::SchemaError;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input from the user: a missing dataset, an unknown table, bad SQL, a bad config key.
    #[error("{0}")]
    User(String),
    /// One of the user's input files (a TUM list, COLMAP text, ScanNet intrinsics, a
    /// nerfstudio JSON, a config) is malformed: the user's to fix, so exit code 2.
    #[error("{message}: {}", path.display())]
    BadInput {
        /// The file.
        path: PathBuf,
        /// What is wrong with it, with the line or key where known.
        message: String,
    },
    /// A file of the dataset (or another file we wrote) that exists but cannot be
    /// understood.
    #[error("{message}: {}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An operating-system I/O failure on a path.
    #[error("{action} failed ({source}): {}", path.display())]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The path it was done on.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A batch that does not fit its table's schema.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// Another writer committed first; nothing of ours became visible.
    #[error(
        "another writer committed version {version} while this commit was running; nothing was \
         published, re-run to retry (commits are idempotent)"
    )]
    Conflict {
        /// The version that was taken.
        version: u64,
    },
    /// A failure inside a library we call (Parquet, Arrow, DataFusion) that is not the user's.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// Whether the user can fix this by changing their input (exit code 2).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::User(_) | Error::BadInput { .. } | Error::Schema(_) | Error::Conflict { .. }
        )
    }

    /// A closure wrapping an `io::Error` of `action` on `path` (for `map_err`).
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    /// The user's input file `path` is malformed.
    pub fn bad_input(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Error {
        Error::BadInput {
            path: path.into(),
            message: message.to_string(),
        }
    }

    /// A file of ours at `path` exists but cannot be understood.
    pub fn corrupt(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Error {
        Error::Corrupt {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Error::Internal(format!("parquet: {e}"))
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Internal(format!("arrow: {e}"))
    }
}
