//! A store decorator that counts operations, to check "no write" and "no lookup" claims.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use session_core::{
    Capabilities, ChangeSet, IndexedSession, LockToken, Record, Result, Revision, SessionStore,
    StoreKey, Timestamp, UserId, async_trait,
};

/// Wraps a real store and counts the calls that reach it. Everything is delegated: this is
/// an observer, not a mock.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn SessionStore>,
    /// Whether each call first returns `Pending` once (and wakes itself), as a call over a
    /// network does: an in-process store answers within one poll, so without this a case
    /// that cancels a flush at its first wait would cancel nothing.
    yield_first: bool,
    /// Whether `renew_lock` never returns, as for a process stalled while it holds a lock:
    /// its lease lapses after its ttl.
    stall_renewals: bool,
    loads: AtomicU64,
    creates: AtomicU64,
    updates: AtomicU64,
    conditional_updates: AtomicU64,
    touches: AtomicU64,
    deletes: AtomicU64,
    bulk_deletes: AtomicU64,
    listings: AtomicU64,
    locks: AtomicU64,
    renewals: AtomicU64,
    unlocks: AtomicU64,
}

/// A snapshot of a [`CountingStore`]'s counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OperationCounts {
    /// Calls to `load`.
    pub loads: u64,
    /// Calls to `create`.
    pub creates: u64,
    /// Calls to `update` and `update_and_unlock`.
    pub updates: u64,
    /// Calls to `update_if_unchanged` and `update_if_unchanged_and_unlock`.
    pub conditional_updates: u64,
    /// Calls to `touch`.
    pub touches: u64,
    /// Calls to `delete`.
    pub deletes: u64,
    /// Calls to `delete_many`.
    pub bulk_deletes: u64,
    /// Calls to `sessions_of`.
    pub listings: u64,
    /// Calls to `lock` and `lock_and_load`.
    pub locks: u64,
    /// Calls to `renew_lock`.
    pub renewals: u64,
    /// Calls to `unlock`, `update_and_unlock` and `update_if_unchanged_and_unlock`.
    pub unlocks: u64,
}

impl OperationCounts {
    /// Calls that write: create, both kinds of update, touch and both kinds of delete.
    pub fn writes(&self) -> u64 {
        self.creates
            + self.updates
            + self.conditional_updates
            + self.touches
            + self.deletes
            + self.bulk_deletes
    }

    /// Every call (except `gc` and `user_index_len`, which no request makes).
    pub fn total(&self) -> u64 {
        self.loads + self.listings + self.writes() + self.locks + self.renewals + self.unlocks
    }
}

impl CountingStore {
    /// Counts the calls made to `inner`.
    pub fn new(inner: Arc<dyn SessionStore>) -> Self {
        Self {
            inner,
            yield_first: false,
            stall_renewals: false,
            loads: AtomicU64::new(0),
            creates: AtomicU64::new(0),
            updates: AtomicU64::new(0),
            conditional_updates: AtomicU64::new(0),
            touches: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            bulk_deletes: AtomicU64::new(0),
            listings: AtomicU64::new(0),
            locks: AtomicU64::new(0),
            renewals: AtomicU64::new(0),
            unlocks: AtomicU64::new(0),
        }
    }

    /// Counts the calls made to `inner`, whose lock renewals never return: a lock taken
    /// through it lapses after its ttl, as a stalled holder's does.
    pub(crate) fn stalling_renewals(inner: Arc<dyn SessionStore>) -> Self {
        Self {
            stall_renewals: true,
            ..Self::new(inner)
        }
    }

    /// Counts the calls made to `inner`, each of which waits once before it reaches the
    /// store, so that a future dropped after its first poll is dropped mid-call.
    pub(crate) fn yielding(inner: Arc<dyn SessionStore>) -> Self {
        Self {
            yield_first: true,
            ..Self::new(inner)
        }
    }

