//! Teacher inference over unlabeled video, confidence filters and `pseudo_labels` commits.
//!
//! Nothing is here yet: the labeler arrives with issue 5 ("Pseudo-labels at scale with
//! confidence filtering"); until then `spatialsv label` says it is not built. The crate exists
//! so the workspace has its final shape and the `cuda` feature reaches it.
