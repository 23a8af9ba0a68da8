//! SQL across processes with `datafusion-distributed`: `spatialsv worker` serves plan
//! fragments over Arrow Flight (gRPC); `spatialsv sql --workers URL,...` plans a query as
//! usual, lets the distributed planner cut it into stages, and runs the stages that scan and
//! aggregate files on the workers, the last stage in its own process.
//!
//! A worker knows what a spatialsv session knows: the 3D functions ([`crate::udf`]) and
//! object storage (an `s3://` URL in a plan gets a client built from the worker's own
//! `AWS_*` environment and `--storage-option`s, [`StorageRegistry`]). Workers hold no
//! dataset: the coordinator's plan names the manifest's files, so every worker reads exactly
//! the committed version the coordinator opened.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion_distributed::{Worker, WorkerQueryContext, WorkerResolver};
use object_store::ObjectStore;
use url::Url;

use crate::udf;
use spatialsv_store::{Error, Result};
use spatialsv_store::{StorageOptions, client_for_bucket};

/// An object-store registry that builds an S3 client on first use of an `s3://bucket` URL
/// (configured like every spatialsv S3 client) and registers it; otherwise DataFusion's.
#[derive(Debug, Default)]
pub struct StorageRegistry {
    inner: DefaultObjectStoreRegistry,
    options: StorageOptions,
}

impl ObjectStoreRegistry for StorageRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        match self.inner.get_store(url) {
            Err(_) if url.scheme() == "s3" => {
                let bucket = url.host_str().unwrap_or_default();
                let store = client_for_bucket(bucket, &self.options)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                self.inner.register_store(url, store.clone());
                Ok(store)
            }
            found => found,
        }
    }
}

/// A worker's runtime environment: its object stores come from [`StorageRegistry`] (a
/// coordinator registers the store of the dataset it opened instead).
fn runtime_env(options: &StorageOptions) -> Result<Arc<RuntimeEnv>> {
    RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(StorageRegistry {
            inner: DefaultObjectStoreRegistry::default(),
            options: options.clone(),
        }))
        .build_arc()
        .map_err(|e| Error::Internal(format!("building the query runtime: {e}")))
}

/// Workers at fixed URLs (`http://host:port`).
#[derive(Debug, Clone)]
pub struct StaticWorkers(pub Vec<Url>);

#[async_trait]
impl WorkerResolver for StaticWorkers {
    fn get_urls(&self) -> std::result::Result<Vec<Url>, DataFusionError> {
        Ok(self.0.clone())
    }
}

/// Parses `--workers` values: `http://host:port` or `host:port`.
pub fn parse_workers(list: &[String]) -> Result<Vec<Url>> {
    list.iter()
        .map(|w| {
            let w = w.trim();
            let full = if w.contains("://") {
                w.to_string()
            } else {
                format!("http://{w}")
            };
            let url = Url::parse(&full).map_err(|e| {
                Error::User(format!("--workers: '{w}' is not host:port or a URL ({e})"))
            })?;
            if url.port_or_known_default().is_none() || url.host_str().is_none() {
                return Err(Error::User(format!(
                    "--workers: '{w}' has no host and port"
                )));
            }
            Ok(url)
        })
        .collect()
}

/// The session a worker runs each plan fragment in: spatialsv's functions registered.
async fn worker_session(
    ctx: WorkerQueryContext,
) -> std::result::Result<SessionState, DataFusionError> {
    let mut builder = ctx.builder;
    // The builder comes with DataFusion's functions; ours are added to them.
    builder
        .scalar_functions()
        .get_or_insert_with(datafusion::functions::all_default_functions)
        .extend(udf::all());
    Ok(builder.build())
}

/// Where a distributed query runs: the workers, and how many bytes of Parquet each scan task
/// gets (smaller spreads a scan over more tasks; `None` keeps the library's default, which
/// keeps small scans in one task).
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// The workers (`http://host:port`).
    pub workers: Vec<Url>,
    /// Bytes of Parquet per scan task.
    pub bytes_per_task: Option<usize>,
}

/// The session state of a coordinator over `cluster`.
pub fn coordinator_state(
    config: datafusion::prelude::SessionConfig,
    cluster: &Cluster,
) -> Result<SessionState> {
    use datafusion_distributed::{DistributedExt, SessionStateBuilderExt};
    let mut builder = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_distributed_worker_resolver(StaticWorkers(cluster.workers.clone()))
        .with_distributed_planner();
    if let Some(n) = cluster.bytes_per_task {
        builder = builder
            .with_distributed_file_scan_config_bytes_per_partition(n)
            .map_err(|e| Error::User(format!("--bytes-per-task {n}: {e}")))?;
    }
    Ok(builder.build())
}

/// Serves plan fragments on `addr` until the process is stopped, reading object storage
/// with `options` over the environment. Prints one line when it is listening.
pub fn serve_worker(addr: SocketAddr, options: &StorageOptions) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("starting the worker runtime: {e}")))?;
    let worker =
        Worker::from_session_builder(worker_session).with_runtime_env(runtime_env(options)?);
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::User(format!("cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::Internal(e.to_string()))?;
        println!("spatialsv worker listening on http://{local}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tonic::transport::Server::builder()
            .add_service(worker.into_worker_server())
            .serve_with_incoming(incoming)
            .await
            .map_err(|e| Error::Internal(format!("worker server: {e}")))
    })
}
