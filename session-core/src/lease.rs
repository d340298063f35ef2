//! The manager's side of the session lock: waiting for a lease, renewing it while it is
//! held, releasing it after the flush or when the request is dropped, and telling a flush
//! whether the lease is still good (fencing).
//!
//! Requests of one session in one process queue at an in-process gate (FIFO, woken at
//! once when the holder releases), so only the head of each process's queue asks the
//! store; it polls [`SessionStore::lock`] with a jittered backoff while another process
//! holds the lease. The whole wait is bounded by `lock_timeout`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tokio::task::JoinHandle;

use crate::manager::ManagerInner;
use crate::{Error, ErrorKind, LockToken, Result, SessionStore, StoreKey};

/// The first wait between two refused `lock` calls; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(1);
/// The longest wait between two refused `lock` calls.
const MAX_BACKOFF: Duration = Duration::from_millis(25);

/// One in-process queue per locked session, so that only one request per process and
/// session asks the store at a time.
#[derive(Debug, Default)]
pub(crate) struct Gates {
    queues: Mutex<HashMap<StoreKey, Arc<AsyncMutex<()>>>>,
}

/// A place at the head of a session's in-process queue.
struct Gate {
    gates: Arc<Gates>,
    key: StoreKey,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Gates {
    /// Waits for the head of `key`'s queue.
    async fn enter(self: &Arc<Self>, key: &StoreKey) -> Gate {
        let queue = {
            let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(queues.entry(key.clone()).or_default())
        };
        // If this future is dropped while waiting, `queue` is dropped with it, and the
        // next holder's release finds the queue unused and removes it.
        let guard = queue.lock_owned().await;
        Gate {
            gates: Arc::clone(self),
            key: key.clone(),
            guard: Some(guard),
        }
    }

    /// How many sessions have a queue: bounded by the sessions locked or waited for now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        // Let the next waiter in first, then forget the queue if nobody else holds it.
        drop(self.guard.take());
        let mut queues = self
            .gates
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if queues
            .get(&self.key)
            .is_some_and(|queue| Arc::strong_count(queue) == 1)
        {
            queues.remove(&self.key);
        }
    }
}

/// How the holder sees its lease: lost (a renewal was refused) or good until a deadline.
#[derive(Debug)]
struct Standing {
    started: Instant,
    /// Milliseconds after `started` when the lease lapses unless renewed.
    deadline_ms: AtomicU64,
    lost: AtomicBool,
}

impl Standing {
    fn new(sent: Instant, ttl: Duration) -> Self {
        let standing = Self {
            started: sent,
            deadline_ms: AtomicU64::new(0),
            lost: AtomicBool::new(false),
        };
        standing.extend(sent, ttl);
        standing
    }

    /// The lease was granted or renewed by a call sent at `sent`: it lives until `ttl`
    /// after that, at the earliest moment the store may have counted from.
    fn extend(&self, sent: Instant, ttl: Duration) {
        let deadline = sent.saturating_duration_since(self.started) + ttl;
        let millis = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX);
        self.deadline_ms.fetch_max(millis, Ordering::AcqRel);
    }

    fn is_good(&self) -> bool {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        !self.lost.load(Ordering::Acquire) && elapsed < self.deadline_ms.load(Ordering::Acquire)
    }
}

impl ManagerInner {
    /// Waits for the lock of `key`, as the configuration's `lock_timeout` and `lock_ttl`
    /// say.
    ///
    /// # Errors
    /// As [`Lease::acquire`].
    pub(crate) async fn lease(&self, key: &StoreKey) -> Result<Lease> {
        Lease::acquire(
            &self.store,
            &self.gates,
            key,
            self.config.lock_timeout,
            self.config.lock_ttl,
        )
        .await
    }
}

/// A held session lock. Released by [`Lease::release`] after the flush; dropped without
/// it (a cancelled request), it is released by a task of its own.
pub(crate) struct Lease {
    held: Option<Held>,
    ttl: Duration,
    standing: Arc<Standing>,
    renewal: Option<JoinHandle<()>>,
}

