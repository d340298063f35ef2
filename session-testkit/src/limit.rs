//! The per-call time limit: a store decorator that notices a call which does not return in
//! time, so that the case fails at once, naming the operation, rather than after the whole
//! case's timeout.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use session_core::{
    Capabilities, ChangeSet, IndexedSession, LockToken, Record, Result, Revision, SessionStore,
    StoreKey, Timestamp, UserId, async_trait,
};
use tokio::sync::Notify;

/// The per-call limit of a suite unless it or a fixture says otherwise
/// ([`Suite::with_call_limit`](crate::Suite::with_call_limit),
/// [`Fixture::with_call_limit`](crate::Fixture::with_call_limit)).
pub const DEFAULT_CALL_LIMIT: Duration = Duration::from_secs(5);

/// The first call of a case that exceeded the limit, shared by the case's stores.
#[derive(Debug, Default)]
pub(crate) struct Trip {
    first: Mutex<Option<String>>,
    tripped: Notify,
}

impl Trip {
    fn trip(&self, operation: &str, limit: Duration) {
        let mut first = self.first.lock().unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(format!("`{operation}` did not return within {limit:?}"));
        }
        self.tripped.notify_one();
    }

    /// Waits until a call exceeded the limit; what it was.
    pub(crate) async fn tripped(&self) -> String {
        loop {
            let notified = self.tripped.notified();
            if let Some(reason) = self
                .first
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
            {
                return reason;
            }
            notified.await;
        }
    }
}

/// Wraps a fixture's store: every call that does not return within `limit` trips `trip`
/// and then never returns, so the case stops where the store hung. Everything else is
/// delegated unchanged.
#[derive(Debug)]
pub(crate) struct Limited {
    inner: Arc<dyn SessionStore>,
    limit: Duration,
    trip: Arc<Trip>,
}

impl Limited {
    pub(crate) fn wrap(
        inner: Arc<dyn SessionStore>,
        limit: Duration,
        trip: &Arc<Trip>,
    ) -> Arc<dyn SessionStore> {
        Arc::new(Self {
            inner,
            limit,
            trip: Arc::clone(trip),
        })
    }

    async fn call<T>(&self, operation: &str, call: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.limit, call).await {
            Ok(result) => result,
            Err(_) => {
                self.trip.trip(operation, self.limit);
                std::future::pending().await
            }
        }
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl SessionStore for Limited {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        self.call("load", self.inner.load(key)).await
    }
    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        self.call("create", self.inner.create(key, record)).await
    }
    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        self.call("update", self.inner.update(key, changes)).await
    }
    async fn update_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
        record: &Record,
    ) -> Result<Option<Revision>> {
        let call = self.inner.update_if_unchanged(key, revision, record);
        self.call("update_if_unchanged", call).await
    }
    async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
        self.call("touch", self.inner.touch(key, expires_at)).await
    }
    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        self.call("delete", self.inner.delete(key)).await
    }
    async fn gc(&self) -> Result<u64> {
        self.call("gc", self.inner.gc()).await
    }
    async fn delete_many(&self, keys: &[StoreKey]) -> Result<u64> {
        self.call("delete_many", self.inner.delete_many(keys)).await
    }
    async fn sessions_of(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
        self.call("sessions_of", self.inner.sessions_of(user)).await
    }
    async fn user_index_len(&self, user: &UserId) -> Result<u64> {
        self.call("user_index_len", self.inner.user_index_len(user))
            .await
    }
    async fn lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        self.call("lock", self.inner.lock(key, token, ttl)).await
    }
    async fn lock_and_load(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<Option<Option<Record>>> {
        let call = self.inner.lock_and_load(key, token, ttl);
        self.call("lock_and_load", call).await
    }
    async fn update_and_unlock(
        &self,
        key: &StoreKey,
        changes: &ChangeSet,
        token: &LockToken,
    ) -> Result<bool> {
        let call = self.inner.update_and_unlock(key, changes, token);
        self.call("update_and_unlock", call).await
    }
    async fn update_if_unchanged_and_unlock(
        &self,
        key: &StoreKey,
        revision: Revision,
        record: &Record,
        token: &LockToken,
    ) -> Result<Option<Revision>> {
        let call = self
            .inner
            .update_if_unchanged_and_unlock(key, revision, record, token);
        self.call("update_if_unchanged_and_unlock", call).await
    }
    async fn renew_lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        self.call("renew_lock", self.inner.renew_lock(key, token, ttl))
            .await
    }
    async fn unlock(&self, key: &StoreKey, token: &LockToken) -> Result<bool> {
        self.call("unlock", self.inner.unlock(key, token)).await
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}
