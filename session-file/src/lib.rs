//! The file session store: ThinkJS's default, and the store for several processes of one
//! application on one machine.
//!
//! - **One file per session**, named by the store key (the SHA-256 of the id, 64 hex
//!   digits: a client can never steer a file name), in sub-folders sharded by the key's
//!   first characters (`path_depth`, one hex digit per level, as ThinkJS does). The file
//!   has two slots of a page or more each; the current one holds the record in
//!   [`session_core::wire`]'s versioned layout (with the expiry). See [The session
//!   file](#the-session-file).
//! - **Atomic writes, in place**: a write puts the new version into the slot that does not
//!   hold the current one and, with `fsync` on, `fdatasync`s it before acknowledging: no
//!   new file, no rename, no folder to sync. A reader sees the old or the new version,
//!   never a torn one (each slot carries a SHA-256 digest), even if the writer is killed
//!   mid-write. A new session's file is written once and fsynced with its folder.
//! - **Group commit** (Linux, `group_commit`, on by default): with `fsync` on, concurrent
//!   writes that create names (new sessions, records that change size) share one
//!   `syncfs(2)` of the folder's file system instead of an fsync of each file and folder,
//!   and a failed flush fails every write it may have carried. A new session's create
//!   awaits its flush as a task, off its thread ([Threads](#threads)). Writes in place
//!   `fdatasync` their file, which needs no journal commit. It flushes whatever
//!   else is dirty on that file system too, so a folder on a disk that other programs
//!   write heavily belongs on a file system of its own (or `group_commit = false`).
//! - **No lost updates**, in one process or several: every write takes an exclusive lock
//!   (an fs4/`flock` lock on one of 256 lock files, striped by key, plus an in-process
//!   mutex), re-reads the file, merges the change set and writes. Reads take no lock.
//! - **gc** walks the shard folders entry by entry (never the whole directory in memory),
//!   removes expired and corrupt session files and temporary files left by a crash,
//!   and reports how many it removed. Anything else in the folder (other names, folders,
//!   links, pipes) is left alone.
//! - A truncated, empty, garbage or foreign file is "no session" (a decode error the
//!   session logs), and the next create of that key replaces it. A full disk or a denied
//!   permission is an error that leaves every existing session as it was.
//! - **A user index** ([`Capabilities::user_index`]): a session bound to a user
//!   ([`Session::set_user`](session_core::Session::set_user)) carries its owner in its
//!   file, and the user's index file lists its store key, so that listing or ending a
//!   user's sessions reads one index file and that user's session files, never anyone
//!   else's. Details below.
//! - **Session locks** ([`Capabilities::lock`], `lock = true`): a lease file per locked
//!   session, held across every process sharing the folder. Details below.
//!
//! # The session file
//!
//! ```text
//! <path>/<shard digits>/<store key, 64 hex digits>
//!
//! slot 0  [0, S)   magic "SFSL", version 1, 3 reserved bytes, sequence (u64 LE),
//! slot 1  [S, 2S)  record length (u32 LE), SHA-256 of those 20 bytes and the record,
//!                  then the record ([`session_core::wire`]); S is a power of two pages
//! ```
//!
//! The current version is the intact slot with the higher sequence; a write fills the other
//! slot with the next sequence. The slots sit on separate pages (4096 bytes), so a disk that
//! tears the page being written cannot reach the acknowledged version. A record that
//! outgrows its slot, or shrinks to a quarter of it, is written as a new file of the right
//! size, atomically (a temporary file renamed over the old one), as is a corrupt one.
//! A small session takes 8 KiB (two pages) on disk. [`decode_session_file`] reads a file's
//! current record.
//!
//! **Folders written by earlier versions** need no migration: their files hold the record
//! alone (starting with [`wire::MAGIC`]), are read as they are,
//! and each is rewritten in slots by its next write. Rolling back to such a version leaves
//! it unable to read the files written in slots since: "no session" to it.
//!
//! # Session locks
//!
//! ```text
//! <path>/leases/<shard digits>/<store key, 64 hex digits>
//! ```
//!
//! A lease is a small text file apart from the session file ([`FileStore::lease_path`]):
//! a header line (`session-file lease 1`), the holder's token and the wall-clock instant
//! (milliseconds) it lapses. `lock`, `renew_lock` and `unlock` each hold the session's
//! lock stripe (the fs4 lock its writes take) while they read the lease file, decide and
//! replace or delete it, so two processes never both get one lock; `unlock` deletes only
//! the caller's lease. A lease not renewed in time lapses and goes to the next `lock`; an
//! unparsable lease file counts as lapsed. Lease writes are atomic (temporary file and
//! rename) but never fsynced: a lease lost to a machine crash is harmless, its holders
//! died with it. A released lease leaves no file; gc removes the lapsed ones (a holder
//! that crashed) without counting them as sessions.
//!
//! # The user index
//!
//! ```text
//! <path>/users/<shard digits>/<SHA-256 of the user id, 64 hex digits>
//! ```
//!
//! One file per user with at least one bound session, named by a hash of the user id (a
//! user id can be any text; it never becomes a path), sharded like the session files by
//! `path_depth`. It holds a header line, `session-file user index 1`, then one store key
//! per line. An operator finds a user's file with `printf %s "$USER_ID" | sha256sum`, or
//! [`FileStore::user_index_path`].
//!
//! - Index files are written like session files (temporary file, fsync, rename, folder
//!   fsync) under lock stripes of their own (`.locks/u00` to `.locks/uff`), taken after a
//!   session's stripe and never two at once. A bind writes the index entry before the
//!   session file that names the user, holding the user's lock across both; an unbind
//!   (delete, rebinding, gc) changes the session file first and prunes the entry after.
//!   A crash between the two leaves a stale entry, never a live session missing from its
//!   user's index: revoking a user's sessions finds them all.
//! - Only writes that change a binding touch an index file: a log-in with `set_user` writes
//!   two files (four fsyncs) instead of one, and requests of unbound sessions, or of bound
//!   ones that keep their user (a new label included), cost what they did before.
//! - [`sessions_of`](SessionStore::sessions_of) reads the index file and checks each entry
//!   against its session file (live, bound to that user), pruning the stale ones under
//!   the lock; gc prunes the entries of the sessions it removes, deletes index files left
//!   with no entry, and removes temporary index files left by a crash. Index files are
//!   never taken for sessions.
//! - A line that is not a store key is ignored and dropped at the next rewrite; an index
//!   file with a bad header is rebuilt (with a warning) from a scan of the session files,
//!   under the user's lock, so corruption costs time, never an entry.
//! - Each bind or unbind rewrites the user's whole index file: 65 bytes per session, so a
//!   user with 1,000 sessions costs a 65 KB copy per log-in.
//!
//! **Existing deployments** need no migration: session files written before the index
//! (record layout 1) carry no owner, so no session is bound yet; the `users` folder appears
//! with the first binding. Rolling back to a release without the index leaves the
//! `users` folder unused (delete it); it reads every unbound session file as before
//! (record layout 1), but not one bound to a user (layout 2): that is "no session" to it.
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{SessionConfig, SessionManager};
//! use session_file::{FileStore, FileStoreOptions};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir()?;
//! let store = FileStore::open(FileStoreOptions::new(dir.path().join("session")))?;
//! let manager = SessionManager::new(Arc::new(store), SessionConfig::default())?;
//!
//! let session = manager.session_from_cookie_header(None);
//! session.set("userInfo", "ada").await?;
//! let cookie = session.flush().await?.expect("a new session with data gets a cookie");
//!
//! let header = format!("{}={}", cookie.name(), cookie.value());
//! let next = manager.session_from_cookie_header(Some(&header));
//! assert_eq!(next.get::<String>("userInfo").await?, Some("ada".to_owned()));
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
//!
//! From configuration (`type = "file"`, the default type), after
//! [`register`]`(&mut registry)`:
//!
//! ```toml
//! type = "file"
//! [adapter.file]
//! path = "runtime/session"   # default: ./runtime/session, created with mode 0700
//! path_depth = 1             # sub-folder levels, one hex digit each (0 to 4)
//! fsync = true               # make every write durable before acknowledging it
//! group_commit = true        # with fsync: concurrent writes share one syncfs (Linux)
//! threads = 0                # most threads for file operations; 0: by core count
//! ```
//!
//! # Threads
//!
//! File operations block their thread, so the store runs them off the async runtime, on
//! threads of its own: at most one per core with `fsync` off (the calls only copy to and
//! from the kernel's caches), four per core with it on (the calls wait for the disk), or
//! `threads`. Calls made while every thread is busy wait in a queue, and a thread that
//! finishes one takes the next without sleeping. Tokio's blocking pool instead starts a
//! thread for every call made while its threads are busy and wakes one per call: under 50
//! concurrent requests it held about 100 threads, and the scheduler's work (3.4 context
//! switches per request, against 0.5 here) cost more CPU than the file operations. Only
//! gc still goes to that pool: a walk of the whole folder would hold one of the few
//! threads for seconds. With group commit, a new session's create leaves its thread once
//! the file is written and awaits the shared flush as a task, so as many creates share a
//! flush as are waiting, not as many as there are threads.
//!
//! # Platforms
//!
//! Unix only: elsewhere the crate fails to build, with a message saying so. Its
//! guarantees rest on Unix file-system behaviour that Windows does not offer: folders and
//! files are created with modes 0700 and 0600 (`std::os::unix`), a folder is opened and
//! fsynced so that a rename in it survives a crash, and a session file is renamed over
//! while readers in other processes hold it open. The tests run on Linux. On other
//! platforms, use `session-memory`, `session-db` or `session-redis`.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