/// What releasing a lease needs.
struct Held {
    store: Arc<dyn SessionStore>,
    key: StoreKey,
    token: LockToken,
    gate: Gate,
}

impl Lease {
    /// Waits for the lock of `key` in `store`, for at most `timeout`; the lease lives
    /// `ttl` between renewals.
    ///
    /// # Errors
    /// [`ErrorKind::Locked`] when the wait times out; store failures.
    pub(crate) async fn acquire(
        store: &Arc<dyn SessionStore>,
        gates: &Arc<Gates>,
        key: &StoreKey,
        timeout: Duration,
        ttl: Duration,
    ) -> Result<Self> {
        let token = LockToken::generate()?;
        // Until the lease is handed over, a cancelled or failed wait (a `lock` call whose
        // answer never arrived may still have been granted) releases the token.
        let mut pending = Pending {
            store: Some(Arc::clone(store)),
            key,
            token: &token,
        };
        let granted = tokio::time::timeout(timeout, async {
            let gate = gates.enter(key).await;
            let mut backoff = FIRST_BACKOFF;
            loop {
                let sent = Instant::now();
                if store.lock(key, &token, ttl).await? {
                    return Ok::<_, Error>((gate, sent));
                }
                tokio::time::sleep(jittered(backoff)).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        })
        .await;
        let (gate, sent) = match granted {
            Ok(Ok(granted)) => granted,
            Ok(Err(err)) => return Err(err),
            Err(_elapsed) => {
                return Err(Error::new(
                    ErrorKind::Locked,
                    format!(
                        "the session's lock was held by another request for all of \
                         lock_timeout ({} ms)",
                        timeout.as_millis()
                    ),
                ));
            }
        };
        pending.store = None;
        drop(pending);
        let standing = Arc::new(Standing::new(sent, ttl));
        let renewal = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            runtime.spawn(renew(
                Arc::clone(store),
                key.clone(),
                token.clone(),
                ttl,
                Arc::clone(&standing),
            ))
        });
        Ok(Self {
            held: Some(Held {
                store: Arc::clone(store),
                key: key.clone(),
                token,
                gate,
            }),
            ttl,
            standing,
            renewal,
        })
    }

    /// Whether the lease is still this request's: not refused at a renewal, and renewed
    /// recently enough that the store cannot have let it lapse.
    ///
    /// # Errors
    /// [`ErrorKind::LockLost`] otherwise.
    pub(crate) fn check(&self) -> Result<()> {
        if self.standing.is_good() {
            Ok(())
        } else {
            Err(lost(
                "this request's lease on the session lock lapsed (it was not renewed within \
                 lock_ttl); its changes were not written",
            ))
        }
    }

    /// Asks the store whether the lease is still this request's, renewing it: for a flush
    /// whose conditional write was refused, which may merge its changes only if so.
    ///
    /// # Errors
    /// [`ErrorKind::LockLost`] if the store says the lease lapsed; store failures.
    pub(crate) async fn confirm(&self) -> Result<()> {
        self.check()?;
        let Some(held) = &self.held else {
            return Err(lost(
                "this request's lease on the session lock was released",
            ));
        };
        let sent = Instant::now();
        if held
            .store
            .renew_lock(&held.key, &held.token, self.ttl)
            .await?
        {
            self.standing.extend(sent, self.ttl);
            Ok(())
        } else {
            self.standing.lost.store(true, Ordering::Release);
            Err(lost(
                "the session was written while this request's lease on its lock had lapsed \
                 (the next holder wrote); its changes were not written",
            ))
        }
    }

    /// Releases the lock: the next waiter of this process gets it at once, of another
    /// process at its next poll. A failed release is logged: the lease then lapses after
    /// `lock_ttl`.
    pub(crate) async fn release(mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
        if let Some(held) = self.held.take() {
            held.release().await;
        }
    }
}

