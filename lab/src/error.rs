//! The experiments' error type: whose fault an error is, like the other crates'.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

/// What can go wrong while running an experiment or writing its report.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The user's input does not allow the work (a bad option, an empty selection).
    #[error("{0}")]
    User(String),
    /// Writing an output failed: a full disk or an I/O fault is not the user's (exit 1); a
    /// path the user chose that cannot be a directory or is not writable is (exit 2).
    #[error("{action} failed ({source}): {}", path.display())]
    Output {
        /// What we were doing.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The dataset store.
    #[error(transparent)]
    Store(#[from] spatialsv_store::Error),
    /// Training or evaluation.
    #[error(transparent)]
    Train(#[from] spatialsv_trainer::TrainError),
    /// Labelling or scoring labels.
    #[error(transparent)]
    Label(#[from] spatialsv_labeler::LabelError),
    /// The reader of our output has gone (`spatialsv demo | head`): not an error to report.
    #[error("standard output was closed")]
    Closed,
    /// A fault of ours (a plot that cannot be drawn, a report that cannot be serialised).
    #[error("internal error: {0}")]
    Internal(String),
}

impl LabError {
    /// Whether the user can fix this by changing their input (exit code 2).
    pub fn is_user_error(&self) -> bool {
        match self {
            LabError::User(_) => true,
            LabError::Output { source, .. } => is_users_path(source),
            LabError::Store(e) => e.is_user_error(),
            LabError::Train(e) => e.is_user_error(),
            LabError::Label(e) => e.is_user_error(),
            LabError::Internal(_) | LabError::Closed => false,
        }
    }

    /// A closure wrapping an `io::Error` of `action` on `path` (for `map_err`).
    pub fn output(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> LabError {
        let path = path.into();
        move |source| LabError::Output {
            action,
            path,
            source,
        }
    }
}

/// Whether an output error is about the path the user chose (it cannot be written there)
/// rather than the machine (a full disk, an I/O fault).
pub fn is_users_path(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::PermissionDenied
            | K::NotADirectory
            | K::IsADirectory
            | K::AlreadyExists
            | K::ReadOnlyFilesystem
            | K::InvalidFilename
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_not_the_users_fault_but_a_path_under_a_file_is() {
        let full = LabError::output("writing", "/x")(std::io::Error::from(
            std::io::ErrorKind::StorageFull,
        ));
        assert!(!full.is_user_error());
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, "").unwrap();
        let under = std::fs::create_dir_all(file.join("d")).unwrap_err();
        assert!(LabError::output("creating", file.join("d"))(under).is_user_error());
        assert!(full.to_string().contains("/x"), "{full}");
    }
}