// The first error a build elsewhere reports says why, before the missing `std::os::unix`
// items do.
#[cfg(not(unix))]
compile_error!(
    "session-file supports Unix only (it relies on Unix file modes, folder fsync and renames \
     over open files); on this platform use session-memory, session-db or session-redis"
);

mod durability;
mod layout;
mod leases;
mod pool;
mod users;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::num::NonZeroUsize;
use std::os::unix::fs::FileExt as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use session_core::wire;
use session_core::{
    Capabilities, ChangeSet, Error, ErrorKind, Hint, IndexedSession, LockToken, Record, Registry,
    Result, SessionStore, SetupProblem, StoreKey, Timestamp, UserId, async_trait,
};

use crate::durability::{Durability, Pending};
use crate::layout::Next;
use crate::pool::Pool;
use crate::users::{IndexName, USER_DIR, owner_of};

/// Lock stripes: sessions whose keys start with the same byte share a lock file.
const STRIPES: usize = 256;
/// The deepest sharding offered: 16⁴ = 65,536 folders.
const MAX_PATH_DEPTH: usize = 4;
/// Temporary files are named `.<key>.<random>.tmp`.
const TEMP_SUFFIX: &str = ".tmp";
/// The folder of lock files, inside the session folder.
const LOCK_DIR: &str = ".locks";

