//! The manager's side of the session lock: waiting for a lease, renewing it while it is
//! held, releasing it after the flush or when the request is dropped, and telling a flush
//! whether the lease is still good (fencing).
//!
//! Requests of one session in one process queue at an in-process gate (FIFO, woken at
//! once when the holder releases), so only the head of each process's queue asks the
//! store; it polls [`SessionStore::lock_and_load`] with a jittered backoff while another
//! process holds the lease. The whole wait is bounded by `lock_timeout`. An uncontended
//! request (the gate free, the store granting at once) takes the lock and loads the
//! session in one store call, without arming a timer.
//!
//! One task per manager renews every lease held longer than a third of `lock_ttl`, so a
//! request that holds the lock briefly (nearly all of them) costs no task and no timer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::manager::ManagerInner;
use crate::{Error, ErrorKind, LockToken, Record, Result, SessionStore, StoreKey};

/// The first wait between two refused `lock` calls; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(1);
/// The longest wait between two refused `lock` calls.
const MAX_BACKOFF: Duration = Duration::from_millis(25);

/// A store key's digest: what the gates are keyed by (no allocation).
type Digest = [u8; 32];

/// One in-process queue per locked session, so that only one request per process and
/// session asks the store at a time.
#[derive(Debug, Default)]
pub(crate) struct Gates {
    queues: Mutex<HashMap<Digest, Arc<AsyncMutex<()>>>>,
}