impl Held {
    async fn release(self) {
        match self.store.unlock(&self.key, &self.token).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                session = self.key.short(),
                "the session's lease had lapsed before its release"
            ),
            Err(err) => tracing::warn!(
                session = self.key.short(),
                error = %err,
                "the session lock could not be released; it lapses after lock_ttl"
            ),
        }
        // The gate opens only now, so the next waiter in this process finds the store's
        // lease free.
        drop(self.gate);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
        if let Some(held) = self.held.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(held.release());
                }
                Err(_) => tracing::warn!(
                    session = held.key.short(),
                    "session lock dropped outside a runtime; it lapses after lock_ttl"
                ),
            }
        }
    }
}

/// Releases a token whose `lock` call may have been granted, unless disarmed.
struct Pending<'a> {
    store: Option<Arc<dyn SessionStore>>,
    key: &'a StoreKey,
    token: &'a LockToken,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let (Some(store), Ok(runtime)) =
            (self.store.take(), tokio::runtime::Handle::try_current())
        {
            let (key, token) = (self.key.clone(), self.token.clone());
            runtime.spawn(async move {
                // Harmless when the call was refused: `unlock` frees only this token's lease.
                if let Err(err) = store.unlock(&key, &token).await {
                    tracing::debug!(session = key.short(), error = %err, "unlock after an abandoned wait failed");
                }
            });
        }
    }
}

/// Renews the lease every third of `ttl` until aborted, or until a renewal is refused or
/// the lease lapses while renewals fail.
async fn renew(
    store: Arc<dyn SessionStore>,
    key: StoreKey,
    token: LockToken,
    ttl: Duration,
    standing: Arc<Standing>,
) {
    let every = ttl / 3;
    loop {
        tokio::time::sleep(every).await;
        let sent = Instant::now();
        match store.renew_lock(&key, &token, ttl).await {
            Ok(true) => standing.extend(sent, ttl),
            Ok(false) => {
                standing.lost.store(true, Ordering::Release);
                tracing::warn!(
                    session = key.short(),
                    "the session's lease lapsed while held; this request's changes will be refused"
                );
                return;
            }
            Err(err) => {
                tracing::warn!(session = key.short(), error = %err, "renewing the session lock failed");
                if !standing.is_good() {
                    return;
                }
            }
        }
    }
}

/// A [`ErrorKind::LockLost`] error.
pub(crate) fn lost(message: &str) -> Error {
    Error::new(ErrorKind::LockLost, message)
}

/// `base` stretched by a random factor in 0.5..1.5, so that waiters polling one lease do
/// not ask in step.
pub(crate) fn jittered(base: Duration) -> Duration {
    let random = getrandom::u32().unwrap_or(u32::MAX / 2);
    let factor = 0.5 + f64::from(random) / f64::from(u32::MAX);
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_gate_queue_is_forgotten_once_nobody_holds_or_waits() {
        let gates = Arc::new(Gates::default());
        let key = crate::SessionId::generate(32).expect("id").store_key(); // ok: test
        let first = gates.enter(&key).await;
        let waiting = tokio::spawn({
            let gates = Arc::clone(&gates);
            let key = key.clone();
            async move { drop(gates.enter(&key).await) }
        });
        tokio::task::yield_now().await;
        assert_eq!(gates.len(), 1);
        drop(first);
        waiting.await.expect("the waiter got the gate"); // ok: test
        assert_eq!(gates.len(), 0, "no queue is kept for an unlocked session");
    }

    #[test]
    fn a_lease_is_good_until_its_deadline_or_a_refused_renewal() {
        let standing = Standing::new(Instant::now(), Duration::from_secs(60));
        assert!(standing.is_good());
        standing.lost.store(true, Ordering::Release);
        assert!(!standing.is_good());
        let lapsed = Standing::new(
            Instant::now() - Duration::from_millis(50),
            Duration::from_millis(10),
        );
        assert!(!lapsed.is_good());
    }

    #[test]
    fn backoff_is_jittered_around_its_base() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_millis(10));
            assert!(wait >= Duration::from_millis(5) && wait <= Duration::from_millis(15));
        }
    }
}
