//! Where a dataset's bytes live. Everything the store does goes through [`Storage`], whose
//! operations are the ones an object store offers (whole-object get, put-if-absent, list by
//! prefix, streaming upload that becomes visible only when finished), so an `object_store`
//! backend (S3, GCS, Azure) can replace [`LocalStorage`] without touching the commit logic:
//! `put_if_absent` maps to `PutMode::Create` and [`ObjectWriter`] to a multipart upload.
//! [`S3Storage`] is that backend for S3-compatible stores; [`open_location`] picks the
//! backend from what the user typed (`s3://bucket/prefix` or a path).

mod s3;

use std::fmt::Debug;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use object_store::ObjectStore;

pub use s3::{PART_BYTES, S3Storage, client_for_bucket, parse_s3_url};

use crate::error::{Error, Result};

/// Object-store settings of one dataset open (`--storage-option key=value`: endpoint,
/// region, credentials, ...), applied on top of the standard `AWS_*` environment variables.
/// Each open takes its own, so one process can open datasets with different credentials.
/// Values may be secrets: `Debug` shows the keys only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StorageOptions {
    pairs: Vec<(String, String)>,
}

impl StorageOptions {
    /// Options from `key=value` pairs (later pairs win over earlier ones of the same key).
    pub fn new(pairs: Vec<(String, String)>) -> StorageOptions {
        StorageOptions { pairs }
    }

    /// The pairs, in the order given.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

impl Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.pairs.iter().map(|(k, _)| format!("{k}=***")))
            .finish()
    }
}

/// Whether a `--dataset` value names object storage rather than a local path.
pub fn is_object_store_url(location: &Path) -> bool {
    location.to_str().is_some_and(|s| s.contains("://"))
}

/// The storage behind a `--dataset` value: `s3://bucket/prefix` on S3-compatible object
/// storage (configured by `options` over the environment), anything else a local directory.
/// Nothing is contacted yet: the dataset's first read (the manifest listing) names a wrong
/// endpoint, a missing bucket or denied credentials in one line.
pub fn open_location(location: &Path, options: &StorageOptions) -> Result<Arc<dyn Storage>> {
    if !is_object_store_url(location) {
        return Ok(Arc::new(LocalStorage::new(location)?));
    }
    let Some(url) = location.to_str() else {
        return Err(Error::User("a dataset URL must be UTF-8".into()));
    };
    if !url.starts_with("s3://") {
        let scheme = url.split("://").next().unwrap_or_default();
        return Err(Error::User(format!(
            "{url}: '{scheme}://' datasets are not supported; use s3://bucket/prefix \
             (any S3-compatible store) or a local path"
        )));
    }
    Ok(Arc::new(S3Storage::new(url, options)?))
}

/// A streaming upload: bytes written are invisible at the destination until [`finish`]
/// succeeds; dropping it unfinished leaves nothing at the destination.
///
/// [`finish`]: ObjectWriter::finish
pub trait ObjectWriter: Write + Send {
    /// Makes the object visible at its destination (durably).
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Object-store-shaped access to a dataset's root. Paths are relative, `/`-separated.
pub trait Storage: Debug + Send + Sync {
    /// URL of the root, with a trailing `/` (e.g. `file:///data/ds/`), for query engines.
    fn root_url(&self) -> String;
    /// A human-readable location for messages.
    fn display_root(&self) -> String;
    /// Reads a whole object; `Ok(None)` when it does not exist.
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>>;
    /// Reads `len` bytes of an object from byte `start` (a ranged GET).
    fn get_range(&self, path: &str, start: u64, len: usize) -> Result<Vec<u8>>;
    /// Atomically creates `path` with `bytes`; `Ok(false)` if it already existed (then nothing
    /// is changed). This is the commit point of the store.
    fn put_if_absent(&self, path: &str, bytes: &[u8]) -> Result<bool>;
    /// Names of the objects directly under `prefix` (a directory), sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;
    /// Starts a streaming upload to `path`.
    fn writer(&self, path: &str) -> Result<Box<dyn ObjectWriter>>;
    /// Deletes an object; missing objects are not an error.
    fn delete(&self, path: &str) -> Result<()>;
    /// Size of an object in bytes, `None` if it does not exist.
    fn size(&self, path: &str) -> Result<Option<u64>>;
    /// For object storage: the store's base URL (`s3://bucket`) and a client of its own,
    /// to register in a query engine so that SQL reads the same objects. `None` for local
    /// files (query engines read those directly).
    fn sql_object_store(&self) -> Result<Option<(String, Arc<dyn ObjectStore>)>> {
        Ok(None)
    }
}

/// A dataset on the local file system.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other writer (thread or process) on this machine will pick.
fn unique_suffix() -> String {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}-{n}", std::process::id())
}

