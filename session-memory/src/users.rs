//! The user index: each user's bound sessions, by store key.
//!
//! One lock for the whole index, taken only by writes that carry or remove a binding, by
//! listings and by gc: requests of unbound sessions, and requests that leave a binding as
//! it is, never touch it. The records stay the truth: a listing checks every entry against
//! its shard, so an entry that went stale (its session evicted, or rebound by a write that
//! raced the listing) is never listed, and is pruned on the spot.

use std::sync::{Mutex, MutexGuard, PoisonError};

use rustc_hash::{FxHashMap, FxHashSet};
use session_core::{StoreKey, UserId};

#[derive(Debug, Default)]
pub(crate) struct UserIndex(Mutex<FxHashMap<UserId, FxHashSet<StoreKey>>>);

impl UserIndex {
    fn map(&self) -> MutexGuard<'_, FxHashMap<UserId, FxHashSet<StoreKey>>> {
        // Every mutation below is one set operation: a panic elsewhere cannot leave the
        // index half-updated, so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that the session at `key` is bound to `user`.
    pub(crate) fn add(&self, user: &UserId, key: &StoreKey) {
        let mut map = self.map();
        match map.get_mut(user) {
            Some(keys) => {
                keys.insert(key.clone());
            }
            None => {
                map.insert(user.clone(), FxHashSet::from_iter([key.clone()]));
            }
        }
    }

    /// Forgets that the session at `key` is bound to `user`.
    pub(crate) fn remove(&self, user: &UserId, key: &StoreKey) {
        let mut map = self.map();
        if let Some(keys) = map.get_mut(user) {
            keys.remove(key);
            if keys.is_empty() {
                map.remove(user);
            }
        }
    }

    /// The keys indexed for `user`, stale ones included.
    pub(crate) fn keys(&self, user: &UserId) -> Vec<StoreKey> {
        self.map()
            .get(user)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many keys are indexed for `user`.
    pub(crate) fn len(&self, user: &UserId) -> usize {
        self.map().get(user).map_or(0, FxHashSet::len)
    }

    /// Removes the entries of `user` among `candidates` for which `is_stale` still holds,
    /// checked under the index lock, so that a session bound again meanwhile (whose write
    /// adds its entry after its record) keeps its entry.
    pub(crate) fn prune(
        &self,
        user: &UserId,
        candidates: &[StoreKey],
        is_stale: impl Fn(&StoreKey) -> bool,
    ) {
        if candidates.is_empty() {
            return;
        }
        let mut map = self.map();
        let Some(keys) = map.get_mut(user) else {
            return;
        };
        for key in candidates {
            if is_stale(key) {
                keys.remove(key);
            }
        }
        if keys.is_empty() {
            map.remove(user);
        }
    }
}
