//! A store decorator whose every call waits once before it reaches the real store, so a
//! future dropped after its first poll is dropped in the middle of a store call.

use std::sync::Arc;

use session_core::{
    Capabilities, ChangeSet, Record, Result, Revision, SessionStore, StoreKey, Timestamp,
    async_trait,
};

/// Wraps a store so that each call first returns `Pending` once (and wakes itself), as a
/// call over a network does. An in-process store answers within one poll, so without this
/// a case that cancels a flush at its first wait would cancel nothing.
#[derive(Debug)]
pub(crate) struct YieldingStore {
    inner: Arc<dyn SessionStore>,
}

impl YieldingStore {
    /// Makes every call to `inner` wait once first.
    pub(crate) fn new(inner: Arc<dyn SessionStore>) -> Self {
        Self { inner }
    }
}

// As for every wrapper: a default method here would hide the inner store's own.
#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl SessionStore for YieldingStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        tokio::task::yield_now().await;
        self.inner.load(key).await
    }

    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        tokio::task::yield_now().await;
        self.inner.create(key, record).await
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        tokio::task::yield_now().await;
        self.inner.update(key, changes).await
    }

    async fn update_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
        record: &Record,
    ) -> Result<Option<Revision>> {
        tokio::task::yield_now().await;
        self.inner.update_if_unchanged(key, revision, record).await
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
        tokio::task::yield_now().await;
        self.inner.touch(key, expires_at).await
    }

    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        tokio::task::yield_now().await;
        self.inner.delete(key).await
    }

    async fn gc(&self) -> Result<u64> {
        tokio::task::yield_now().await;
        self.inner.gc().await
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}
