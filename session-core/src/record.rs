//! What stores keep: a record of encoded values with its expiry, and the change sets that
//! update it.

use std::collections::{HashMap, HashSet};

use crate::{Owner, Timestamp};

/// A session's data: key → value encoded with the session's [`Codec`](crate::Codec).
pub type Data = HashMap<String, Vec<u8>>;

/// One stored session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// The encoded values.
    pub data: Data,
    /// When the record dies. A store never returns a record whose expiry is reached,
    /// whether gc has run or not.
    pub expires_at: Timestamp,
    /// When the session was created; the absolute lifetime counts from here.
    pub created_at: Timestamp,
    /// The state of the record as `load` found it, for stores that implement
    /// [`SessionStore::update_if_unchanged`](crate::SessionStore::update_if_unchanged);
    /// `None` otherwise. Stores ignore it in `create`.
    pub revision: Option<Revision>,
    /// The user the session is bound to, for stores that declare
    /// [`Capabilities::user_index`](crate::Capabilities::user_index) (which keep it and
    /// index it); `None` for an unbound session. Other stores may drop it: the manager
    /// never binds a session on them.
    pub owner: Option<Owner>,
}

/// A store's mark of one state of one record, so that a request can write back what it
/// loaded in one conditional step (see
/// [`SessionStore::update_if_unchanged`](crate::SessionStore::update_if_unchanged)).
///
/// Every write to a record gives it a new revision, and a record deleted and created again
/// never repeats a revision it had: equal revisions of one key mean an unchanged record.
/// The value means nothing outside the store that issued it (the SQL stores pack the row
/// id and its version counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Revision {
    // Two halves rather than a `u128`, whose 16-byte alignment would pad every record, and
    // every request future that holds one, by 8 bytes or more.
    high: u64,
    low: u64,
}

impl Revision {
    /// A revision with the store's own `value`.
    pub const fn new(value: u128) -> Self {
        Self {
            high: (value >> 64) as u64,
            low: value as u64,
        }
    }

    /// The value the store gave it.
    pub const fn get(self) -> u128 {
        ((self.high as u128) << 64) | self.low as u128
    }
}

impl Record {
    /// A record of `data` that dies at `expires_at`, created at `created_at`, with no
    /// revision.
    pub fn new(data: Data, expires_at: Timestamp, created_at: Timestamp) -> Self {
        Self {
            data,
            expires_at,
            created_at,
            revision: None,
            owner: None,
        }
    }

    /// The record bound to `owner`.
    #[must_use]
    pub fn with_owner(mut self, owner: Option<Owner>) -> Self {
        self.owner = owner;
        self
    }

    /// Whether the record is dead at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_reached(now)
    }
}

/// The changes one request made to an existing session, applied by a store atomically.
///
/// Application order: if `cleared`, every key is removed first; then `removed` keys are
/// removed; then `set` keys are written. Keys the change set does not name are left as the
/// store has them, so two requests changing different keys of one session both survive.
/// For the same key, the change set applied last wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Remove every key before applying the rest.
    pub cleared: bool,
    /// Keys to write, with their encoded values.
    pub set: Data,
    /// Keys to remove. A key is never both set and removed.
    pub removed: HashSet<String>,
    /// The record's new expiry.
    pub expires_at: Timestamp,
    /// Binds the session to this owner, replacing any earlier binding (and moving the
    /// session in the store's user index); `None` leaves the binding as it is. Only sent
    /// to stores that declare [`Capabilities::user_index`](crate::Capabilities::user_index).
    pub owner: Option<Owner>,
}

impl ChangeSet {
    /// Whether the change set changes the record (its data or its owner), as opposed to
    /// only moving the expiry.
    pub fn changes_data(&self) -> bool {
        self.cleared || !self.set.is_empty() || !self.removed.is_empty() || self.owner.is_some()
    }

    /// Empties the change set (the expiry stays), keeping its allocations for the next one.
    pub fn clear(&mut self) {
        self.cleared = false;
        self.set.clear();
        self.removed.clear();
        self.owner = None;
    }

    /// Applies the whole change set to `record`: data, owner and expiry, for stores that
    /// merge in memory.
    pub fn apply_to_record(&self, record: &mut Record) {
        self.apply_to(&mut record.data);
        if let Some(owner) = &self.owner {
            record.owner = Some(owner.clone());
        }
        record.expires_at = self.expires_at;
    }

    /// Applies the data changes to `data`, for stores that merge in memory.
    pub fn apply_to(&self, data: &mut Data) {
        if self.cleared {
            data.clear();
        }
        for key in &self.removed {
            data.remove(key);
        }
        for (key, value) in &self.set {
            // A key the record already has keeps its string and reuses its buffer.
            match data.get_mut(key) {
                Some(slot) => slot.clone_from(value),
                None => {
                    data.insert(key.clone(), value.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_keep_every_bit() {
        for value in [
            0,
            1,
            u128::from(u64::MAX),
            u128::from(u64::MAX) + 1,
            u128::MAX,
        ] {
            assert_eq!(Revision::new(value).get(), value);
        }
    }

    #[test]
    fn applies_clear_then_removals_then_sets() {
        let mut data = Data::from([("a".into(), vec![1]), ("b".into(), vec![2])]);
        let changes = ChangeSet {
            cleared: false,
            set: Data::from([("c".into(), vec![3]), ("a".into(), vec![9])]),
            removed: HashSet::from(["b".into()]),
            expires_at: Timestamp::EPOCH,
            owner: None,
        };
        changes.apply_to(&mut data);
        assert_eq!(
            data,
            Data::from([("a".into(), vec![9]), ("c".into(), vec![3])])
        );

        let clear = ChangeSet {
            cleared: true,
            set: Data::from([("z".into(), vec![0])]),
            ..ChangeSet::default()
        };
        clear.apply_to(&mut data);
        assert_eq!(data, Data::from([("z".into(), vec![0])]));
        assert!(clear.changes_data());
        assert!(!ChangeSet::default().changes_data());
    }
}