/// Options of the file store (`adapter.file`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FileStoreOptions {
    /// The session folder (default: `runtime/session` under the working directory, as
    /// ThinkJS puts it under the application's runtime folder). Created with mode 0700.
    pub path: PathBuf,
    /// Levels of sub-folders, one hex digit of the store key each (default 1: 16 folders).
    pub path_depth: usize,
    /// Whether each write is fsynced, with its folder, before it is acknowledged
    /// (default `true`). Turning it off trades durability on power loss for speed; writes
    /// stay atomic either way.
    pub fsync: bool,
    /// With `fsync`, whether concurrent writes share one flush of the folder's file system
    /// (`syncfs(2)`, Linux only; default `true`) instead of an `fdatasync` each. It
    /// flushes whatever else is dirty on that file system too: on a disk other programs
    /// write heavily, give the folder a file system of its own or turn this off.
    pub group_commit: bool,
    /// The most threads the store runs its file operations on (default 0: one per core
    /// with `fsync` off, four per core with it on). Calls beyond it wait their turn,
    /// which costs less than a thread per call: see [Threads](crate#threads).
    pub threads: usize,
}

impl Default for FileStoreOptions {
    fn default() -> Self {
        Self {
            path: PathBuf::from("runtime").join("session"),
            path_depth: 1,
            fsync: true,
            group_commit: true,
            threads: 0,
        }
    }
}

impl FileStoreOptions {
    /// Default options with the session folder at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            ..Self::default()
        }
    }

    /// Sets [`FileStoreOptions::path_depth`].
    #[must_use]
    pub fn path_depth(mut self, depth: usize) -> Self {
        self.path_depth = depth;
        self
    }

    /// Sets [`FileStoreOptions::fsync`].
    #[must_use]
    pub fn fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// Sets [`FileStoreOptions::group_commit`].
    #[must_use]
    pub fn group_commit(mut self, group_commit: bool) -> Self {
        self.group_commit = group_commit;
        self
    }

    /// Sets [`FileStoreOptions::threads`] (0 for the default).
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }
}

/// The file store. Cheap to clone: clones share the folder and the locks.
#[derive(Clone, Debug)]
pub struct FileStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    depth: usize,
    /// How writes are made durable (`fsync`, `group_commit`).
    durability: Durability,
    /// The threads that run the store's calls.
    pool: Pool,
    /// Per stripe: the in-process mutex, holding the lazily opened lock file whose `flock`
    /// excludes other processes. The mutex matters because `flock` does not exclude
    /// threads sharing one open file.
    stripes: Box<[Mutex<Option<File>>]>,
    /// The same for the user index files, on lock files of their own: a session's stripe
    /// is always taken before a user's, so the two sets never wait on each other in a
    /// cycle.
    user_stripes: Box<[Mutex<Option<File>>]>,
}

/// Which set of lock stripes a lock is taken in.
#[derive(Clone, Copy, Debug)]
enum LockSet {
    /// Session files, by the store key's first byte (lock files `00` to `ff`).
    Sessions,
    /// User index files, by the file name's first byte (lock files `u00` to `uff`).
    Users,
}

impl FileStore {
    /// Opens (creating if needed, with mode 0700) the session folder, and creates its first
    /// lock file, so that a folder this process cannot write is reported here rather than
    /// by the first request.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a `path_depth` above 4; [`ErrorKind::Backend`] if the folder
    /// cannot be created, is not a folder or cannot be written, with a [`Hint`] naming the
    /// path and what to do.
    pub fn open(options: FileStoreOptions) -> Result<Self> {
        if options.path_depth > MAX_PATH_DEPTH {
            return Err(Error::config(
                "adapter.file.path_depth",
                format!(
                    "must be between 0 and {MAX_PATH_DEPTH}, not {}",
                    options.path_depth
                ),
            ));
        }
        let root = options.path;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root.join(LOCK_DIR))
            .map_err(|err| {
                let hint = folder_hint(&root, &err);
                io_error(
                    format!("cannot create the session folder {}", root.display()),
                    err,
                )
                .with_hint(hint)
            })?;
        let durability =
            Durability::new(&root, options.fsync, options.group_commit).map_err(|err| {
                io_error(
                    format!("cannot open the session folder {}", root.display()),
                    err,
                )
            })?;
        let threads =
            NonZeroUsize::new(options.threads).unwrap_or_else(|| Pool::default_size(options.fsync));
        let inner = Inner {
            root,
            depth: options.path_depth,
            durability,
            pool: Pool::new(threads),
            stripes: (0..STRIPES).map(|_| Mutex::new(None)).collect(),
            user_stripes: (0..STRIPES).map(|_| Mutex::new(None)).collect(),
        };
        // The first lock file, kept for the first request of its stripe: creating it
        // proves the folder writable.
        let first = inner.lock_file_path(LockSet::Sessions, 0);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&first)
            .map_err(|err| {
                let hint = folder_hint(&inner.root, &err);
                io_error(
                    format!(
                        "cannot write in the session folder {} (creating {})",
                        inner.root.display(),
                        first.display()
                    ),
                    err,
                )
                .with_hint(hint)
            })?;
        *inner.stripes[0]
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(file);
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The session folder.
    pub fn path(&self) -> &Path {
        &self.inner.root
    }

    /// The file that holds the session at `key` (whether or not it exists).
    pub fn file_path(&self, key: &StoreKey) -> PathBuf {
        self.inner.file_path(key)
    }

    /// The file that holds the index of `user`'s sessions (whether or not it exists):
    /// `users/<shard digits>/<SHA-256 of the user id in hex>` under the session folder.
    pub fn user_index_path(&self, user: &UserId) -> PathBuf {
        self.inner.index_path(&IndexName::of(user))
    }

    /// The file that holds the lease on the session lock of `key` (whether or not it
    /// exists): `leases/<shard digits>/<key>` under the session folder.
    pub fn lease_path(&self, key: &StoreKey) -> PathBuf {
        self.inner.lease_path(key)
    }

    /// Runs `operation` on the store's threads ([Threads](crate#threads)).
    async fn blocking<T, F>(&self, operation: F) -> Result<T>
    where
        F: FnOnce(&Inner) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        self.inner
            .pool
            .run(move || operation(&inner))
            .await
            .map_err(|err| Error::backend("a file store call did not complete", err))?
    }

    /// Runs `operation` on a thread of the runtime's blocking pool: for a long walk (gc)
    /// that would hold one of the store's few threads for seconds.
    async fn elastic<T, F>(&self, operation: F) -> Result<T>
    where
        F: FnOnce(&Inner) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || operation(&inner))
            .await
            .map_err(|err| Error::backend("a file store call did not complete", err))?
    }
}