/// A place at the head of a session's in-process queue.
struct Gate {
    gates: Arc<Gates>,
    digest: Digest,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Gates {
    /// The queue of `key`, made if there is none.
    fn queue(&self, key: &StoreKey) -> Arc<AsyncMutex<()>> {
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(queues.entry(*key.digest()).or_default())
    }

    /// The head of `key`'s queue if nobody holds or waits for it, at once.
    fn try_enter(self: &Arc<Self>, key: &StoreKey) -> Option<Gate> {
        let guard = self.queue(key).try_lock_owned().ok();
        // On `None`, the queue this call may have made is someone else's: the holder's
        // release removes it once unused.
        guard.map(|guard| self.gate(key, guard))
    }

    /// Waits for the head of `key`'s queue.
    async fn enter(self: &Arc<Self>, key: &StoreKey) -> Gate {
        // If this future is dropped while waiting, the queue's handle is dropped with it,
        // and the next holder's release finds the queue unused and removes it.
        let guard = self.queue(key).lock_owned().await;
        self.gate(key, guard)
    }

    fn gate(self: &Arc<Self>, key: &StoreKey, guard: OwnedMutexGuard<()>) -> Gate {
        Gate {
            gates: Arc::clone(self),
            digest: *key.digest(),
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
            .get(&self.digest)
            .is_some_and(|queue| Arc::strong_count(queue) == 1)
        {
            queues.remove(&self.digest);
        }
    }
}

/// One held lease as its holder and the renewal task see it: lost (a renewal was refused)
/// or good until a deadline.
#[derive(Debug)]
struct Standing {
    key: StoreKey,
    token: LockToken,
    started: Instant,
    /// Milliseconds after `started` when the lease lapses unless renewed.
    deadline_ms: AtomicU64,
    lost: AtomicBool,
}

impl Standing {
    fn new(key: StoreKey, token: LockToken, sent: Instant, ttl: Duration) -> Self {
        let standing = Self {
            key,
            token,
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
        self.deadline_ms
            .fetch_max(millis(deadline), Ordering::AcqRel);
    }

    fn elapsed_ms(&self) -> u64 {
        millis(self.started.elapsed())
    }

    fn is_good(&self) -> bool {
        !self.lost.load(Ordering::Acquire)
            && self.elapsed_ms() < self.deadline_ms.load(Ordering::Acquire)
    }

    /// Whether the last grant or renewal is a third of `ttl` old or more.
    fn is_due(&self, ttl: Duration) -> bool {
        let left = self
            .deadline_ms
            .load(Ordering::Acquire)
            .saturating_sub(self.elapsed_ms());
        left <= millis(ttl * 2 / 3)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The leases a manager holds, and the one task that renews them.
#[derive(Debug)]
pub(crate) struct Renewals {
    store: Arc<dyn SessionStore>,
    ttl: Duration,
    state: Mutex<Held>,
    next_id: AtomicU64,
}

/// What [`Renewals`] guards.
#[derive(Debug, Default)]
struct Held {
    leases: HashMap<u64, Arc<Standing>>,
    /// Whether the renewal task runs: it stops when it finds no lease held.
    running: bool,
}

impl Renewals {
    pub(crate) fn new(store: Arc<dyn SessionStore>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            state: Mutex::default(),
            next_id: AtomicU64::new(0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Held> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Renews `standing` until [`Renewals::forget`]; returns its registration.
    fn hold(self: &Arc<Self>, standing: &Arc<Standing>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state();
        state.leases.insert(id, Arc::clone(standing));
        if !state.running
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            state.running = true;
            runtime.spawn(renew(Arc::downgrade(self)));
        }
        id
    }

    fn forget(&self, id: u64) {
        self.state().leases.remove(&id);
    }
}

/// Renews, every sixth of `lock_ttl`, the leases whose last grant or renewal is a third of
/// it old; stops when no lease is held (the next one held starts it again) or when the
/// manager is gone.
async fn renew(renewals: Weak<Renewals>) {
    loop {
        let Some(tick) = renewals.upgrade().map(|r| r.ttl / 6) else {
            return;
        };
        tokio::time::sleep(tick).await;
        let Some(renewals) = renewals.upgrade() else {
            return;
        };
        let due: Vec<Arc<Standing>> = {
            let mut state = renewals.state();
            if state.leases.is_empty() {
                state.running = false;
                return;
            }
            state
                .leases
                .values()
                .filter(|standing| standing.is_due(renewals.ttl))
                .cloned()
                .collect()
        };
        let ttl = renewals.ttl;
        let store = &renewals.store;
        futures_util::future::join_all(due.iter().map(|standing| async move {
            let sent = Instant::now();
            match store.renew_lock(&standing.key, &standing.token, ttl).await {
                Ok(true) => standing.extend(sent, ttl),
                Ok(false) => {
                    standing.lost.store(true, Ordering::Release);
                    tracing::warn!(
                        session = standing.key.short(),
                        "the session's lease lapsed while held; this request's changes will be refused"
                    );
                }
                Err(err) => tracing::warn!(
                    session = standing.key.short(),
                    error = %format_args!("{err:#}"),
                    "renewing the session lock failed"
                ),
            }
        }))
        .await;
    }
}

/// A held session lock. Released by [`Lease::release`] after the flush; dropped without
/// it (a cancelled request), it is released by a task of its own.
pub(crate) struct Lease {
    /// Until released: the gate, opened after the store's lease is released.
    gate: Option<Gate>,
    store: Arc<dyn SessionStore>,
    ttl: Duration,
    standing: Arc<Standing>,
    renewals: Arc<Renewals>,
    registration: u64,
}

impl ManagerInner {
    /// Waits for the lock of `key`, as the configuration's `lock_timeout` and `lock_ttl`
    /// say, and loads the session once it holds it.
    ///
    /// # Errors
    /// [`ErrorKind::Locked`] when the wait times out; store failures. A record that cannot
    /// be decoded is `None`, as for [`ManagerInner::load_live`].
    pub(crate) async fn lease_and_load(&self, key: &StoreKey) -> Result<(Lease, Option<Record>)> {
        let (lease, loaded) = Lease::acquire(
            &self.store,
            &self.gates,
            &self.renewals,
            key,
            self.config.lock_timeout,
        )
        .await?;
        Ok((lease, self.usable(key, loaded)?))
    }
}

impl Lease {
    /// Waits for the lock of `key` in `store` for at most `timeout`, and loads the record
    /// there once granted; the lease is renewed through `renewals`.
    ///
    /// # Errors
    /// [`ErrorKind::Locked`] when the wait times out; store failures. The load's own
    /// [`ErrorKind::Decode`] error comes with the lease, in the second half.
    async fn acquire(
        store: &Arc<dyn SessionStore>,
        gates: &Arc<Gates>,
        renewals: &Arc<Renewals>,
        key: &StoreKey,
        timeout: Duration,
    ) -> Result<(Self, Result<Option<Record>>)> {
        let ttl = renewals.ttl;
        let token = LockToken::generate()?;
        // Until the lease is handed over, a cancelled or failed wait (a call whose answer
        // never arrived may still have been granted) releases the token.
        let mut pending = Pending {
            store: Some(Arc::clone(store)),
            key,
            token: &token,
            in_flight: None,
        };
        // The common case first: nobody of this process waits, the store grants at once.
        let mut first = gates.try_enter(key);
        let mut granted = None;
        if let Some(gate) = first.take() {
            let sent = Instant::now();
            match attempt(&mut pending, store, ttl).await? {
                Some(loaded) => granted = Some((gate, sent, loaded)),
                None => first = Some(gate),
            }
        }
        let (gate, sent, loaded) = match granted {
            Some(granted) => granted,
            None => {
                let waited = tokio::time::timeout(timeout, async {
                    let gate = match first {
                        Some(gate) => gate,
                        None => gates.enter(key).await,
                    };
                    let mut backoff = FIRST_BACKOFF;
                    loop {
                        let sent = Instant::now();
                        if let Some(loaded) = attempt(&mut pending, store, ttl).await? {
                            return Ok::<_, Error>((gate, sent, loaded));
                        }
                        tokio::time::sleep(jittered(backoff)).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                })
                .await;
                match waited {
                    Ok(granted) => granted?,
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
                }
            }
        };
        pending.store = None;
        drop(pending);
        let standing = Arc::new(Standing::new(key.clone(), token, sent, ttl));
        let registration = renewals.hold(&standing);
        let lease = Self {
            gate: Some(gate),
            store: Arc::clone(store),
            ttl,
            standing,
            renewals: Arc::clone(renewals),
            registration,
        };
        Ok((lease, loaded))
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
        let standing = &self.standing;
        let sent = Instant::now();
        if self
            .store
            .renew_lock(&standing.key, &standing.token, self.ttl)
            .await?
        {
            standing.extend(sent, self.ttl);
            Ok(())
        } else {
            standing.lost.store(true, Ordering::Release);
            Err(lost(
                "the session was written while this request's lease on its lock had lapsed \
                 (the next holder wrote); its changes were not written",
            ))
        }
    }

    /// The token the store keeps for this lease, for a write that releases it.
    pub(crate) fn token(&self) -> &LockToken {
        &self.standing.token
    }

    /// The store released the lease with the request's last write
    /// ([`SessionStore::update_and_unlock`]): stops renewing it and lets the next waiter of
    /// this process in.
    pub(crate) fn released_by_write(mut self) {
        self.renewals.forget(self.registration);
        drop(self.gate.take());
    }

    /// Releases the lock: the next waiter of this process gets it at once, of another
    /// process at its next poll. A failed release is logged: the lease then lapses after
    /// `lock_ttl`.
    pub(crate) async fn release(mut self) {
        self.renewals.forget(self.registration);
        if let Some(gate) = self.gate.take() {
            unlock(Arc::clone(&self.store), Arc::clone(&self.standing), gate).await;
        }
    }
}

/// Releases the store's lease of `standing`, then opens `gate`, so that the next waiter in
/// this process finds the store's lease free.
async fn unlock(store: Arc<dyn SessionStore>, standing: Arc<Standing>, gate: Gate) {
    match store.unlock(&standing.key, &standing.token).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            session = standing.key.short(),
            "the session's lease had lapsed before its release"
        ),
        Err(err) => tracing::warn!(
            session = standing.key.short(),
            error = %format_args!("{err:#}"),
            "the session lock could not be released; it lapses after lock_ttl"
        ),
    }
    drop(gate);
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewals.forget(self.registration);
        if let Some(gate) = self.gate.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(unlock(
                        Arc::clone(&self.store),
                        Arc::clone(&self.standing),
                        gate,
                    ));
                }
                Err(_) => tracing::warn!(
                    session = self.standing.key.short(),
                    "session lock dropped outside a runtime; it lapses after lock_ttl"
                ),
            }
        }
    }
}

/// What one `lock_and_load` call gives.
type Attempted = Result<Option<Option<Record>>>;

/// One `lock_and_load`: `Some` with the load's outcome if granted, `None` if refused. A
/// decode error means the lock was granted and the record is corrupt.
///
/// On a tokio runtime the call runs as a task of its own, which `pending` holds until it
/// ends: a request dropped mid-call (its client hung up) leaves the call to finish, and
/// the release that `pending` then sends comes after it. Released at once instead, the
/// release could reach the store before the grant (another connection of a pool, a
/// statement still running on the server) and leave a lease that lapses only after
/// `lock_ttl`.
async fn attempt(
    pending: &mut Pending<'_>,
    store: &Arc<dyn SessionStore>,
    ttl: Duration,
) -> Result<Option<Result<Option<Record>>>> {
    let outcome = match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            let (store, key, token) = (
                Arc::clone(store),
                pending.key.clone(),
                pending.token.clone(),
            );
            let call = pending
                .in_flight
                .insert(runtime.spawn(async move { store.lock_and_load(&key, &token, ttl).await }));
            let joined = call.await;
            pending.in_flight = None;
            joined.unwrap_or_else(|err| {
                Err(
                    Error::new(ErrorKind::Backend, "the store's lock call did not finish")
                        .with_source(err),
                )
            })
        }
        Err(_) => store.lock_and_load(pending.key, pending.token, ttl).await,
    };
    match outcome {
        Ok(Some(loaded)) => Ok(Some(Ok(loaded))),
        Ok(None) => Ok(None),
        Err(err) if err.kind() == ErrorKind::Decode => Ok(Some(Err(err))),
        Err(err) => Err(err),
    }
}

