//! The cases: one async function per contract, each documented with what it checks.
//!
//! Store-level cases call the [`SessionStore`] methods directly. Session-level cases (named
//! `session_*`) drive a [`SessionManager`] over the store, the way a web framework does, and
//! count what reaches the store with a [`CountingStore`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use session_core::cookie::Cookie;
use session_core::{
    ChangeSet, Data, Record, Revision, Session, SessionConfig, SessionId, SessionManager,
    SessionStore, StoreKey, Timestamp,
};
use tokio::task::JoinSet;

use crate::CountingStore;
use crate::harness::Fixture;

/// Why a case did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseError {
    /// The store broke the contract.
    Fail(String),
    /// The case cannot run against this store.
    Skip(String),
}

impl From<session_core::Error> for CaseError {
    fn from(err: session_core::Error) -> Self {
        let mut message = format!("unexpected error: {err}");
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Self::Fail(message)
    }
}

/// What a case returns.
pub type CaseResult = Result<(), CaseError>;

type CaseFuture<'a> = Pin<Box<dyn Future<Output = CaseResult> + Send + 'a>>;

/// A named case of the suite.
#[derive(Clone, Copy)]
pub struct Case {
    /// The function's name; `cargo test <name>` selects it. What the case checks is the
    /// function's documentation in [`cases`](crate::cases).
    pub name: &'static str,
    /// Runs the case.
    pub run: for<'a> fn(&'a Ctx) -> CaseFuture<'a>,
}

impl Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What a case runs against: the store of a fresh fixture.
#[derive(Debug)]
pub struct Ctx {
    store: Arc<dyn SessionStore>,
    second: Option<Arc<dyn SessionStore>>,
    unreachable: Option<Arc<dyn SessionStore>>,
    notes: std::sync::Mutex<Vec<String>>,
}

impl Ctx {
    pub(crate) fn from_fixture(fixture: Fixture) -> Self {
        Self {
            store: fixture.store,
            second: fixture.second,
            unreachable: fixture.unreachable,
            notes: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The store under test.
    pub fn store(&self) -> &dyn SessionStore {
        self.store.as_ref()
    }

    /// Records a figure the case measured (printed after its outcome and written to the
    /// JSON report), e.g. "10000 tampered cookies: 0 accepted, 0 store lookups".
    pub fn note(&self, figure: impl Into<String>) {
        self.notes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(figure.into());
    }

    pub(crate) fn take_notes(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .notes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// Whether `SESSION_TORTURE=long` asks for the long form of the `torture_*` cases.
pub fn long_torture() -> bool {
    std::env::var("SESSION_TORTURE").is_ok_and(|v| v == "long")
}

/// `quick` trials in the test suite, `long` with `SESSION_TORTURE=long`.
fn trials(quick: usize, long: usize) -> usize {
    if long_torture() { long } else { quick }
}

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(CaseError::Fail(format!($($arg)+)));
        }
    };
}

macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($arg:tt)+) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(CaseError::Fail(format!(
                "{}: expected {:?}, got {:?}", format!($($arg)+), right, left
            )));
        }
    }};
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        /// Every case of the suite, in the order they run.
        pub static CASES: &[Case] = &[
            $(Case {
                name: stringify!($name),
                run: {
                    fn run(ctx: &Ctx) -> CaseFuture<'_> {
                        Box::pin($name(ctx))
                    }
                    run
                },
            }),*
        ];
    };
}

cases![
    load_unknown_key_is_none,
    create_then_load_round_trips_bytes,
    round_trips_special_keys,
    round_trips_empty_record,
    round_trips_one_mebibyte_value,
    create_does_not_overwrite_live_record,
    create_replaces_expired_record,
    concurrent_creates_of_one_key_admit_one,
    expired_record_is_not_returned_without_gc,
    record_created_already_expired_is_absent,
    update_sets_and_removes_keys,
    update_clear_then_set,
    update_keeps_keys_it_does_not_name,
    update_sets_new_expiry,
    update_of_unknown_key_creates_nothing,
    update_after_delete_does_not_resurrect,
    update_after_expiry_does_not_resurrect,
    update_if_unchanged_writes_the_loaded_record,
    update_if_unchanged_refuses_a_changed_record,
    update_if_unchanged_never_resurrects,
    touch_extends_expiry_without_changing_data,
    touch_of_unknown_key_is_false,
    touch_does_not_revive_expired_record,
    delete_removes_record,
    delete_of_unknown_key_is_false,
    create_after_delete_starts_fresh,
    gc_removes_expired_and_keeps_live,
    gc_reports_exact_count,
    concurrent_change_sets_to_distinct_keys_lose_nothing,
    concurrent_writes_to_one_key_leave_one_written_value,
    ten_thousand_sessions_without_cross_talk,
    shared_handles_see_each_other,
    unreachable_backend_returns_errors,
    session_round_trips_typed_values,
    session_new_empty_session_is_not_stored,
    session_unknown_id_is_not_adopted,
    session_tampered_cookie_never_reaches_store,
    session_read_only_request_does_not_write,
    session_rolling_expiry_refreshes_after_threshold,
    session_per_call_timeout_sets_expiry,
    session_absolute_timeout_is_enforced,
    session_clear_deletes_and_expires_cookie,
    session_clear_then_set_starts_new_session,
    session_cycle_id_moves_data_to_new_id,
    session_cancelled_flush_keeps_its_data,
    session_logout_racing_slow_request_does_not_resurrect,
    session_cycle_id_racing_delete_does_not_resurrect,
    session_concurrent_requests_merge_distinct_keys,
    torture_tampered_cookies_are_rejected_without_lookups,
    torture_never_issued_ids_are_never_adopted,
    torture_oversize_values_are_refused,
    torture_concurrent_requests_lose_no_keys,
    torture_slow_requests_racing_logout_never_resurrect,
    torture_cycle_id_racing_delete_never_resurrects,
    torture_gc_while_touching_keeps_live_sessions,
];

// ----------------------------------------------------------------------------------------
// Helpers

fn key() -> Result<StoreKey, CaseError> {
    Ok(SessionId::generate(32)?.store_key())
}

fn data(pairs: &[(&str, &[u8])]) -> Data {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.to_vec()))
        .collect()
}

fn record(pairs: &[(&str, &[u8])], expires_at: Timestamp) -> Record {
    Record {
        data: data(pairs),
        expires_at,
        created_at: Timestamp::now(),
        revision: None,
    }
}

fn in_secs(seconds: u64) -> Timestamp {
    Timestamp::now() + Duration::from_secs(seconds)
}

fn in_millis(millis: u64) -> Timestamp {
    Timestamp::now() + Duration::from_millis(millis)
}

fn ago_secs(seconds: u64) -> Timestamp {
    Timestamp::now() - Duration::from_secs(seconds)
}

fn changes(set: &[(&str, &[u8])], removed: &[&str], expires_at: Timestamp) -> ChangeSet {
    ChangeSet {
        cleared: false,
        set: data(set),
        removed: removed.iter().map(|k| (*k).to_owned()).collect(),
        expires_at,
    }
}

async fn create_live(ctx: &Ctx, pairs: &[(&str, &[u8])]) -> Result<StoreKey, CaseError> {
    let key = key()?;
    let created = ctx
        .store
        .create(&key, &record(pairs, in_secs(3600)))
        .await?;
    ensure!(created, "create of a fresh key returned false");
    Ok(key)
}

async fn load_data(store: &dyn SessionStore, key: &StoreKey) -> Result<Option<Data>, CaseError> {
    Ok(store.load(key).await?.map(|record| record.data))
}

fn within(actual: Timestamp, expected: Timestamp, tolerance: Duration) -> bool {
    actual.saturating_duration_since(expected) <= tolerance
        && expected.saturating_duration_since(actual) <= tolerance
}

/// A manager over the store, the way an application builds one, with a counter in between.
struct App {
    manager: SessionManager,
    counter: Arc<CountingStore>,
}

impl App {
    fn new(ctx: &Ctx, config: &str) -> Result<Self, CaseError> {
        let counter = Arc::new(CountingStore::new(Arc::clone(&ctx.store)));
        let config = SessionConfig::from_json_str(config)?;
        let manager = SessionManager::new(Arc::clone(&counter) as Arc<dyn SessionStore>, config)?;
        Ok(Self { manager, counter })
    }

