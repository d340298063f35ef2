//! The contract between the session handle and a storage backend.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::{ChangeSet, Record, Result, Revision, StoreKey, Timestamp};

/// A session storage backend.
///
/// The trait is object-safe: applications hold an `Arc<dyn SessionStore>`. Stores only
/// see [`StoreKey`]s (hashes of ids) and encoded bytes. Every method is one logical
/// operation that the store performs atomically; `session-testkit` checks each contract
/// below against any implementation, and `cargo xtask conformance` runs it.
///
/// Contracts common to all methods:
/// - A record whose `expires_at` is reached is dead: it is never returned, updated or
///   touched, whether gc has removed it yet or not.
/// - Errors are returned, never panicked. Stored bytes that cannot be decoded are an
///   [`ErrorKind::Decode`](crate::ErrorKind::Decode) error, which the session turns into
///   "no session" plus a warning.
///
/// # Writing a store
///
/// A complete (if simple) store, passing the whole conformance suite:
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
///
/// use async_trait::async_trait;
/// use session_core::{Capabilities, ChangeSet, Error, Record, Result, SessionStore, StoreKey, Timestamp};
///
/// #[derive(Debug, Default)]
/// struct MapStore(Mutex<HashMap<StoreKey, Record>>);
///
/// impl MapStore {
///     fn map(&self) -> Result<std::sync::MutexGuard<'_, HashMap<StoreKey, Record>>> {
///         self.0.lock().map_err(|_| Error::new(session_core::ErrorKind::Backend, "poisoned"))
///     }
/// }
///
/// #[async_trait]
/// impl SessionStore for MapStore {
///     async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
///         let now = Timestamp::now();
///         Ok(self.map()?.get(key).filter(|r| !r.is_expired(now)).cloned())
///     }
///     async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
///         let mut map = self.map()?;
///         if map.get(key).is_some_and(|r| !r.is_expired(Timestamp::now())) {
///             return Ok(false);
///         }
///         map.insert(key.clone(), record.clone());
///         Ok(true)
///     }
///     async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
///         let now = Timestamp::now();
///         match self.map()?.get_mut(key).filter(|r| !r.is_expired(now)) {
///             Some(record) => {
///                 changes.apply_to(&mut record.data);
///                 record.expires_at = changes.expires_at;
///                 Ok(true)
///             }
///             None => Ok(false),
///         }
///     }
///     async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
///         let now = Timestamp::now();
///         match self.map()?.get_mut(key).filter(|r| !r.is_expired(now)) {
///             Some(record) => { record.expires_at = expires_at; Ok(true) }
///             None => Ok(false),
///         }
///     }
///     async fn delete(&self, key: &StoreKey) -> Result<bool> {
///         let now = Timestamp::now();
///         Ok(self.map()?.remove(key).is_some_and(|r| !r.is_expired(now)))
///     }
///     async fn gc(&self) -> Result<u64> {
///         let now = Timestamp::now();
///         let mut map = self.map()?;
///         let before = map.len();
///         map.retain(|_, r| !r.is_expired(now));
///         Ok((before - map.len()) as u64)
///     }
///     fn capabilities(&self) -> Capabilities {
///         Capabilities::new()
///     }
/// }
/// ```
#[async_trait]
pub trait SessionStore: Debug + Send + Sync + 'static {
    /// The live record at `key`, or `None` if there is none or it has expired.
    ///
    /// # Errors
    /// Backend failures; [`ErrorKind::Decode`](crate::ErrorKind::Decode) for corrupt data.
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>>;

    /// Stores `record` at `key` only if no live record is there; returns whether it did.
    ///
    /// An expired (or corrupt) record at `key` counts as absent and is replaced. A live
    /// record is never overwritten: `false` tells the caller to pick another id.
    ///
    /// # Errors
    /// Backend failures. On error, an existing record must be left intact.
    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool>;

    /// Applies `changes` atomically to the live record at `key`; returns whether there was
    /// one.
    ///
    /// Keys not named in the change set keep the store's current values, so concurrent
    /// change sets to different keys all survive. If the record is absent or expired
    /// (deleted by a logout that raced this request, say), nothing is written and the
    /// result is `false`: a deleted session is never brought back.
    ///
    /// # Errors
    /// Backend failures. On error, the record must be left as it was or fully updated.
    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool>;

    /// Writes `record` (data and expiry) over the live record at `key` if it is still at
    /// `revision`, the [`Record::revision`] that `load` returned, in one atomic step;
    /// returns the record's new revision if it wrote, `None` if the record changed,
    /// expired or is gone meanwhile.
    ///
    /// This is the fast path for a request that loaded a session and changed it: one
    /// conditional write instead of a read-merge-write of the change set. On `None` the
    /// session sends its change set through [`update`](Self::update), which decides
    /// between merging and dropping (a deleted session is never brought back). A store
    /// that reports no revision from `load` is never called here and can keep the
    /// default, which writes nothing.
    ///
    /// # Errors
    /// Backend failures. On error, the record must be left as it was or fully written.
    async fn update_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
        record: &Record,
    ) -> Result<Option<Revision>> {
        let _ = (key, revision, record);
        Ok(None)
    }

    /// Sets a new expiry on the live record at `key` without rewriting its data; returns
    /// whether there was one. An expired record is not revived.
    ///
    /// # Errors
    /// Backend failures.
    async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool>;

    /// Removes the record at `key`; returns whether a live record was removed. Deleting an
    /// unknown key is not an error.
    ///
    /// # Errors
    /// Backend failures.
    async fn delete(&self, key: &StoreKey) -> Result<bool>;

    /// Removes expired records and returns how many it removed. Stores whose backend
    /// expires records natively may do nothing and return 0.
    ///
    /// # Errors
    /// Backend failures.
    async fn gc(&self) -> Result<u64>;

    /// What this store can do; the conformance suite skips cases that need more.
    fn capabilities(&self) -> Capabilities;
}

/// What a store can do, so callers and the conformance suite can adapt.
///
/// Build it with [`Capabilities::new`] and the setters; new capabilities default to
/// `false`, so adding one is not a breaking change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The backend expires records on its own (Redis TTLs, MongoDB TTL indexes): `gc` may
    /// return 0 and the gc scheduler is unnecessary.
    pub native_ttl: bool,
    /// Several processes (or machines) can share the store: two store instances opened on
    /// the same backend see each other's records.
    pub shared: bool,
    /// Records survive a restart of the application.
    pub persistent: bool,
}

impl Capabilities {
    /// No capabilities: an in-process, volatile store that gc must clean.
    pub const fn new() -> Self {
        Self {
            native_ttl: false,
            shared: false,
            persistent: false,
        }
    }

    /// Sets [`Capabilities::native_ttl`].
    #[must_use]
    pub const fn with_native_ttl(mut self, native_ttl: bool) -> Self {
        self.native_ttl = native_ttl;
        self
    }

    /// Sets [`Capabilities::shared`].
    #[must_use]
    pub const fn with_shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Sets [`Capabilities::persistent`].
    #[must_use]
    pub const fn with_persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }
}
