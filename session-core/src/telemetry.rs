//! What the manager counts and times, through the `metrics` facade (feature `metrics`);
//! without the feature every method here is an empty inline function.
//!
//! The handles are registered once, when the manager is built, with the recorder in force
//! then (the global one, or a local one around `SessionManager::new`): a request records
//! on ready handles, never looking a metric up by name.

#[cfg(feature = "metrics")]
use crate::ErrorKind;
use crate::Result;

/// A store operation: what a span, a timing and a timeout name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Load,
    Create,
    Update,
    UpdateIfUnchanged,
    Touch,
    Delete,
    Gc,
    DeleteMany,
    SessionsOf,
    UserIndexLen,
    Lock,
    LockAndLoad,
    UpdateAndUnlock,
    UpdateIfUnchangedAndUnlock,
    RenewLock,
    Unlock,
}

impl Op {
    /// Every operation, in the order of [`Op::index`].
    #[cfg(any(feature = "metrics", test))]
    pub(crate) const ALL: [Self; 16] = [
        Self::Load,
        Self::Create,
        Self::Update,
        Self::UpdateIfUnchanged,
        Self::Touch,
        Self::Delete,
        Self::Gc,
        Self::DeleteMany,
        Self::SessionsOf,
        Self::UserIndexLen,
        Self::Lock,
        Self::LockAndLoad,
        Self::UpdateAndUnlock,
        Self::UpdateIfUnchangedAndUnlock,
        Self::RenewLock,
        Self::Unlock,
    ];

    /// The name of the [`SessionStore`](crate::SessionStore) method.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Load => "load",
            Self::Create => "create",
            Self::Update => "update",
            Self::UpdateIfUnchanged => "update_if_unchanged",
            Self::Touch => "touch",
            Self::Delete => "delete",
            Self::Gc => "gc",
            Self::DeleteMany => "delete_many",
            Self::SessionsOf => "sessions_of",
            Self::UserIndexLen => "user_index_len",
            Self::Lock => "lock",
            Self::LockAndLoad => "lock_and_load",
            Self::UpdateAndUnlock => "update_and_unlock",
            Self::UpdateIfUnchangedAndUnlock => "update_if_unchanged_and_unlock",
            Self::RenewLock => "renew_lock",
            Self::Unlock => "unlock",
        }
    }

    /// Its place in [`Op::ALL`].
    #[cfg(feature = "metrics")]
    const fn index(self) -> usize {
        self as usize
    }
}

/// Every error kind, in the order of [`kind_index`].
#[cfg(feature = "metrics")]
const KINDS: [ErrorKind; 13] = [
    ErrorKind::Config,
    ErrorKind::InvalidId,
    ErrorKind::Encode,
    ErrorKind::Decode,
    ErrorKind::TooLarge,
    ErrorKind::Backend,
    ErrorKind::Timeout,
    ErrorKind::Random,
    ErrorKind::Unsupported,
    ErrorKind::Locked,
    ErrorKind::LockLost,
    ErrorKind::Conflict,
    ErrorKind::ReadOnly,
];

/// The `kind` label of an error kind.
#[cfg(feature = "metrics")]
const fn kind_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Config => "config",
        ErrorKind::InvalidId => "invalid_id",
        ErrorKind::Encode => "encode",
        ErrorKind::Decode => "decode",
        ErrorKind::TooLarge => "too_large",
        ErrorKind::Backend => "backend",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Random => "random",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Locked => "locked",
        ErrorKind::LockLost => "lock_lost",
        ErrorKind::Conflict => "conflict",
        ErrorKind::ReadOnly => "read_only",
    }
}

/// The place of `kind` in [`KINDS`].
#[cfg(feature = "metrics")]
const fn kind_index(kind: ErrorKind) -> usize {
    match kind {
        ErrorKind::Config => 0,
        ErrorKind::InvalidId => 1,
        ErrorKind::Encode => 2,
        ErrorKind::Decode => 3,
        ErrorKind::TooLarge => 4,
        ErrorKind::Backend => 5,
        ErrorKind::Timeout => 6,
        ErrorKind::Random => 7,
        ErrorKind::Unsupported => 8,
        ErrorKind::Locked => 9,
        ErrorKind::LockLost => 10,
        ErrorKind::Conflict => 11,
        ErrorKind::ReadOnly => 12,
    }
}

/// The handles of one manager's metrics, all labelled with its store type.
#[cfg(feature = "metrics")]
#[derive(Clone)]
pub(crate) struct Metrics {
    created: ::metrics::Counter,
    loaded: ::metrics::Counter,
    updated: ::metrics::Counter,
    touched: ::metrics::Counter,
    cycled: ::metrics::Counter,
    cleared: ::metrics::Counter,
    gc_removed: ::metrics::Counter,
    conflicts: ::metrics::Counter,
    errors: [::metrics::Counter; KINDS.len()],
    calls: [::metrics::Histogram; Op::ALL.len()],
}

/// Nothing: the crate is built without the `metrics` feature.
#[cfg(not(feature = "metrics"))]
#[derive(Clone)]
pub(crate) struct Metrics;

/// When a store call started, for its timing.
#[cfg(feature = "metrics")]
pub(crate) type Started = std::time::Instant;
/// Nothing to time without the `metrics` feature.
#[cfg(not(feature = "metrics"))]
#[derive(Clone, Copy)]
pub(crate) struct Started;