    fn plain(ctx: &Ctx) -> Result<Self, CaseError> {
        Self::new(ctx, r#"{"type": "conformance"}"#)
    }

    fn request(&self, cookie: Option<&str>) -> Session {
        self.manager.session_from_cookie_header(cookie)
    }

    /// Runs a request that stores `pairs` in a new session; returns the `Cookie` header
    /// that later requests send.
    async fn login(&self, pairs: &[(&str, &str)]) -> Result<String, CaseError> {
        let session = self.request(None);
        for (key, value) in pairs {
            session.set(key, value).await?;
        }
        let cookie = session.flush().await?;
        let cookie = cookie
            .ok_or_else(|| CaseError::Fail("a new session with data got no cookie".into()))?;
        Ok(cookie_header(&cookie))
    }
}

fn cookie_header(cookie: &Cookie<'_>) -> String {
    format!("{}={}", cookie.name(), cookie.value())
}

/// The store key behind an unsigned cookie header (`name=id`).
fn key_of(header: &str) -> Result<StoreKey, CaseError> {
    let value = header
        .split_once('=')
        .map(|(_, value)| value)
        .ok_or_else(|| CaseError::Fail(format!("not a cookie header: {header}")))?;
    Ok(SessionId::parse(value)?.store_key())
}

async fn join_all<T: Send + 'static>(
    mut set: JoinSet<Result<T, CaseError>>,
) -> Result<Vec<T>, CaseError> {
    let mut results = Vec::new();
    while let Some(joined) = set.join_next().await {
        let result =
            joined.map_err(|err| CaseError::Fail(format!("a concurrent task failed: {err}")))?;
        results.push(result?);
    }
    Ok(results)
}

// ----------------------------------------------------------------------------------------
// Store-level cases

/// `load` of a key that was never written is `None`, not an error.
pub async fn load_unknown_key_is_none(ctx: &Ctx) -> CaseResult {
    ensure!(
        ctx.store.load(&key()?).await?.is_none(),
        "load of an unknown key returned a record"
    );
    Ok(())
}

/// What `create` stores, `load` returns byte for byte: every byte value, empty values,
/// and `expires_at` / `created_at` to the millisecond.
pub async fn create_then_load_round_trips_bytes(ctx: &Ctx) -> CaseResult {
    let all_bytes: Vec<u8> = (0..=255).collect();
    let key = key()?;
    let original = Record {
        data: data(&[
            ("bytes", &all_bytes),
            ("empty", b""),
            ("nul", b"\0\0"),
            ("text", b"hello"),
        ]),
        expires_at: Timestamp::from_millis(Timestamp::now().as_millis() + 3_600_123),
        created_at: Timestamp::from_millis(Timestamp::now().as_millis() - 5_321),
        revision: None,
    };
    ensure!(
        ctx.store.create(&key, &original).await?,
        "create of a fresh key returned false"
    );
    // The revision is the store's own; everything else comes back as written.
    let loaded = ctx.store.load(&key).await?.map(|record| Record {
        revision: None,
        ..record
    });
    ensure_eq!(loaded, Some(original), "loaded record");
    Ok(())
}

/// Keys with `.`, `$`, `/`, spaces, unicode, the empty string and 1,000 characters are
/// stored and updated as given (a store that maps keys to fields must escape them).
pub async fn round_trips_special_keys(ctx: &Ctx) -> CaseResult {
    let long = "k".repeat(1000);
    let keys = [
        "a.b.c",
        "$where",
        "$",
        "a/b",
        "../x",
        "with space",
        " ",
        "ключ",
        "キー",
        "😀",
        "",
        "__proto__",
        "a\"b",
        "a'b",
        "a\\b",
        "%2e",
        "\u{0}",
        "\n",
        long.as_str(),
    ];
    let pairs: Vec<(&str, &[u8])> = keys.iter().map(|k| (*k, k.as_bytes())).collect();
    let key = key()?;
    ensure!(
        ctx.store
            .create(&key, &record(&pairs, in_secs(3600)))
            .await?,
        "create returned false"
    );
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(data(&pairs)),
        "data after create"
    );
    let updated = changes(
        &[("a.b.c", b"new"), ("$where", b"new")],
        &["a/b", "😀"],
        in_secs(3600),
    );
    ensure!(
        ctx.store.update(&key, &updated).await?,
        "update returned false"
    );
    let mut expected = data(&pairs);
    updated.apply_to(&mut expected);
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(expected),
        "data after update"
    );
    Ok(())
}

/// A record without any data is a valid record.
pub async fn round_trips_empty_record(ctx: &Ctx) -> CaseResult {
    let key = key()?;
    ensure!(
        ctx.store.create(&key, &record(&[], in_secs(3600))).await?,
        "create returned false"
    );
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(Data::new()),
        "data"
    );
    Ok(())
}

/// A 1 MiB value survives create, load and update intact.
pub async fn round_trips_one_mebibyte_value(ctx: &Ctx) -> CaseResult {
    let big: Vec<u8> = (0..1024 * 1024)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let key = key()?;
    ensure!(
        ctx.store
            .create(&key, &record(&[("big", &big)], in_secs(3600)))
            .await?,
        "create returned false"
    );
    let loaded = load_data(ctx.store(), &key).await?.unwrap_or_default();
    ensure!(
        loaded.get("big") == Some(&big),
        "the 1 MiB value came back different"
    );
    let mut reversed = big.clone();
    reversed.reverse();
    ensure!(
        ctx.store
            .update(&key, &changes(&[("big", &reversed)], &[], in_secs(3600)))
            .await?,
        "update returned false"
    );
    let loaded = load_data(ctx.store(), &key).await?.unwrap_or_default();
    ensure!(
        loaded.get("big") == Some(&reversed),
        "the updated 1 MiB value came back different"
    );
    Ok(())
}

/// `create` on a key holding a live record returns `false` and leaves the record alone.
pub async fn create_does_not_overwrite_live_record(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("owner", b"first")]).await?;
    let second = ctx
        .store
        .create(&key, &record(&[("owner", b"second")], in_secs(7200)))
        .await?;
    ensure!(!second, "create over a live record returned true");
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(data(&[("owner", b"first")])),
        "data"
    );
    Ok(())
}

/// `create` on a key whose record has expired replaces it (an expired record is absent).
pub async fn create_replaces_expired_record(ctx: &Ctx) -> CaseResult {
    let key = key()?;
    ctx.store
        .create(&key, &record(&[("old", b"1")], in_millis(200)))
        .await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let created = ctx
        .store
        .create(&key, &record(&[("new", b"2")], in_secs(3600)))
        .await?;
    ensure!(created, "create over an expired record returned false");
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(data(&[("new", b"2")])),
        "data"
    );
    Ok(())
}

/// Of 16 concurrent `create`s of one key, exactly one succeeds and its data is stored.
pub async fn concurrent_creates_of_one_key_admit_one(ctx: &Ctx) -> CaseResult {
    let key = key()?;
    let mut set = JoinSet::new();
    for i in 0..16u8 {
        let store = Arc::clone(&ctx.store);
        let key = key.clone();
        set.spawn(async move {
            let won = store
                .create(&key, &record(&[("writer", &[i])], in_secs(3600)))
                .await?;
            Ok((i, won))
        });
    }
    let results = join_all(set).await?;
    let winners: Vec<u8> = results
        .iter()
        .filter(|(_, won)| *won)
        .map(|(i, _)| *i)
        .collect();
    ensure_eq!(winners.len(), 1, "creates that returned true");
    let stored = load_data(ctx.store(), &key).await?;
    ensure_eq!(
        stored,
        Some(data(&[("writer", &[winners[0]])])),
        "the winner's data"
    );
    Ok(())
}