fn io_error(message: String, err: io::Error) -> Error {
    Error::backend(message, err)
}

/// What to do when the session folder `root` cannot be created or written, as `err` says.
fn folder_hint(root: &Path, err: &io::Error) -> Hint {
    let root = root.display();
    let text = match err.kind() {
        io::ErrorKind::NotADirectory | io::ErrorKind::AlreadyExists => format!(
            "a part of {root} is a file, not a folder: point `adapter.file.path` at a folder, \
             or move that file away"
        ),
        io::ErrorKind::PermissionDenied => format!(
            "this process may not create or write {root}: point `adapter.file.path` at a \
             folder its user owns, or give that user write permission there"
        ),
        io::ErrorKind::ReadOnlyFilesystem => format!(
            "{root} is on a read-only file system: point `adapter.file.path` at a writable \
             folder"
        ),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => format!(
            "no space is left for {root}: free some, or point `adapter.file.path` at another \
             disk"
        ),
        _ => format!(
            "the session folder {root} must be a folder this process can create and write: \
             fix `adapter.file.path`"
        ),
    };
    Hint::new(SetupProblem::Storage, text)
}

/// The entries of the folder `dir`, none if it does not exist (yet, or any more: another
/// process may have removed it), every error naming the folder.
fn dir_entries(dir: &Path) -> Result<impl Iterator<Item = Result<fs::DirEntry>> + '_> {
    let listing = match fs::read_dir(dir) {
        Ok(entries) => Some(entries),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(io_error(format!("cannot list {}", dir.display()), err)),
    };
    Ok(listing.into_iter().flatten().map(move |entry| {
        entry.map_err(|err| io_error(format!("cannot list {}", dir.display()), err))
    }))
}

/// What gc looks at in a folder: a regular file named like a session key, or a temporary
/// file left by a write for that key.
enum GcEntry {
    Key(StoreKey, PathBuf),
    Temp(StoreKey, PathBuf),
}

/// The [`GcEntry`]s of the folder `dir`. Only regular files: a folder, a link or a pipe
/// someone put there is left alone (and never opened: reading a pipe would wait forever),
/// and so is a file of any other name.
fn gc_entries(dir: &Path) -> Result<impl Iterator<Item = Result<GcEntry>> + '_> {
    Ok(dir_entries(dir)?.filter_map(|entry| {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => return Some(Err(err)),
        };
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            return None;
        }
        let name = entry.file_name();
        let name = name.to_str()?;
        match temp_file_key(name) {
            Some(key) => Some(Ok(GcEntry::Temp(key, entry.path()))),
            None => StoreKey::parse(name)
                .ok()
                .map(|key| Ok(GcEntry::Key(key, entry.path()))),
        }
    }))
}

impl Inner {
    fn shard_dir(&self, key: &StoreKey) -> PathBuf {
        let mut dir = self.root.clone();
        for digit in key.as_str().chars().take(self.depth) {
            dir.push(digit.to_string());
        }
        dir
    }

    fn file_path(&self, key: &StoreKey) -> PathBuf {
        self.shard_dir(key).join(key.as_str())
    }

    /// Runs `operation` holding the key's stripe lock, in this process and across processes.
    fn locked<T>(&self, key: &StoreKey, operation: impl FnOnce() -> Result<T>) -> Result<T> {
        self.stripe_locked(LockSet::Sessions, key.digest()[0], operation)
    }

    /// Runs `operation` holding lock `stripe` of `set`.
    fn stripe_locked<T>(
        &self,
        set: LockSet,
        stripe: u8,
        operation: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let stripes = match set {
            LockSet::Sessions => &self.stripes,
            LockSet::Users => &self.user_stripes,
        };
        let mutex = &stripes[usize::from(stripe) % STRIPES];
        // A panic while holding the mutex cannot leave a half-done write visible (writes
        // are renames), so a poisoned mutex is safe to reuse.
        let mut slot = mutex.lock().unwrap_or_else(PoisonError::into_inner);
        let file = match slot.take() {
            Some(file) => file,
            None => self.open_lock_file(set, stripe)?,
        };
        let file = slot.insert(file);
        fs4::FileExt::lock(&*file)
            .map_err(|err| io_error("cannot lock a session lock file".into(), err))?;
        let result = operation();
        if let Err(err) = fs4::FileExt::unlock(&*file) {
            // Closing the file releases the lock too; drop it and reopen next time.
            tracing::warn!(error = %format_args!("{err:#}"), "cannot unlock a session lock file; reopening it");
            *slot = None;
        }
        result
    }

    /// The lock file of `stripe` in `set`.
    fn lock_file_path(&self, set: LockSet, stripe: u8) -> PathBuf {
        let dir = self.root.join(LOCK_DIR);
        match set {
            LockSet::Sessions => dir.join(format!("{stripe:02x}")),
            LockSet::Users => dir.join(format!("u{stripe:02x}")),
        }
    }

