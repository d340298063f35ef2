//! The suite checks itself: a correct reference store passes every case, and each
//! deliberately broken store (a [`Flaw`] of the reference store, a down backend that
//! pretends one call succeeded) is caught by the cases meant to catch it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use session_core::{
    Capabilities, ChangeSet, IndexedSession, LockToken, Owner, Record, Result, Revision,
    SessionStore, StoreKey, Timestamp, UserId, async_trait,
};
use session_testkit::{CASES, Fixture, Outcome, Report, Suite};

/// How a [`ReferenceStore`] misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flaw {
    None,
    /// Returns, updates and touches records after their expiry.
    IgnoresExpiry,
    /// Applies change sets as read, pause, write the whole record back.
    LosesConcurrentUpdates,
    /// `update` of a missing record creates it.
    ResurrectsDeleted,
    /// `create` replaces a live record.
    OverwritesOnCreate,
    /// `update_if_unchanged` writes over a live record whatever its revision.
    IgnoresRevisions,
    /// `gc` always fails (and so never removes anything).
    GcFails,
    /// `create` over a live record returns `false` but still moves the record's expiry.
    LoserMovesExpiry,
    /// `sessions_of` lists sessions whose expiry is reached until gc removes them.
    ListsExpired,
    /// Only `update` indexes a binding: a session created bound (a log-in, the fresh id
    /// of `cycle_id`) is never listed.
    ForgetsCycledIds,
    /// Index entries are never removed: listings filter them, but the index only grows.
    NeverPrunes,
    /// `lock` grants every token, held or not.
    LockNotExclusive,
    /// `unlock` says it released the lease but keeps it, so only its ttl frees the lock.
    LockNeverReleased,
    /// Not a flaw: `lock` grants a moment after it is asked, in a task of its own that
    /// runs on when its caller is dropped, as a server finishes a statement whose client
    /// hung up. The manager must release such a grant after it lands.
    GrantsLate,
    /// Leases never lapse: a holder that stopped renewing blocks everyone else for good.
    LockNeverLapses,
    /// `gc` never returns.
    GcHangs,
    /// `gc` drops every lease, live ones too.
    GcDropsLeases,
    /// `update_if_unchanged` merges the record into the stored one: keys the request
    /// removed stay.
    KeepsRemovedKeys,
    /// Writes never move an expiry earlier: a session's lifetime only grows.
    NeverShortensExpiry,
    /// `create` over an expired record prunes the old owner's index entry after adding
    /// the new owner's: a session created again for the same user drops out of their
    /// listing.
    PrunesAfterRecreate,
}

/// A deliberately plain store: one map behind one lock, a user index beside it, with an
/// optional flaw.
#[derive(Debug)]
struct ReferenceStore {
    records: Mutex<HashMap<StoreKey, Record>>,
    users: Mutex<HashMap<UserId, HashSet<StoreKey>>>,
    /// Session locks: the holder's token and the end of its lease.
    leases: Arc<Mutex<HashMap<StoreKey, (LockToken, Instant)>>>,
    /// The last revision given out: every write takes the next one.
    revisions: AtomicU64,
    flaw: Flaw,
}

