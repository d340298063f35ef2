//! What the cases share: the imports they all use, record and change-set builders, clock
//! offsets, and an application-shaped manager over the store under test.

pub(crate) use std::collections::{BTreeMap, HashMap, HashSet};
pub(crate) use std::future::Future;
pub(crate) use std::sync::Arc;
pub(crate) use std::time::Duration;

pub(crate) use serde::{Deserialize, Serialize};
pub(crate) use session_core::cookie::Cookie;
pub(crate) use session_core::{
    ChangeSet, Data, ErrorKind, LockMode, LockToken, Owner, Record, Revision, Session,
    SessionConfig, SessionHandle, SessionId, SessionManager, SessionStore, StoreKey, Timestamp,
    UserId,
};
pub(crate) use tokio::task::JoinSet;

pub(crate) use super::{CaseError, CaseResult, Ctx, long_torture, trials};
pub(crate) use crate::CountingStore;

pub(crate) fn key() -> Result<StoreKey, CaseError> {
    Ok(SessionId::generate(32)?.store_key())
}

pub(crate) fn data(pairs: &[(&str, &[u8])]) -> Data {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.to_vec()))
        .collect()
}

pub(crate) fn record(pairs: &[(&str, &[u8])], expires_at: Timestamp) -> Record {
    Record {
        data: data(pairs),
        expires_at,
        created_at: Timestamp::now(),
        revision: None,
        owner: None,
    }
}

pub(crate) fn in_secs(seconds: u64) -> Timestamp {
    Timestamp::now() + Duration::from_secs(seconds)
}

pub(crate) fn in_millis(millis: u64) -> Timestamp {
    Timestamp::now() + Duration::from_millis(millis)
}

pub(crate) fn ago_secs(seconds: u64) -> Timestamp {
    Timestamp::now() - Duration::from_secs(seconds)
}

pub(crate) fn changes(set: &[(&str, &[u8])], removed: &[&str], expires_at: Timestamp) -> ChangeSet {
    ChangeSet {
        cleared: false,
        set: data(set),
        removed: removed.iter().map(|k| (*k).to_owned()).collect(),
        expires_at,
        owner: None,
    }
}

/// Skips the case unless the store keeps a user index.
pub(crate) fn require_user_index(ctx: &Ctx) -> CaseResult {
    if ctx.store.capabilities().user_index {
        Ok(())
    } else {
        Err(CaseError::Skip(
            "the store keeps no user index (Capabilities::user_index is false)".into(),
        ))
    }
}

/// A user of this case alone: `name` plus a random suffix, so that runs on a shared
/// backend (and two processes on one) never see each other's users.
pub(crate) fn fresh_user(name: &str) -> Result<UserId, CaseError> {
    let suffix = SessionId::generate(22)?;
    Ok(UserId::new(format!("{name}-{}", suffix.expose()))?)
}

/// The owner `user` with `label`.
pub(crate) fn owner(user: &UserId, label: &str) -> Result<Owner, CaseError> {
    Ok(Owner::new(user.clone()).with_label(label)?)
}

/// A fresh key holding a record of `pairs` bound to `owner`, expiring at `expires_at`.
pub(crate) async fn create_bound(
    ctx: &Ctx,
    owner: &Owner,
    pairs: &[(&str, &[u8])],
    expires_at: Timestamp,
) -> Result<StoreKey, CaseError> {
    let key = key()?;
    let created = ctx
        .store
        .create(
            &key,
            &record(pairs, expires_at).with_owner(Some(owner.clone())),
        )
        .await?;
    ensure!(created, "create of a fresh bound key returned false");
    Ok(key)
}

/// The keys `store` lists for `user`, sorted; fails if one is listed twice.
pub(crate) async fn listed(
    store: &dyn SessionStore,
    user: &UserId,
) -> Result<Vec<StoreKey>, CaseError> {
    let mut keys: Vec<StoreKey> = store
        .sessions_of(user)
        .await?
        .into_iter()
        .map(|s| s.key)
        .collect();
    keys.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    let count = keys.len();
    keys.dedup();
    ensure_eq!(keys.len(), count, "distinct keys in the listing of {user}");
    Ok(keys)
}

/// `keys`, sorted as [`listed`] sorts.
pub(crate) fn sorted(keys: &[StoreKey]) -> Vec<StoreKey> {
    let mut keys = keys.to_vec();
    keys.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    keys
}

