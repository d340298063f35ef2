//! What stores keep: a record of encoded values with its expiry, and the change sets that
//! update it.

use std::collections::{HashMap, HashSet};

use crate::Timestamp;

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
}

impl Record {
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
}

impl ChangeSet {
    /// Whether the change set changes data (as opposed to only moving the expiry).
    pub fn changes_data(&self) -> bool {
        self.cleared || !self.set.is_empty() || !self.removed.is_empty()
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
            data.insert(key.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_clear_then_removals_then_sets() {
        let mut data = Data::from([("a".into(), vec![1]), ("b".into(), vec![2])]);
        let changes = ChangeSet {
            cleared: false,
            set: Data::from([("c".into(), vec![3]), ("a".into(), vec![9])]),
            removed: HashSet::from(["b".into()]),
            expires_at: Timestamp::EPOCH,
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
