//! Datasets on S3-compatible object storage (`s3://bucket/prefix`), over the `object_store`
//! crate DataFusion is built with, so the store and the SQL session read the same objects.
//!
//! The store's interface is synchronous; `object_store` is async. Every call runs on this
//! storage's own tokio runtime and the caller waits on a channel, so a call made from inside
//! another runtime (the SQL session's, the web server's) never nests `block_on` and never
//! panics.
//!
//! Commit safety on object storage (see docs/store.md):
//! - a manifest is created with `PutMode::Create` (`If-None-Match: *`);
//! - `object_store` retries a request whose response was lost, even a conditional create, so
//!   "already exists" may be our own create landing twice. Every manifest carries a random
//!   commit id, so on "already exists", a precondition failure or any other error,
//!   [`S3Storage::put_if_absent`] reads the object back: the same bytes mean this writer
//!   won, other bytes that it lost, no object that the create did not land (tried again);
//! - data files go up as multipart uploads in parts of [`PART_BYTES`] (S3's minimum part is
//!   5 MiB); a writer dropped unfinished aborts its upload. Files under one part are one PUT.

use std::fmt;
use std::future::Future;
use std::io::{self, Write};
use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::{ObjectWriter, Storage, StorageOptions};
use crate::error::{Error, Result};

/// Size of each part of a multipart upload (S3 requires at least 5 MiB for all but the
/// last part).
pub const PART_BYTES: usize = 8 << 20;

/// How many times a manifest create is tried when the outcome stays unknown (an error with
/// no manifest to read back).
const CREATE_TRIES: usize = 3;

/// A dataset under `s3://bucket/prefix`.
pub struct S3Storage {
    inner: Arc<Inner>,
}

struct Inner {
    /// `s3://bucket/prefix/` (with the trailing slash).
    url: String,
    bucket: String,
    /// The prefix without leading or trailing slashes; may be empty.
    prefix: String,
    /// What the client was built from (secrets included: never printed).
    builder: AmazonS3Builder,
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
}

impl fmt::Debug for S3Storage {
    /// Only the URL: the configuration holds credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Storage")
            .field("url", &self.inner.url)
            .finish_non_exhaustive()
    }
}

/// Splits `s3://bucket/prefix` into bucket and prefix (without surrounding slashes).
pub fn parse_s3_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| Error::User(format!("{url}: not an s3:// URL")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::User(format!(
            "{url}: no bucket name (expected s3://bucket/prefix)"
        )));
    }
    let prefix = prefix.trim_matches('/').to_string();
    if prefix.split('/').any(|s| s == "." || s == "..") {
        return Err(Error::User(format!(
            "{url}: '.' and '..' are not allowed in an object-store prefix"
        )));
    }
    Ok((bucket.to_string(), prefix))
}

/// The client for `bucket`, not yet built: the standard `AWS_*` environment variables
/// (`object_store`'s own `from_env`), then the `--storage-option key=value` pairs, which win.
/// An unknown key is a user error naming the key, never its value. An `http://` endpoint (a
/// local S3-compatible server) allows plain HTTP, as AWS's own tools do; the region defaults
/// to `us-east-1`.
fn client_builder(
    bucket: &str,
    url: &str,
    options: &[(String, String)],
) -> Result<AmazonS3Builder> {
    let mut builder = AmazonS3Builder::from_env();
    for (key, value) in options {
        let k = key
            .to_ascii_lowercase()
            .parse::<AmazonS3ConfigKey>()
            .map_err(|_| {
                Error::User(format!(
                    "{url}: unknown --storage-option key '{key}' (see docs/store.md for the keys: \
                 endpoint, region, access_key_id, secret_access_key, session_token, \
                 allow_http, virtual_hosted_style_request, ...)"
                ))
            })?;
        builder = builder.with_config(k, value.clone());
    }
    let http_endpoint = [AmazonS3ConfigKey::Endpoint, AmazonS3ConfigKey::S3Endpoint]
        .iter()
        .filter_map(|k| builder.get_config_value(k))
        .any(|v| v.starts_with("http://"));
    if http_endpoint {
        builder = builder.with_allow_http(true);
    }
    if builder
        .get_config_value(&AmazonS3ConfigKey::Region)
        .is_none()
    {
        builder = builder.with_region("us-east-1");
    }
    Ok(builder.with_bucket_name(bucket))
}

