//! SQL over spatialsv datasets with DataFusion, the one crate of the workspace that compiles a
//! query engine.
//!
//! - [`SqlSession`] ([`session`]): DataFusion over one dataset version, read-only, with the
//!   3D curation functions of [`udf`].
//! - [`distributed`]: `spatialsv worker` (Arrow Flight over gRPC) and the coordinator's
//!   session over `datafusion-distributed`.

pub mod distributed;
pub mod session;
pub mod udf;

pub use session::{OutputFormat, QueryResult, SqlSession, render};
