//! An in-process session store: fast, volatile, for one process.
//!
//! - Sharded: 64 independently locked shards chosen by the store key, so requests on both
//!   cores rarely wait for each other; there is no global lock on the hot path.
//! - gc removes expired sessions without looking at live ones: each shard keeps its
//!   sessions ordered by expiry, and gc takes them from the front until it reaches one
//!   still alive.
//! - Optionally bounded ([`MemoryStore::with_max_sessions`]): when full, a new session
//!   evicts the soonest-to-expire session of its shard (expired ones first).
//! - Every change set is applied under its shard's lock, so it is atomic.
//! - Keeps session locks ([`Capabilities::lock`]) in the same shards, next to the records
//!   and apart from them: a lease is a token and a monotonic deadline.
//! - Keeps a user index ([`Capabilities::user_index`]): the sessions of one user are listed
//!   without looking at anyone else's, and sessions that do not change their binding never
//!   touch it.
//!
//! Sessions live as long as the process. For several processes on one machine use
//! `session-file`; for several machines, `session-redis` or `session-db`.
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{SessionConfig, SessionManager};
//! use session_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let manager = SessionManager::new(Arc::new(MemoryStore::new()), SessionConfig::default())?;
//! let session = manager.session_from_cookie_header(None);
//! session.set("visits", &1u32).await?;
//! let cookie = session.flush().await?.expect("a new session with data gets a cookie");
//!
//! let again = manager.session_from_cookie_header(Some(&format!("thinkjs={}", cookie.value())));
//! assert_eq!(again.get::<u32>("visits").await?, Some(1));
//! # Ok::<(), session_core::Error>(()) }).unwrap();
//! ```
//!
//! Selecting it from configuration (`type = "memory"`), with an optional bound:
//!
//! ```toml
//! type = "memory"
//! [adapter.memory]
//! max_sessions = 100000
//! ```
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod users;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use serde::Deserialize;
use session_core::{
    Capabilities, ChangeSet, Error, IndexedSession, LockToken, Owner, Record, Registry, Result,
    SessionStore, StoreKey, Timestamp, UserId, async_trait,
};

use crate::users::UserIndex;

/// Shards of an unbounded store. A power of two, so the shard is a mask of the key.
const SHARDS: usize = 64;

/// A store key's digest: what the maps are keyed by (32 bytes, no allocation).
type Digest = [u8; 32];

/// The in-process store. Cheap to share: wrap it in an `Arc`.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    /// Sessions allowed per shard, if bounded.
    per_shard_limit: Option<usize>,
    /// Live and not-yet-collected sessions, across shards.
    len: AtomicUsize,
    /// Each user's bound sessions.
    users: UserIndex,
}

#[derive(Debug, Default)]
struct Shard {
    /// Keyed by SHA-256 digests, which are uniform already: a fast non-keyed hash is
    /// enough, and a client cannot choose a digest to make buckets collide.
    records: FxHashMap<Digest, Record>,
    /// The same sessions ordered by expiry: gc and eviction take from the front.
    by_expiry: BTreeSet<(Timestamp, Digest)>,
    /// Session locks: the holder's token and when its lease lapses.
    leases: FxHashMap<Digest, (LockToken, Instant)>,
}