pub(crate) async fn create_live(ctx: &Ctx, pairs: &[(&str, &[u8])]) -> Result<StoreKey, CaseError> {
    let key = key()?;
    let created = ctx
        .store
        .create(&key, &record(pairs, in_secs(3600)))
        .await?;
    ensure!(created, "create of a fresh key returned false");
    Ok(key)
}

/// A fresh key holding a record of `pairs` that expires at `expires_at` (in the past, or
/// soon, for the cases about expiry).
pub(crate) async fn create_expiring(
    ctx: &Ctx,
    pairs: &[(&str, &[u8])],
    expires_at: Timestamp,
) -> Result<StoreKey, CaseError> {
    let key = key()?;
    ctx.store.create(&key, &record(pairs, expires_at)).await?;
    Ok(key)
}

/// Whether `load` finds nothing at `key`.
pub(crate) async fn absent(ctx: &Ctx, key: &StoreKey) -> Result<bool, CaseError> {
    Ok(ctx.store.load(key).await?.is_none())
}

/// The expiry of the record at `key`, or the epoch if there is none.
pub(crate) async fn stored_expiry(ctx: &Ctx, key: &StoreKey) -> Result<Timestamp, CaseError> {
    Ok(ctx
        .store
        .load(key)
        .await?
        .map(|r| r.expires_at)
        .unwrap_or_default())
}

/// Runs `requests` concurrent requests on the session of `header`, request `i` setting key
/// `k{i}` to `i`, and waits for all of them.
pub(crate) async fn set_distinct_keys_concurrently(
    app: &Arc<App>,
    header: &str,
    requests: u32,
) -> Result<(), CaseError> {
    let mut set = JoinSet::new();
    for i in 0..requests {
        let (app, header) = (Arc::clone(app), header.to_owned());
        set.spawn(async move {
            let session = app.request(Some(&header));
            session.set(&format!("k{i}"), &i).await?;
            session.flush().await?;
            Ok(())
        });
    }
    join_all(set).await.map(drop)
}

/// Fails unless the record at `key` holds exactly `pairs`; `what` names the moment.
pub(crate) async fn expect_data(
    ctx: &Ctx,
    key: &StoreKey,
    pairs: &[(&str, &[u8])],
    what: &str,
) -> CaseResult {
    let stored = load_data(ctx.store(), key).await?;
    ensure_eq!(stored, Some(data(pairs)), "{what}");
    Ok(())
}

/// Fails unless `session` holds the text `expected` at `key` (`None`: no such key); `what`
/// names the moment.
pub(crate) async fn expect_text(
    session: &Session,
    key: &str,
    expected: Option<&str>,
    what: &str,
) -> CaseResult {
    let found = session.get::<String>(key).await?;
    ensure_eq!(found.as_deref(), expected, "{what}");
    Ok(())
}

/// Fails unless the record at `key` expires `seconds` from now, within 10 s.
pub(crate) async fn expect_expiry_in(
    ctx: &Ctx,
    key: &StoreKey,
    seconds: u64,
    what: &str,
) -> CaseResult {
    let expires_at = stored_expiry(ctx, key).await?;
    ensure!(
        within(expires_at, in_secs(seconds), Duration::from_secs(10)),
        "{what}: store expiry {expires_at}, expected ~{seconds} s ahead"
    );
    Ok(())
}

/// Fails unless the session the `Cookie` header `header` opens expires `seconds` from now,
/// within 10 s: as the store holds it, or on a client-side fixture as the token carries it.
pub(crate) async fn expect_session_expiry_in(
    ctx: &Ctx,
    app: &App,
    header: &str,
    seconds: u64,
    what: &str,
) -> CaseResult {
    if ctx.client_side().is_none() {
        return expect_expiry_in(ctx, &key_of(header)?, seconds, what).await;
    }
    let expires_at = app
        .request(Some(header))
        .expires_at()
        .await?
        .unwrap_or_default();
    ensure!(
        within(expires_at, in_secs(seconds), Duration::from_secs(10)),
        "{what}: the token's expiry {expires_at}, expected ~{seconds} s ahead"
    );
    Ok(())
}

