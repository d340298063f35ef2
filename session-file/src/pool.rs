//! The store's own threads for its file operations.
//!
//! A request's file work (open, read, write, `fdatasync`) blocks its thread, so it runs off
//! the async runtime. Tokio's blocking pool would take it, but that pool grows a thread for
//! every call made while its threads are busy (up to 512) and wakes one per call: under 50
//! concurrent requests it held about 100 threads, each sleeping and waking for every
//! operation, and the scheduler's work (3.4 context switches per request) cost more CPU
//! than the file operations themselves. This pool has a fixed ceiling of threads, sized
//! by what the operations wait for ([`Pool::default_size`]). Calls made while every
//! thread is busy queue up, and a thread that finishes one takes the next without
//! sleeping, so under load the threads run back to back.
//!
//! Threads start when calls need them and stop after [`KEEP_ALIVE`] without work, or when
//! the store is dropped and the queue has run dry. A call that panics is reported to its
//! caller as an error; the thread carries on.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use tokio::sync::oneshot;

/// How long a thread waits for work before it stops.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A bounded pool of threads that runs blocking calls for async callers.
#[derive(Debug)]
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The most threads that run at once.
    size: usize,
    state: Mutex<State>,
    /// Signalled when a job is queued, or when the pool is dropped.
    available: Condvar,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Threads alive.
    threads: usize,
    /// Threads waiting for work.
    idle: usize,
    /// Idle threads signalled and not yet awake: a job queued while every idle thread
    /// has been signalled starts a thread instead, if the ceiling allows.
    woken: usize,
    /// Set when the pool is dropped: threads stop once the queue is empty.
    closing: bool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("queued", &self.queue.len())
            .field("threads", &self.threads)
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

/// A call that did not return: its thread could not start, or it panicked.
#[derive(Debug)]
pub(crate) struct Lost;

impl Pool {
    /// A pool of at most `size` threads.
    pub(crate) fn new(size: NonZeroUsize) -> Self {
        Self {
            shared: Arc::new(Shared {
                size: size.get(),
                state: Mutex::new(State::default()),
                available: Condvar::new(),
            }),
        }
    }

    /// The ceiling that suits a store: with `fsync` off its calls only copy to and from
    /// the kernel's caches and need a thread per core; with `fsync` on they mostly wait
    /// for the disk, and four threads per core keep enough flushes in flight.
    pub(crate) fn default_size(fsync: bool) -> NonZeroUsize {
        let cores = thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
        if fsync {
            cores.saturating_mul(NonZeroUsize::new(4).unwrap_or(NonZeroUsize::MIN))
        } else {
            cores
        }
    }

