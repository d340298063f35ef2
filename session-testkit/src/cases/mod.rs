//! The cases: one async function per contract, each documented with what it checks, one
//! module per operation family, and [`CASES`], the one ordered list the harness runs.
//!
//! - [`store`]: the [`SessionStore`](session_core::SessionStore) methods called directly
//!   (create and load, update, conditional update, touch and delete, gc, concurrency, a
//!   backend that is down);
//! - [`session`]: a [`SessionManager`](session_core::SessionManager) over the store, the way
//!   a web framework drives it (lifecycle, cookies, expiry, races);
//! - [`torture`]: hostile input and races in bulk;
//! - [`helpers`]: what the cases share.
//!
//! The module is private: a store crate runs the suite through [`Suite`](crate::Suite) and
//! selects cases by name, so a case can be renamed, split or sharpened without breaking
//! anyone's build. The trait docs of `SessionStore` name the case that checks each rule.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use session_core::SessionStore;

use crate::harness::Fixture;

/// Why a case did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseError {
    /// The store broke the contract.
    Fail(String),
    /// The case cannot run against this store.
    Skip(String),
}

impl From<session_core::Error> for CaseError {
    fn from(err: session_core::Error) -> Self {
        Self::Fail(crate::harness::unexpected(&err))
    }
}

/// What a case returns.
pub type CaseResult = Result<(), CaseError>;

type CaseFuture<'a> = Pin<Box<dyn Future<Output = CaseResult> + Send + 'a>>;

/// A named case of the suite.
#[derive(Clone, Copy)]
pub struct Case {
    /// The function's name; `cargo test <name>` selects it. What the case checks is the
    /// documentation of that function in `src/cases/` (the
    /// [`SessionStore`](session_core::SessionStore) docs name the case behind each rule).
    pub name: &'static str,
    /// Runs the case.
    pub run: for<'a> fn(&'a Ctx) -> CaseFuture<'a>,
}

impl Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What a case runs against: the store of a fresh fixture.
#[derive(Debug)]
pub struct Ctx {
    store: Arc<dyn SessionStore>,
    /// The client-side type the session cases run on, if the fixture is one.
    client_side: Option<String>,
    second: Option<Arc<dyn SessionStore>>,
    unreachable: Option<Arc<dyn SessionStore>>,
    notes: std::sync::Mutex<Vec<String>>,
}

impl Ctx {
    pub(crate) fn from_fixture(fixture: Fixture) -> Self {
        Self {
            store: fixture.store,
            client_side: fixture.client_side,
            second: fixture.second,
            unreachable: fixture.unreachable,
            notes: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The store under test.
    pub fn store(&self) -> &dyn SessionStore {
        self.store.as_ref()
    }

    /// The client-side session type under test (`"cookie"`, `"jwt"`), if any.
    pub fn client_side(&self) -> Option<&str> {
        self.client_side.as_deref()
    }

    /// Records a figure the case measured (printed after its outcome and written to the
    /// JSON report), e.g. "10000 tampered cookies: 0 accepted, 0 store lookups".
    pub fn note(&self, figure: impl Into<String>) {
        self.notes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(figure.into());
    }

    pub(crate) fn take_notes(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .notes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// Whether `SESSION_TORTURE=long` asks for the long form of the `torture_*` cases.
pub(crate) fn long_torture() -> bool {
    std::env::var("SESSION_TORTURE").is_ok_and(|v| v == "long")
}

/// `quick` trials in the test suite, `long` with `SESSION_TORTURE=long`.
pub(crate) fn trials(quick: usize, long: usize) -> usize {
    if long_torture() { long } else { quick }
}

// The assertion macros come before the modules: `macro_rules!` is in scope for the text that
// follows it.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(CaseError::Fail(format!($($arg)+)));
        }
    };
}

macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($arg:tt)+) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(CaseError::Fail(format!(
                "{}: expected {:?}, got {:?}", format!($($arg)+), right, left
            )));
        }
    }};
}

mod helpers;
mod session;
mod store;
mod torture;

use self::session::{
    cookies::*, expiry::*, flash::*, lifecycle::*, locking::*, races::*, remember::*, users::*,
};
use self::store::{
    concurrency::*, conditional::*, create_load::*, errors::*, gc::*, lock::*, touch_delete::*,
    update::*, user_index::*,
};
use self::torture::*;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        /// Every case of the suite, in the order they run.
        pub static CASES: &[Case] = &[
            $(Case {
                name: stringify!($name),
                run: {
                    fn run(ctx: &Ctx) -> CaseFuture<'_> {
                        Box::pin($name(ctx))
                    }
                    run
                },
            }),*
        ];
    };
}