/// A new client from `builder`.
fn build_store(builder: &AmazonS3Builder, url: &str) -> Result<Arc<dyn ObjectStore>> {
    let store = builder
        .clone()
        .build()
        .map_err(|e| Error::User(format!("{url}: {}", one_line(&e.to_string()))))?;
    Ok(Arc::new(store))
}

/// A client for `s3://bucket` configured from the environment and `options`, without a
/// runtime of its own: for query engines, which run it on theirs.
pub fn client_for_bucket(bucket: &str, options: &StorageOptions) -> Result<Arc<dyn ObjectStore>> {
    let url = format!("s3://{bucket}/");
    build_store(&client_builder(bucket, &url, options.pairs())?, &url)
}

impl S3Storage {
    /// Storage for `url` (`s3://bucket/prefix`), configured from the environment and
    /// `options` (the keys of `--storage-option`). Builds the client only: nothing is
    /// contacted yet.
    pub fn new(url: &str, options: &StorageOptions) -> Result<Self> {
        let (bucket, prefix) = parse_s3_url(url)?;
        let builder = client_builder(&bucket, url, options.pairs())?;
        let store = build_store(&builder, url)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("spatialsv-s3")
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("starting the object-store runtime: {e}")))?;
        let display = if prefix.is_empty() {
            format!("s3://{bucket}/")
        } else {
            format!("s3://{bucket}/{prefix}/")
        };
        Ok(Self {
            inner: Arc::new(Inner {
                url: display,
                bucket,
                prefix,
                builder,
                store,
                runtime,
            }),
        })
    }

    /// The bucket's URL (`s3://bucket`) and a new client for it with this storage's
    /// configuration, for a query engine: a client of its own, so that its connections
    /// belong to the engine's runtime.
    pub fn sql_client(&self) -> Result<(String, Arc<dyn ObjectStore>)> {
        let store = build_store(&self.inner.builder, &self.inner.url)?;
        Ok((format!("s3://{}", self.inner.bucket), store))
    }

    fn key(&self, path: &str) -> Result<ObjectPath> {
        let full = if self.inner.prefix.is_empty() {
            path.trim_start_matches('/').to_string()
        } else {
            format!("{}/{}", self.inner.prefix, path.trim_start_matches('/'))
        };
        ObjectPath::parse(&full).map_err(|e| Error::Internal(format!("object path {full}: {e}")))
    }

    fn url_of(&self, path: &str) -> String {
        format!("{}{}", self.inner.url, path.trim_start_matches('/'))
    }
}

impl Inner {
    /// Runs `fut` on this storage's runtime and waits for it from any thread, inside another
    /// runtime or not.
    fn run<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| Error::Internal("the object-store runtime stopped".into()))
    }
}

/// Squeezes a library message onto one line of bounded length.
fn one_line(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 400 {
        let cut: String = flat.chars().take(400).collect();
        format!("{cut}...")
    } else {
        flat
    }
}

/// One line for the user about an object-store error on `url`: what went wrong in words
/// (no bucket, access denied, endpoint unreachable), never a credential.
pub(crate) fn describe(url: &str, e: &object_store::Error) -> Error {
    use std::error::Error as _;
    let mut chain = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        src = s.source();
    }
    let what = if chain.contains("NoSuchBucket") {
        "the bucket does not exist (NoSuchBucket)".to_string()
    } else if matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || chain.contains("AccessDenied")
        || chain.contains("403 Forbidden")
        || chain.contains("InvalidAccessKeyId")
        || chain.contains("SignatureDoesNotMatch")
    {
        "access denied: check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or \
         --storage-option) and the bucket's policy"
            .to_string()
    } else if chain.contains("error sending request")
        || chain.contains("Connection refused")
        || chain.contains("dns error")
        || chain.contains("connect error")
    {
        "cannot reach the object store's endpoint (check AWS_ENDPOINT / --storage-option \
         endpoint=...)"
            .to_string()
    } else {
        one_line(&chain)
    };
    Error::User(format!("{url}: {what}"))
}

impl Storage for S3Storage {
    fn root_url(&self) -> String {
        self.inner.url.clone()
    }