    /// Counts one call on `counter`, and waits once first if the store yields.
    async fn enter(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::SeqCst);
        if self.yield_first {
            tokio::task::yield_now().await;
        }
    }

    /// The counters now.
    pub fn counts(&self) -> OperationCounts {
        OperationCounts {
            loads: self.loads.load(Ordering::SeqCst),
            creates: self.creates.load(Ordering::SeqCst),
            updates: self.updates.load(Ordering::SeqCst),
            conditional_updates: self.conditional_updates.load(Ordering::SeqCst),
            touches: self.touches.load(Ordering::SeqCst),
            deletes: self.deletes.load(Ordering::SeqCst),
            bulk_deletes: self.bulk_deletes.load(Ordering::SeqCst),
            listings: self.listings.load(Ordering::SeqCst),
            locks: self.locks.load(Ordering::SeqCst),
            renewals: self.renewals.load(Ordering::SeqCst),
            unlocks: self.unlocks.load(Ordering::SeqCst),
        }
    }
}

// A wrapper that falls back on a default method would hide the inner store's own (the
// conditional-write fast path, say): every method is delegated, and clippy holds it to that.
#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl SessionStore for CountingStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        self.enter(&self.loads).await;
        self.inner.load(key).await
    }

    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        self.enter(&self.creates).await;
        self.inner.create(key, record).await
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        self.enter(&self.updates).await;
        self.inner.update(key, changes).await
    }

    async fn update_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
        record: &Record,
    ) -> Result<Option<Revision>> {
        self.enter(&self.conditional_updates).await;
        self.inner.update_if_unchanged(key, revision, record).await
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
        self.enter(&self.touches).await;
        self.inner.touch(key, expires_at).await
    }

    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        self.enter(&self.deletes).await;
        self.inner.delete(key).await
    }

    async fn gc(&self) -> Result<u64> {
        // Not counted: gc is no request's work, and no case's claim is about it.
        if self.yield_first {
            tokio::task::yield_now().await;
        }
        self.inner.gc().await
    }

    async fn delete_many(&self, keys: &[StoreKey]) -> Result<u64> {
        self.enter(&self.bulk_deletes).await;
        self.inner.delete_many(keys).await
    }

    async fn sessions_of(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
        self.enter(&self.listings).await;
        self.inner.sessions_of(user).await
    }

    async fn user_index_len(&self, user: &UserId) -> Result<u64> {
        // Not counted: no request asks it.
        if self.yield_first {
            tokio::task::yield_now().await;
        }
        self.inner.user_index_len(user).await
    }

    async fn lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        self.enter(&self.locks).await;
        self.inner.lock(key, token, ttl).await
    }

    async fn lock_and_load(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<Option<Option<Record>>> {
        self.enter(&self.locks).await;
        self.inner.lock_and_load(key, token, ttl).await
    }

    async fn update_and_unlock(
        &self,
        key: &StoreKey,
        changes: &ChangeSet,
        token: &LockToken,
    ) -> Result<bool> {
        self.enter(&self.updates).await;
        self.unlocks.fetch_add(1, Ordering::SeqCst);
        self.inner.update_and_unlock(key, changes, token).await
    }

    async fn update_if_unchanged_and_unlock(
        &self,
        key: &StoreKey,
        revision: Revision,
        record: &Record,
        token: &LockToken,
    ) -> Result<Option<Revision>> {
        self.enter(&self.conditional_updates).await;
        self.unlocks.fetch_add(1, Ordering::SeqCst);
        self.inner
            .update_if_unchanged_and_unlock(key, revision, record, token)
            .await
    }

    async fn renew_lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        self.enter(&self.renewals).await;
        if self.stall_renewals {
            std::future::pending::<()>().await;
        }
        self.inner.renew_lock(key, token, ttl).await
    }

    async fn unlock(&self, key: &StoreKey, token: &LockToken) -> Result<bool> {
        self.enter(&self.unlocks).await;
        self.inner.unlock(key, token).await
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}