/// Releases a token whose `lock` call may have been granted, unless disarmed: after the
/// call under way, if any, has ended.
struct Pending<'a> {
    store: Option<Arc<dyn SessionStore>>,
    key: &'a StoreKey,
    token: &'a LockToken,
    /// The lock call under way, as a task of its own.
    in_flight: Option<tokio::task::JoinHandle<Attempted>>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let (Some(store), Ok(runtime)) =
            (self.store.take(), tokio::runtime::Handle::try_current())
        {
            let (key, token) = (self.key.clone(), self.token.clone());
            let in_flight = self.in_flight.take();
            runtime.spawn(async move {
                if let Some(call) = in_flight {
                    // Granted or not, the release must come after the call.
                    let _ = call.await;
                }
                // Harmless when the call was refused: `unlock` frees only this token's lease.
                if let Err(err) = store.unlock(&key, &token).await {
                    tracing::debug!(session = key.short(), error = %format_args!("{err:#}"), "unlock after an abandoned wait failed");
                }
            });
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

    fn key() -> StoreKey {
        crate::SessionId::generate(32).expect("id").store_key() // ok: test
    }

    #[tokio::test]
    async fn a_gate_queue_is_forgotten_once_nobody_holds_or_waits() {
        let gates = Arc::new(Gates::default());
        let key = key();
        let first = gates.try_enter(&key).expect("a free gate"); // ok: test
        assert!(gates.try_enter(&key).is_none(), "a held gate is not free");
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
        let token = || LockToken::generate().expect("token"); // ok: test
        let standing = Standing::new(key(), token(), Instant::now(), Duration::from_secs(60));
        assert!(standing.is_good());
        assert!(!standing.is_due(Duration::from_secs(60)), "just granted");
        standing.lost.store(true, Ordering::Release);
        assert!(!standing.is_good());
        let lapsed = Standing::new(
            key(),
            token(),
            Instant::now() - Duration::from_millis(50),
            Duration::from_millis(10),
        );
        assert!(!lapsed.is_good());
        assert!(lapsed.is_due(Duration::from_millis(10)));
    }

    #[test]
    fn backoff_is_jittered_around_its_base() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_millis(10));
            assert!(wait >= Duration::from_millis(5) && wait <= Duration::from_millis(15));
        }
    }
}