    fn open_lock_file(&self, set: LockSet, stripe: u8) -> Result<File> {
        let dir = self.root.join(LOCK_DIR);
        let path = self.lock_file_path(set, stripe);
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
        };
        match open() {
            Ok(file) => Ok(file),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                create_dir(&dir)?;
                open().map_err(|err| {
                    io_error(format!("cannot open lock file {}", path.display()), err)
                })
            }
            Err(err) => Err(io_error(
                format!("cannot open lock file {}", path.display()),
                err,
            )),
        }
    }

    /// The record in the file at `key`: `Ok(None)` if there is no file, a decode error if it
    /// is not a valid record.
    fn read(&self, key: &StoreKey) -> Result<Option<Record>> {
        match fs::read(self.file_path(key)) {
            Ok(bytes) => decode_file(key, &bytes).map(|(record, _)| Some(record)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(io_error(
                format!("cannot read session file {}…", key.short()),
                err,
            )),
        }
    }

    /// The file at `key`, opened and read for a write (holding its stripe lock), and its
    /// record. An unreadable record counts as absent (it is replaced by the write), with a
    /// warning.
    fn read_for_write(&self, key: &StoreKey) -> Result<(Option<Record>, Opened)> {
        let path = self.file_path(key);
        let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Ok((None, Opened::Absent));
            }
            Err(err) => {
                return Err(io_error(
                    format!("cannot open session file {}…", key.short()),
                    err,
                ));
            }
        };
        let mut bytes = Vec::with_capacity(2 * layout::PAGE);
        file.read_to_end(&mut bytes)
            .map_err(|err| io_error(format!("cannot read session file {}…", key.short()), err))?;
        match decode_file(key, &bytes) {
            Ok((record, next)) => Ok((Some(record), Opened::Present { file, next })),
            Err(err) => {
                tracing::warn!(session = key.short(), error = %format_args!("{err:#}"), "corrupt session file treated as absent");
                let next = Next::FIRST;
                Ok((None, Opened::Present { file, next }))
            }
        }
    }

    /// Writes `record` as the next version of the file at `key`, [`Opened`] by
    /// [`Inner::read_for_write`] under the same lock: in place into the slot that does
    /// not hold the current version if it fits, else as a new file (see [`layout`]).
    fn write(&self, key: &StoreKey, opened: Opened, record: &Record) -> Result<()> {
        let encoded = wire::encode_record(record);
        let what = || format!("session file {}…", key.short());
        match opened {
            Opened::Present { file, next } => {
                if let Some((offset, slot)) = next.in_place(&encoded) {
                    return file
                        .write_all_at(&slot, offset)
                        .and_then(|()| self.durability.sync_overwrite(&file))
                        .map_err(|err| io_error(format!("cannot write {}", what()), err));
                }
                let bytes = next.new_file(&encoded);
                self.replace_file(&self.shard_dir(key), key.as_str(), &bytes, &what())
            }
            Opened::Absent => {
                let pending =
                    self.create_file(key, &Next::FIRST.new_file(&encoded), &what(), false)?;
                debug_assert!(pending.is_none(), "a create that does not defer syncs");
                Ok(())
            }
        }
    }

    /// Creates the file at `key`, which does not exist (its stripe lock is held), with
    /// `bytes`: in place, since no reader can know the key of a session not yet created; one
    /// caught half-written is no session (a decode error), and one left so by a crash is
    /// removed by gc as corrupt. With fsync on, the file and then its folder are synced.
    ///
    /// With `defer` and group commit, the flush is left to the caller instead
    /// ([`Durability::defer`]): the file is written, and the returned [`Pending`] says
    /// which flush makes it durable.
    fn create_file(
        &self,
        key: &StoreKey,
        bytes: &[u8],
        what: &str,
        defer: bool,
    ) -> Result<Option<Pending>> {
        let dir = self.shard_dir(key);
        let path = dir.join(key.as_str());
        let began = self.durability.begin();
        let mut file = match create_new(&path) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                create_dir(&dir)?;
                create_new(&path)
            }
            // Written by something that does not take the locks: replaced atomically.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                return self
                    .replace_file(&dir, key.as_str(), bytes, what)
                    .map(|()| None);
            }
            other => other,
        }
        .map_err(|err| io_error(format!("cannot create {what} in {}", dir.display()), err))?;
        let written = file.write_all(bytes).and_then(|()| {
            match defer.then(|| self.durability.defer(began)).flatten() {
                Some(pending) => Ok(Some(pending)),
                None => self
                    .durability
                    .sync_new_file(began, &file, &dir)
                    .map(|()| None),
            }
        });
        written.map_err(|err| {
            // Nothing was acknowledged: the file goes.
            let _ = fs::remove_file(&path);
            io_error(format!("cannot write {what}"), err)
        })
    }

    /// Atomically replaces the file `name` in `dir` with `bytes`: a temporary file in the
    /// same folder, written, fsynced, renamed over it, and the folder fsynced (the fsyncs
    /// only with [`FileStoreOptions::fsync`]). `what` names the file in errors.
    fn replace_file(&self, dir: &Path, name: &str, bytes: &[u8], what: &str) -> Result<()> {
        self.replace_file_with(dir, name, bytes, what, true)
    }

    /// [`Inner::replace_file`], with the fsyncs only if `durable`: still atomic without
    /// them, but a crash of the machine may lose the new version.
    fn replace_file_with(
        &self,
        dir: &Path,
        name: &str,
        bytes: &[u8],
        what: &str,
        durable: bool,
    ) -> Result<()> {
        let durability = if durable {
            &self.durability
        } else {
            &Durability::Off
        };
        let began = durability.begin();
        let temp = dir.join(format!(".{name}.{}{TEMP_SUFFIX}", random_suffix()?));
        let mut file = match create_new(&temp) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                create_dir(dir)?;
                create_new(&temp)
            }
            other => other,
        }
        .map_err(|err| {
            io_error(
                format!(
                    "cannot create a temporary file for {what} in {}",
                    dir.display()
                ),
                err,
            )
        })?;
        let written = file
            .write_all(bytes)
            .and_then(|()| durability.sync_file(began, &file))
            .and_then(|()| fs::rename(&temp, dir.join(name)))
            .and_then(|()| durability.sync_dir(began, dir));
        if let Err(err) = written {
            // The file is untouched: only the temporary file may exist.
            let _ = fs::remove_file(&temp);
            return Err(io_error(format!("cannot write {what}"), err));
        }
        Ok(())
    }

    /// Writes `record` at `key` ([`Opened`] for the write) after a create over `before`
    /// (the owner of an expired or corrupt record there, if any) or a change of binding:
    /// the index lists the session before its file names the new owner, and the old
    /// owner's entry is pruned after.
    fn write_bound(
        &self,
        key: &StoreKey,
        opened: Opened,
        record: &Record,
        before: Option<&UserId>,
    ) -> Result<()> {
        let after = record.owner.as_ref().map(|owner| &owner.user);
        match after {
            // An already expired record needs no entry: it would never be listed.
            Some(user) if !record.is_expired(Timestamp::now()) => {
                self.bind_and_write(user, key, || self.write(key, opened, record))?;
            }
            _ => self.write(key, opened, record)?,
        }
        if let Some(before) = before
            && after != Some(before)
        {
            self.prune_quietly(before, std::slice::from_ref(key));
        }
        Ok(())
    }

    /// Removes the session file at `key`, holding its lock. Returns `None` if there was no
    /// file, else whether it held a live record and the user it was bound to.
    fn remove_session(
        &self,
        key: &StoreKey,
        now: Timestamp,
    ) -> Result<Option<(bool, Option<UserId>)>> {
        self.locked(key, || {
            let path = self.file_path(key);
            let (live, owner) = match fs::read(&path) {
                Ok(bytes) => (
                    expiry_of(&bytes).is_some_and(|expires_at| !expires_at.is_reached(now)),
                    owner_of(&bytes),
                ),
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
                // Unreadable: removed all the same, as a dead record.
                Err(_) => (false, None),
            };
            Ok(self.remove(&path)?.then_some((live, owner)))
        })
    }

    fn remove(&self, path: &Path) -> Result<bool> {
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(io_error(format!("cannot remove {}", path.display()), err)),
        }
    }

    /// Walks the shard folders depth-first; calls `visit` with each folder of files.
    fn walk(
        &self,
        dir: &Path,
        level: usize,
        visit: &mut dyn FnMut(&Path) -> Result<()>,
    ) -> Result<()> {
        if level == self.depth {
            return visit(dir);
        }
        for entry in dir_entries(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let is_shard = name.len() == 1
                && name
                    .to_str()
                    .is_some_and(|n| n.chars().all(|c| c.is_ascii_hexdigit()));
            if is_shard && entry.file_type().is_ok_and(|t| t.is_dir()) {
                self.walk(&entry.path(), level + 1, visit)?;
            }
        }
        Ok(())
    }

    /// Removes expired and corrupt session files and stray temporary files in `dir`; adds
    /// the removed sessions that were bound to a user to `unbound`.
    fn gc_dir(
        &self,
        dir: &Path,
        now: Timestamp,
        unbound: &mut HashMap<UserId, Vec<StoreKey>>,
    ) -> Result<u64> {
        let mut removed = 0;
        for entry in gc_entries(dir)? {
            let (key, path) = match entry? {
                GcEntry::Temp(key, path) => {
                    // Temporary files are only written under their stripe lock: holding it,
                    // no writer is using one, so any left is debris from a crash.
                    if self.locked(&key, || self.remove(&path))? {
                        removed += 1;
                    }
                    continue;
                }
                GcEntry::Key(key, path) => (key, path),
            };
            if !self.dead(&path, now) {
                continue;
            }
            // Re-check under the lock: a writer may have just renewed the session.
            let gone = self.locked(&key, || {
                let path = self.file_path(&key);
                if !self.dead(&path, now) {
                    return Ok(None);
                }
                // The whole file only for the dead ones: the owner is at its end.
                let owner = fs::read(&path).ok().as_deref().and_then(owner_of);
                Ok(self.remove(&path)?.then_some(owner))
            })?;
            if let Some(owner) = gone {
                removed += 1;
                if let Some(user) = owner {
                    unbound.entry(user).or_default().push(key);
                }
            }
        }
        Ok(removed)
    }

    /// Whether the file at `path` is expired or corrupt (in neither layout, no intact
    /// slot, a record header that does not decode).
    fn dead(&self, path: &Path, now: Timestamp) -> bool {
        match fs::read(path) {
            Ok(bytes) => expiry_of(&bytes).is_none_or(|expires_at| expires_at.is_reached(now)),
            // Gone already (nothing to remove), or unreadable now (a permission, no file
            // descriptor left): kept, since it may be a live session; the next gc retries.
            Err(_) => false,
        }
    }
}

