//! What the cases share: the imports they all use, record and change-set builders, clock
//! offsets, and an application-shaped manager over the store under test.

pub(crate) use std::collections::{BTreeMap, HashMap, HashSet};
pub(crate) use std::future::Future;
pub(crate) use std::sync::Arc;
pub(crate) use std::time::Duration;

pub(crate) use serde::{Deserialize, Serialize};
pub(crate) use session_core::cookie::Cookie;
pub(crate) use session_core::{
    ChangeSet, Data, Record, Revision, Session, SessionConfig, SessionId, SessionManager,
    SessionStore, StoreKey, Timestamp,
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
    }
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

/// A manager over the store, the way an application builds one, with a counter in between.
pub(crate) struct App {
    pub(crate) manager: SessionManager,
    pub(crate) counter: Arc<CountingStore>,
}

impl App {
    pub(crate) fn new(ctx: &Ctx, config: &str) -> Result<Self, CaseError> {
        Self::over(Arc::clone(&ctx.store), config)
    }

    /// An application over `store` (the store under test, or a wrapper of it).
    pub(crate) fn over(store: Arc<dyn SessionStore>, config: &str) -> Result<Self, CaseError> {
        let counter = Arc::new(CountingStore::new(store));
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