/// A record is not returned once its expiry has passed, although gc has not run.
pub async fn expired_record_is_not_returned_without_gc(ctx: &Ctx) -> CaseResult {
    let key = key()?;
    ctx.store
        .create(&key, &record(&[("a", b"1")], in_millis(300)))
        .await?;
    ensure!(
        ctx.store.load(&key).await?.is_some(),
        "a record not yet expired was not returned"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(
        ctx.store.load(&key).await?.is_none(),
        "an expired record was returned"
    );
    Ok(())
}

/// A record created with an expiry in the past is absent at once.
pub async fn record_created_already_expired_is_absent(ctx: &Ctx) -> CaseResult {
    let key = key()?;
    ctx.store
        .create(&key, &record(&[("a", b"1")], ago_secs(10)))
        .await?;
    ensure!(
        ctx.store.load(&key).await?.is_none(),
        "a record created expired was returned"
    );
    Ok(())
}

/// `update` writes the keys it sets and removes the keys it removes.
pub async fn update_sets_and_removes_keys(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("a", b"1"), ("b", b"2")]).await?;
    let applied = ctx
        .store
        .update(
            &key,
            &changes(&[("a", b"10"), ("c", b"3")], &["b"], in_secs(3600)),
        )
        .await?;
    ensure!(applied, "update of a live record returned false");
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(data(&[("a", b"10"), ("c", b"3")])),
        "data after update"
    );
    Ok(())
}

/// A change set with `cleared` drops every stored key before setting its own.
pub async fn update_clear_then_set(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("a", b"1"), ("b", b"2")]).await?;
    let mut clear = changes(&[("c", b"3")], &[], in_secs(3600));
    clear.cleared = true;
    ensure!(
        ctx.store.update(&key, &clear).await?,
        "update returned false"
    );
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(data(&[("c", b"3")])),
        "data after clear"
    );
    Ok(())
}

/// Keys a change set does not name keep the store's values, including values written by
/// another request after this one loaded.
pub async fn update_keeps_keys_it_does_not_name(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("a", b"1")]).await?;
    ctx.store
        .update(&key, &changes(&[("b", b"2")], &[], in_secs(3600)))
        .await?;
    ctx.store
        .update(&key, &changes(&[("c", b"3")], &[], in_secs(3600)))
        .await?;
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(data(&[("a", b"1"), ("b", b"2"), ("c", b"3")])),
        "data after two partial updates"
    );
    Ok(())
}

/// `update` sets the record's expiry to the change set's, to the millisecond.
pub async fn update_sets_new_expiry(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("a", b"1")]).await?;
    let expires_at = Timestamp::from_millis(in_secs(7200).as_millis() + 7);
    ctx.store
        .update(&key, &changes(&[("b", b"2")], &[], expires_at))
        .await?;
    let loaded = ctx.store.load(&key).await?.map(|r| r.expires_at);
    ensure_eq!(loaded, Some(expires_at), "expiry after update");
    Ok(())
}

/// `update` of a key never created returns `false` and creates nothing.
pub async fn update_of_unknown_key_creates_nothing(ctx: &Ctx) -> CaseResult {
    let key = key()?;
    let applied = ctx
        .store
        .update(&key, &changes(&[("a", b"1")], &[], in_secs(3600)))
        .await?;
    ensure!(!applied, "update of an unknown key returned true");
    ensure!(
        ctx.store.load(&key).await?.is_none(),
        "update of an unknown key created a record"
    );
    Ok(())
}

/// A change set for a session deleted meanwhile (a logout racing a slow request) does not
/// bring it back.
pub async fn update_after_delete_does_not_resurrect(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("user", b"ada")]).await?;
    ensure!(
        ctx.store.delete(&key).await?,
        "delete of a live record returned false"
    );
    let applied = ctx
        .store
        .update(&key, &changes(&[("cart", b"1")], &[], in_secs(3600)))
        .await?;
    ensure!(!applied, "update after delete returned true");
    ensure!(
        ctx.store.load(&key).await?.is_none(),
        "update after delete resurrected the session"
    );
    Ok(())
}

/// A change set for an expired session does not revive it.
pub async fn update_after_expiry_does_not_resurrect(ctx: &Ctx) -> CaseResult {
    let key = key()?;
    ctx.store
        .create(&key, &record(&[("user", b"ada")], in_millis(200)))
        .await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let applied = ctx
        .store
        .update(&key, &changes(&[("cart", b"1")], &[], in_secs(3600)))
        .await?;
    ensure!(!applied, "update of an expired record returned true");
    ensure!(
        ctx.store.load(&key).await?.is_none(),
        "update revived an expired session"
    );
    Ok(())
}

/// The revision `load` reports for `key`; a skip for stores that keep none.
async fn loaded_revision(ctx: &Ctx, key: &StoreKey) -> Result<Revision, CaseError> {
    let record = ctx
        .store
        .load(key)
        .await?
        .ok_or_else(|| CaseError::Fail("a live record did not load".into()))?;
    record.revision.ok_or_else(|| {
        CaseError::Skip("the store reports no revisions (update_if_unchanged unused)".into())
    })
}

/// `update_if_unchanged` with the revision `load` gave writes the whole record (keys it
/// lacks are gone, its expiry is set) and returns a new revision, which `load` reports
/// from then on and which a second conditional write accepts.
pub async fn update_if_unchanged_writes_the_loaded_record(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("a", b"1"), ("b", b"2")]).await?;
    let loaded = loaded_revision(ctx, &key).await?;
    let expires_at = Timestamp::from_millis(in_secs(7200).as_millis() + 5);
    let written = ctx
        .store
        .update_if_unchanged(
            &key,
            loaded,
            &record(&[("a", b"9"), ("c", b"3")], expires_at),
        )
        .await?
        .ok_or_else(|| CaseError::Fail("the unchanged record was not written".into()))?;
    ensure!(written != loaded, "the write kept the revision {loaded:?}");
    let now = ctx
        .store
        .load(&key)
        .await?
        .ok_or_else(|| CaseError::Fail("the record is gone after the write".into()))?;
    ensure_eq!(
        now.data,
        data(&[("a", b"9"), ("c", b"3")]),
        "data after the write"
    );
    ensure_eq!(now.expires_at, expires_at, "expiry after the write");
    ensure_eq!(
        now.revision,
        Some(written),
        "revision load reports after the write"
    );
    let again = ctx
        .store
        .update_if_unchanged(&key, written, &record(&[("a", b"10")], expires_at))
        .await?;
    ensure!(again.is_some(), "the returned revision was refused");
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(data(&[("a", b"10")])),
        "data after the second write"
    );
    Ok(())
}

/// After any other write (an update, a touch, another conditional write) the old revision
/// is refused and the record is left as the other write made it.
pub async fn update_if_unchanged_refuses_a_changed_record(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("user", b"ada")]).await?;
    let stale = loaded_revision(ctx, &key).await?;
    ensure!(
        ctx.store
            .update(&key, &changes(&[("cart", b"1")], &[], in_secs(3600)))
            .await?,
        "update of a live record returned false"
    );
    let written = ctx
        .store
        .update_if_unchanged(&key, stale, &record(&[("user", b"eve")], in_secs(3600)))
        .await?;
    ensure!(
        written.is_none(),
        "a revision from before an update was accepted"
    );
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(data(&[("user", b"ada"), ("cart", b"1")])),
        "data after a refused write"
    );

    let stale = loaded_revision(ctx, &key).await?;
    ensure!(
        ctx.store.touch(&key, in_secs(7200)).await?,
        "touch of a live record returned false"
    );
    let written = ctx
        .store
        .update_if_unchanged(&key, stale, &record(&[("user", b"eve")], in_secs(60)))
        .await?;
    ensure!(
        written.is_none(),
        "a revision from before a touch was accepted"
    );

    // Two requests that loaded the same revision: exactly one conditional write wins.
    let loaded = loaded_revision(ctx, &key).await?;
    let first = ctx
        .store
        .update_if_unchanged(&key, loaded, &record(&[("n", b"1")], in_secs(3600)))
        .await?;
    let second = ctx
        .store
        .update_if_unchanged(&key, loaded, &record(&[("n", b"2")], in_secs(3600)))
        .await?;
    ensure!(
        first.is_some() && second.is_none(),
        "two writes from one revision: first {first:?}, second {second:?}"
    );
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(data(&[("n", b"1")])),
        "data after two writes from one revision"
    );
    Ok(())
}

