//! How a write is made durable before it is acknowledged (`fsync = true`).
//!
//! - **Overwrites in place** (the common write: a session's next version into its other
//!   slot) `fdatasync` their file in every mode: no metadata changes, so no journal commit,
//!   and the block layer merges the disk-cache flushes of concurrent ones.
//! - **New names** (a new session's file; a temporary file and its rename when a record
//!   changes size), with **group commit** (Linux, `group_commit = true`, the default): a
//!   writer that has put its bytes in the page cache waits for one `syncfs(2)` of the
//!   folder's file system that started after its write. Concurrent writers share it: one
//!   leader flushes for everyone waiting, and the writers that arrive meanwhile share the
//!   next one. A flush costs one journal commit and one cache flush, however many files it
//!   carries, where an `fsync` of each file and of its folder costs a journal commit each.
//! - **Each file** (elsewhere, or `group_commit = false`): new names `fdatasync` their
//!   file and fsync their folder.
//!
//! `syncfs` flushes everything dirty on the file system, so on a disk that other programs
//! write heavily, group commit waits for their data too: put the session folder on a file
//! system of its own, or turn group commit off.
//!
//! A failed flush fails every write that was in progress while it ran, not only the ones it
//! was started for: Linux reports a lost page to one `syncfs` only, and that page may be
//! any writer's that had already written it. Nothing that may be lost is acknowledged.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// What the store does to make a write durable.
#[derive(Debug)]
pub(crate) enum Durability {
    /// No syncing: writes stay atomic, but a machine crash may lose the latest ones.
    Off,
    /// `fdatasync` of each file written, and fsync of each folder changed.
    EachFile,
    /// Concurrent writes share one `syncfs`.
    #[cfg(target_os = "linux")]
    Group(GroupCommit),
}

/// Taken before a write's first byte, and handed to [`Durability::sync`]: what the sync
/// checks to know whether a failed flush may have carried this write.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Began {
    #[cfg(target_os = "linux")]
    failures: u64,
}

impl Durability {
    /// The durability for `fsync` and `group_commit` on the folder `root`.
    pub(crate) fn new(root: &Path, fsync: bool, group_commit: bool) -> io::Result<Self> {
        if !fsync {
            return Ok(Self::Off);
        }
        #[cfg(target_os = "linux")]
        if group_commit {
            return Ok(Self::Group(GroupCommit::new(File::open(root)?)));
        }
        let _ = (root, group_commit);
        Ok(Self::EachFile)
    }

    /// Whether writes that create names wait for a flush that other writes share
    /// (group commit).
    pub(crate) fn shares_flushes(&self) -> bool {
        match self {
            #[cfg(target_os = "linux")]
            Self::Group(_) => true,
            Self::Off | Self::EachFile => false,
        }
    }

    /// Marks the start of a write.
    pub(crate) fn begin(&self) -> Began {
        match self {
            #[cfg(target_os = "linux")]
            Self::Group(group) => Began {
                failures: group.state().failures,
            },
            Self::Off | Self::EachFile => Began {
                #[cfg(target_os = "linux")]
                failures: 0,
            },
        }
    }

    /// Makes an overwrite of blocks `file` already has durable, in either mode: an
    /// `fdatasync`, which needs no journal commit (the overwrite changes no metadata that
    /// reading the data needs), only the data's write and a cache flush of the disk, and
    /// the block layer merges the flushes of concurrent ones. A `syncfs` would add a
    /// journal commit of every written file's new modification time.
    pub(crate) fn sync_overwrite(&self, file: &File) -> io::Result<()> {
        match self {
            Self::Off => Ok(()),
            _ => file.sync_data(),
        }
    }

    /// Makes the data written to `file` (a new file) durable.
    pub(crate) fn sync_file(&self, began: Began, file: &File) -> io::Result<()> {
        match self {
            Self::Off => Ok(()),
            Self::EachFile => file.sync_data(),
            #[cfg(target_os = "linux")]
            Self::Group(group) => group.sync(began),
        }
    }

    /// Makes `file`, just created in the folder `dir`, durable with its name: one flush
    /// with group commit, which carries both.
    pub(crate) fn sync_new_file(&self, began: Began, file: &File, dir: &Path) -> io::Result<()> {
        match self {
            Self::Off => Ok(()),
            Self::EachFile => file.sync_data().and_then(|()| File::open(dir)?.sync_all()),
            #[cfg(target_os = "linux")]
            Self::Group(group) => group.sync(began),
        }
    }

    /// Makes the names created or renamed in the folder `dir` durable.
    pub(crate) fn sync_dir(&self, began: Began, dir: &Path) -> io::Result<()> {
        match self {
            Self::Off => Ok(()),
            Self::EachFile => File::open(dir)?.sync_all(),
            #[cfg(target_os = "linux")]
            Self::Group(group) => group.sync(began),
        }
    }
}

/// Group commit over `syncfs`: see the module docs.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub(crate) struct GroupCommit {
    /// The session folder, whose file system is flushed.
    root: File,
    state: Mutex<State>,
    /// Signalled when a flush ends.
    flushed: Condvar,
}

#[cfg(target_os = "linux")]
#[derive(Debug, Default)]
struct State {
    /// Writes that asked for a flush (each one's ticket).
    asked: u64,
    /// Tickets covered by a finished flush.
    flushed: u64,
    /// Whether a leader is flushing now.
    flushing: bool,
    /// Flushes that failed, and the last one's error.
    failures: u64,
    last_error: Option<(io::ErrorKind, String)>,
}

#[cfg(target_os = "linux")]
impl GroupCommit {
    fn new(root: File) -> Self {
        Self {
            root,
            state: Mutex::new(State::default()),
            flushed: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is counters only, consistent after every statement: a panic elsewhere
        // cannot leave it half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a flush that started after this call (leading one if none runs), then
    /// fails if any flush failed since `began`.
    fn sync(&self, began: Began) -> io::Result<()> {
        let mut state = self.state();
        state.asked += 1;
        let ticket = state.asked;
        while state.flushed < ticket {
            if state.flushing {
                state = self
                    .flushed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Lead: every ticket asked so far was written before this flush starts.
            state.flushing = true;
            let covers = state.asked;
            drop(state);
            let result = rustix::fs::syncfs(&self.root);
            state = self.state();
            state.flushing = false;
            state.flushed = covers;
            if let Err(err) = result {
                let err = io::Error::from(err);
                state.failures += 1;
                state.last_error = Some((err.kind(), err.to_string()));
            }
            self.flushed.notify_all();
        }
        if state.failures == began.failures {
            return Ok(());
        }
        let (kind, message) = state
            .last_error
            .clone()
            .unwrap_or((io::ErrorKind::Other, "unknown error".to_owned()));
        Err(io::Error::new(
            kind,
            format!("flushing the session folder's file system failed: {message}"),
        ))
    }
}