/// What a create did, on the store's thread.
#[derive(Debug)]
enum Created {
    /// A live session holds the key.
    Refused,
    /// Written and, with fsync, durable.
    Durable,
    /// Written; durable once the pending flush ends.
    Flushing { key: StoreKey, pending: Pending },
}

/// What [`Inner::read_for_write`] found at a key, for the write that follows.
#[derive(Debug)]
enum Opened {
    /// No file.
    Absent,
    /// The file, open for writing, and where its next version goes.
    Present { file: File, next: Next },
}

/// The record in the session file `bytes` (of the session at `key`, which errors name), and
/// where its next version goes.
fn decode_file(key: &StoreKey, bytes: &[u8]) -> Result<(Record, Next)> {
    layout::parse(bytes)
        .and_then(|contents| Ok((wire::decode_record(contents.record)?, contents.next)))
        .map_err(|err| Error::decode(format!("session file {}…: {}", key.short(), err.message())))
}

/// The expiry in the session file `bytes`, if it is a session file.
fn expiry_of(bytes: &[u8]) -> Option<Timestamp> {
    let contents = layout::parse(bytes).ok()?;
    wire::decode_expiry(contents.record).ok()
}

/// Decodes the record in a session file, in the current layout (two slots, see the crate
/// docs) or the one before it: what a tool or a test reading the folder needs.
///
/// # Errors
/// [`ErrorKind::Decode`] for bytes that are not a session file, or hold no intact record.
pub fn decode_session_file(bytes: &[u8]) -> Result<Record> {
    wire::decode_record(layout::parse(bytes)?.record)
}

fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

fn create_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|err| io_error(format!("cannot create folder {}", dir.display()), err))
}

fn random_suffix() -> Result<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|err| {
        Error::new(ErrorKind::Random, "the OS random number generator failed").with_source(err)
    })?;
    Ok(hex::encode(bytes))
}

/// The key of a temporary file name `.<key>.<random>.tmp`.
fn temp_file_key(name: &str) -> Option<StoreKey> {
    let inner = name.strip_prefix('.')?.strip_suffix(TEMP_SUFFIX)?;
    let (key, _random) = inner.split_once('.')?;
    StoreKey::parse(key).ok()
}

#[async_trait]
impl SessionStore for FileStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        let key = key.clone();
        let now = Timestamp::now();
        self.blocking(move |inner| Ok(inner.read(&key)?.filter(|record| !record.is_expired(now))))
            .await
    }

    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        let (key, record) = (key.clone(), record.clone());
        let created = self
            .blocking(move |inner| {
                inner.locked(&key, || {
                    let now = Timestamp::now();
                    let (existing, opened) = inner.read_for_write(&key)?;
                    if existing
                        .as_ref()
                        .is_some_and(|existing| !existing.is_expired(now))
                    {
                        return Ok(Created::Refused);
                    }
                    // A new name for an unbound session: its flush is awaited below,
                    // off the lock and the thread (see `durability`).
                    if matches!(opened, Opened::Absent) && record.owner.is_none() {
                        let bytes = Next::FIRST.new_file(&wire::encode_record(&record));
                        let what = format!("session file {}…", key.short());
                        return Ok(match inner.create_file(&key, &bytes, &what, true)? {
                            Some(pending) => Created::Flushing {
                                key: key.clone(),
                                pending,
                            },
                            None => Created::Durable,
                        });
                    }
                    let before = existing.and_then(|existing| existing.owner);
                    let before = before.as_ref().map(|owner| &owner.user);
                    inner.write_bound(&key, opened, &record, before)?;
                    Ok(Created::Durable)
                })
            })
            .await?;
        match created {
            Created::Refused => Ok(false),
            Created::Durable => Ok(true),
            Created::Flushing { key, pending } => {
                let queue = || {
                    let inner = Arc::clone(&self.inner);
                    self.inner
                        .pool
                        .spawn(move || inner.durability.flush())
                        .map_err(io::Error::other)
                };
                let Err(err) = self.inner.durability.flushed(pending, queue).await else {
                    return Ok(true);
                };
                // Nothing was acknowledged: the file goes, as a failed write's does.
                let discard = key.clone();
                let _ = self
                    .blocking(move |inner| {
                        inner.locked(&discard, || inner.remove(&inner.file_path(&discard)))
                    })
                    .await;
                Err(io_error(
                    format!("cannot write session file {}…", key.short()),
                    err,
                ))
            }
        }
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        let (key, changes) = (key.clone(), changes.clone());
        self.blocking(move |inner| {
            inner.locked(&key, || {
                let now = Timestamp::now();
                let (record, opened) = inner.read_for_write(&key)?;
                let Some(mut record) = record.filter(|r| !r.is_expired(now)) else {
                    return Ok(false);
                };
                let rebinds = changes.owner.as_ref().is_some_and(|new| {
                    record.owner.as_ref().is_none_or(|old| old.user != new.user)
                });
                if !rebinds {
                    // The binding stays (a new label at most): the index already lists a
                    // live bound session, so only the session file is written.
                    changes.apply_to_record(&mut record);
                    inner.write(&key, opened, &record)?;
                    return Ok(true);
                }
                let before = record.owner.take().map(|owner| owner.user);
                changes.apply_to_record(&mut record);
                inner.write_bound(&key, opened, &record, before.as_ref())?;
                Ok(true)
            })
        })
        .await
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
        let key = key.clone();
        self.blocking(move |inner| {
            inner.locked(&key, || {
                let now = Timestamp::now();
                let (record, opened) = inner.read_for_write(&key)?;
                let Some(mut record) = record.filter(|r| !r.is_expired(now)) else {
                    return Ok(false);
                };
                record.expires_at = expires_at;
                inner.write(&key, opened, &record)?;
                Ok(true)
            })
        })
        .await
    }

    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        let key = key.clone();
        self.blocking(move |inner| {
            let Some((live, owner)) = inner.remove_session(&key, Timestamp::now())? else {
                return Ok(false);
            };
            if let Some(user) = owner {
                inner.prune_quietly(&user, std::slice::from_ref(&key));
            }
            Ok(live)
        })
        .await
    }

    async fn gc(&self) -> Result<u64> {
        self.elastic(|inner| {
            let now = Timestamp::now();
            let mut removed = 0;
            inner.walk(&inner.root, 0, &mut |dir| {
                let mut unbound = HashMap::new();
                removed += inner.gc_dir(dir, now, &mut unbound)?;
                // Folder by folder, so that a gc of many sessions holds few in memory.
                inner.prune_all(unbound);
                Ok(())
            })?;
            let index_root = inner.root.join(USER_DIR);
            inner.walk(&index_root, 0, &mut |dir| inner.gc_index_dir(dir))?;
            // Lapsed leases are not sessions: they are not counted.
            inner.gc_leases(now)?;
            Ok(removed)
        })
        .await
    }

    async fn delete_many(&self, keys: &[StoreKey]) -> Result<u64> {
        let keys = keys.to_vec();
        self.blocking(move |inner| {
            let now = Timestamp::now();
            let mut removed = 0;
            let mut unbound: HashMap<UserId, Vec<StoreKey>> = HashMap::new();
            // Each index file is rewritten once, however many of its sessions go, even
            // if a removal fails halfway.
            let result = keys.iter().try_for_each(|key| {
                if let Some((live, owner)) = inner.remove_session(key, now)? {
                    removed += u64::from(live);
                    if let Some(user) = owner {
                        unbound.entry(user).or_default().push(key.clone());
                    }
                }
                Ok::<(), Error>(())
            });
            inner.prune_all(unbound);
            result.map(|()| removed)
        })
        .await
    }

    async fn sessions_of(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
        let user = user.clone();
        self.blocking(move |inner| inner.sessions_of(&user)).await
    }

    async fn user_index_len(&self, user: &UserId) -> Result<u64> {
        let user = user.clone();
        self.blocking(move |inner| inner.index_len(&user)).await
    }

    async fn lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        let (key, token) = (key.clone(), token.clone());
        self.blocking(move |inner| inner.lock_lease(&key, &token, ttl))
            .await
    }

    /// Both in one call on the store's threads.
    async fn lock_and_load(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<Option<Option<Record>>> {
        let (key, token) = (key.clone(), token.clone());
        self.blocking(move |inner| {
            if !inner.lock_lease(&key, &token, ttl)? {
                return Ok(None);
            }
            let now = Timestamp::now();
            Ok(Some(
                inner.read(&key)?.filter(|record| !record.is_expired(now)),
            ))
        })
        .await
    }

    async fn renew_lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        let (key, token) = (key.clone(), token.clone());
        self.blocking(move |inner| inner.renew_lease(&key, &token, ttl))
            .await
    }

    async fn unlock(&self, key: &StoreKey, token: &LockToken) -> Result<bool> {
        let (key, token) = (key.clone(), token.clone());
        self.blocking(move |inner| inner.unlock_lease(&key, &token))
            .await
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
            .with_shared(true)
            .with_persistent(true)
            .with_user_index(true)
            .with_lock(true)
    }
}

