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
//!
//! **A new session's file** is flushed after its writer has left the lock and its thread
//! ([`Durability::defer`]): the create awaits the shared flush as a task, not as a thread,
//! so a few threads serve every create and as many creates share a flush as are waiting.
//! Its key is known to nobody until the create returns, so leaving the lock early lets no
//! one build on it; an update of a session whose create has not yet returned is durable
//! once that create returns. The flush runs as a call on the store's threads, queued by
//! the first waiter; a writer waiting on a thread (a rename, an index file) never waits for
//! a queued flush, only for a running one, and leads one itself if none runs, so the
//! threads cannot all wait for a flush that has no thread to run on.

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

    /// Asks for a flush of what was written since `began`, to be awaited with
    /// [`Durability::flushed`] once the writer has left its lock. `None` if this
    /// durability does not defer: then the writer syncs as usual.
    pub(crate) fn defer(&self, began: Began) -> Option<Pending> {
        match self {
            #[cfg(target_os = "linux")]
            Self::Group(group) => {
                let mut state = group.state();
                state.asked += 1;
                Some(Pending {
                    began,
                    ticket: state.asked,
                })
            }
            Self::Off | Self::EachFile => {
                let _ = began;
                None
            }
        }
    }

    /// Waits, as a task, for a flush that covers `pending`, and fails if any flush failed
    /// since its write began. `queue` runs a call on the store's threads: it is handed
    /// [`Durability::flush`] when no flush runs or is queued.
    pub(crate) async fn flushed(
        &self,
        pending: Pending,
        queue: impl Fn() -> io::Result<()>,
    ) -> io::Result<()> {
        match self {
            #[cfg(target_os = "linux")]
            Self::Group(group) => loop {
                // Registered before the state is read, so that a flush ending in between
                // still wakes this task.
                let ended = group.ended.notified();
                let mut ended = std::pin::pin!(ended);
                ended.as_mut().enable();
                {
                    let mut state = group.state();
                    if state.flushed >= pending.ticket {
                        return group.outcome(&state, pending.began);
                    }
                    if !state.flushing && !state.queued {
                        state.queued = true;
                        drop(state);
                        if let Err(err) = queue() {
                            group.state().queued = false;
                            // Waiters counting on that flush queue another.
                            group.ended.notify_waiters();
                            return Err(err);
                        }
                    }
                }
                ended.await;
            },
            Self::Off | Self::EachFile => {
                let _ = (pending, queue);
                Ok(())
            }
        }
    }

    /// The queued flush of [`Durability::flushed`]: flushes unless one is running (whose
    /// end wakes the waiters, who queue another if they need one) or every ticket asked is
    /// covered.
    pub(crate) fn flush(&self) {
        match self {
            #[cfg(target_os = "linux")]
            Self::Group(group) => {
                let mut state = group.state();
                state.queued = false;
                if state.flushing || state.flushed == state.asked {
                    return;
                }
                let covers = state.asked;
                state.flushing = true;
                drop(state);
                group.run(covers);
            }
            Self::Off | Self::EachFile => {}
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

/// A new file's flush, asked for by [`Durability::defer`].
#[derive(Debug)]
#[must_use = "a deferred write is durable only once `Durability::flushed` returns"]
pub(crate) struct Pending {
    began: Began,
    /// The ticket a flush must cover.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    ticket: u64,
}

/// Group commit over `syncfs`: see the module docs.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub(crate) struct GroupCommit {
    /// The session folder, whose file system is flushed.
    root: File,
    state: Mutex<State>,
    /// Signalled when a flush ends, for writers waiting on a thread.
    flushed: Condvar,
    /// The same, for writers waiting as tasks.
    ended: tokio::sync::Notify,
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
    /// Whether a flush is queued on the store's threads and has not started.
    queued: bool,
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
            ended: tokio::sync::Notify::new(),
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
            // Lead: every ticket asked so far was written before this flush starts. A
            // queued flush is not waited for: every thread might be waiting with this one.
            state.flushing = true;
            let covers = state.asked;
            drop(state);
            self.run(covers);
            state = self.state();
        }
        self.outcome(&state, began)
    }

    /// Flushes, as the leader, and wakes every waiter: `covers` is the last ticket asked
    /// before it started.
    fn run(&self, covers: u64) {
        let result = rustix::fs::syncfs(&self.root);
        let mut state = self.state();
        state.flushing = false;
        state.flushed = state.flushed.max(covers);
        if let Err(err) = result {
            let err = io::Error::from(err);
            state.failures += 1;
            state.last_error = Some((err.kind(), err.to_string()));
        }
        drop(state);
        self.flushed.notify_all();
        self.ended.notify_waiters();
    }

    /// Whether the flushes since `began` all succeeded, once one has covered the write.
    fn outcome(&self, state: &State, began: Began) -> io::Result<()> {
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

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use std::num::NonZeroUsize;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::pool::Pool;

    fn group(dir: &Path) -> Arc<Durability> {
        Arc::new(Durability::new(dir, true, true).expect("the folder opens"))
    }

    fn state(durability: &Durability) -> MutexGuard<'_, State> {
        let Durability::Group(group) = durability else {
            panic!("group commit expected");
        };
        group.state()
    }

    /// Deferred writers await flushes queued on the pool while writers on the pool's only
    /// thread wait for flushes of their own: neither may wait for a flush that has no
    /// thread to run on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deferred_and_thread_writers_share_one_thread_without_deadlock() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let durability = group(dir.path());
        let pool = Arc::new(Pool::new(NonZeroUsize::MIN));
        let mut writers = tokio::task::JoinSet::new();
        for i in 0..40 {
            let (durability, pool) = (Arc::clone(&durability), Arc::clone(&pool));
            writers.spawn(async move {
                if i % 4 == 0 {
                    // A writer that waits on the pool's thread.
                    let on_thread = Arc::clone(&durability);
                    pool.run(move || on_thread.sync_file(on_thread.begin(), &File::open(".")?))
                        .await
                        .map_err(io::Error::other)?
                } else {
                    let pending = durability
                        .defer(durability.begin())
                        .expect("group commit defers");
                    let queue = || {
                        let flusher = Arc::clone(&durability);
                        pool.spawn(move || flusher.flush())
                            .map_err(io::Error::other)
                    };
                    durability.flushed(pending, queue).await
                }
            });
        }
        let all = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(joined) = writers.join_next().await {
                joined
                    .expect("the writer completes")
                    .expect("its flush succeeds");
            }
        });
        all.await.expect("every writer's flush ended");
        let state = state(&durability);
        assert_eq!(state.flushed, state.asked, "every ticket is covered");
        assert!(!state.flushing && !state.queued);
    }

    /// A flush that failed after a deferred write began fails that write, though the flush
    /// was not started for it.
    #[tokio::test]
    async fn a_failed_flush_fails_the_deferred_writes_it_may_have_carried() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let durability = group(dir.path());
        let pending = durability
            .defer(durability.begin())
            .expect("group commit defers");
        {
            // What `GroupCommit::run` records when `syncfs` fails.
            let mut state = state(&durability);
            state.flushed = state.asked;
            state.failures += 1;
            state.last_error = Some((io::ErrorKind::Other, "EIO".to_owned()));
        }
        let err = durability
            .flushed(pending, || panic!("no flush is needed"))
            .await
            .expect_err("the write fails");
        assert!(err.to_string().contains("EIO"), "{err}");
        // A write begun after the failure is not failed by it.
        let later = durability
            .defer(durability.begin())
            .expect("group commit defers");
        let flusher = Arc::clone(&durability);
        durability
            .flushed(later, move || {
                let flusher = Arc::clone(&flusher);
                std::thread::spawn(move || flusher.flush());
                Ok(())
            })
            .await
            .expect("a later write succeeds");
    }
}