impl LocalStorage {
    /// Storage rooted at `root` (which need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root: PathBuf = root.into();
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir()
                .map_err(Error::io("reading the current directory", &root))?
                .join(root)
        };
        if root.is_file() {
            return Err(Error::User(format!(
                "a dataset is a directory, but this is a file: {}",
                root.display()
            )));
        }
        Ok(Self { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }

    fn tmp_path(&self, path: &str) -> PathBuf {
        let full = self.full(path);
        let name = full
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        full.with_file_name(format!(".{name}.{}.tmp", unique_suffix()))
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    // Makes a rename or link in `dir` durable. Directories cannot be opened for sync on every
    // platform; where they cannot, the rename is still atomic, only its durability is weaker.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn mkdirs(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(Error::io("creating directory", dir))
}

impl Storage for LocalStorage {
    fn root_url(&self) -> String {
        let mut s = String::from("file://");
        s.push_str(&self.root.to_string_lossy());
        if !s.ends_with('/') {
            s.push('/');
        }
        s
    }

    fn display_root(&self) -> String {
        self.root.display().to_string()
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let full = self.full(path);
        match fs::read(&full) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading", full)(e)),
        }
    }

    fn get_range(&self, path: &str, start: u64, len: usize) -> Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let full = self.full(path);
        let read = || -> io::Result<Vec<u8>> {
            let mut f = File::open(&full)?;
            f.seek(SeekFrom::Start(start))?;
            let mut buf = vec![0; len];
            f.read_exact(&mut buf)?;
            Ok(buf)
        };
        read().map_err(Error::io("reading", &full))
    }

    fn put_if_absent(&self, path: &str, bytes: &[u8]) -> Result<bool> {
        let full = self.full(path);
        if let Some(dir) = full.parent() {
            mkdirs(dir)?;
        }
        let tmp = self.tmp_path(path);
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        };
        write().map_err(Error::io("writing", &tmp))?;
        // hard_link fails if the destination exists: an atomic create-if-absent that a
        // concurrent writer cannot race (rename would silently replace).
        let linked = match fs::hard_link(&tmp, &full) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(Error::io("publishing", &full)(e)),
        };
        let _ = fs::remove_file(&tmp);
        if let Some(dir) = full.parent() {
            sync_dir(dir)?;
        }
        linked
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let dir = self.full(prefix);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("listing", dir)(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Error::io("listing", &dir))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn writer(&self, path: &str) -> Result<Box<dyn ObjectWriter>> {
        let dest = self.full(path);
        if let Some(dir) = dest.parent() {
            mkdirs(dir)?;
        }
        let tmp = self.tmp_path(path);
        let file = File::create(&tmp).map_err(Error::io("creating", &tmp))?;
        Ok(Box::new(LocalWriter {
            file: Some(io::BufWriter::with_capacity(1 << 20, file)),
            tmp,
            dest,
        }))
    }

    fn delete(&self, path: &str) -> Result<()> {
        let full = self.full(path);
        match fs::remove_file(&full) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("deleting", full)(e)),
        }
    }

    fn size(&self, path: &str) -> Result<Option<u64>> {
        let full = self.full(path);
        match fs::metadata(&full) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading metadata of", full)(e)),
        }
    }
}

/// Writes to a hidden temporary file beside the destination and renames it into place on
/// `finish`; an unfinished writer removes its temporary file when dropped.
struct LocalWriter {
    file: Option<io::BufWriter<File>>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("writer already finished")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl ObjectWriter for LocalWriter {
    fn finish(mut self: Box<Self>) -> Result<()> {
        let Some(buf) = self.file.take() else {
            return Ok(());
        };
        let file = buf
            .into_inner()
            .map_err(|e| Error::io("writing", &self.tmp)(e.into_error()))?;
        file.sync_all().map_err(Error::io("syncing", &self.tmp))?;
        drop(file);
        fs::rename(&self.tmp, &self.dest).map_err(Error::io("renaming into place", &self.dest))?;
        if let Some(dir) = self.dest.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_if_absent_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path()).unwrap();
        assert!(s.put_if_absent("m/v1.json", b"first").unwrap());
        assert!(!s.put_if_absent("m/v1.json", b"second").unwrap());
        assert_eq!(s.get("m/v1.json").unwrap().unwrap(), b"first");
        // No temporary files are left behind.
        assert_eq!(s.list("m").unwrap(), vec!["v1.json".to_string()]);
    }

    #[test]
    fn unfinished_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path()).unwrap();
        let mut w = s.writer("d/a.bin").unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert!(s.list("d").unwrap().is_empty());
        let mut w = s.writer("d/a.bin").unwrap();
        w.write_all(b"whole").unwrap();
        w.finish().unwrap();
        assert_eq!(s.get("d/a.bin").unwrap().unwrap(), b"whole");
        assert_eq!(s.size("d/a.bin").unwrap(), Some(5));
    }
}