/// Fails unless a change set for `key`, which holds no live record, is refused and
/// creates nothing; `what` names the situation.
pub(crate) async fn expect_update_refused(ctx: &Ctx, key: &StoreKey, what: &str) -> CaseResult {
    let applied = ctx
        .store
        .update(key, &changes(&[("cart", b"1")], &[], in_secs(3600)))
        .await?;
    ensure!(!applied, "update {what} returned true");
    ensure!(absent(ctx, key).await?, "update {what} created a record");
    Ok(())
}

/// Fails unless a `touch` of `key`, which holds no live record, is refused and creates
/// nothing; `what` names the situation.
pub(crate) async fn expect_touch_refused(ctx: &Ctx, key: &StoreKey, what: &str) -> CaseResult {
    let touched = ctx.store.touch(key, in_secs(3600)).await?;
    ensure!(!touched, "touch {what} returned true");
    ensure!(absent(ctx, key).await?, "touch {what} left a record");
    Ok(())
}

pub(crate) async fn load_data(
    store: &dyn SessionStore,
    key: &StoreKey,
) -> Result<Option<Data>, CaseError> {
    Ok(store.load(key).await?.map(|record| record.data))
}

pub(crate) fn within(actual: Timestamp, expected: Timestamp, tolerance: Duration) -> bool {
    actual.saturating_duration_since(expected) <= tolerance
        && expected.saturating_duration_since(actual) <= tolerance
}

/// The secret of client-side runs: long enough to be a key.
const CLIENT_SIDE_SECRET: &str = "the conformance suite's client-side secret";

/// `config` as a case wrote it, or on a client-side fixture the same with its `type` and
/// a secret long enough for its keys.
fn client_side_config(ctx: &Ctx, config: &str) -> Result<String, CaseError> {
    let Some(store_type) = ctx.client_side() else {
        return Ok(config.to_owned());
    };
    let mut value: serde_json::Value = serde_json::from_str(config)
        .map_err(|err| CaseError::Fail(format!("a case's configuration is not JSON: {err}")))?;
    if let Some(table) = value.as_object_mut() {
        table.insert("type".into(), store_type.into());
        // Distinct secrets stay distinct (a case may sign with another application's),
        // each made long enough to be a key.
        let long = |secret: &serde_json::Value| {
            serde_json::Value::from(format!(
                "{}: {CLIENT_SIDE_SECRET}",
                secret.as_str().unwrap_or("")
            ))
        };
        let secret = match table.get("secret") {
            Some(serde_json::Value::Array(list)) => list.iter().map(long).collect(),
            Some(one) => long(one),
            None => CLIENT_SIDE_SECRET.into(),
        };
        table.insert("secret".into(), secret);
    }
    Ok(value.to_string())
}

/// Why a case about ids does not apply to client-side types.
pub(crate) const NO_IDS: &str = "its tokens carry no id to plant, sign or look up \
    (torture_tampered_cookies_are_rejected_without_lookups tampers the tokens themselves)";

/// Why a case that reads the store does not apply to client-side types.
pub(crate) const NO_STORE_TO_READ: &str = "the case reads what the store holds, and there is \
    none (session-core's client-side tests check the expiry inside the token)";

/// Why a case about cancelling a flush in a store call does not apply to client-side types.
pub(crate) const NO_STORE_CALL: &str = "its flush makes no store call, so there is no wait \
    to cancel it at";

/// Why a case about ending sessions does not apply to client-side types.
pub(crate) const NO_REVOCATION: &str = "a copy of an earlier token stays valid until it \
    expires, so the server cannot end a session before then (documented)";

/// Why a case about concurrent requests does not apply to client-side types.
pub(crate) const NO_MERGE: &str = "each concurrent request carries its own copy of the \
    session, and the token of the last response wins (documented)";

/// Skips the case on a client-side fixture, saying `why` the contract cannot hold for
/// sessions kept in their tokens.
pub(crate) fn require_server_side(ctx: &Ctx, why: &str) -> CaseResult {
    match ctx.client_side() {
        Some(store_type) => Err(CaseError::Skip(format!(
            "type = \"{store_type}\" keeps each session in its token: {why}"
        ))),
        None => Ok(()),
    }
}

/// A manager over the store, the way an application builds one, with a counter in between.
pub(crate) struct App {
    pub(crate) manager: SessionManager,
    pub(crate) counter: Arc<CountingStore>,
}

