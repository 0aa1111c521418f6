//! Durable records: the [`RecordStore`] trait and its file binding, [`FileStore`].

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tenure::{Record, RecordError, MAX_RECORD_SIZE};

/// Where a node keeps its one [`Record`].
pub trait RecordStore {
    /// The stored record, `Ok(None)` only if none was ever stored. A record that exists
    /// but cannot be read is an error, never `None`: starting from nothing over a lost
    /// record forgets promises and can break safety.
    fn load(&mut self) -> Result<Option<Record>, LoadError>;

    /// Replaces the stored record atomically and durably: when this returns `Ok`, the new
    /// record survives a crash or power loss, and a crash during the call leaves either
    /// the old or the new record, never a mix.
    fn store(&mut self, record: &Record) -> io::Result<()>;
}

/// Why the stored record could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// Reading failed.
    Io {
        /// Where.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The bytes are not a valid record (empty, truncated, corrupt, another format).
    Invalid {
        /// Where.
        path: PathBuf,
        /// What is wrong.
        error: RecordError,
    },
    /// There is no record, and nothing said this is the node's first start.
    NoRecord {
        /// The data directory, absolute.
        dir: PathBuf,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, source } => {
                write!(f, "cannot read the record {}: {source}", path.display())
            }
            LoadError::Invalid { path, error } => write!(
                f,
                "the record {} is unusable: {error}. Refusing to start: starting afresh could \
                 break the promises this node made. Restore the file from a backup, or, only if \
                 this node's data is truly lost, delete the whole data directory",
                path.display()
            ),
            LoadError::NoRecord { dir } => write!(
                f,
                "no record in the data directory {dir} (no file `{RECORD_FILE}`). Refusing to \
                 start afresh: a node that ran before would forget the promises it made and \
                 could break agreement (this happens after copying a configuration to a new \
                 folder, or deleting a data directory). If this node ran before, point \
                 `data_dir` at its data, or restore the directory from a backup. If this is its \
                 very first start, start it once with `tenure node --first-boot` (in a program: \
                 `NodeConfig::first_boot`), or create the file {marker} (as `tenure \
                 init-config` does). If it ran before and its data is truly lost, start it \
                 with `tenure node --rejoin`: it votes again only once that is safe. A new \
                 member of a running cluster starts with `tenure node --join`",
                dir = dir.display(),
                marker = dir.join(FIRST_BOOT_FILE).display(),
            ),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io { source, .. } => Some(source),
            LoadError::Invalid { error, .. } => Some(error),
            LoadError::NoRecord { .. } => None,
        }
    }
}

/// Why a data directory could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The directory could not be created or the lock file opened.
    Io {
        /// Where.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Another process (or another node in this process) holds the directory's lock.
    Locked {
        /// The lock file.
        path: PathBuf,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Io { path, source } => {
                write!(f, "cannot use data directory {}: {source}", path.display())
            }
            OpenError::Locked { path } => write!(
                f,
                "data directory is in use: {} is locked by another running node",
                path.display()
            ),
        }
    }
}

impl std::error::Error for OpenError {}

/// The record in a file of a data directory, replaced by write-fsync-rename-fsync.
///
/// Layout: `DIR/record` (the record), `DIR/record.tmp` (a write in progress),
/// `DIR/LOCK` (held with `flock` while the store is open, so two nodes never share a
/// directory), `DIR/first-boot` (optional: this directory may start a node afresh once).
///
/// A directory without a record is refused by [`RecordStore::load`]
/// ([`LoadError::NoRecord`]) unless the store was opened for a first start
/// ([`FileStore::with_first_boot`]) or the directory holds the marker file
/// [`FIRST_BOOT_FILE`]. The marker is removed once the first record is durable.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    record: PathBuf,
    temp: PathBuf,
    marker: PathBuf,
    /// A missing record may start the node afresh.
    first_boot: bool,
    /// The marker said so: remove it after the first durable record.
    marker_pending: bool,
    /// `open` created the directory (removed again if the start is refused).
    created: bool,
    _lock: File,
}

/// The record's file name inside the data directory.
pub const RECORD_FILE: &str = "record";

/// The marker file that lets a data directory without a record start a node afresh
/// once; `tenure init-config` writes it. The node removes it when its first record is
/// durable.
pub const FIRST_BOOT_FILE: &str = "first-boot";

impl FileStore {
    /// Opens (creating it if missing) the data directory `dir` and locks it.
    pub fn open(dir: &Path) -> Result<Self, OpenError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { path, source }
        };
        let created = !dir.exists();
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            return Err(OpenError::Locked { path: lock_path });
        }
        Ok(FileStore {
            dir: dir.to_path_buf(),
            record: dir.join(RECORD_FILE),
            temp: dir.join(format!("{RECORD_FILE}.tmp")),
            marker: dir.join(FIRST_BOOT_FILE),
            first_boot: false,
            marker_pending: false,
            created,
            _lock: lock,
        })
    }

    /// The same store, allowed (`true`) to start a node afresh when there is no record:
    /// for a node's very first start only.
    #[must_use]
    pub fn with_first_boot(mut self, allowed: bool) -> Self {
        self.first_boot = allowed;
        self
    }

    /// The record file's path.
    pub fn record_path(&self) -> &Path {
        &self.record
    }
}

