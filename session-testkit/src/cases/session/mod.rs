//! Session-level cases (named `session_*`): each drives a
//! [`SessionManager`](session_core::SessionManager) over the store, the way a web framework
//! does, and counts what reaches the store with a [`CountingStore`](crate::CountingStore).

pub(super) mod cookies;
pub(super) mod expiry;
pub(super) mod flash;
pub(super) mod lifecycle;
pub(super) mod locking;
pub(super) mod races;
pub(super) mod remember;
pub(super) mod users;
