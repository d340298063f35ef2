//! The contract between the session handle and a storage backend.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

use crate::{
    ChangeSet, Error, ErrorKind, IndexedSession, LockToken, Record, Result, Revision, StoreKey,
    Timestamp, UserId,
};

/// A session storage backend.
///
/// The trait is object-safe: applications hold an `Arc<dyn SessionStore>`. Stores only
/// see [`StoreKey`]s (hashes of ids) and encoded bytes. Every method is one logical
/// operation that the store performs atomically.
///
/// These docs are the store contract, the one place it is written. Each rule names the
/// `session-testkit` case that checks it (`cargo xtask conformance` runs them all, and
/// `cargo test <case>` one of them in a store crate).
///
/// # Contract
///
/// Common to all methods:
/// - A record whose `expires_at` is reached is dead: it is never returned, updated or
///   touched, whether gc has removed it yet or not (`expired_record_is_not_returned_without_gc`,
///   `record_created_already_expired_is_absent`, `update_after_expiry_does_not_resurrect`,
///   `touch_does_not_revive_expired_record`).
/// - Bytes and timestamps round-trip exactly: every byte value, empty values, 1 MiB values,
///   any key text, `expires_at` and `created_at` to the millisecond
///   (`create_then_load_round_trips_bytes`, `round_trips_special_keys`,
///   `round_trips_empty_record`, `round_trips_one_mebibyte_value`).
/// - Errors are returned, never panicked, and never hang: against a backend that is down
///   every call is an error, not a pretend success (`unreachable_backend_returns_errors`).
///   Stored bytes that cannot be decoded are an [`ErrorKind::Decode`](crate::ErrorKind::Decode)
///   error, which the session turns into "no session" plus a warning.
/// - Sessions never see each other's data, however many there are
///   (`ten_thousand_sessions_without_cross_talk`); stores that declare
///   [`Capabilities::shared`] show one handle's writes to another on the same backend
///   (`shared_handles_see_each_other`).
///
/// Per method:
/// - [`load`](Self::load): the live record or `None`, never an error for an unknown key
///   (`load_unknown_key_is_none`).
/// - [`create`](Self::create): writes only where no live record is; a live record is left
///   exactly as it was, and of concurrent creates of one key exactly one wins; an expired
///   record counts as absent (`create_does_not_overwrite_live_record`,
///   `concurrent_creates_of_one_key_admit_one`, `create_replaces_expired_record`,
///   `create_after_delete_starts_fresh`).
/// - [`update`](Self::update): applies a change set atomically (set, remove, clear, new
///   expiry), keeps the keys it does not name, so concurrent change sets to different keys
///   all survive and to one key leave one written value; never creates a missing, deleted
///   or expired record (`update_sets_and_removes_keys`, `update_clear_then_set`,
///   `update_keeps_keys_it_does_not_name`, `update_sets_new_expiry`,
///   `update_of_unknown_key_creates_nothing`, `update_after_delete_does_not_resurrect`,
///   `concurrent_change_sets_to_distinct_keys_lose_nothing`,
///   `concurrent_writes_to_one_key_leave_one_written_value`).
/// - [`update_if_unchanged`](Self::update_if_unchanged): optional; writes the whole record
///   only at the revision `load` reported, refuses after any other write, never resurrects
///   (`update_if_unchanged_writes_the_loaded_record`,
///   `update_if_unchanged_refuses_a_changed_record`, `update_if_unchanged_never_resurrects`;
///   skipped for stores whose `load` reports no revision).
/// - [`touch`](Self::touch): moves the expiry, keeps the data, never revives or creates
///   (`touch_extends_expiry_without_changing_data`, `touch_of_unknown_key_is_false`).
/// - [`delete`](Self::delete): removes and says whether a live record was there; an
///   unknown key is not an error (`delete_removes_record`, `delete_of_unknown_key_is_false`).
/// - [`gc`](Self::gc): removes expired records, keeps live ones, counts exactly, and does
///   not fail while sessions are used (`gc_removes_expired_and_keeps_live`,
///   `gc_reports_exact_count` unless [`Capabilities::native_ttl`],
///   `torture_gc_while_touching_keeps_live_sessions`).
/// - [`delete_many`](Self::delete_many): removes exactly the live records it names and
///   counts them (`delete_many_removes_exactly_the_named_records`).
///
/// The user index, for stores that declare [`Capabilities::user_index`] (the cases skip
/// for the others, and the manager refuses to bind sessions on them with an
/// [`ErrorKind::Unsupported`] error):
/// - [`Record::owner`] round-trips through `create`, `load` and `update_if_unchanged`, and a
///   [`ChangeSet::owner`] binds or rebinds in `update`; a change set without one keeps the
///   binding (`user_index_lists_bound_sessions`, `user_index_follows_rebinding`).
/// - [`sessions_of`](Self::sessions_of) lists exactly the user's live sessions, each once,
///   with their creation time, current expiry and label: never one deleted, rebound or
///   expired (gc or not), always one whose expiry a `touch` or `update` moved, all of 100
///   bound concurrently, and on a shared store what another handle bound or deleted
///   (`user_index_forgets_deleted_sessions`, `user_index_never_lists_expired_sessions`,
///   `user_index_follows_expiry_moves`, `user_index_lists_concurrent_binds`,
///   `user_index_shared_between_handles`).
/// - A `create` over an expired record lists the new session under its own owner only,
///   whether that is the expired record's user or another
///   (`user_index_never_lists_expired_sessions`).
/// - The index stays bounded: after a `gc` and a listing, [`user_index_len`](Self::user_index_len)
///   counts no more entries than the user's live sessions (`user_index_stays_bounded`).
///
/// Session locks, for stores that declare [`Capabilities::lock`] (the cases skip for the
/// others, and the manager refuses `lock = true` on them with an [`ErrorKind::Config`]
/// error). A lease is kept apart from the record: locking neither creates, changes nor
/// needs one.
/// - [`lock`](Self::lock) grants a key to one token at a time: refused while another
///   token's lease is unexpired, of concurrent attempts exactly one wins, and a lapsed
///   lease (its `ttl` passed without renewal) is granted to the next token
///   (`lock_is_exclusive`, `lock_concurrent_attempts_admit_one`, `lock_lapses_after_ttl`).
/// - [`renew_lock`](Self::renew_lock) extends only the holder's unexpired lease, and
///   [`unlock`](Self::unlock) releases only the holder's: another token can do neither
///   (`lock_renew_extends_the_lease`, `unlock_needs_the_holders_token`).
/// - Leases of different keys are independent, leave records alone, and on a shared store
///   one handle's lease holds for every other (`lock_leaves_records_and_other_keys_alone`,
///   `lock_shared_between_handles`).
/// - [`lock_and_load`](Self::lock_and_load) is `lock` then `load` in one step: the record
///   when granted, nothing loaded when refused (`lock_and_load_loads_only_when_granted`);
///   [`update_and_unlock`](Self::update_and_unlock) and
///   [`update_if_unchanged_and_unlock`](Self::update_if_unchanged_and_unlock) are the write
///   then `unlock`, releasing only after a write that happened
///   (`write_and_unlock_releases_only_after_writing`).
/// - [`gc`](Self::gc) never releases a live lease, on a key with a record or without
///   (`gc_keeps_live_leases`).
///
/// The session-level cases (`session_*`, `torture_*`) drive a [`SessionManager`](crate::SessionManager)
/// over the store and check what these rules add up to: strict ids, no resurrection by a
/// slow request racing a logout, one load and no write for a read-only request, and so on;
/// for the user index, a log-in's binding kept through `cycle_id` and ended by `clear`,
/// ending one session, the others or all of a user's, a revoked session that a slow
/// request never brings back, and `max_sessions_per_user` under concurrent log-ins
/// (`session_set_user_binds_and_lists`, `session_cycle_id_keeps_the_binding`,
/// `session_clear_unbinds`, `session_revoke_ends_only_that_session`,
/// `session_revoke_others_keeps_current`, `session_revoke_user_leaves_other_users`,
/// `session_revoke_racing_slow_request_does_not_resurrect`,
/// `session_max_sessions_per_user_ends_the_oldest`,
/// `session_concurrent_logins_are_listed_and_capped`,
/// `session_binding_costs_no_extra_round_trip`); for locks and atomic updates, 50
/// concurrent read-modify-writes of one key losing nothing with the lock and with
/// [`Session::update`](crate::Session::update), on one handle and on two, a dropped request
/// releasing the lock (also when dropped in the middle of its lock call), a lapsed
/// holder's late flush refused, a bounded wait, and sessions never waiting on each other
/// (`session_lock_serializes_read_modify_writes`,
/// `session_lock_serializes_across_handles`, `session_update_is_atomic_without_the_lock`,
/// `session_update_is_atomic_across_handles`, `session_update_sees_the_requests_own_changes`,
/// `session_lock_released_when_request_dropped`,
/// `session_lock_released_when_request_dropped_mid_call`,
/// `session_lock_lapsed_holder_cannot_write`, `session_lock_timeout_is_a_typed_error`,
/// `session_locks_of_different_sessions_never_wait`,
/// `session_read_only_request_does_not_wait`).
///
/// # Wrappers must implement every method
///
/// A store that wraps another (to count, log, time or retry its calls) must delegate every
/// method, the optional ones included: a wrapper that forgets
/// [`update_if_unchanged`](Self::update_if_unchanged) falls back on the default, which
/// writes nothing, and silently loses the inner store's one-statement fast path (every
/// write then becomes a read-merge-write). Put `#[deny(clippy::missing_trait_methods)]` on
/// the `impl` block so the compiler holds the wrapper to it, as this workspace's own
/// wrappers do.
///
/// # Writing a store
///
/// A complete (if simple) store, passing the whole conformance suite:
///
/// ```
#[doc = include_str!("store_example.rs")]
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

    /// Removes the records at `keys`; returns how many live records it removed.
    ///
    /// The default deletes one key at a time. Stores that can remove many records in one
    /// round trip (one SQL statement, one pipeline) override it, so that ending every
    /// session of a user costs the same for 1 or 1,000 sessions.
    ///
    /// # Errors
    /// Backend failures. Records removed before a failure stay removed.
    async fn delete_many(&self, keys: &[StoreKey]) -> Result<u64> {
        let mut removed = 0;
        for key in keys {
            removed += u64::from(self.delete(key).await?);
        }
        Ok(removed)
    }

    /// The live sessions bound to `user`: for stores that declare
    /// [`Capabilities::user_index`], in no particular order, each once.
    ///
    /// A session is listed from the moment a `create`, `update` or `update_if_unchanged`
    /// bound it to `user` (see [`Record::owner`], [`ChangeSet::owner`]) until it is deleted,
    /// bound to someone else or expired; an expired session is never listed, whether gc
    /// has removed it or not, and the entry carries the expiry the record has now (after
    /// any `touch`). The cost should not grow with the number of sessions in the store,
    /// and should take a constant number of round trips for a user with many sessions.
    ///
    /// # Errors
    /// Backend failures; the default is an [`ErrorKind::Unsupported`] error.
    async fn sessions_of(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
        let _ = user;
        Err(no_user_index(std::any::type_name::<Self>(), "sessions_of"))
    }

    /// How many index entries the store keeps for `user`, stale ones (of sessions deleted,
    /// rebound or expired but not yet pruned) included: what the index costs, for
    /// monitoring and for the conformance suite's check that the index stays bounded.
    ///
    /// After a `gc` followed by `sessions_of(user)`, it is at most the number of the
    /// user's live sessions plus those that expired since: a store prunes stale entries
    /// as it meets them (a listing prunes the ones it finds) and never lets them pile up.
    ///
    /// # Errors
    /// Backend failures; the default is an [`ErrorKind::Unsupported`] error.
    async fn user_index_len(&self, user: &UserId) -> Result<u64> {
        let _ = user;
        Err(no_user_index(
            std::any::type_name::<Self>(),
            "user_index_len",
        ))
    }

    /// Grants the lock of `key` to `token` for `ttl` if no other token holds an unexpired
    /// lease on it; returns whether `token` holds it now. A lease whose `ttl` passed
    /// without renewal has lapsed and is granted to the next caller.
    ///
    /// Leases are apart from records: locking a key neither needs, creates nor changes a
    /// record there. For stores that declare [`Capabilities::lock`]; the manager calls it
    /// for requests in [`LockMode::Exclusive`](crate::LockMode::Exclusive), polling with a
    /// backoff while it is refused.
    ///
    /// # Errors
    /// Backend failures; the default is an [`ErrorKind::Unsupported`] error.
    async fn lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        let _ = (key, token, ttl);
        Err(no_lock(std::any::type_name::<Self>(), "lock"))
    }

    /// Takes the lock of `key` for `token` as [`lock`](Self::lock) does and, if it was
    /// granted, loads the record there as [`load`](Self::load) does: `None` if the lock
    /// was refused (nothing loaded), `Some` with the live record or `None` if granted.
    ///
    /// The manager takes every session lock through this method, so a store that can do
    /// both in one round trip (one script, one statement) overrides the default, which
    /// makes the two calls.
    ///
    /// # Errors
    /// As [`lock`](Self::lock); an [`ErrorKind::Decode`](crate::ErrorKind::Decode) error
    /// means the lock was granted and the record could not be decoded.
    async fn lock_and_load(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<Option<Option<Record>>> {
        if self.lock(key, token, ttl).await? {
            Ok(Some(self.load(key).await?))
        } else {
            Ok(None)
        }
    }

    /// [`update`](Self::update) and then, if it applied, [`unlock`](Self::unlock) of
    /// `token`'s lease on `key`: the last write of a locked request releases its lock in
    /// the same step, where the backend allows (one script, one statement). Returns what
    /// `update` returns; when it returns `false` or fails, the lease is left as it was
    /// (the request releases it as usual).
    ///
    /// The default makes the two calls.
    ///
    /// # Errors
    /// As [`update`](Self::update) and [`unlock`](Self::unlock).
    async fn update_and_unlock(
        &self,
        key: &StoreKey,
        changes: &ChangeSet,
        token: &LockToken,
    ) -> Result<bool> {
        let applied = self.update(key, changes).await?;
        if applied {
            self.unlock(key, token).await?;
        }
        Ok(applied)
    }

    /// [`update_if_unchanged`](Self::update_if_unchanged) and then, if it wrote,
    /// [`unlock`](Self::unlock) of `token`'s lease on `key`, in one step where the backend
    /// allows; as [`update_and_unlock`](Self::update_and_unlock) for a conditional write.
    ///
    /// # Errors
    /// As [`update_if_unchanged`](Self::update_if_unchanged) and [`unlock`](Self::unlock).
    async fn update_if_unchanged_and_unlock(
        &self,
        key: &StoreKey,
        revision: Revision,
        record: &Record,
        token: &LockToken,
    ) -> Result<Option<Revision>> {
        let written = self.update_if_unchanged(key, revision, record).await?;
        if written.is_some() {
            self.unlock(key, token).await?;
        }
        Ok(written)
    }

    /// Extends `token`'s lease on `key` to `ttl` from now if `token` still holds it
    /// unexpired; returns whether it did. A lapsed lease is not revived, and another
    /// token's lease is left alone.
    ///
    /// # Errors
    /// Backend failures; the default is an [`ErrorKind::Unsupported`] error.
    async fn renew_lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        let _ = (key, token, ttl);
        Err(no_lock(std::any::type_name::<Self>(), "renew_lock"))
    }

    /// Releases `token`'s lease on `key`; returns whether `token` held it. Another
    /// token's lease is left alone (a compare-and-delete), so a late release by a holder
    /// whose lease lapsed never frees the lock of the holder after it.
    ///
    /// # Errors
    /// Backend failures; the default is an [`ErrorKind::Unsupported`] error.
    async fn unlock(&self, key: &StoreKey, token: &LockToken) -> Result<bool> {
        let _ = (key, token);
        Err(no_lock(std::any::type_name::<Self>(), "unlock"))
    }

    /// What this store can do; the conformance suite skips cases that need more.
    fn capabilities(&self) -> Capabilities;
}

