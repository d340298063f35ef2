//! Store-level cases: each calls the [`SessionStore`](session_core::SessionStore) methods
//! directly, one operation family per module.

pub(super) mod concurrency;
pub(super) mod conditional;
pub(super) mod create_load;
pub(super) mod errors;
pub(super) mod gc;
pub(super) mod lock;
pub(super) mod touch_delete;
pub(super) mod update;
pub(super) mod user_index;