    fn display_root(&self) -> String {
        self.inner.url.clone()
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let key = self.key(path)?;
        let store = self.inner.store.clone();
        let got = self.inner.run(async move {
            match store.get(&key).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        got.map(|b| b.map(|b| b.to_vec()))
            .map_err(|e| describe(&self.url_of(path), &e))
    }

    fn get_range(&self, path: &str, start: u64, len: usize) -> Result<Vec<u8>> {
        let key = self.key(path)?;
        let store = self.inner.store.clone();
        let end = start + len as u64;
        let got = self
            .inner
            .run(async move { store.get_range(&key, start..end).await })?;
        got.map(|b| b.to_vec())
            .map_err(|e| describe(&self.url_of(path), &e))
    }

    fn put_if_absent(&self, path: &str, bytes: &[u8]) -> Result<bool> {
        let key = self.key(path)?;
        let url = self.url_of(path);
        let mut last_error = None;
        for _ in 0..CREATE_TRIES {
            let store = self.inner.store.clone();
            let payload = PutPayload::from(bytes.to_vec());
            let key2 = key.clone();
            let put = self.inner.run(async move {
                store
                    .put_opts(&key2, payload, PutOptions::from(PutMode::Create))
                    .await
            })?;
            let put = crate::dataset::lose_response(path, put);
            match put {
                Ok(_) => return Ok(true),
                Err(
                    e @ (object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
                    | object_store::Error::NotFound { .. }),
                ) => return Err(describe(&url, &e)),
                Err(e) => {
                    // "Already exists" / "precondition failed" may be our own create that
                    // landed and was retried; any other error may have landed too. The
                    // object, if any, says who won: these exact bytes (with their random
                    // commit id) are ours.
                    match self.get(path)? {
                        Some(stored) => return Ok(stored == bytes),
                        None => {
                            if matches!(
                                e,
                                object_store::Error::AlreadyExists { .. }
                                    | object_store::Error::Precondition { .. }
                            ) {
                                return Err(Error::Internal(format!(
                                    "{url}: the store said the object exists, but it cannot \
                                     be read back"
                                )));
                            }
                            tracing::warn!(url, error = %one_line(&e.to_string()), "create did not land; trying again");
                            last_error = Some(e);
                        }
                    }
                }
            }
        }
        Err(match last_error {
            Some(e) => describe(&url, &e),
            None => Error::Internal(format!("{url}: create failed")),
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let dir = self.key(prefix)?;
        let store = self.inner.store.clone();
        let listed = self
            .inner
            .run(async move { store.list_with_delimiter(Some(&dir)).await })?
            // Listing is how a dataset is first read: its errors (no bucket, denied, no
            // endpoint) are about the dataset, named by its root.
            .map_err(|e| describe(&self.inner.url, &e))?;
        let mut names: Vec<String> = listed
            .objects
            .iter()
            .filter_map(|o| o.location.filename().map(str::to_string))
            .chain(
                listed
                    .common_prefixes
                    .iter()
                    .filter_map(|p| p.filename().map(str::to_string)),
            )
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn writer(&self, path: &str) -> Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(S3Writer {
            inner: self.inner.clone(),
            key: self.key(path)?,
            url: self.url_of(path),
            buf: Vec::new(),
            upload: None,
            done: false,
            part_bytes: crate::dataset::part_bytes(PART_BYTES),
        }))
    }

    fn delete(&self, path: &str) -> Result<()> {
        let key = self.key(path)?;
        let store = self.inner.store.clone();
        let res = self.inner.run(async move { store.delete(&key).await })?;
        match res {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(describe(&self.url_of(path), &e)),
        }
    }

    fn size(&self, path: &str) -> Result<Option<u64>> {
        let key = self.key(path)?;
        let store = self.inner.store.clone();
        let res = self.inner.run(async move { store.head(&key).await })?;
        match res {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(describe(&self.url_of(path), &e)),
        }
    }

    fn sql_object_store(&self) -> Result<Option<(String, Arc<dyn ObjectStore>)>> {
        self.sql_client().map(Some)
    }
}

impl S3Storage {
    /// Checks that the location can be reached and read (the endpoint answers, the bucket
    /// exists, the credentials are accepted) with one listing, with one clear error if not.
    pub fn check_access(&self) -> Result<()> {
        let store = self.inner.store.clone();
        let prefix = if self.inner.prefix.is_empty() {
            None
        } else {
            Some(ObjectPath::from(self.inner.prefix.as_str()))
        };
        self.inner
            .run(async move { store.list_with_delimiter(prefix.as_ref()).await })?
            .map(|_| ())
            .map_err(|e| describe(&self.inner.url, &e))
    }
}

/// A data file going up: buffered to [`PART_BYTES`], then a multipart upload; one plain PUT
/// if the whole file is smaller than a part. Dropped unfinished, it aborts the upload.
struct S3Writer {
    inner: Arc<Inner>,
    key: ObjectPath,
    url: String,
    buf: Vec<u8>,
    upload: Option<Box<dyn MultipartUpload>>,
    done: bool,
    part_bytes: usize,
}

impl S3Writer {
    fn upload_part(&mut self) -> Result<()> {
        if self.upload.is_none() {
            let store = self.inner.store.clone();
            let key = self.key.clone();
            let up = self
                .inner
                .run(async move { store.put_multipart(&key).await })?
                .map_err(|e| describe(&self.url, &e))?;
            self.upload = Some(up);
        }
        let part = std::mem::take(&mut self.buf);
        let Some(up) = self.upload.as_mut() else {
            return Err(Error::Internal("multipart upload vanished".into()));
        };
        let fut = up.put_part(PutPayload::from(part));
        self.inner.run(fut)?.map_err(|e| describe(&self.url, &e))?;
        crate::dataset::crash_point("mid-upload");
        Ok(())
    }
}

impl Write for S3Writer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.done {
            return Err(io::Error::other("writer already finished"));
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= self.part_bytes {
            self.upload_part()
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for S3Writer {
    fn finish(mut self: Box<Self>) -> Result<()> {
        if self.done {
            return Ok(());
        }
        if self.upload.is_none() {
            let store = self.inner.store.clone();
            let key = self.key.clone();
            let payload = PutPayload::from(std::mem::take(&mut self.buf));
            self.inner
                .run(async move { store.put(&key, payload).await })?
                .map_err(|e| describe(&self.url, &e))?;
        } else {
            if !self.buf.is_empty() {
                self.upload_part()?;
            }
            let Some(mut up) = self.upload.take() else {
                return Err(Error::Internal("multipart upload vanished".into()));
            };
            let (up, res) = self.inner.run(async move {
                let res = up.complete().await;
                (up, res)
            })?;
            if let Err(e) = res {
                self.upload = Some(up);
                return Err(describe(&self.url, &e));
            }
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        if !self.done
            && let Some(mut up) = self.upload.take()
        {
            let url = self.url.clone();
            let res = self.inner.run(async move { up.abort().await });
            if let Ok(Err(e)) = res {
                tracing::warn!(url, error = %one_line(&e.to_string()), "aborting an unfinished upload failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_bucket_and_prefix() {
        assert_eq!(
            parse_s3_url("s3://b/p/q/").unwrap(),
            ("b".to_string(), "p/q".to_string())
        );
        assert_eq!(
            parse_s3_url("s3://b").unwrap(),
            ("b".to_string(), String::new())
        );
        assert!(parse_s3_url("s3:///p").is_err());
        assert!(parse_s3_url("s3://b/../x").is_err());
        assert!(parse_s3_url("gs://b/p").is_err());
    }

    #[test]
    fn the_debug_form_shows_the_url_and_no_secret() {
        let builder = AmazonS3Builder::new()
            .with_access_key_id("AKIDTEST")
            .with_secret_access_key("hunter2")
            .with_region("us-east-1")
            .with_bucket_name("b");
        let s = S3Storage {
            inner: Arc::new(Inner {
                url: "s3://b/p/".into(),
                bucket: "b".into(),
                prefix: "p".into(),
                store: build_store(&builder, "s3://b/p/").unwrap(),
                builder,
                runtime: tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap(),
            }),
        };
        let d = format!("{s:?}");
        assert!(d.contains("s3://b/p/"), "{d}");
        assert!(!d.contains("hunter2"), "{d}");
    }
}