#[cfg(feature = "metrics")]
impl Metrics {
    /// Registers the metrics of a manager over a store of type `store` with the recorder
    /// in force.
    pub(crate) fn new(store: &str) -> Self {
        describe();
        let counter = |name: &'static str| ::metrics::counter!(name, "store" => store.to_owned());
        Self {
            created: counter("session_created_total"),
            loaded: counter("session_loaded_total"),
            updated: counter("session_updated_total"),
            touched: counter("session_touched_total"),
            cycled: counter("session_cycled_total"),
            cleared: counter("session_cleared_total"),
            gc_removed: counter("session_gc_removed_total"),
            conflicts: counter("session_conflicts_total"),
            errors: KINDS.map(|kind| {
                ::metrics::counter!(
                    "session_store_errors_total",
                    "store" => store.to_owned(),
                    "kind" => kind_label(kind)
                )
            }),
            calls: Op::ALL.map(|op| {
                ::metrics::histogram!(
                    "session_store_call_seconds",
                    "store" => store.to_owned(),
                    "op" => op.name()
                )
            }),
        }
    }

    /// A store call starts.
    #[inline]
    pub(crate) fn start(&self) -> Started {
        std::time::Instant::now()
    }

    /// The store call `op` that started at `started` ended with `outcome`.
    #[inline]
    pub(crate) fn finish<T>(&self, op: Op, started: Started, outcome: &Result<T>) {
        self.calls[op.index()].record(started.elapsed().as_secs_f64());
        if let Err(err) = outcome {
            self.errors[kind_index(err.kind())].increment(1);
        }
    }

    /// A `create` answered: `true` made a session, `false` lost to a live record.
    #[inline]
    pub(crate) fn created(&self, created: bool) {
        if created {
            self.created.increment(1);
        } else {
            self.conflicts.increment(1);
        }
    }

    /// A load answered: `true` found a live record.
    #[inline]
    pub(crate) fn loaded(&self, found: bool) {
        if found {
            self.loaded.increment(1);
        }
    }

    /// A change set or conditional write answered: `true` wrote.
    #[inline]
    pub(crate) fn updated(&self, written: bool) {
        if written {
            self.updated.increment(1);
        }
    }

    /// A conditional write answered: `true` wrote, `false` was refused (the record
    /// changed since it was loaded).
    #[inline]
    pub(crate) fn written_if_unchanged(&self, written: bool) {
        if written {
            self.updated.increment(1);
        } else {
            self.conflicts.increment(1);
        }
    }

    /// A `touch` answered: `true` moved an expiry.
    #[inline]
    pub(crate) fn touched(&self, touched: bool) {
        if touched {
            self.touched.increment(1);
        }
    }

    /// A session's id was cycled: its data moved to a fresh id.
    #[inline]
    pub(crate) fn cycled(&self) {
        self.cycled.increment(1);
    }

    /// A cleared session's delete answered: `true` removed a live record.
    #[inline]
    pub(crate) fn cleared(&self, removed: bool) {
        if removed {
            self.cleared.increment(1);
        }
    }

    /// A gc run removed `removed` expired records.
    #[inline]
    pub(crate) fn gc_removed(&self, removed: u64) {
        self.gc_removed.increment(removed);
    }
}

/// Describes the metrics to the recorder in force (their help texts and units).
#[cfg(feature = "metrics")]
fn describe() {
    use ::metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        "session_created_total",
        "Sessions created in the store (new sessions, and the new record of a cycled id)"
    );
    describe_counter!("session_loaded_total", "Live session records loaded");
    describe_counter!(
        "session_updated_total",
        "Session records written over (change sets and conditional writes that applied)"
    );
    describe_counter!(
        "session_touched_total",
        "Session expiries moved without a write of the data"
    );
    describe_counter!(
        "session_cycled_total",
        "Session ids cycled (the data moved to a fresh id)"
    );
    describe_counter!("session_cleared_total", "Stored sessions cleared (deleted)");
    describe_counter!(
        "session_gc_removed_total",
        "Expired session records removed by gc"
    );
    describe_counter!(
        "session_conflicts_total",
        "Refused conditional writes: a conditional write after another write, a create over \
         a live record"
    );
    describe_counter!(
        "session_store_errors_total",
        "Store calls that failed, by error kind"
    );
    describe_histogram!(
        "session_store_call_seconds",
        Unit::Seconds,
        "Time of one store call, by operation"
    );
}

#[cfg(not(feature = "metrics"))]
impl Metrics {
    #[inline]
    pub(crate) fn new(_store: &str) -> Self {
        Self
    }
    #[inline]
    pub(crate) fn start(&self) -> Started {
        Started
    }
    #[inline]
    pub(crate) fn finish<T>(&self, _op: Op, _started: Started, _outcome: &Result<T>) {}
    #[inline]
    pub(crate) fn created(&self, _created: bool) {}
    #[inline]
    pub(crate) fn loaded(&self, _found: bool) {}
    #[inline]
    pub(crate) fn updated(&self, _written: bool) {}
    #[inline]
    pub(crate) fn written_if_unchanged(&self, _written: bool) {}
    #[inline]
    pub(crate) fn touched(&self, _touched: bool) {}
    #[inline]
    pub(crate) fn cycled(&self) {}
    #[inline]
    pub(crate) fn cleared(&self, _removed: bool) {}
    #[inline]
    pub(crate) fn gc_removed(&self, _removed: u64) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_the_trait_methods() {
        let names: Vec<&str> = Op::ALL.iter().map(|op| op.name()).collect();
        assert_eq!(names.len(), 16);
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        #[cfg(feature = "metrics")]
        for (index, op) in Op::ALL.iter().enumerate() {
            assert_eq!(op.index(), index);
        }
    }

    #[cfg(feature = "metrics")]
    #[test]
    fn every_error_kind_has_its_own_label_and_place() {
        for (index, kind) in KINDS.iter().enumerate() {
            assert_eq!(kind_index(*kind), index);
        }
        let mut labels: Vec<&str> = KINDS.iter().map(|kind| kind_label(*kind)).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), KINDS.len());
    }
}