/// The error of a lock call on a store that does not implement `method`.
fn no_lock(store: &str, method: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "the store {store} does not implement SessionStore::{method}: it keeps no \
             session locks (a store that declares Capabilities::lock, or forwards the \
             capabilities of one it wraps, must implement it)"
        ),
    )
}

/// The error of a user-index call on a store that does not implement `method`: one that
/// keeps no index, or a wrapper that forwards `capabilities` but not this method.
fn no_user_index(store: &str, method: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "the store {store} does not implement SessionStore::{method}: it keeps no index \
             of users' sessions (a store that declares Capabilities::user_index, or forwards \
             the capabilities of one it wraps, must implement it)"
        ),
    )
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
    /// The store keeps [`Record::owner`] and an index from each user to their live
    /// sessions: [`SessionStore::sessions_of`] and [`SessionStore::user_index_len`] work,
    /// and sessions can be bound to users.
    pub user_index: bool,
    /// The store keeps session locks: [`SessionStore::lock`], [`SessionStore::renew_lock`]
    /// and [`SessionStore::unlock`] work, so requests can hold their session's lock
    /// (`lock = true`). On a [`shared`](Self::shared) store the lock holds across
    /// processes.
    pub lock: bool,
}

impl Capabilities {
    /// No capabilities: an in-process, volatile store that gc must clean.
    pub const fn new() -> Self {
        Self {
            native_ttl: false,
            shared: false,
            persistent: false,
            user_index: false,
            lock: false,
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

    /// Sets [`Capabilities::user_index`].
    #[must_use]
    pub const fn with_user_index(mut self, user_index: bool) -> Self {
        self.user_index = user_index;
        self
    }

    /// Sets [`Capabilities::lock`].
    #[must_use]
    pub const fn with_lock(mut self, lock: bool) -> Self {
        self.lock = lock;
        self
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::test_store::Counted;

    #[test]
    fn capabilities_start_empty_and_set_one_at_a_time() {
        let none = Capabilities::new();
        assert_eq!(none, Capabilities::default());
        assert!(!none.native_ttl && !none.shared && !none.persistent);
        let all = none
            .with_native_ttl(true)
            .with_shared(true)
            .with_persistent(true);
        assert!(all.native_ttl && all.shared && all.persistent);
        assert!(!all.with_shared(false).shared);
    }

    /// A store without revisions keeps the default conditional write, which writes nothing
    /// (so the session falls back on `update`, which merges or drops).
    #[tokio::test]
    async fn the_default_conditional_write_writes_nothing() {
        let store: Arc<dyn SessionStore> = Arc::new(Counted::default());
        let key = crate::SessionId::generate(32).expect("id").store_key();
        let record = Record::new(
            crate::Data::from([("a".to_owned(), b"1".to_vec())]),
            Timestamp::now() + std::time::Duration::from_secs(60),
            Timestamp::now(),
        );
        assert!(store.create(&key, &record).await.expect("create"));
        let mut changed = record.clone();
        changed.data.clear();
        let written = store
            .update_if_unchanged(&key, Revision::new(1), &changed)
            .await
            .expect("conditional write");
        assert_eq!(written, None);
        let loaded = store.load(&key).await.expect("load").expect("still there");
        assert_eq!(loaded.data, record.data, "the record is untouched");
    }
}