impl RecordStore for FileStore {
    fn load(&mut self) -> Result<Option<Record>, LoadError> {
        let bytes = match fs::read(&self.record) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let marker = self.marker.is_file();
                if !(self.first_boot || marker) {
                    let dir = std::path::absolute(&self.dir).unwrap_or_else(|_| self.dir.clone());
                    if self.created {
                        // Leave no trace of a refused start.
                        let _ = fs::remove_file(self.dir.join("LOCK"));
                        let _ = fs::remove_dir(&self.dir);
                    }
                    return Err(LoadError::NoRecord { dir });
                }
                self.marker_pending = marker;
                // A temporary file without a record is a first write that never completed:
                // nothing was sent after it (persist precedes every send), so it is safe
                // to start afresh.
                let _ = fs::remove_file(&self.temp);
                return Ok(None);
            }
            Err(source) => {
                return Err(LoadError::Io {
                    path: self.record.clone(),
                    source,
                })
            }
        };
        if self.marker.is_file() {
            // The first record was stored, then the node stopped before removing it.
            let _ = fs::remove_file(&self.marker);
        }
        Record::decode(&bytes)
            .map(Some)
            .map_err(|error| LoadError::Invalid {
                path: self.record.clone(),
                error,
            })
    }

    fn store(&mut self, record: &Record) -> io::Result<()> {
        let mut buf = [0u8; MAX_RECORD_SIZE];
        let len = record
            .encode(&mut buf)
            .map_err(|e| io::Error::other(e.to_string()))?;
        // SAFETY-OF-PROTOCOL: the new record is complete and on disk under a temporary
        // name before it replaces the old one; the rename and then the directory are
        // synced so the replacement itself survives a crash. Only then may a later
        // Send leave.
        let mut file = File::create(&self.temp)?;
        file.write_all(&buf[..len])?;
        // fdatasync covers the data and the size, all a new file needs to be read back.
        file.sync_data()?;
        drop(file);
        fs::rename(&self.temp, &self.record)?;
        File::open(&self.dir)?.sync_all()?;
        if self.marker_pending {
            // The record is durable: from now on a missing record is an error again.
            self.marker_pending = false;
            if let Err(e) = fs::remove_file(&self.marker) {
                tracing::warn!(marker = %self.marker.display(), error = %e, "cannot remove the first-boot marker");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenure::{Config, Member, Node, NodeId};

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tenure-store-{name}-{}-{}",
            std::process::id(),
            crate::clock::host_monotonic_ns()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn a_record() -> Record {
        let members = [Member::candidate(1), Member::candidate(2)];
        let config = Config::<4>::new(7, NodeId(1), &members).unwrap();
        // The node's whole durable state: what its first `Persist` output carries.
        Node::first_boot(config, tenure::Instant::ZERO)
            .unwrap()
            .record()
    }

    #[test]
    fn missing_record_is_none_and_store_round_trips() {
        let dir = temp_dir("round-trip");
        let mut store = FileStore::open(&dir).unwrap().with_first_boot(true);
        assert!(store.load().unwrap().is_none());
        let record = a_record();
        store.store(&record).unwrap();
        assert_eq!(store.load().unwrap(), Some(record));
        assert!(!dir.join("record.tmp").exists());
        drop(store);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_locked_directory_is_refused() {
        let dir = temp_dir("lock");
        let first = FileStore::open(&dir).unwrap();
        assert!(matches!(
            FileStore::open(&dir),
            Err(OpenError::Locked { .. })
        ));
        drop(first);
        assert!(FileStore::open(&dir).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damaged_records_are_errors_not_absent() {
        let dir = temp_dir("damaged");
        let mut store = FileStore::open(&dir).unwrap().with_first_boot(true);
        store.store(&a_record()).unwrap();
        let good = fs::read(store.record_path()).unwrap();
        for (bytes, what) in [
            (Vec::new(), "empty"),
            (good[..good.len() / 2].to_vec(), "truncated"),
            (good.iter().map(|b| b ^ 0x55).collect(), "garbled"),
        ] {
            fs::write(store.record_path(), &bytes).unwrap();
            let err = store.load().expect_err(what);
            assert!(matches!(err, LoadError::Invalid { .. }), "{what}: {err}");
            assert!(err.to_string().contains("Refusing to start"), "{what}");
        }
        drop(store);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_record_is_refused_unless_first_boot() {
        let dir = temp_dir("no-record");
        // Refused, naming the absolute directory and the ways out; no trace left.
        let err = FileStore::open(&dir)
            .unwrap()
            .load()
            .expect_err("no record");
        assert!(
            matches!(&err, LoadError::NoRecord { dir: d } if d == &dir),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains(&dir.display().to_string()), "{text}");
        assert!(text.contains("--first-boot"), "{text}");
        assert!(text.contains(FIRST_BOOT_FILE), "{text}");
        assert!(!dir.exists(), "a refused start created its directory");

        // The marker allows one first start, and is consumed by the first durable record.
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(FIRST_BOOT_FILE), "").unwrap();
        let mut store = FileStore::open(&dir).unwrap();
        assert!(store.load().unwrap().is_none());
        assert!(
            dir.join(FIRST_BOOT_FILE).exists(),
            "kept until a record is durable"
        );
        store.store(&a_record()).unwrap();
        assert!(!dir.join(FIRST_BOOT_FILE).exists());
        drop(store);

        // A lost record after that is refused again, and the directory is left alone.
        fs::remove_file(dir.join(RECORD_FILE)).unwrap();
        let err = FileStore::open(&dir)
            .unwrap()
            .load()
            .expect_err("lost record");
        assert!(matches!(err, LoadError::NoRecord { .. }), "{err}");
        assert!(dir.exists());
        // ... unless a first start is asked for in code.
        let mut store = FileStore::open(&dir).unwrap().with_first_boot(true);
        assert!(store.load().unwrap().is_none());
        drop(store);
        fs::remove_dir_all(&dir).unwrap();
    }
}