/// Registers `type = "file"`, configured by `adapter.file` ([`FileStoreOptions`]).
pub fn register(registry: &mut Registry) {
    registry.register("file", |options| async move {
        let options: FileStoreOptions = options.parse()?;
        let store = tokio::task::spawn_blocking(move || FileStore::open(options))
            .await
            .map_err(|err| Error::backend("opening the file store did not complete", err))??;
        Ok(Arc::new(store) as Arc<dyn SessionStore>)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_round_trip_to_their_key() {
        let key = StoreKey::parse(&"ab".repeat(32)).expect("key");
        let name = format!(".{}.{}{TEMP_SUFFIX}", key.as_str(), "0011223344556677");
        assert_eq!(temp_file_key(&name), Some(key.clone()));
        assert_eq!(temp_file_key(key.as_str()), None);
        assert_eq!(temp_file_key(".x.y.tmp"), None);
        assert_eq!(temp_file_key("../../etc/passwd"), None);
    }

    #[test]
    fn shards_by_leading_hex_digits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::open(FileStoreOptions::new(dir.path()).path_depth(2)).expect("open");
        let key = StoreKey::parse(&format!("c3{}", "0".repeat(62))).expect("key");
        assert_eq!(
            store.file_path(&key),
            dir.path().join("c").join("3").join(key.as_str())
        );
        let err =
            FileStore::open(FileStoreOptions::new(dir.path()).path_depth(5)).expect_err("too deep");
        assert!(err.to_string().contains("adapter.file.path_depth"));
        FileStore::open(FileStoreOptions::new(dir.path()).path_depth(MAX_PATH_DEPTH))
            .expect("the deepest sharding offered");
    }

    #[test]
    fn folder_hints_name_the_fix_for_each_cause() {
        let root = Path::new("/srv/app/session");
        for (kind, fix) in [
            (io::ErrorKind::NotADirectory, "is a file, not a folder"),
            (io::ErrorKind::AlreadyExists, "is a file, not a folder"),
            (
                io::ErrorKind::PermissionDenied,
                "give that user write permission",
            ),
            (io::ErrorKind::ReadOnlyFilesystem, "read-only file system"),
            (io::ErrorKind::StorageFull, "no space is left"),
            (io::ErrorKind::QuotaExceeded, "no space is left"),
            (
                io::ErrorKind::Other,
                "must be a folder this process can create and write",
            ),
        ] {
            let hint = folder_hint(root, &io::Error::from(kind));
            assert_eq!(hint.problem(), SetupProblem::Storage, "{kind:?}");
            assert!(hint.text().contains(fix), "{kind:?}: {}", hint.text());
            assert!(hint.text().contains("/srv/app/session"), "{kind:?}");
        }
    }

    #[tokio::test]
    async fn gc_passes_over_a_file_named_like_a_shard_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::open(FileStoreOptions::new(dir.path())).expect("open");
        fs::write(dir.path().join("a"), b"not a folder").expect("write");
        assert_eq!(store.gc().await.expect("gc"), 0);
        assert!(dir.path().join("a").is_file(), "left alone");
    }

    #[test]
    fn a_lock_folder_removed_under_a_running_store_is_made_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::open(FileStoreOptions::new(dir.path())).expect("open");
        fs::remove_dir_all(dir.path().join(LOCK_DIR)).expect("remove the lock folder");
        // Stripe 0's file is open since `open`; any other stripe opens its file now.
        let key = StoreKey::parse(&format!("ff{}", "0".repeat(62))).expect("key");
        let ran = store.inner.locked(&key, || Ok(true)).expect("locked");
        assert!(ran);
        assert!(
            store
                .inner
                .lock_file_path(LockSet::Sessions, key.digest()[0])
                .is_file()
        );
    }
}