cases![
    load_unknown_key_is_none,
    create_then_load_round_trips_bytes,
    round_trips_special_keys,
    round_trips_empty_record,
    round_trips_one_mebibyte_value,
    create_does_not_overwrite_live_record,
    create_replaces_expired_record,
    concurrent_creates_of_one_key_admit_one,
    expired_record_is_not_returned_without_gc,
    record_created_already_expired_is_absent,
    update_sets_and_removes_keys,
    update_clear_then_set,
    update_keeps_keys_it_does_not_name,
    update_sets_new_expiry,
    update_of_unknown_key_creates_nothing,
    update_after_delete_does_not_resurrect,
    update_after_expiry_does_not_resurrect,
    update_if_unchanged_writes_the_loaded_record,
    update_if_unchanged_refuses_a_changed_record,
    update_if_unchanged_never_resurrects,
    touch_extends_expiry_without_changing_data,
    touch_of_unknown_key_is_false,
    touch_does_not_revive_expired_record,
    delete_removes_record,
    delete_of_unknown_key_is_false,
    create_after_delete_starts_fresh,
    gc_removes_expired_and_keeps_live,
    gc_reports_exact_count,
    concurrent_change_sets_to_distinct_keys_lose_nothing,
    concurrent_writes_to_one_key_leave_one_written_value,
    ten_thousand_sessions_without_cross_talk,
    shared_handles_see_each_other,
    delete_many_removes_exactly_the_named_records,
    user_index_lists_bound_sessions,
    user_index_follows_rebinding,
    user_index_forgets_deleted_sessions,
    user_index_never_lists_expired_sessions,
    user_index_follows_expiry_moves,
    user_index_stays_bounded,
    user_index_lists_concurrent_binds,
    user_index_shared_between_handles,
    lock_is_exclusive,
    lock_concurrent_attempts_admit_one,
    lock_lapses_after_ttl,
    lock_renew_extends_the_lease,
    unlock_needs_the_holders_token,
    lock_leaves_records_and_other_keys_alone,
    lock_shared_between_handles,
    lock_and_load_loads_only_when_granted,
    write_and_unlock_releases_only_after_writing,
    gc_keeps_live_leases,
    unreachable_backend_returns_errors,
    session_round_trips_typed_values,
    session_new_empty_session_is_not_stored,
    session_unknown_id_is_not_adopted,
    session_tampered_cookie_never_reaches_store,
    session_read_only_request_does_not_write,
    session_rolling_expiry_refreshes_after_threshold,
    session_per_call_timeout_sets_expiry,
    session_absolute_timeout_is_enforced,
    session_clear_deletes_and_expires_cookie,
    session_clear_then_set_starts_new_session,
    session_cycle_id_moves_data_to_new_id,
    session_flash_is_shown_once_and_survives_cycle_id,
    session_remember_me_sets_lifetime_and_cookie,
    session_cancelled_flush_keeps_its_data,
    session_logout_racing_slow_request_does_not_resurrect,
    session_cycle_id_racing_delete_does_not_resurrect,
    session_concurrent_requests_merge_distinct_keys,
    session_set_user_binds_and_lists,
    session_cycle_id_keeps_the_binding,
    session_clear_unbinds,
    session_revoke_ends_only_that_session,
    session_revoke_others_keeps_current,
    session_revoke_user_leaves_other_users,
    session_revoke_racing_slow_request_does_not_resurrect,
    session_max_sessions_per_user_ends_the_oldest,
    session_concurrent_logins_are_listed_and_capped,
    session_binding_costs_no_extra_round_trip,
    session_lock_serializes_read_modify_writes,
    session_lock_serializes_across_handles,
    session_update_is_atomic_without_the_lock,
    session_update_is_atomic_across_handles,
    session_update_sees_the_requests_own_changes,
    session_lock_released_when_request_dropped,
    session_lock_released_when_request_dropped_mid_call,
    session_lock_lapsed_holder_cannot_write,
    session_lock_timeout_is_a_typed_error,
    session_locks_of_different_sessions_never_wait,
    session_read_only_request_does_not_wait,
    torture_tampered_cookies_are_rejected_without_lookups,
    torture_never_issued_ids_are_never_adopted,
    torture_oversize_values_are_refused,
    torture_concurrent_requests_lose_no_keys,
    torture_slow_requests_racing_logout_never_resurrect,
    torture_cycle_id_racing_delete_never_resurrects,
    torture_gc_while_touching_keeps_live_sessions,
];
