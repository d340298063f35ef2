// The whole conformance suite runs against this very store: session-core/tests/doc_store.rs.
use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use session_core::{
    Capabilities, ChangeSet, Error, IndexedSession, Record, Result, SessionStore, StoreKey,
    Timestamp, UserId,
};

#[derive(Debug, Default)]
struct MapStore(Mutex<HashMap<StoreKey, Record>>);

impl MapStore {
    fn map(&self) -> Result<std::sync::MutexGuard<'_, HashMap<StoreKey, Record>>> {
        self.0
            .lock()
            .map_err(|_| Error::new(session_core::ErrorKind::Backend, "poisoned"))
    }
}

#[async_trait]
impl SessionStore for MapStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        let now = Timestamp::now();
        Ok(self.map()?.get(key).filter(|r| !r.is_expired(now)).cloned())
    }
    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        let mut map = self.map()?;
        if map
            .get(key)
            .is_some_and(|r| !r.is_expired(Timestamp::now()))
        {
            return Ok(false);
        }
        map.insert(key.clone(), record.clone());
        Ok(true)
    }
    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        let now = Timestamp::now();
        match self.map()?.get_mut(key).filter(|r| !r.is_expired(now)) {
            Some(record) => {
                changes.apply_to_record(record);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
        let now = Timestamp::now();
        match self.map()?.get_mut(key).filter(|r| !r.is_expired(now)) {
            Some(record) => {
                record.expires_at = expires_at;
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        let now = Timestamp::now();
        Ok(self.map()?.remove(key).is_some_and(|r| !r.is_expired(now)))
    }
    async fn gc(&self) -> Result<u64> {
        let now = Timestamp::now();
        let mut map = self.map()?;
        let before = map.len();
        map.retain(|_, r| !r.is_expired(now));
        Ok((before - map.len()) as u64)
    }
    // The user index by a scan of every record: fine for a page of docs. A real store
    // keeps an index per user, so that listing one user does not read everyone's sessions.
    async fn sessions_of(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
        let now = Timestamp::now();
        Ok(self
            .map()?
            .iter()
            .filter(|(_, r)| !r.is_expired(now))
            .filter(|(_, r)| r.owner.as_ref().is_some_and(|o| &o.user == user))
            .map(|(key, r)| IndexedSession {
                key: key.clone(),
                created_at: r.created_at,
                expires_at: r.expires_at,
                label: r.owner.as_ref().map(|o| o.label.clone()).unwrap_or_default(),
            })
            .collect())
    }
    async fn user_index_len(&self, user: &UserId) -> Result<u64> {
        let map = self.map()?;
        let bound = map.values().filter(|r| r.owner.as_ref().is_some_and(|o| &o.user == user));
        Ok(bound.count() as u64)
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::new().with_user_index(true)
    }
}