/// A conditional write for a record deleted or expired since it was loaded writes nothing:
/// no resurrection through the fast path either.
pub async fn update_if_unchanged_never_resurrects(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("user", b"ada")]).await?;
    let loaded = loaded_revision(ctx, &key).await?;
    ensure!(
        ctx.store.delete(&key).await?,
        "delete of a live record returned false"
    );
    let written = ctx
        .store
        .update_if_unchanged(&key, loaded, &record(&[("user", b"ada")], in_secs(3600)))
        .await?;
    ensure!(written.is_none(), "a deleted record was written");
    ensure!(
        ctx.store.load(&key).await?.is_none(),
        "a conditional write resurrected a deleted session"
    );

    let key = self::key()?;
    ctx.store
        .create(&key, &record(&[("user", b"ada")], in_millis(300)))
        .await?;
    let loaded = loaded_revision(ctx, &key).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let written = ctx
        .store
        .update_if_unchanged(&key, loaded, &record(&[("user", b"ada")], in_secs(3600)))
        .await?;
    ensure!(written.is_none(), "an expired record was written");
    ensure!(
        ctx.store.load(&key).await?.is_none(),
        "a conditional write revived an expired session"
    );
    Ok(())
}

/// `touch` moves the expiry and leaves the data as it was.
pub async fn touch_extends_expiry_without_changing_data(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("a", b"1"), ("b", b"2")]).await?;
    let later = Timestamp::from_millis(in_secs(10_000).as_millis() + 3);
    ensure!(
        ctx.store.touch(&key, later).await?,
        "touch of a live record returned false"
    );
    let loaded = ctx.store.load(&key).await?;
    ensure_eq!(
        loaded.as_ref().map(|r| r.expires_at),
        Some(later),
        "expiry after touch"
    );
    ensure_eq!(
        loaded.map(|r| r.data),
        Some(data(&[("a", b"1"), ("b", b"2")])),
        "data after touch"
    );
    Ok(())
}

/// `touch` of an unknown key returns `false` and creates nothing.
pub async fn touch_of_unknown_key_is_false(ctx: &Ctx) -> CaseResult {
    let key = key()?;
    ensure!(
        !ctx.store.touch(&key, in_secs(3600)).await?,
        "touch of an unknown key returned true"
    );
    ensure!(
        ctx.store.load(&key).await?.is_none(),
        "touch created a record"
    );
    Ok(())
}

/// `touch` of an expired record does not revive it.
pub async fn touch_does_not_revive_expired_record(ctx: &Ctx) -> CaseResult {
    let key = key()?;
    ctx.store
        .create(&key, &record(&[("a", b"1")], in_millis(200)))
        .await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    ensure!(
        !ctx.store.touch(&key, in_secs(3600)).await?,
        "touch of an expired record returned true"
    );
    ensure!(
        ctx.store.load(&key).await?.is_none(),
        "touch revived an expired record"
    );
    Ok(())
}

/// `delete` removes a live record and says so.
pub async fn delete_removes_record(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("a", b"1")]).await?;
    let other = create_live(ctx, &[("b", b"2")]).await?;
    ensure!(
        ctx.store.delete(&key).await?,
        "delete of a live record returned false"
    );
    ensure!(
        ctx.store.load(&key).await?.is_none(),
        "the deleted record is still there"
    );
    ensure!(
        ctx.store.load(&other).await?.is_some(),
        "delete removed another record"
    );
    Ok(())
}

/// `delete` of an unknown key is not an error and returns `false`.
pub async fn delete_of_unknown_key_is_false(ctx: &Ctx) -> CaseResult {
    ensure!(
        !ctx.store.delete(&key()?).await?,
        "delete of an unknown key returned true"
    );
    Ok(())
}

/// After `delete`, `create` on the same key starts from nothing.
pub async fn create_after_delete_starts_fresh(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("a", b"1")]).await?;
    ctx.store.delete(&key).await?;
    ensure!(
        ctx.store
            .create(&key, &record(&[("b", b"2")], in_secs(3600)))
            .await?,
        "create after delete returned false"
    );
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(data(&[("b", b"2")])),
        "data"
    );
    Ok(())
}

/// After their expiry, records are gone (removed by `gc`, or by the backend's own TTL),
/// and live records survive `gc`.
pub async fn gc_removes_expired_and_keeps_live(ctx: &Ctx) -> CaseResult {
    let mut expired = Vec::new();
    let mut live = Vec::new();
    for i in 0..5u8 {
        let k = key()?;
        ctx.store
            .create(&k, &record(&[("i", &[i])], in_millis(200)))
            .await?;
        expired.push(k);
        live.push(create_live(ctx, &[("i", &[i])]).await?);
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    ctx.store.gc().await?;
    for k in &expired {
        ensure!(
            ctx.store.load(k).await?.is_none(),
            "an expired record survived gc"
        );
    }
    for (i, k) in live.iter().enumerate() {
        let loaded = load_data(ctx.store(), k).await?;
        ensure_eq!(
            loaded,
            Some(data(&[("i", &[i as u8])])),
            "a live record after gc"
        );
    }
    Ok(())
}

/// `gc` returns exactly how many expired records it removed, and 0 when run again.
/// Skipped for stores with native TTL, whose gc may legitimately report 0.
pub async fn gc_reports_exact_count(ctx: &Ctx) -> CaseResult {
    if ctx.store.capabilities().native_ttl {
        return Err(CaseError::Skip(
            "native TTL: the backend expires records, gc may report 0".into(),
        ));
    }
    for _ in 0..7 {
        ctx.store
            .create(&key()?, &record(&[("a", b"1")], in_millis(100)))
            .await?;
    }
    for _ in 0..3 {
        create_live(ctx, &[("a", b"1")]).await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure_eq!(ctx.store.gc().await?, 7, "gc count");
    ensure_eq!(ctx.store.gc().await?, 0, "second gc count");
    Ok(())
}

/// 200 concurrent change sets, each setting a different key of one session, all survive.
pub async fn concurrent_change_sets_to_distinct_keys_lose_nothing(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("base", b"0")]).await?;
    let mut set = JoinSet::new();
    for i in 0..200u32 {
        let store = Arc::clone(&ctx.store);
        let key = key.clone();
        set.spawn(async move {
            let name = format!("key{i}");
            let applied = store
                .update(
                    &key,
                    &changes(&[(&name, &i.to_le_bytes())], &[], in_secs(3600)),
                )
                .await?;
            ensure!(applied, "a concurrent update returned false");
            Ok(())
        });
    }
    join_all(set).await?;
    let stored = load_data(ctx.store(), &key).await?.unwrap_or_default();
    let mut expected: Data = (0..200u32)
        .map(|i| (format!("key{i}"), i.to_le_bytes().to_vec()))
        .collect();
    expected.insert("base".into(), b"0".to_vec());
    let lost: Vec<&String> = expected
        .keys()
        .filter(|k| stored.get(*k) != expected.get(*k))
        .collect();
    ensure!(
        lost.is_empty(),
        "{} of 201 keys lost or wrong after concurrent updates",
        lost.len()
    );
    ensure_eq!(stored.len(), expected.len(), "number of keys");
    Ok(())
}

/// 50 concurrent change sets to the same key leave exactly one of the written values, and
/// the other keys intact.
pub async fn concurrent_writes_to_one_key_leave_one_written_value(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("other", b"keep")]).await?;
    let mut set = JoinSet::new();
    for i in 0..50u32 {
        let store = Arc::clone(&ctx.store);
        let key = key.clone();
        set.spawn(async move {
            store
                .update(
                    &key,
                    &changes(&[("same", &i.to_le_bytes())], &[], in_secs(3600)),
                )
                .await?;
            Ok(())
        });
    }
    join_all(set).await?;
    let stored = load_data(ctx.store(), &key).await?.unwrap_or_default();
    ensure_eq!(
        stored.get("other").map(Vec::as_slice),
        Some(&b"keep"[..]),
        "untouched key"
    );
    let written: HashSet<Vec<u8>> = (0..50u32).map(|i| i.to_le_bytes().to_vec()).collect();
    ensure!(
        stored.get("same").is_some_and(|v| written.contains(v)),
        "the contested key holds {:?}, which no writer wrote",
        stored.get("same")
    );
    Ok(())
}