/// Options of `adapter.memory`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemoryOptions {
    /// Upper bound on stored sessions.
    max_sessions: Option<usize>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An unbounded store.
    pub fn new() -> Self {
        Self::build(SHARDS, None)
    }

    /// A store holding at most `max_sessions` sessions (at least one).
    ///
    /// The bound is enforced per shard (the store has fewer shards when the bound is
    /// small), so the store never holds more than `max_sessions`; when a new session lands
    /// in a full shard, that shard's soonest-to-expire session is evicted.
    pub fn with_max_sessions(max_sessions: usize) -> Self {
        let max_sessions = max_sessions.max(1);
        // Keep at least 16 sessions per shard so that uneven hashing does not evict much
        // earlier than the bound.
        let shards = (max_sessions / 16).clamp(1, SHARDS);
        let shards = if shards.is_power_of_two() {
            shards
        } else {
            shards.next_power_of_two() / 2
        };
        Self::build(shards, Some(max_sessions / shards))
    }

    fn build(shards: usize, per_shard_limit: Option<usize>) -> Self {
        Self {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard_limit,
            len: AtomicUsize::new(0),
            users: UserIndex::default(),
        }
    }

    /// How many sessions are held, counting expired ones gc has not removed yet.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether the store holds no session at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &StoreKey) -> MutexGuard<'_, Shard> {
        let digest = key.digest();
        let index =
            usize::from(u16::from_le_bytes([digest[0], digest[1]])) & (self.shards.len() - 1);
        // A panic while holding a shard lock cannot leave a shard half-updated (every
        // mutation below is a single map operation pair), so a poisoned lock is usable.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the index entry of `key` from the `before` binding to the `after` one. Called
    /// with no shard lock held: a listing takes the index lock, then shard locks.
    fn rebind(&self, key: &StoreKey, before: Option<&Owner>, after: Option<&Owner>) {
        let (before, after) = (before.map(|o| &o.user), after.map(|o| &o.user));
        if before == after {
            return;
        }
        if let Some(user) = before {
            self.users.remove(user, key);
        }
        if let Some(user) = after {
            self.users.add(user, key);
        }
    }

    /// The live session at `key` if it is bound to `user`, as an index entry.
    fn bound_to(&self, user: &UserId, key: &StoreKey, now: Timestamp) -> Option<IndexedSession> {
        let shard = self.shard(key);
        let record = shard.records.get(key.digest())?;
        let owner = record.owner.as_ref().filter(|owner| &owner.user == user)?;
        (!record.is_expired(now)).then(|| IndexedSession {
            key: key.clone(),
            created_at: record.created_at,
            expires_at: record.expires_at,
            label: owner.label.clone(),
        })
    }
}

impl Shard {
    /// The unexpired lease on `digest`, if any.
    fn lease_mut(&mut self, digest: &Digest, now: Instant) -> Option<&mut (LockToken, Instant)> {
        self.leases
            .get_mut(digest)
            .filter(|(_, until)| *until > now)
    }

    /// The live record for `digest`, if any.
    fn live_mut(&mut self, digest: &Digest, now: Timestamp) -> Option<&mut Record> {
        self.records
            .get_mut(digest)
            .filter(|record| !record.is_expired(now))
    }

    fn set_expiry(&mut self, digest: &Digest, from: Timestamp, to: Timestamp) {
        if from != to {
            self.by_expiry.remove(&(from, *digest));
            self.by_expiry.insert((to, *digest));
        }
    }

    fn remove(&mut self, digest: &Digest) -> Option<Record> {
        let record = self.records.remove(digest)?;
        self.by_expiry.remove(&(record.expires_at, *digest));
        Some(record)
    }