impl App {
    pub(crate) fn new(ctx: &Ctx, config: &str) -> Result<Self, CaseError> {
        let config = client_side_config(ctx, config)?;
        Self::over(CountingStore::new(Arc::clone(&ctx.store)), &config)
    }

    /// An application whose every store call waits once before it reaches the store, so
    /// that a request dropped at its first wait is dropped in the middle of a store call.
    pub(crate) fn yielding(ctx: &Ctx, config: &str) -> Result<Self, CaseError> {
        let config = client_side_config(ctx, config)?;
        Self::over(CountingStore::yielding(Arc::clone(&ctx.store)), &config)
    }

    /// An application on `store` (another handle on the backend under test).
    pub(crate) fn on(store: Arc<dyn SessionStore>, config: &str) -> Result<Self, CaseError> {
        Self::over(CountingStore::new(store), config)
    }

    /// An application whose lock renewals never reach the store: its leases lapse after
    /// `lock_ttl`, as a stalled process's do.
    pub(crate) fn stalling_renewals(ctx: &Ctx, config: &str) -> Result<Self, CaseError> {
        Self::over(
            CountingStore::stalling_renewals(Arc::clone(&ctx.store)),
            config,
        )
    }

    fn over(counter: CountingStore, config: &str) -> Result<Self, CaseError> {
        let counter = Arc::new(counter);
        let config = SessionConfig::from_json_str(config)?;
        let manager = SessionManager::new(Arc::clone(&counter) as Arc<dyn SessionStore>, config)?;
        Ok(Self { manager, counter })
    }

    pub(crate) fn plain(ctx: &Ctx) -> Result<Self, CaseError> {
        Self::new(ctx, r#"{"type": "conformance"}"#)
    }

    pub(crate) fn request(&self, cookie: Option<&str>) -> Session {
        self.manager.session_from_cookie_header(cookie)
    }

    /// Runs a log-in request of `user` on the device `label`: data, the binding, a fresh
    /// id. Returns the `Cookie` header that later requests send.
    pub(crate) async fn login_as(&self, user: &UserId, label: &str) -> Result<String, CaseError> {
        let session = self.request(None);
        session.set("device", label).await?;
        session.set_user(user.clone()).await?;
        session.set_label(label).await?;
        session.cycle_id().await?;
        let cookie = session
            .flush()
            .await?
            .ok_or_else(|| CaseError::Fail("a log-in got no cookie".into()))?;
        Ok(cookie_header(&cookie))
    }

    /// The user the session of `header` is bound to, as a new request sees it.
    pub(crate) async fn user_of(&self, header: &str) -> Result<Option<UserId>, CaseError> {
        Ok(self.request(Some(header)).user().await?)
    }

    /// Runs a request that stores `pairs` in a new session; returns the `Cookie` header
    /// that later requests send.
    pub(crate) async fn login(&self, pairs: &[(&str, &str)]) -> Result<String, CaseError> {
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

pub(crate) fn cookie_header(cookie: &Cookie<'_>) -> String {
    format!("{}={}", cookie.name(), cookie.value())
}

/// The store key behind an unsigned cookie header (`name=id`).
pub(crate) fn key_of(header: &str) -> Result<StoreKey, CaseError> {
    let value = header
        .split_once('=')
        .map(|(_, value)| value)
        .ok_or_else(|| CaseError::Fail(format!("not a cookie header: {header}")))?;
    Ok(SessionId::parse(value)?.store_key())
}

pub(crate) async fn join_all<T: Send + 'static>(
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

/// Skips the case unless the store keeps session locks.
pub(crate) fn require_lock(ctx: &Ctx) -> CaseResult {
    if ctx.store.capabilities().lock {
        Ok(())
    } else {
        Err(CaseError::Skip(
            "the store keeps no session locks (Capabilities::lock is false)".into(),
        ))
    }
}

/// The fixture's second handle on the same backend, or a skip saying why there is none.
pub(crate) fn second_handle(ctx: &Ctx) -> Result<Arc<dyn SessionStore>, CaseError> {
    if !ctx.store.capabilities().shared {
        return Err(CaseError::Skip(
            "not shared: the store lives in one process".into(),
        ));
    }
    ctx.second.clone().ok_or_else(|| {
        CaseError::Skip("the fixture offers no second handle on the same namespace".into())
    })
}

/// A fresh lock token.
pub(crate) fn token() -> Result<LockToken, CaseError> {
    Ok(LockToken::generate()?)
}