/// 10,000 sessions written concurrently each read back their own data.
pub async fn ten_thousand_sessions_without_cross_talk(ctx: &Ctx) -> CaseResult {
    const SESSIONS: u32 = 10_000;
    const WORKERS: u32 = 32;
    let mut set = JoinSet::new();
    for worker in 0..WORKERS {
        let store = Arc::clone(&ctx.store);
        set.spawn(async move {
            let mut mine = Vec::new();
            for i in (worker..SESSIONS).step_by(WORKERS as usize) {
                let k = key()?;
                let created = store
                    .create(&k, &record(&[("n", &i.to_le_bytes())], in_secs(3600)))
                    .await?;
                ensure!(created, "create of a fresh key returned false");
                mine.push((k, i));
            }
            for (k, i) in &mine {
                let loaded = store.load(k).await?.map(|r| r.data);
                ensure_eq!(
                    loaded,
                    Some(data(&[("n", &i.to_le_bytes())])),
                    "session {i}"
                );
            }
            Ok(mine.len())
        });
    }
    let counts = join_all(set).await?;
    ensure_eq!(
        counts.iter().sum::<usize>(),
        SESSIONS as usize,
        "sessions checked"
    );
    Ok(())
}

/// Two store instances on the same backend (as two processes would open it) see each
/// other's creates, updates and deletes. Needs the `shared` capability and a second handle.
pub async fn shared_handles_see_each_other(ctx: &Ctx) -> CaseResult {
    if !ctx.store.capabilities().shared {
        return Err(CaseError::Skip(
            "not shared: the store lives in one process".into(),
        ));
    }
    let Some(second) = ctx.second.as_ref() else {
        return Err(CaseError::Skip(
            "the fixture offers no second handle on the same namespace".into(),
        ));
    };
    let key = create_live(ctx, &[("a", b"1")]).await?;
    ensure_eq!(
        load_data(second.as_ref(), &key).await?,
        Some(data(&[("a", b"1")])),
        "seen by the second handle"
    );
    ensure!(
        second
            .update(&key, &changes(&[("b", b"2")], &[], in_secs(3600)))
            .await?,
        "update through the second handle"
    );
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(data(&[("a", b"1"), ("b", b"2")])),
        "the second handle's update seen by the first"
    );
    ensure!(
        ctx.store.delete(&key).await?,
        "delete through the first handle"
    );
    ensure!(
        second.load(&key).await?.is_none(),
        "the second handle still sees a deleted record"
    );
    Ok(())
}

/// Against a backend that is down, every method returns an error (no panic, no hang, no
/// pretend success). Needs the fixture's unreachable store.
pub async fn unreachable_backend_returns_errors(ctx: &Ctx) -> CaseResult {
    let Some(down) = ctx.unreachable.as_ref() else {
        return Err(CaseError::Skip(
            "the fixture offers no unreachable backend (an in-process store has none)".into(),
        ));
    };
    let key = key()?;
    let limit = Duration::from_secs(30);
    macro_rules! must_fail {
        ($name:literal, $call:expr) => {
            match tokio::time::timeout(limit, $call).await {
                Err(_) => return Err(CaseError::Fail(format!("{} hung past {limit:?}", $name))),
                Ok(Ok(value)) => {
                    return Err(CaseError::Fail(format!(
                        "{} succeeded ({value:?}) against a down backend",
                        $name
                    )))
                }
                Ok(Err(_)) => {}
            }
        };
    }
    must_fail!("load", down.load(&key));
    must_fail!(
        "create",
        down.create(&key, &record(&[("a", b"1")], in_secs(60)))
    );
    must_fail!(
        "update",
        down.update(&key, &changes(&[("a", b"1")], &[], in_secs(60)))
    );
    must_fail!("touch", down.touch(&key, in_secs(60)));
    must_fail!("delete", down.delete(&key));
    Ok(())
}

// ----------------------------------------------------------------------------------------
// Session-level cases

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
    roles: Vec<String>,
    address: Option<Address>,
    scores: BTreeMap<String, i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Address {
    city: String,
    zip: u32,
}

/// Typed values (strings, extreme numbers, nested structs, options, maps, unicode) written
/// through a session come back equal in the next request.
pub async fn session_round_trips_typed_values(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let profile = Profile {
        id: u64::MAX,
        name: "Zoë Ærø 🦀".into(),
        roles: vec!["admin".into(), "".into()],
        address: Some(Address {
            city: "Zürich".into(),
            zip: 8001,
        }),
        scores: BTreeMap::from([("a.b".into(), -1), ("$x".into(), i32::MIN)]),
    };
    let session = app.request(None);
    session.set("userInfo", &profile).await?;
    session.set("i64", &i64::MIN).await?;
    session.set("f64", &-1.5e300f64).await?;
    session.set("text", "ünïcödé ✓").await?;
    session.set("none", &Option::<u8>::None).await?;
    session.set("a.b$c/d e", &true).await?;
    session.set("list", &vec![1u8, 2, 3]).await?;
    let cookie = session
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no cookie".into()))?;
    let next = app.request(Some(&cookie_header(&cookie)));
    ensure_eq!(
        next.get::<Profile>("userInfo").await?,
        Some(profile),
        "struct"
    );
    ensure_eq!(next.get::<i64>("i64").await?, Some(i64::MIN), "i64");
    ensure_eq!(next.get::<f64>("f64").await?, Some(-1.5e300), "f64");
    ensure_eq!(
        next.get::<String>("text").await?,
        Some("ünïcödé ✓".to_owned()),
        "string"
    );
    ensure_eq!(next.get::<Option<u8>>("none").await?, Some(None), "option");
    ensure_eq!(
        next.get::<bool>("a.b$c/d e").await?,
        Some(true),
        "special key"
    );
    ensure_eq!(
        next.get::<Vec<u8>>("list").await?,
        Some(vec![1, 2, 3]),
        "list"
    );
    ensure_eq!(next.get::<String>("missing").await?, None, "missing key");
    Ok(())
}

/// A new session that ends the request empty is not stored and gets no cookie.
pub async fn session_new_empty_session_is_not_stored(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let session = app.request(None);
    ensure_eq!(
        session.get::<String>("user").await?,
        None,
        "value in a new session"
    );
    session.set("temp", &1).await?;
    session.remove("temp").await?;
    ensure!(
        session.flush().await?.is_none(),
        "an empty new session got a cookie"
    );
    ensure_eq!(
        app.counter.counts().writes(),
        0,
        "store writes for an empty new session"
    );
    Ok(())
}

/// A well-formed id the store does not know is never adopted: the data goes to a fresh id.
pub async fn session_unknown_id_is_not_adopted(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let planted = SessionId::generate(32)?;
    let header = format!("thinkjs={}", planted.expose());
    let session = app.request(Some(&header));
    ensure!(
        !session.exists().await?,
        "an unknown id was reported as an existing session"
    );
    session.set("user", "mallory's victim").await?;
    let cookie = session
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no cookie".into()))?;
    ensure!(
        cookie.value() != planted.expose(),
        "the planted id was adopted"
    );
    ensure!(
        ctx.store.load(&planted.store_key()).await?.is_none(),
        "a record was created under the planted id"
    );
    Ok(())
}