    /// Removes the soonest-to-expire record.
    fn evict_first(&mut self) -> bool {
        match self.by_expiry.pop_first() {
            Some((_, digest)) => self.records.remove(&digest).is_some(),
            None => false,
        }
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        let now = Timestamp::now();
        let shard = self.shard(key);
        Ok(shard
            .records
            .get(key.digest())
            .filter(|record| !record.is_expired(now))
            .cloned())
    }

    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        let now = Timestamp::now();
        let digest = key.digest();
        let mut guard = self.shard(key);
        let shard = &mut *guard;
        if let Some(existing) = shard.records.get_mut(digest) {
            if !existing.is_expired(now) {
                return Ok(false);
            }
            // An expired record gc has not collected yet: the new one takes its place.
            let previous = existing.expires_at;
            let before = existing.owner.take();
            existing.clone_from(record);
            shard.set_expiry(digest, previous, record.expires_at);
            drop(guard);
            // A listing may have pruned the expired record's entry already: drop it and
            // index the new record afresh, even when both belong to one user.
            self.rebind(key, before.as_ref(), None);
            self.rebind(key, None, record.owner.as_ref());
            return Ok(true);
        }
        if let Some(limit) = self.per_shard_limit {
            while shard.records.len() >= limit && shard.evict_first() {
                self.len.fetch_sub(1, Ordering::Relaxed);
            }
        }
        shard.by_expiry.insert((record.expires_at, *digest));
        shard.records.insert(*digest, record.clone());
        drop(guard);
        self.len.fetch_add(1, Ordering::Relaxed);
        self.rebind(key, None, record.owner.as_ref());
        Ok(true)
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        let now = Timestamp::now();
        let digest = key.digest();
        let mut shard = self.shard(key);
        let Some(record) = shard.live_mut(digest, now) else {
            return Ok(false);
        };
        changes.apply_to(&mut record.data);
        let previous = std::mem::replace(&mut record.expires_at, changes.expires_at);
        let before = match &changes.owner {
            Some(owner) => record.owner.replace(owner.clone()),
            None => None,
        };
        shard.set_expiry(digest, previous, changes.expires_at);
        drop(shard);
        if changes.owner.is_some() {
            self.rebind(key, before.as_ref(), changes.owner.as_ref());
        }
        Ok(true)
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
        let now = Timestamp::now();
        let digest = key.digest();
        let mut shard = self.shard(key);
        let Some(record) = shard.live_mut(digest, now) else {
            return Ok(false);
        };
        let previous = std::mem::replace(&mut record.expires_at, expires_at);
        shard.set_expiry(digest, previous, expires_at);
        Ok(true)
    }

    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        let now = Timestamp::now();
        let removed = self.shard(key).remove(key.digest());
        let Some(record) = removed else {
            return Ok(false);
        };
        self.len.fetch_sub(1, Ordering::Relaxed);
        self.rebind(key, record.owner.as_ref(), None);
        Ok(!record.is_expired(now))
    }

    async fn gc(&self) -> Result<u64> {
        let now = Timestamp::now();
        let mut removed = 0u64;
        // Index entries of the collected sessions, removed once no shard lock is held.
        let mut unbound = Vec::new();
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            while let Some(&(expires_at, digest)) = shard.by_expiry.first() {
                if !expires_at.is_reached(now) {
                    break;
                }
                shard.by_expiry.pop_first();
                if let Some(Record {
                    owner: Some(owner), ..
                }) = shard.records.remove(&digest)
                {
                    unbound.push((owner.user, digest));
                }
                removed += 1;
            }
        }
        for shard in &self.shards {
            // Leases of holders that never released them (a runtime shut down mid-request).
            let now = Instant::now();
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            if !shard.leases.is_empty() {
                shard.leases.retain(|_, (_, until)| *until > now);
            }
        }
        for (user, digest) in unbound {
            self.users.remove(&user, &StoreKey::from_digest(digest));
        }
        self.len.fetch_sub(
            usize::try_from(removed).unwrap_or(usize::MAX),
            Ordering::Relaxed,
        );
        Ok(removed)
    }

    async fn sessions_of(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
        let now = Timestamp::now();
        let mut sessions = Vec::new();
        let mut stale = Vec::new();
        for key in self.users.keys(user) {
            match self.bound_to(user, &key, now) {
                Some(session) => sessions.push(session),
                None => stale.push(key),
            }
        }
        self.users.prune(user, &stale, |key| {
            self.bound_to(user, key, Timestamp::now()).is_none()
        });
        Ok(sessions)
    }

    async fn user_index_len(&self, user: &UserId) -> Result<u64> {
        Ok(u64::try_from(self.users.len(user)).unwrap_or(u64::MAX))
    }

    async fn lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        if let Some((holder, _)) = shard.lease_mut(key.digest(), now) {
            return Ok(holder == token);
        }
        shard
            .leases
            .insert(*key.digest(), (token.clone(), now + ttl));
        Ok(true)
    }

    /// Both under one shard lock.
    async fn lock_and_load(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<Option<Option<Record>>> {
        let (now, instant) = (Timestamp::now(), Instant::now());
        let digest = key.digest();
        let mut shard = self.shard(key);
        match shard.lease_mut(digest, instant) {
            Some((holder, _)) if holder != token => return Ok(None),
            Some(_) => {}
            None => {
                shard.leases.insert(*digest, (token.clone(), instant + ttl));
            }
        }
        Ok(Some(
            shard
                .records
                .get(digest)
                .filter(|record| !record.is_expired(now))
                .cloned(),
        ))
    }

    async fn renew_lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        match shard.lease_mut(key.digest(), now) {
            Some((holder, until)) if holder == token => {
                *until = now + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn unlock(&self, key: &StoreKey, token: &LockToken) -> Result<bool> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        let digest = key.digest();
        match shard.leases.get(digest) {
            Some((holder, until)) if holder == token => {
                let held = *until > now;
                shard.leases.remove(digest);
                Ok(held)
            }
            _ => Ok(false),
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new().with_user_index(true).with_lock(true)
    }
}

/// Registers `type = "memory"`, with `adapter.memory.max_sessions` as an optional bound.
pub fn register(registry: &mut Registry) {
    registry.register("memory", |options| async move {
        let options: MemoryOptions = options.parse()?;
        let store = match options.max_sessions {
            Some(0) => {
                return Err(Error::config(
                    "adapter.memory.max_sessions",
                    "must be at least 1",
                ));
            }
            Some(max) => MemoryStore::with_max_sessions(max),
            None => MemoryStore::new(),
        };
        Ok(Arc::new(store) as Arc<dyn SessionStore>)
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use session_core::SessionId;

    use super::*;

    fn key() -> StoreKey {
        SessionId::generate(32).expect("id").store_key()
    }

    fn record(expires_at: Timestamp) -> Record {
        Record {
            expires_at,
            created_at: Timestamp::now(),
            ..Record::default()
        }
    }

    #[test]
    fn the_bound_is_split_over_a_power_of_two_of_shards() {
        // (max_sessions, shards, sessions per shard)
        for (max, shards, per_shard) in [
            (0, 1, 1),
            (16, 1, 16),
            (100, 4, 25),
            (1000, 32, 31),
            (1024, 64, 16),
            (100_000, 64, 1562),
        ] {
            let store = MemoryStore::with_max_sessions(max);
            assert_eq!(
                (store.shards.len(), store.per_shard_limit),
                (shards, Some(per_shard)),
                "max_sessions = {max}"
            );
        }
        assert_eq!(MemoryStore::new().per_shard_limit, None);
    }

    #[tokio::test]
    async fn len_and_is_empty_count_the_sessions_held() {
        let store = MemoryStore::new();
        assert!(store.is_empty());
        store
            .create(&key(), &record(Timestamp::now() + Duration::from_secs(60)))
            .await
            .expect("create");
        assert!(!store.is_empty());
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn bounded_store_evicts_the_soonest_to_expire() {
        let store = MemoryStore::with_max_sessions(16);
        let now = Timestamp::now();
        let soonest = key();
        store
            .create(&soonest, &record(now + Duration::from_secs(10)))
            .await
            .expect("create");
        let mut later = Vec::new();
        for i in 0..15 {
            let k = key();
            store
                .create(&k, &record(now + Duration::from_secs(100 + i)))
                .await
                .expect("create");
            later.push(k);
        }
        assert_eq!(store.len(), 16);
        store
            .create(&key(), &record(now + Duration::from_secs(500)))
            .await
            .expect("create");
        assert_eq!(store.len(), 16);
        assert!(store.load(&soonest).await.expect("load").is_none());
        for k in &later {
            assert!(store.load(k).await.expect("load").is_some());
        }
    }

    /// A store holding one record, expired a second ago, under the returned key.
    async fn store_with_an_expired_record(now: Timestamp) -> (MemoryStore, StoreKey) {
        let store = MemoryStore::new();
        let k = key();
        store
            .create(&k, &record(now - Duration::from_secs(1)))
            .await
            .expect("create");
        (store, k)
    }

    #[tokio::test]
    async fn gc_keeps_the_expiry_index_consistent() {
        let now = Timestamp::now();
        let (store, _) = store_with_an_expired_record(now).await;
        let live = key();
        store
            .create(&live, &record(now + Duration::from_secs(60)))
            .await
            .expect("create");
        // Moving a live record's expiry must move its index entry, or gc would miss it.
        assert!(
            store
                .touch(&live, now - Duration::from_millis(1))
                .await
                .is_ok()
        );
        assert_eq!(
            store.gc().await.expect("gc"),
            2,
            "the expired record and the one touched into the past"
        );
        assert!(store.is_empty());
        assert_eq!(store.gc().await.expect("gc"), 0);
    }

    #[tokio::test]
    async fn a_create_over_an_expired_record_moves_its_index_entry() {
        let now = Timestamp::now();
        let (store, k) = store_with_an_expired_record(now).await;
        assert!(
            store
                .create(&k, &record(now + Duration::from_secs(60)))
                .await
                .expect("create over the expired record")
        );
        assert_eq!(store.len(), 1, "replaced in place, counted once");
        assert_eq!(
            store.gc().await.expect("gc"),
            0,
            "the old expiry's index entry is gone"
        );
        assert!(store.load(&k).await.expect("load").is_some());
        assert!(
            store
                .touch(&k, now - Duration::from_millis(1))
                .await
                .is_ok()
        );
        assert_eq!(store.gc().await.expect("gc"), 1, "the new entry is indexed");
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn registers_as_memory_with_options() {
        let mut registry = Registry::new();
        register(&mut registry);
        let config = session_core::SessionConfig::from_json_str(
            r#"{"type": "memory", "adapter": {"memory": {"max_sessions": 0}}}"#,
        )
        .expect("config");
        let err = registry.open(&config).await.expect_err("zero bound");
        assert!(err.to_string().contains("adapter.memory.max_sessions"));
        let config =
            session_core::SessionConfig::from_json_str(r#"{"type": "memory"}"#).expect("config");
        assert!(registry.open(&config).await.is_ok());
    }
}