impl ReferenceStore {
    fn new(flaw: Flaw) -> Self {
        Self {
            records: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            leases: Arc::new(Mutex::new(HashMap::new())),
            revisions: AtomicU64::new(0),
            flaw,
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<StoreKey, Record>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn users(&self) -> MutexGuard<'_, HashMap<UserId, HashSet<StoreKey>>> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Indexes `key` under `owner`'s user; call without the records lock.
    fn index(&self, key: &StoreKey, owner: Option<&Owner>) {
        if let Some(owner) = owner {
            self.users()
                .entry(owner.user.clone())
                .or_default()
                .insert(key.clone());
        }
    }

    /// Drops the index entry of `key` under `owner`'s user, unless the flaw keeps it.
    fn unindex(&self, key: &StoreKey, owner: Option<&Owner>) {
        if self.flaw == Flaw::NeverPrunes {
            return;
        }
        if let Some(owner) = owner
            && let Some(keys) = self.users().get_mut(&owner.user)
        {
            keys.remove(key);
        }
    }

    fn leases(&self) -> MutexGuard<'_, HashMap<StoreKey, (LockToken, Instant)>> {
        self.leases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a lease that ends at `until` still holds.
    fn holds(&self, until: Instant) -> bool {
        self.flaw == Flaw::LockNeverLapses || until > Instant::now()
    }

    /// The expiry a write of `requested` leaves a record that expired at `stored` with.
    fn next_expiry(&self, stored: Timestamp, requested: Timestamp) -> Timestamp {
        if self.flaw == Flaw::NeverShortensExpiry {
            stored.max(requested)
        } else {
            requested
        }
    }

    fn live(&self, record: &Record) -> bool {
        self.flaw == Flaw::IgnoresExpiry || !record.is_expired(Timestamp::now())
    }

    /// Gives `record` a revision no record of this store had before.
    fn bump(&self, record: &mut Record) -> Revision {
        let revision = Revision::new(u128::from(
            self.revisions.fetch_add(1, Ordering::SeqCst) + 1,
        ));
        record.revision = Some(revision);
        revision
    }
}

/// Grants `token` the lease of `key` for `ttl` unless a lease that `held` says still
/// holds is another token's; whether it holds the lease now.
fn grant(
    leases: &mut HashMap<StoreKey, (LockToken, Instant)>,
    key: &StoreKey,
    token: &LockToken,
    ttl: Duration,
    held: impl Fn(Instant) -> bool,
) -> bool {
    if let Some((holder, until)) = leases.get(key)
        && held(*until)
    {
        return holder == token;
    }
    leases.insert(key.clone(), (token.clone(), Instant::now() + ttl));
    true
}

#[async_trait]
impl SessionStore for ReferenceStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        Ok(self.map().get(key).filter(|r| self.live(r)).cloned())
    }

    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        let mut map = self.map();
        if self.flaw != Flaw::OverwritesOnCreate && map.get(key).is_some_and(|r| self.live(r)) {
            if self.flaw == Flaw::LoserMovesExpiry
                && let Some(live) = map.get_mut(key)
            {
                live.expires_at = record.expires_at;
            }
            return Ok(false);
        }
        let mut record = record.clone();
        self.bump(&mut record);
        let owner = record.owner.clone();
        let replaced = map.insert(key.clone(), record).and_then(|r| r.owner);
        drop(map);
        if self.flaw == Flaw::PrunesAfterRecreate {
            self.index(key, owner.as_ref());
            self.unindex(key, replaced.as_ref());
            return Ok(true);
        }
        self.unindex(key, replaced.as_ref());
        if self.flaw != Flaw::ForgetsCycledIds {
            self.index(key, owner.as_ref());
        }
        Ok(true)
    }

    async fn update_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
        record: &Record,
    ) -> Result<Option<Revision>> {
        let mut map = self.map();
        let Some(stored) = map.get_mut(key).filter(|r| self.live(r)) else {
            return Ok(None);
        };
        if self.flaw != Flaw::IgnoresRevisions && stored.revision != Some(revision) {
            return Ok(None);
        }
        if self.flaw == Flaw::KeepsRemovedKeys {
            stored.data.extend(record.data.clone());
        } else {
            stored.data.clone_from(&record.data);
        }
        stored.expires_at = self.next_expiry(stored.expires_at, record.expires_at);
        let before = std::mem::replace(&mut stored.owner, record.owner.clone());
        let revision = self.bump(stored);
        drop(map);
        if before != record.owner {
            self.unindex(key, before.as_ref());
            self.index(key, record.owner.as_ref());
        }
        Ok(Some(revision))
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        if self.flaw == Flaw::LosesConcurrentUpdates {
            let Some(mut record) = self.map().get(key).filter(|r| self.live(r)).cloned() else {
                return Ok(false);
            };
            tokio::time::sleep(Duration::from_millis(2)).await;
            changes.apply_to_record(&mut record);
            self.bump(&mut record);
            self.map().insert(key.clone(), record);
            self.index(key, changes.owner.as_ref());
            return Ok(true);
        }
        let mut map = self.map();
        let live = map.get(key).is_some_and(|r| self.live(r));
        if !live {
            if self.flaw != Flaw::ResurrectsDeleted {
                return Ok(false);
            }
            map.insert(
                key.clone(),
                Record {
                    created_at: Timestamp::now(),
                    ..Record::default()
                },
            );
        }
        let Some(record) = map.get_mut(key) else {
            return Ok(false);
        };
        let before = record.owner.clone();
        let expired_at = record.expires_at;
        changes.apply_to_record(record);
        record.expires_at = self.next_expiry(expired_at, record.expires_at);
        self.bump(record);
        drop(map);
        if changes.owner.is_some() && before != changes.owner {
            self.unindex(key, before.as_ref());
            self.index(key, changes.owner.as_ref());
        }
        Ok(true)
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
        let mut map = self.map();
        match map.get_mut(key) {
            Some(record) if self.live(record) => {
                record.expires_at = self.next_expiry(record.expires_at, expires_at);
                self.bump(record);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        let removed = self.map().remove(key);
        if let Some(record) = &removed {
            self.unindex(key, record.owner.as_ref());
        }
        Ok(removed.is_some_and(|r| self.live(&r)))
    }

    async fn gc(&self) -> Result<u64> {
        if self.flaw == Flaw::GcHangs {
            std::future::pending::<()>().await;
        }
        if self.flaw == Flaw::GcDropsLeases {
            self.leases().clear();
        }
        if self.flaw == Flaw::GcFails {
            return Err(session_core::Error::new(
                session_core::ErrorKind::Backend,
                "gc is broken",
            ));
        }
        let now = Timestamp::now();
        let mut map = self.map();
        let expired: Vec<(StoreKey, Option<Owner>)> = map
            .iter()
            .filter(|(_, r)| r.is_expired(now))
            .map(|(k, r)| (k.clone(), r.owner.clone()))
            .collect();
        for (key, _) in &expired {
            map.remove(key);
        }
        drop(map);
        for (key, owner) in &expired {
            self.unindex(key, owner.as_ref());
        }
        Ok(u64::try_from(expired.len()).unwrap_or(u64::MAX))
    }

    async fn sessions_of(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
        let keys: Vec<StoreKey> = self
            .users()
            .get(user)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default();
        let now = Timestamp::now();
        let mut listed = Vec::new();
        let mut stale = Vec::new();
        let map = self.map();
        for key in keys {
            let bound = map.get(&key).filter(|r| {
                (self.flaw == Flaw::ListsExpired || !r.is_expired(now))
                    && r.owner.as_ref().is_some_and(|o| &o.user == user)
            });
            match bound {
                Some(r) => listed.push(IndexedSession {
                    key,
                    created_at: r.created_at,
                    expires_at: r.expires_at,
                    label: r
                        .owner
                        .as_ref()
                        .map(|o| o.label.clone())
                        .unwrap_or_default(),
                }),
                None => stale.push(key),
            }
        }
        drop(map);
        if self.flaw != Flaw::NeverPrunes
            && let Some(keys) = self.users().get_mut(user)
        {
            for key in &stale {
                keys.remove(key);
            }
        }
        Ok(listed)
    }

    async fn user_index_len(&self, user: &UserId) -> Result<u64> {
        let len = self.users().get(user).map_or(0, HashSet::len);
        Ok(u64::try_from(len).unwrap_or(u64::MAX))
    }

    async fn lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        if self.flaw == Flaw::GrantsLate {
            let (leases, key, token) = (Arc::clone(&self.leases), key.clone(), token.clone());
            let grant = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                let mut leases = leases.lock().unwrap_or_else(PoisonError::into_inner);
                grant(&mut leases, &key, &token, ttl, |until| {
                    until > Instant::now()
                })
            });
            return grant.await.map_err(|err| {
                session_core::Error::new(session_core::ErrorKind::Backend, err.to_string())
            });
        }
        let exclusive = self.flaw != Flaw::LockNotExclusive;
        Ok(grant(&mut self.leases(), key, token, ttl, |until| {
            exclusive && self.holds(until)
        }))
    }

    async fn renew_lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        let mut leases = self.leases();
        match leases.get_mut(key) {
            Some((holder, until)) if holder == token && self.holds(*until) => {
                *until = Instant::now() + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn unlock(&self, key: &StoreKey, token: &LockToken) -> Result<bool> {
        let mut leases = self.leases();
        match leases.get(key) {
            Some((holder, until)) if holder == token => {
                let held = self.holds(*until);
                if self.flaw != Flaw::LockNeverReleased {
                    leases.remove(key);
                }
                Ok(held)
            }
            _ => Ok(false),
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new().with_user_index(true).with_lock(true)
    }
}

fn suite(flaw: Flaw) -> Suite {
    Suite::new(format!("{flaw:?}"), move || async move {
        Ok(Fixture::new(Arc::new(ReferenceStore::new(flaw))))
    })
}

async fn run(flaw: Flaw) -> Report {
    let report = suite(flaw).run(CASES).await;
    println!("{report}");
    for (name, outcome) in &report.results {
        if let Outcome::Failed(reason) = outcome {
            println!("  {name}: {reason}");
        }
    }
    report
}

#[test]
fn the_suite_has_at_least_thirty_named_cases() {
    assert!(CASES.len() >= 30, "{} cases", CASES.len());
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CASES.len(), "case names are unique");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_correct_store_passes_every_case_it_can_run() {
    let report = run(Flaw::None).await;
    assert_eq!(report.failed(), 0, "{:?}", report.failures());
    // An in-process store without extra fixtures skips exactly these, each with a reason.
    let skipped: Vec<&str> = report
        .results
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Skipped(_)))
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(
        skipped,
        [
            "shared_handles_see_each_other",
            "user_index_shared_between_handles",
            "lock_shared_between_handles",
            "unreachable_backend_returns_errors",
            "session_lock_serializes_across_handles",
            "session_update_is_atomic_across_handles",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_side_fixture_runs_the_session_cases_that_apply_and_skips_the_rest() {
    let suite = Suite::new("cookie", || async { Ok(Fixture::client_side("cookie")) });
    let report = suite.run(CASES).await;
    println!("{report}");
    assert_eq!(report.failed(), 0, "{:?}", report.failures());
    let passed: Vec<&str> = report
        .results
        .iter()
        .filter(|(_, o)| *o == Outcome::Passed)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(
        passed,
        [
            "session_round_trips_typed_values",
            "session_new_empty_session_is_not_stored",
            "session_read_only_request_does_not_write",
            "session_per_call_timeout_sets_expiry",
            "session_flash_is_shown_once_and_survives_cycle_id",
            "session_remember_me_sets_lifetime_and_cookie",
            "torture_tampered_cookies_are_rejected_without_lookups",
            "torture_oversize_values_are_refused",
        ]
    );
    // Everything else is a skip that says why, the store cases all for want of a store.
    for (name, outcome) in &report.results {
        let store_case = !(name.starts_with("session_") || name.starts_with("torture_"));
        match outcome {
            Outcome::Skipped(reason) if store_case => {
                assert!(reason.contains("there is no store"), "{name}: {reason}");
            }
            Outcome::Skipped(reason) => assert!(!reason.is_empty(), "{name}"),
            Outcome::Passed => assert!(!store_case, "{name} ran without a store"),
            Outcome::Failed(reason) => panic!("{name}: {reason}"),
        }
    }
}

async fn assert_caught(flaw: Flaw, expected: &[&str]) {
    let report = run(flaw).await;
    let failures = report.failures();
    assert!(!failures.is_empty(), "{flaw:?} passed the whole suite");
    for name in expected {
        assert!(
            failures.contains(name),
            "{flaw:?} was expected to fail {name}; failures: {failures:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_store_that_ignores_expiry() {
    assert_caught(
        Flaw::IgnoresExpiry,
        &[
            "expired_record_is_not_returned_without_gc",
            "record_created_already_expired_is_absent",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_store_that_loses_concurrent_updates() {
    assert_caught(
        Flaw::LosesConcurrentUpdates,
        &["concurrent_change_sets_to_distinct_keys_lose_nothing"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_store_that_resurrects_deleted_sessions() {
    assert_caught(
        Flaw::ResurrectsDeleted,
        &[
            "update_after_delete_does_not_resurrect",
            "session_logout_racing_slow_request_does_not_resurrect",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_store_that_overwrites_on_create() {
    assert_caught(
        Flaw::OverwritesOnCreate,
        &[
            "create_does_not_overwrite_live_record",
            "concurrent_creates_of_one_key_admit_one",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_store_that_ignores_revisions() {
    assert_caught(
        Flaw::IgnoresRevisions,
        &["update_if_unchanged_refuses_a_changed_record"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_losing_create_that_moves_the_expiry() {
    assert_caught(
        Flaw::LoserMovesExpiry,
        &["create_does_not_overwrite_live_record"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_whole_record_write_that_keeps_removed_keys() {
    assert_caught(
        Flaw::KeepsRemovedKeys,
        &["session_flash_is_shown_once_and_survives_cycle_id"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_store_that_never_shortens_an_expiry() {
    assert_caught(
        Flaw::NeverShortensExpiry,
        &["session_remember_me_sets_lifetime_and_cookie"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_store_whose_gc_always_fails() {
    assert_caught(
        Flaw::GcFails,
        &["torture_gc_while_touching_keeps_live_sessions"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_an_index_that_lists_expired_sessions() {
    assert_caught(
        Flaw::ListsExpired,
        &["user_index_never_lists_expired_sessions"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_create_over_an_expired_record_that_drops_the_new_entry() {
    assert_caught(
        Flaw::PrunesAfterRecreate,
        &["user_index_never_lists_expired_sessions"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_an_index_that_forgets_cycled_ids() {
    assert_caught(
        Flaw::ForgetsCycledIds,
        &[
            "user_index_lists_bound_sessions",
            "session_cycle_id_keeps_the_binding",
            "session_revoke_user_leaves_other_users",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_an_index_that_never_prunes() {
    assert_caught(
        Flaw::NeverPrunes,
        &[
            "user_index_forgets_deleted_sessions",
            "user_index_stays_bounded",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_lock_that_is_not_exclusive() {
    assert_caught(
        Flaw::LockNotExclusive,
        &[
            "lock_is_exclusive",
            "lock_concurrent_attempts_admit_one",
            "session_lock_serializes_read_modify_writes",
            "session_lock_timeout_is_a_typed_error",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_lock_that_is_never_released() {
    assert_caught(
        Flaw::LockNeverReleased,
        &[
            "lock_is_exclusive",
            "unlock_needs_the_holders_token",
            "session_lock_released_when_request_dropped",
            "session_lock_released_when_request_dropped_mid_call",
        ],
    )
    .await;
}

/// A grant that lands after its caller was dropped (as a server finishes a statement
/// whose client hung up) is released once it lands: the mid-call case passes on a store
/// that grants late, with requests dropped in the middle of their lock calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_granted_after_its_caller_left_is_released() {
    let (outcome, figures) = suite(Flaw::GrantsLate)
        .run_case_with_figures(case("session_lock_released_when_request_dropped_mid_call"))
        .await;
    assert_eq!(outcome, Outcome::Passed);
    let dropped: u32 = figures
        .first()
        .and_then(|figure| figure.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the count of dropped requests");
    assert!(dropped > 0, "no request was dropped mid-call: {figures:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_lease_that_never_lapses() {
    assert_caught(
        Flaw::LockNeverLapses,
        &[
            "lock_lapses_after_ttl",
            "session_lock_lapsed_holder_cannot_write",
        ],
    )
    .await;
}

fn case(name: &str) -> &'static session_testkit::Case {
    CASES
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

/// On an in-process store too, the cancelled-flush case cancels both of its flushes in the
/// middle of a store call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cancelled_flush_case_cancels_on_an_in_process_store() {
    let (outcome, figures) = suite(Flaw::None)
        .run_case_with_figures(case("session_cancelled_flush_keeps_its_data"))
        .await;
    assert_eq!(outcome, Outcome::Passed);
    assert_eq!(figures, ["2 of 2 flushes cancelled mid-call"]);
}

/// A backend that is down: every call fails, except the one named, which pretends to
/// succeed.
#[derive(Debug)]
struct Down {
    pretends: Option<&'static str>,
    native_ttl: bool,
}

impl Down {
    fn answer<T>(&self, method: &str, pretended: T) -> Result<T> {
        if self.pretends == Some(method) {
            Ok(pretended)
        } else {
            Err(session_core::Error::new(
                session_core::ErrorKind::Backend,
                "connection refused",
            ))
        }
    }
}

#[async_trait]
impl SessionStore for Down {
    async fn load(&self, _: &StoreKey) -> Result<Option<Record>> {
        self.answer("load", None)
    }
    async fn create(&self, _: &StoreKey, _: &Record) -> Result<bool> {
        self.answer("create", true)
    }
    async fn update(&self, _: &StoreKey, _: &ChangeSet) -> Result<bool> {
        self.answer("update", false)
    }
    async fn update_if_unchanged(
        &self,
        _: &StoreKey,
        revision: Revision,
        _: &Record,
    ) -> Result<Option<Revision>> {
        self.answer("update_if_unchanged", Some(revision))
    }
    async fn touch(&self, _: &StoreKey, _: Timestamp) -> Result<bool> {
        self.answer("touch", false)
    }
    async fn delete(&self, _: &StoreKey) -> Result<bool> {
        self.answer("delete", false)
    }
    async fn gc(&self) -> Result<u64> {
        self.answer("gc", 0)
    }
    async fn delete_many(&self, keys: &[StoreKey]) -> Result<u64> {
        self.answer("delete_many", keys.len() as u64)
    }
    async fn sessions_of(&self, _: &UserId) -> Result<Vec<IndexedSession>> {
        self.answer("sessions_of", Vec::new())
    }
    async fn user_index_len(&self, _: &UserId) -> Result<u64> {
        self.answer("user_index_len", 0)
    }
    async fn lock(&self, _: &StoreKey, _: &LockToken, _: Duration) -> Result<bool> {
        self.answer("lock", true)
    }
    async fn lock_and_load(
        &self,
        _: &StoreKey,
        _: &LockToken,
        _: Duration,
    ) -> Result<Option<Option<Record>>> {
        self.answer("lock_and_load", Some(None))
    }
    async fn update_and_unlock(&self, _: &StoreKey, _: &ChangeSet, _: &LockToken) -> Result<bool> {
        self.answer("update_and_unlock", false)
    }
    async fn update_if_unchanged_and_unlock(
        &self,
        _: &StoreKey,
        revision: Revision,
        _: &Record,
        _: &LockToken,
    ) -> Result<Option<Revision>> {
        self.answer("update_if_unchanged_and_unlock", Some(revision))
    }
    async fn renew_lock(&self, _: &StoreKey, _: &LockToken, _: Duration) -> Result<bool> {
        self.answer("renew_lock", true)
    }
    async fn unlock(&self, _: &StoreKey, _: &LockToken) -> Result<bool> {
        self.answer("unlock", true)
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
            .with_native_ttl(self.native_ttl)
            .with_user_index(true)
            .with_lock(true)
    }
}

async fn unreachable_case(down: Down) -> Outcome {
    let down = Arc::new(down);
    let suite = Suite::new("down", move || {
        let down = Arc::clone(&down);
        async move { Ok(Fixture::new(Arc::new(ReferenceStore::new(Flaw::None))).with_unreachable(down)) }
    });
    suite
        .run_case(case("unreachable_backend_returns_errors"))
        .await
}

/// The down-backend case calls every method: a store that pretends any one of them
/// succeeded fails it, naming the method, and one that fails them all passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catches_a_down_backend_that_pretends_any_call_succeeded() {
    let every = [
        "load",
        "create",
        "update",
        "update_if_unchanged",
        "touch",
        "delete",
        "gc",
        "delete_many",
        "sessions_of",
        "user_index_len",
        "lock",
        "lock_and_load",
        "update_and_unlock",
        "update_if_unchanged_and_unlock",
        "renew_lock",
        "unlock",
    ];
    for method in every {
        let down = Down {
            pretends: Some(method),
            native_ttl: false,
        };
        match unreachable_case(down).await {
            Outcome::Failed(reason) => assert!(
                reason.contains(&format!("{method} (")),
                "{method}: {reason}"
            ),
            other => panic!("a down store pretending {method} succeeded: {other:?}"),
        }
    }
    let honest = Down {
        pretends: None,
        native_ttl: false,
    };
    assert_eq!(unreachable_case(honest).await, Outcome::Passed);
    // A store with native TTL whose gc does nothing may say so without its backend.
    let native = Down {
        pretends: Some("gc"),
        native_ttl: true,
    };
    assert_eq!(unreachable_case(native).await, Outcome::Passed);
}

/// A store that panics is reported as a failure of the case, not a crash of the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_store_fails_cases_instead_of_crashing() {
    #[derive(Debug)]
    struct Panicky;
    #[async_trait]
    impl SessionStore for Panicky {
        async fn load(&self, _: &StoreKey) -> Result<Option<Record>> {
            panic!("load exploded")
        }
        async fn create(&self, _: &StoreKey, _: &Record) -> Result<bool> {
            panic!("create exploded")
        }
        async fn update(&self, _: &StoreKey, _: &ChangeSet) -> Result<bool> {
            panic!("update exploded")
        }
        async fn touch(&self, _: &StoreKey, _: Timestamp) -> Result<bool> {
            panic!("touch exploded")
        }
        async fn delete(&self, _: &StoreKey) -> Result<bool> {
            panic!("delete exploded")
        }
        async fn gc(&self) -> Result<u64> {
            panic!("gc exploded")
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::new()
        }
    }
    let suite = Suite::new("panicky", || async { Ok(Fixture::new(Arc::new(Panicky))) });
    let case = CASES
        .iter()
        .find(|c| c.name == "load_unknown_key_is_none")
        .expect("case exists");
    match suite.run_case(case).await {
        Outcome::Failed(reason) => assert!(reason.contains("load exploded"), "{reason}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// An unreachable backend skips loudly, or fails when services are required.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_backend_is_a_skip_with_its_reason() {
    let suite = Suite::new("down", || async {
        Err(session_testkit::Unavailable::new(
            "nothing listens on 127.0.0.1:1",
        ))
    });
    let outcome = suite.run_case(&CASES[0]).await;
    let reason = match (&outcome, session_testkit::services_required()) {
        (Outcome::Failed(reason), true) | (Outcome::Skipped(reason), false) => reason,
        other => panic!("unexpected outcome {other:?}"),
    };
    assert!(reason.contains("127.0.0.1:1"), "{reason}");
}

/// A store call that never returns fails its case at once, naming the operation, not
/// after the case's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_the_limit_fails_its_case_naming_the_operation() {
    let suite = suite(Flaw::GcHangs).with_call_limit(Duration::from_millis(200));
    let case = CASES
        .iter()
        .find(|c| c.name == "gc_removes_expired_and_keeps_live")
        .expect("case exists");
    let started = Instant::now();
    let outcome = suite.run_case(case).await;
    let elapsed = started.elapsed();
    match outcome {
        Outcome::Failed(reason) => assert!(
            reason.contains("`gc` did not return within 200ms"),
            "{reason}"
        ),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    // A case that never calls gc is not touched by the flaw.
    let other = CASES
        .iter()
        .find(|c| c.name == "load_unknown_key_is_none")
        .expect("case exists");
    assert_eq!(suite.run_case(other).await, Outcome::Passed);
}

/// A store whose every call hangs gets its whole verdict, every case failed or skipped,
/// in under two minutes with the default limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_always_hangs_gets_its_verdict_in_under_two_minutes() {
    #[derive(Debug)]
    struct Hanging;
    #[async_trait]
    impl SessionStore for Hanging {
        async fn load(&self, _: &StoreKey) -> Result<Option<Record>> {
            std::future::pending().await
        }
        async fn create(&self, _: &StoreKey, _: &Record) -> Result<bool> {
            std::future::pending().await
        }
        async fn update(&self, _: &StoreKey, _: &ChangeSet) -> Result<bool> {
            std::future::pending().await
        }
        async fn touch(&self, _: &StoreKey, _: Timestamp) -> Result<bool> {
            std::future::pending().await
        }
        async fn delete(&self, _: &StoreKey) -> Result<bool> {
            std::future::pending().await
        }
        async fn gc(&self) -> Result<u64> {
            std::future::pending().await
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::new()
        }
    }
    let suite = Suite::new("hanging", || async { Ok(Fixture::new(Arc::new(Hanging))) });
    let started = Instant::now();
    let report = suite.run(CASES).await;
    let elapsed = started.elapsed();
    println!("{report} in {elapsed:?}");
    assert!(elapsed < Duration::from_secs(120), "took {elapsed:?}");
    assert_eq!(
        report.passed(),
        0,
        "a store that never answers passed cases"
    );
    let reasons: Vec<&str> = report
        .results
        .iter()
        .filter_map(|(_, outcome)| match outcome {
            Outcome::Failed(reason) => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("did not return within 5s")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("not run: the store stopped answering")),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_a_gc_that_drops_live_leases() {
    assert_caught(Flaw::GcDropsLeases, &["gc_keeps_live_leases"]).await;
}
