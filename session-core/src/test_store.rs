//! For this crate's unit tests: the store of the `SessionStore` docs, behind a wrapper that
//! counts the calls reaching it, and a manager over the two.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Revision, SessionConfig, SessionManager};

include!("store_example.rs");

/// The doc store, counting every call made to it. (`session_testkit::CountingStore` cannot
/// serve here: the kit links this crate as a library, whose `SessionStore` is another trait
/// than the one of this crate's own unit-test build.)
#[derive(Debug, Default)]
pub(crate) struct Counted {
    inner: MapStore,
    calls: AtomicUsize,
    /// The change set of the last `update`.
    last_update: std::sync::Mutex<Option<ChangeSet>>,
    /// Declare no user index, as a third-party store without one does.
    no_user_index: bool,
}

impl Counted {
    /// How many calls reached the store so far.
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The change set of the last `update`, if there was one.
    pub(crate) fn last_update(&self) -> Option<ChangeSet> {
        self.last_update
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl SessionStore for Counted {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        self.count();
        self.inner.load(key).await
    }
    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        self.count();
        self.inner.create(key, record).await
    }
    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        self.count();
        *self
            .last_update
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(changes.clone());
        self.inner.update(key, changes).await
    }
    async fn update_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
        record: &Record,
    ) -> Result<Option<Revision>> {
        self.count();
        self.inner.update_if_unchanged(key, revision, record).await
    }
    async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
        self.count();
        self.inner.touch(key, expires_at).await
    }
    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        self.count();
        self.inner.delete(key).await
    }
    async fn gc(&self) -> Result<u64> {
        self.count();
        self.inner.gc().await
    }
    async fn delete_many(&self, keys: &[StoreKey]) -> Result<u64> {
        self.count();
        self.inner.delete_many(keys).await
    }
    async fn sessions_of(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
        self.count();
        self.inner.sessions_of(user).await
    }
    async fn user_index_len(&self, user: &UserId) -> Result<u64> {
        self.count();
        self.inner.user_index_len(user).await
    }
    async fn lock(
        &self,
        key: &StoreKey,
        token: &crate::LockToken,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        self.count();
        self.inner.lock(key, token, ttl).await
    }
    async fn lock_and_load(
        &self,
        key: &StoreKey,
        token: &crate::LockToken,
        ttl: std::time::Duration,
    ) -> Result<Option<Option<Record>>> {
        self.count();
        self.inner.lock_and_load(key, token, ttl).await
    }
    async fn update_and_unlock(
        &self,
        key: &StoreKey,
        changes: &ChangeSet,
        token: &crate::LockToken,
    ) -> Result<bool> {
        self.count();
        self.inner.update_and_unlock(key, changes, token).await
    }
    async fn update_if_unchanged_and_unlock(
        &self,
        key: &StoreKey,
        revision: Revision,
        record: &Record,
        token: &crate::LockToken,
    ) -> Result<Option<Revision>> {
        self.count();
        self.inner
            .update_if_unchanged_and_unlock(key, revision, record, token)
            .await
    }
    async fn renew_lock(
        &self,
        key: &StoreKey,
        token: &crate::LockToken,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        self.count();
        self.inner.renew_lock(key, token, ttl).await
    }
    async fn unlock(&self, key: &StoreKey, token: &crate::LockToken) -> Result<bool> {
        self.count();
        self.inner.unlock(key, token).await
    }
    fn capabilities(&self) -> Capabilities {
        let capabilities = self.inner.capabilities();
        capabilities.with_user_index(capabilities.user_index && !self.no_user_index)
    }
}

/// A manager with the configuration `json` over a fresh counted doc store.
pub(crate) fn manager(json: &str) -> (SessionManager, std::sync::Arc<Counted>) {
    let store = std::sync::Arc::new(Counted::default());
    // This module is compiled under cfg(test) only, for the unit tests' own configurations.
    let config = SessionConfig::from_json_str(json).expect("test config"); // ok: test-only
    let manager = SessionManager::new(store.clone(), config).expect("manager"); // ok: test-only
    (manager, store)
}

/// A manager over a counted doc store that declares no user index.
pub(crate) fn manager_without_user_index() -> SessionManager {
    let store = Counted {
        no_user_index: true,
        ..Counted::default()
    };
    let manager = SessionManager::new(std::sync::Arc::new(store), SessionConfig::default());
    manager.expect("the default configuration is valid") // ok: test-only module
}

/// The `Cookie` header that sends `cookie` back.
pub(crate) fn header(cookie: &cookie::Cookie<'_>) -> String {
    format!("{}={}", cookie.name(), cookie.value())
}