    /// Queues `call` for one of the pool's threads and returns a future of what it
    /// returns. The call is queued now, not when the future is first polled, and runs
    /// even if the future is dropped, so that nothing it was asked to write is left half
    /// done.
    pub(crate) fn run<T, F>(&self, call: F) -> impl Future<Output = Result<T, Lost>> + use<T, F>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (sender, receiver) = oneshot::channel();
        let submitted = self.submit(Box::new(move || {
            // The caller may have gone: nobody wants the result then.
            let _ = sender.send(call());
        }));
        async move {
            submitted?;
            // A panic drops the sender unsent.
            receiver.await.map_err(|_| Lost)
        }
    }

    /// Queues `call` for one of the pool's threads, with nobody awaiting it.
    pub(crate) fn spawn(&self, call: impl FnOnce() + Send + 'static) -> Result<(), Lost> {
        self.submit(Box::new(call))
    }

    fn submit(&self, job: Job) -> Result<(), Lost> {
        let mut state = self.shared.state();
        state.queue.push_back(job);
        if state.idle > state.woken {
            state.woken += 1;
            self.shared.available.notify_one();
        } else if state.threads < self.shared.size {
            state.threads += 1;
            let shared = Arc::clone(&self.shared);
            let spawned = thread::Builder::new()
                .name("session-file".to_owned())
                .spawn(move || shared.work());
            if let Err(err) = spawned {
                state.threads -= 1;
                if state.threads == 0 {
                    // No thread will ever take the job: give it back as lost.
                    state.queue.pop_back();
                    drop(state);
                    tracing::error!(error = %err, "cannot start a file store thread");
                    return Err(Lost);
                }
                // The running threads will get to it.
                tracing::warn!(error = %err, "cannot start another file store thread");
            }
        }
        Ok(())
    }

    /// Threads alive now.
    #[cfg(test)]
    fn threads(&self) -> usize {
        self.shared.state().threads
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.state().closing = true;
        self.shared.available.notify_all();
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock and every change under it is a whole statement, so a
        // poisoned lock (a panic in the standard library's own code) holds a valid state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A thread's life: run queued jobs until none comes for [`KEEP_ALIVE`], or the pool
    /// is dropped and the queue is empty.
    fn work(&self) {
        let mut state = self.state();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                // The job's own result channel reports the panic (its sender is dropped).
                if catch_unwind(AssertUnwindSafe(job)).is_err() {
                    tracing::error!("a file store call panicked");
                }
                state = self.state();
                continue;
            }
            if state.closing {
                break;
            }
            state.idle += 1;
            let (next, waited) = self
                .available
                .wait_timeout(state, KEEP_ALIVE)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            state.idle -= 1;
            state.woken = state.woken.saturating_sub(1);
            if waited.timed_out() && state.queue.is_empty() {
                break;
            }
        }
        state.threads -= 1;
    }
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("its thread could not start, or the call panicked")
    }
}

impl std::error::Error for Lost {}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn pool(size: usize) -> Pool {
        Pool::new(NonZeroUsize::new(size).expect("a size above zero"))
    }

    #[tokio::test]
    async fn runs_calls_and_returns_their_results() {
        let pool = Arc::new(pool(2));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..100 {
            let pool = Arc::clone(&pool);
            set.spawn(async move { (i, pool.run(move || i * 3).await) });
        }
        let mut returned = 0;
        while let Some(joined) = set.join_next().await {
            let (i, value) = joined.expect("the task completes");
            assert_eq!(value.expect("the call returns"), i * 3);
            returned += 1;
        }
        assert_eq!(returned, 100);
        assert!(pool.threads() <= 2);
    }

    #[tokio::test]
    async fn never_runs_more_threads_than_its_size() {
        let pool = pool(3);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut calls = Vec::new();
        for _ in 0..30 {
            let (running, most) = (Arc::clone(&running), Arc::clone(&most));
            calls.push(pool.run(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(5));
                running.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for call in calls {
            call.await.expect("the call returns");
        }
        assert_eq!(most.load(Ordering::SeqCst), 3);
        assert!(pool.threads() <= 3);
    }

    #[tokio::test]
    async fn a_panicking_call_is_an_error_and_the_pool_carries_on() {
        let pool = pool(1);
        let lost = pool.run(|| -> usize { panic!("a call that panics") }).await;
        assert!(lost.is_err());
        assert_eq!(pool.run(|| 7).await.expect("the next call returns"), 7);
        assert_eq!(pool.threads(), 1);
    }

    #[tokio::test]
    async fn a_call_whose_caller_left_still_runs() {
        let pool = pool(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let blocker = pool.run(|| thread::sleep(Duration::from_millis(50)));
        let counted = Arc::clone(&ran);
        // Queued behind the first call, then abandoned before it starts.
        drop(pool.run(move || counted.fetch_add(1, Ordering::SeqCst)));
        blocker.await.expect("the first call returns");
        pool.run(|| ()).await.expect("a later call returns");
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn threads_stop_when_the_pool_is_dropped() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let pool = pool(2);
        let shared = Arc::clone(&pool.shared);
        runtime.block_on(async {
            let (a, b) = tokio::join!(pool.run(|| 1), pool.run(|| 2));
            assert_eq!((a.expect("a returns"), b.expect("b returns")), (1, 2));
        });
        assert!(shared.state().threads >= 1);
        drop(pool);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while shared.state().threads > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the threads did not stop"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}