/// With a secret set, a cookie with a bad, missing or foreign signature is a new session
/// and causes no store access at all.
pub async fn session_tampered_cookie_never_reaches_store(ctx: &Ctx) -> CaseResult {
    let app = App::new(ctx, r#"{"secret": "conformance secret"}"#)?;
    let other = App::new(ctx, r#"{"secret": "another secret"}"#)?;
    let good = app.login(&[("user", "ada")]).await?;
    let (name, value) = good.split_once('=').unwrap_or_default();
    let (id, _signature) = value.split_once('.').unwrap_or_default();
    let foreign = other.login(&[("user", "eve")]).await?;
    let loads_before = app.counter.counts().loads;
    let tampered = [
        format!("{name}={id}"),
        format!("{name}={id}."),
        format!("{name}={}", &value[..value.len() - 1]),
        format!("{name}={value}A"),
        format!(
            "{name}={}{id}{}",
            if id.starts_with('A') { "B" } else { "A" },
            &value[id.len()..]
        ),
        format!("{name}={}{}", &id[..id.len() - 1], &value[id.len()..]),
        foreign.clone(),
        format!("{name}={}", "A".repeat(64 * 1024)),
        format!("{name}=%FF%FE{value}"),
        format!("{name}=../../etc/passwd"),
    ];
    for header in &tampered {
        if header == &good {
            continue;
        }
        let session = app.request(Some(header));
        ensure_eq!(
            session.get::<String>("user").await?,
            None,
            "user behind a tampered cookie"
        );
    }
    ensure_eq!(
        app.counter.counts().loads,
        loads_before,
        "store loads caused by tampered cookies"
    );
    let genuine = app.request(Some(&good));
    ensure_eq!(
        genuine.get::<String>("user").await?,
        Some("ada".to_owned()),
        "the genuine cookie"
    );
    Ok(())
}

/// A request that only reads costs one load and no write, and sends no cookie.
pub async fn session_read_only_request_does_not_write(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let header = app.login(&[("user", "ada")]).await?;
    let before = app.counter.counts();
    let session = app.request(Some(&header));
    ensure_eq!(
        session.get::<String>("user").await?,
        Some("ada".to_owned()),
        "value"
    );
    ensure_eq!(
        session.get::<String>("user").await?,
        Some("ada".to_owned()),
        "value again"
    );
    ensure!(session.contains_key("user").await?, "contains_key");
    ensure!(
        session.flush().await?.is_none(),
        "a read-only request got a cookie"
    );
    let after = app.counter.counts();
    ensure_eq!(
        after.loads - before.loads,
        1,
        "loads in a read-only request"
    );
    ensure_eq!(
        after.writes() - before.writes(),
        0,
        "writes in a read-only request"
    );
    Ok(())
}

/// With a rolling timeout, a read-only request refreshes the expiry (one `touch` and a
/// fresh cookie) only once the last refresh is `touch_after` old.
pub async fn session_rolling_expiry_refreshes_after_threshold(ctx: &Ctx) -> CaseResult {
    let app = App::new(ctx, r#"{"timeout": 3600, "touch_after": 60}"#)?;
    let header = app.login(&[("user", "ada")]).await?;
    let key = key_of(&header)?;
    let session = app.request(Some(&header));
    session.get::<String>("user").await?;
    ensure!(
        session.flush().await?.is_none(),
        "a fresh session was refreshed at once"
    );
    ensure_eq!(
        app.counter.counts().touches,
        0,
        "touches before the threshold"
    );

    // Pretend two minutes have passed since the last refresh.
    ensure!(
        ctx.store.touch(&key, in_secs(3600 - 120)).await?,
        "moving the expiry back"
    );
    let session = app.request(Some(&header));
    session.get::<String>("user").await?;
    let cookie = session
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no refreshed cookie".into()))?;
    ensure_eq!(
        app.counter.counts().touches,
        1,
        "touches after the threshold"
    );
    let max_age = cookie
        .max_age()
        .map(|d| d.whole_seconds())
        .unwrap_or_default();
    ensure!(
        (3590..=3600).contains(&max_age),
        "refreshed cookie Max-Age {max_age}, expected ~3600"
    );
    let expires_at = ctx
        .store
        .load(&key)
        .await?
        .map(|r| r.expires_at)
        .unwrap_or_default();
    ensure!(
        within(expires_at, in_secs(3600), Duration::from_secs(10)),
        "store expiry not refreshed"
    );
    Ok(())
}

/// `set_with_timeout` (ThinkJS `session(name, value, timeout)`) sets the session's expiry
/// and the cookie's lifetime to that timeout.
pub async fn session_per_call_timeout_sets_expiry(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let session = app.request(None);
    session
        .set_with_timeout("remember", &true, Duration::from_secs(120))
        .await?;
    let cookie = session
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no cookie".into()))?;
    let max_age = cookie
        .max_age()
        .map(|d| d.whole_seconds())
        .unwrap_or_default();
    ensure!(
        (110..=120).contains(&max_age),
        "cookie Max-Age {max_age}, expected ~120"
    );
    // `Expires` says the same as `Max-Age`, for clients that know only the former.
    let expires = cookie
        .expires_datetime()
        .map(|at| at.unix_timestamp())
        .unwrap_or_default();
    let latest = Timestamp::now().as_millis() / 1000 + max_age;
    ensure!(
        (latest - 2..=latest).contains(&expires),
        "cookie Expires {expires} (Unix seconds), expected now + Max-Age, {latest}"
    );
    let key = key_of(&cookie_header(&cookie))?;
    let expires_at = ctx
        .store
        .load(&key)
        .await?
        .map(|r| r.expires_at)
        .unwrap_or_default();
    ensure!(
        within(expires_at, in_secs(120), Duration::from_secs(10)),
        "store expiry {expires_at}, expected ~120 s ahead"
    );
    Ok(())
}

/// A session older than `absolute_timeout` is gone, however active it has been.
pub async fn session_absolute_timeout_is_enforced(ctx: &Ctx) -> CaseResult {
    let app = App::new(ctx, r#"{"absolute_timeout": 3600}"#)?;
    let header = app.login(&[("user", "ada")]).await?;
    let key = key_of(&header)?;
    let mut stored = ctx
        .store
        .load(&key)
        .await?
        .ok_or_else(|| CaseError::Fail("session not stored".into()))?;
    ensure!(
        stored.expires_at <= stored.created_at + Duration::from_secs(3600),
        "expiry beyond the absolute lifetime"
    );
    // Pretend the session was created two hours ago and kept alive since.
    stored.created_at = ago_secs(7200);
    stored.expires_at = in_secs(3600);
    ctx.store.delete(&key).await?;
    ctx.store.create(&key, &stored).await?;
    let session = app.request(Some(&header));
    ensure_eq!(
        session.get::<String>("user").await?,
        None,
        "user in a session past its lifetime"
    );
    Ok(())
}

/// `clear()` deletes the record and expires the cookie; replaying the old cookie finds
/// nothing.
pub async fn session_clear_deletes_and_expires_cookie(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let header = app.login(&[("user", "ada")]).await?;
    let session = app.request(Some(&header));
    session.clear().await;
    let removal = session
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no removal cookie".into()))?;
    ensure_eq!(removal.value(), "", "removal cookie value");
    ensure_eq!(
        removal.max_age().map(|d| d.whole_seconds()),
        Some(0),
        "removal cookie Max-Age"
    );
    ensure!(
        ctx.store.load(&key_of(&header)?).await?.is_none(),
        "the record survived clear()"
    );
    let replay = app.request(Some(&header));
    ensure_eq!(
        replay.get::<String>("user").await?,
        None,
        "user behind a replayed cookie"
    );
    ensure!(
        replay.flush().await?.is_none(),
        "a replayed cookie started a session"
    );
    Ok(())
}

/// After `clear()`, setting values starts a new session under a new id; the old id stays
/// dead.
pub async fn session_clear_then_set_starts_new_session(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let header = app.login(&[("user", "ada"), ("role", "admin")]).await?;
    let session = app.request(Some(&header));
    session.clear().await;
    session.set("flash", "bye").await?;
    let cookie = session
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no cookie".into()))?;
    let fresh = cookie_header(&cookie);
    ensure!(fresh != header, "clear then set kept the old id");
    ensure!(
        ctx.store.load(&key_of(&header)?).await?.is_none(),
        "the old record survived"
    );
    let next = app.request(Some(&fresh));
    ensure_eq!(
        next.keys().await?,
        vec!["flash".to_owned()],
        "keys of the new session"
    );
    Ok(())
}

/// `cycle_id()` moves the data to a new id; the old id opens nothing.
pub async fn session_cycle_id_moves_data_to_new_id(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let header = app.login(&[("cart", "3 items")]).await?;
    let session = app.request(Some(&header));
    session.set("user", "ada").await?;
    session.cycle_id().await?;
    let cookie = session
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no cookie after cycle_id".into()))?;
    let cycled = cookie_header(&cookie);
    ensure!(cycled != header, "cycle_id kept the id");
    let old = app.request(Some(&header));
    ensure_eq!(
        old.get::<String>("cart").await?,
        None,
        "data behind the old id"
    );
    let new = app.request(Some(&cycled));
    ensure_eq!(
        new.get::<String>("cart").await?,
        Some("3 items".to_owned()),
        "cart behind the new id"
    );
    ensure_eq!(
        new.get::<String>("user").await?,
        Some("ada".to_owned()),
        "user behind the new id"
    );
    Ok(())
}

/// Polls `future` once and drops it if it is still waiting, as a server drops a request
/// whose client went away. Whether it had completed.
async fn poll_once<F: Future>(future: F) -> bool {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| std::task::Poll::Ready(future.as_mut().poll(cx).is_ready())).await
}

/// A flush dropped at its first wait (the client went away mid-request) leaves the session
/// holding all of its data, and the next flush stores it: for a new session and for a
/// stored one. (A store that answers within one poll has nothing to cancel; the case then
/// checks the same outcome and notes it.)
pub async fn session_cancelled_flush_keeps_its_data(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let fresh = app.request(None);
    fresh.set("user", "ada").await?;
    let mut cancelled = 0;
    if !poll_once(fresh.flush()).await {
        cancelled += 1;
    }
    ensure_eq!(
        fresh.get::<String>("user").await?,
        Some("ada".to_owned()),
        "a new session's data after a cancelled flush"
    );
    let cookie = fresh
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no cookie after the second flush".into()))?;
    let header = cookie_header(&cookie);

    let stored = app.request(Some(&header));
    stored.set("cart", "3 items").await?;
    if !poll_once(stored.flush()).await {
        cancelled += 1;
    }
    for (key, value) in [("user", "ada"), ("cart", "3 items")] {
        ensure_eq!(
            stored.get::<String>(key).await?,
            Some(value.to_owned()),
            "{key} of a stored session after a cancelled flush"
        );
    }
    stored.flush().await?;
    let later = app.request(Some(&header));
    for (key, value) in [("user", "ada"), ("cart", "3 items")] {
        ensure_eq!(
            later.get::<String>(key).await?,
            Some(value.to_owned()),
            "{key} in the store after the next flush"
        );
    }
    ctx.note(format!("{cancelled} of 2 flushes cancelled mid-call"));
    Ok(())
}

/// A slow request that loaded before a logout and writes after it does not bring the
/// session back.
pub async fn session_logout_racing_slow_request_does_not_resurrect(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let header = app.login(&[("user", "ada")]).await?;
    let slow = app.request(Some(&header));
    ensure_eq!(
        slow.get::<String>("user").await?,
        Some("ada".to_owned()),
        "user before logout"
    );
    let logout = app.request(Some(&header));
    logout.clear().await;
    logout.flush().await?;
    slow.set("cart", "1 item").await?;
    let cookie = slow.flush().await?;
    ensure!(
        cookie.is_none(),
        "the slow request issued a cookie for a deleted session"
    );
    ensure!(
        ctx.store.load(&key_of(&header)?).await?.is_none(),
        "the session was resurrected"
    );
    let replay = app.request(Some(&header));
    ensure!(
        !replay.exists().await?,
        "the old cookie opens a session after logout"
    );
    Ok(())
}

/// `cycle_id()` in a request that races a logout neither fails nor brings the session
/// back under a new id.
pub async fn session_cycle_id_racing_delete_does_not_resurrect(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let header = app.login(&[("user", "ada")]).await?;
    let login = app.request(Some(&header));
    login.cycle_id().await?;
    let logout = app.request(Some(&header));
    logout.clear().await;
    logout.flush().await?;
    let cookie = login.flush().await?;
    if let Some(cookie) = cookie {
        ensure_eq!(
            cookie.value(),
            "",
            "a cycle after logout issued a live cookie"
        );
    }
    ensure!(
        ctx.store.load(&key_of(&header)?).await?.is_none(),
        "the old id loads a session"
    );
    Ok(())
}

/// 50 concurrent requests on one session, each setting its own key, all survive.
pub async fn session_concurrent_requests_merge_distinct_keys(ctx: &Ctx) -> CaseResult {
    let app = Arc::new(App::plain(ctx)?);
    let header = app.login(&[("user", "ada")]).await?;
    let mut set = JoinSet::new();
    for i in 0..50u32 {
        let app = Arc::clone(&app);
        let header = header.clone();
        set.spawn(async move {
            let session = app.request(Some(&header));
            session.set(&format!("k{i}"), &i).await?;
            session.flush().await?;
            Ok(())
        });
    }
    join_all(set).await?;
    let session = app.request(Some(&header));
    let mut missing = Vec::new();
    for i in 0..50u32 {
        if session.get::<u32>(&format!("k{i}")).await? != Some(i) {
            missing.push(i);
        }
    }
    ensure!(
        missing.is_empty(),
        "keys lost by concurrent requests: {missing:?}"
    );
    ensure_eq!(
        session.get::<String>("user").await?,
        Some("ada".to_owned()),
        "the original key"
    );
    let keys: HashMap<String, ()> = session.keys().await?.into_iter().map(|k| (k, ())).collect();
    ensure_eq!(keys.len(), 51, "number of keys");
    Ok(())
}

// ----------------------------------------------------------------------------------------
// Torture cases: hostile input and races in bulk. Quick counts in the test suite, the full
// counts with `SESSION_TORTURE=long`; each records its figures with `Ctx::note`.

/// A small deterministic generator (xorshift): reproducible mutations without a dependency.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn decoded(raw: &[u8]) -> Vec<u8> {
    percent_encoding::percent_decode(raw).collect()
}

/// Tampered cookies (bit flips, truncation, appended bytes, a foreign key, the bare id, an
/// empty signature, 64 KiB, bytes that are not UTF-8) are all "no session", and none causes
/// a store lookup. 2,000 cookies (10,000 long).
pub async fn torture_tampered_cookies_are_rejected_without_lookups(ctx: &Ctx) -> CaseResult {
    let count = trials(2_000, 10_000);
    let app = App::new(ctx, r#"{"secret": "torture secret"}"#)?;
    let foreign = App::new(ctx, r#"{"secret": "another secret"}"#)?;
    let good = app.login(&[("user", "ada")]).await?;
    let foreign_cookie = foreign.login(&[("user", "eve")]).await?;
    let (name, value) = good.split_once('=').unwrap_or_default();
    let id = value.split('.').next().unwrap_or_default().to_owned();
    let original = decoded(value.as_bytes());
    let mut rng = Mutator(0x5eed_1234_abcd_ef01);
    let loads_before = app.counter.counts().loads;
    let mut tried = 0usize;
    let mut accepted = 0usize;
    while tried < count {
        let mut bytes = value.as_bytes().to_vec();
        match tried % 8 {
            0 => {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            1 => bytes.truncate(rng.below(bytes.len())),
            2 => bytes.extend((0..1 + rng.below(8)).map(|_| b"AZaz09+/=%._-"[rng.below(13)])),
            3 => {
                bytes = foreign_cookie
                    .split_once('=')
                    .unwrap_or_default()
                    .1
                    .as_bytes()
                    .to_vec()
            }
            4 => bytes = id.as_bytes().to_vec(),
            5 => bytes = format!("{id}.").into_bytes(),
            6 => bytes = vec![b'A' + rng.below(26) as u8; 64 * 1024],
            _ => {
                let at = rng.below(bytes.len());
                bytes.insert(at, 0x80 | rng.below(0x7f) as u8);
            }
        }
        if decoded(&bytes) == original {
            // A flip inside a percent-escape's letter case decodes to the same value: that
            // is the same cookie, not a tampered one.
            continue;
        }
        tried += 1;
        let mut header = format!("{name}=").into_bytes();
        header.extend_from_slice(&bytes);
        let session = app.manager.session([header.as_slice()]);
        if session.get::<String>("user").await?.is_some() {
            accepted += 1;
        }
    }
    let lookups = app.counter.counts().loads - loads_before;
    ctx.note(format!(
        "{count} tampered cookies: {accepted} accepted, {lookups} store lookups"
    ));
    ensure_eq!(accepted, 0, "tampered cookies accepted");
    ensure_eq!(lookups, 0, "store lookups caused by tampered cookies");
    Ok(())
}

/// Well-formed ids that were never issued are never adopted, and no record is created
/// under them. 2,000 ids (10,000 long).
pub async fn torture_never_issued_ids_are_never_adopted(ctx: &Ctx) -> CaseResult {
    let count = trials(2_000, 10_000);
    let app = App::plain(ctx)?;
    let mut adopted = 0usize;
    let mut created_under_planted = 0usize;
    let mut set = JoinSet::new();
    for _ in 0..count {
        let planted = SessionId::generate(32)?;
        let manager = app.manager.clone();
        let store = Arc::clone(&ctx.store);
        set.spawn(async move {
            let session =
                manager.session_from_cookie_header(Some(&format!("thinkjs={}", planted.expose())));
            let existed = session.exists().await?;
            session.set("n", &1u8).await?;
            let cookie = session.flush().await?;
            let reused = existed
                || cookie
                    .as_ref()
                    .is_some_and(|c| c.value() == planted.expose());
            let created = store.load(&planted.store_key()).await?.is_some();
            Ok((reused, created))
        });
        if set.len() >= 64
            && let Some(done) = set.join_next().await
        {
            let (reused, created) = done.map_err(|e| CaseError::Fail(e.to_string()))??;
            adopted += usize::from(reused);
            created_under_planted += usize::from(created);
        }
    }
    for (reused, created) in join_all(set).await? {
        adopted += usize::from(reused);
        created_under_planted += usize::from(created);
    }
    ctx.note(format!("{count} never-issued ids: {adopted} adopted, {created_under_planted} records created under them"));
    ensure_eq!(adopted, 0, "planted ids adopted");
    ensure_eq!(
        created_under_planted,
        0,
        "records created under planted ids"
    );
    Ok(())
}

/// A 16 MiB value is refused with a clear `TooLarge` error before anything is written.
pub async fn torture_oversize_values_are_refused(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let session = app.request(None);
    let big = vec![7u8; 16 * 1024 * 1024];
    match session.set("blob", &big).await {
        Err(err) if err.kind() == session_core::ErrorKind::TooLarge => {}
        Err(err) => {
            return Err(CaseError::Fail(format!(
                "16 MiB value: wrong error kind: {err}"
            )));
        }
        Ok(()) => return Err(CaseError::Fail("a 16 MiB value was accepted".into())),
    }
    ensure!(
        session.flush().await?.is_none(),
        "a refused value produced a cookie"
    );
    ensure_eq!(
        app.counter.counts().writes(),
        0,
        "writes after a refused value"
    );
    ctx.note("16 MiB value: TooLarge error, 0 writes");
    Ok(())
}

/// 50 concurrent requests on one session, each setting a different key, lose nothing;
/// 10 trials (100 long).
pub async fn torture_concurrent_requests_lose_no_keys(ctx: &Ctx) -> CaseResult {
    let rounds = trials(10, 100);
    let app = Arc::new(App::plain(ctx)?);
    let mut lost = 0usize;
    for _ in 0..rounds {
        let header = app.login(&[("user", "ada")]).await?;
        let mut set = JoinSet::new();
        for i in 0..50u32 {
            let (app, header) = (Arc::clone(&app), header.clone());
            set.spawn(async move {
                let session = app.request(Some(&header));
                session.set(&format!("k{i}"), &i).await?;
                session.flush().await?;
                Ok(())
            });
        }
        join_all(set).await?;
        let data = load_data(ctx.store(), &key_of(&header)?)
            .await?
            .unwrap_or_default();
        lost += (0..50)
            .filter(|i| !data.contains_key(&format!("k{i}")))
            .count();
    }
    ctx.note(format!(
        "{rounds} trials × 50 concurrent requests: {lost} keys lost"
    ));
    ensure_eq!(lost, 0, "keys lost");
    Ok(())
}

/// A slow request (random 5–50 ms; 50–500 ms long) that loaded before a logout and writes
/// after it never brings the session back. 100 trials (1,000 long), run concurrently.
pub async fn torture_slow_requests_racing_logout_never_resurrect(ctx: &Ctx) -> CaseResult {
    let count = trials(100, 1_000);
    let (min_ms, max_ms) = if long_torture() { (50, 500) } else { (5, 50) };
    let app = Arc::new(App::plain(ctx)?);
    let mut set = JoinSet::new();
    for trial in 0..count {
        let app = Arc::clone(&app);
        let store = Arc::clone(&ctx.store);
        let delay = min_ms + (trial as u64 * 7919) % (max_ms - min_ms + 1);
        set.spawn(async move {
            let header = app.login(&[("user", "ada")]).await?;
            let slow = app.request(Some(&header));
            slow.get::<String>("user").await?;
            let logout = app.request(Some(&header));
            let logout_done = tokio::spawn(async move {
                logout.clear().await;
                logout.flush().await.map(drop)
            });
            tokio::time::sleep(Duration::from_millis(delay)).await;
            slow.set("cart", "1 item").await?;
            slow.flush().await?;
            logout_done
                .await
                .map_err(|e| CaseError::Fail(e.to_string()))??;
            Ok(store.load(&key_of(&header)?).await?.is_some())
        });
    }
    let resurrected = join_all(set).await?.into_iter().filter(|r| *r).count();
    ctx.note(format!(
        "{count} slow requests ({min_ms}–{max_ms} ms) racing a logout: {resurrected} resurrections"
    ));
    ensure_eq!(resurrected, 0, "sessions resurrected");
    Ok(())
}

/// `cycle_id()` racing a logout: no error, and the old id never loads a session again.
/// 100 trials (1,000 long), run concurrently.
pub async fn torture_cycle_id_racing_delete_never_resurrects(ctx: &Ctx) -> CaseResult {
    let count = trials(100, 1_000);
    let app = Arc::new(App::plain(ctx)?);
    let mut set = JoinSet::new();
    for trial in 0..count {
        let app = Arc::clone(&app);
        let store = Arc::clone(&ctx.store);
        set.spawn(async move {
            let header = app.login(&[("user", "ada")]).await?;
            let login = app.request(Some(&header));
            login.cycle_id().await?;
            let logout = app.request(Some(&header));
            let logout_done = tokio::spawn(async move {
                logout.clear().await;
                logout.flush().await.map(drop)
            });
            if trial % 2 == 0 {
                tokio::task::yield_now().await;
            }
            let errors = usize::from(login.flush().await.is_err());
            logout_done
                .await
                .map_err(|e| CaseError::Fail(e.to_string()))??;
            let old_alive = store.load(&key_of(&header)?).await?.is_some();
            Ok((errors, old_alive))
        });
    }
    let results = join_all(set).await?;
    let errors: usize = results.iter().map(|(e, _)| e).sum();
    let alive = results.iter().filter(|(_, a)| *a).count();
    ctx.note(format!("{count} cycle_id calls racing a logout: {errors} errors, old id loads a session {alive} times"));
    ensure_eq!(errors, 0, "flush errors");
    ensure_eq!(alive, 0, "old ids still loading a session");
    Ok(())
}

/// gc running every 10 ms while sessions close to their expiry are touched deletes no live
/// session: a session is only allowed to be missing if its last touch had expired. 2 s with
/// 40 sessions (10 s with 200 long).
pub async fn torture_gc_while_touching_keeps_live_sessions(ctx: &Ctx) -> CaseResult {
    let (sessions, seconds) = if long_torture() { (200, 10) } else { (40, 2) };
    let margin = Duration::from_millis(800);
    let mut keys = Vec::new();
    for _ in 0..sessions {
        let key = key()?;
        ctx.store
            .create(&key, &record(&[("a", b"1")], Timestamp::now() + margin))
            .await?;
        keys.push(key);
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gc_runs = {
        let (store, stop) = (Arc::clone(&ctx.store), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut runs = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = store.gc().await;
                runs += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            runs
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    let mut last_expiry: HashMap<StoreKey, Timestamp> = HashMap::new();
    let mut lost = 0usize;
    while std::time::Instant::now() < deadline {
        for key in &keys {
            let expires_at = Timestamp::now() + margin;
            let touched = ctx.store.touch(key, expires_at).await?;
            let previous = last_expiry.get(key).copied();
            if touched {
                last_expiry.insert(key.clone(), expires_at);
            } else if previous.is_none_or(|p| !p.is_reached(Timestamp::now())) {
                // Its last touch had not expired, yet it is gone: gc deleted a live session.
                lost += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let runs = gc_runs.await.map_err(|e| CaseError::Fail(e.to_string()))?;
    ctx.note(format!("{sessions} sessions touched for {seconds} s under {runs} gc runs: {lost} live sessions deleted"));
    ensure_eq!(lost, 0, "live sessions deleted by gc");
    Ok(())
}
