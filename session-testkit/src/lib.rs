//! The conformance suite for [`SessionStore`](session_core::SessionStore)s: every
//! contract of the store trait and of the session handle, as named cases that run against
//! any store.
//!
//! Each case is a documented async function (in `src/cases/`, one module per operation
//! family); [`CASES`] lists them in the order they run. A store
//! crate runs the whole suite from one test file with a custom harness, so every case is a
//! test of its own (`cargo test <case>` filters) and the run ends with
//! `N passed, N failed, N skipped`:
//!
//! ```toml
//! # Cargo.toml of the store crate
//! [dev-dependencies]
//! session-testkit = "0.1"
//!
//! [[test]]
//! name = "conformance"
//! harness = false
//! ```
//!
//! ```no_run
//! // tests/conformance.rs
//! use std::sync::Arc;
//! use session_testkit::{Fixture, Suite};
//! # #[derive(Debug, Default)] struct MyStore;
//! # #[session_core::async_trait] impl session_core::SessionStore for MyStore {
//! #   async fn load(&self, _: &session_core::StoreKey) -> session_core::Result<Option<session_core::Record>> { Ok(None) }
//! #   async fn create(&self, _: &session_core::StoreKey, _: &session_core::Record) -> session_core::Result<bool> { Ok(true) }
//! #   async fn update(&self, _: &session_core::StoreKey, _: &session_core::ChangeSet) -> session_core::Result<bool> { Ok(false) }
//! #   async fn touch(&self, _: &session_core::StoreKey, _: session_core::Timestamp) -> session_core::Result<bool> { Ok(false) }
//! #   async fn delete(&self, _: &session_core::StoreKey) -> session_core::Result<bool> { Ok(false) }
//! #   async fn gc(&self) -> session_core::Result<u64> { Ok(0) }
//! #   fn capabilities(&self) -> session_core::Capabilities { session_core::Capabilities::new() }
//! # }
//!
//! fn main() -> std::process::ExitCode {
//!     Suite::new("my-store", || async {
//!         // A fresh, isolated namespace per case (a temp dir, a random key prefix, ...).
//!         Ok(Fixture::new(Arc::new(MyStore::default())))
//!     })
//!     .main()
//! }
//! ```
//!
//! # Outcomes
//!
//! A case passes, fails with a reason, or is skipped with a reason. A skip is never silent
//! and never counted as a pass. Reasons for a skip:
//!
//! - the store lacks a [`Capabilities`](session_core::Capabilities) the case needs (for
//!   example `shared` for cases that open two handles on one backend, or a case that only
//!   applies without `native_ttl`);
//! - the fixture does not offer what the case needs (a second handle on the same
//!   namespace, or an unreachable backend to check error handling);
//! - the store's server is unreachable. With `SESSION_REQUIRE_SERVICES=1` that is a
//!   failure instead.
//!
//! # Environment
//!
//! - `SESSION_CONFORMANCE_CASES=a,b`: run only the cases whose names contain `a` or `b`
//!   (`torture_` selects the torture cases).
//! - `SESSION_TORTURE=long`: the `torture_*` cases run their full counts (10,000 tampered
//!   cookies, 1,000 racing logouts, ...) instead of the quick ones.
//! - `SESSION_CONFORMANCE_REPORT=FILE`: append one JSON object per case
//!   (`{"suite", "case", "outcome", "reason", "figures"}`) to FILE, for tools such as
//!   `cargo xtask conformance`.
//! - `SESSION_REQUIRE_SERVICES=1`: an unreachable server fails the run instead of skipping.
//!
//! # Other tests that can skip
//!
//! A test outside the suite that needs a server, a binary or a browser runs under
//! [`Tests`] rather than libtest, so that its skip reads `skipped: REASON` in the output
//! and not `ok`. Each [`Trial`] is a named function (sync, or async in a tokio runtime
//! of its own) returning a [`TestResult`]; [`TestError::Skip`] skips with a reason, or
//! fails under `SESSION_REQUIRE_SERVICES=1`; a panic fails. The binary understands the
//! same arguments as the suite's, so `cargo test NAME` and `cargo nextest` work as
//! usual. See the [`Tests`] docs for an example.
//!
//! # Stable API
//!
//! What a store crate uses is stable within a minor version: [`Suite`] (with
//! [`Suite::main`], [`Suite::run`], [`Suite::run_case`]), [`Fixture`], [`Unavailable`],
//! [`Report`], [`Outcome`], [`CASES`] and [`Case`] (its `name`), [`CountingStore`] and
//! [`OperationCounts`], [`Load`] and [`LoadReport`], [`services_required`], and the test
//! runner: [`Tests`], [`Trial`], [`TestResult`], [`TestError`], [`TestReport`] and [`Counts`].
//!
//! Not stable: the set and order of cases (a release adds cases, and may split or sharpen
//! one, which can make a store that passed fail: that is the point), the text of failure
//! and skip reasons, and the figures a case records. [`Ctx`], [`CaseError`] and
//! [`CaseResult`] are public because [`Case::run`] names them; only the suite's own cases
//! are expected to use them. The case functions themselves are private, so a case can be
//! renamed or reorganised without breaking a build: select cases by name.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod cases;
mod counting;
mod harness;
mod limit;
mod load;
mod runner;
mod setup;

pub use cases::{CASES, Case, CaseError, CaseResult, Ctx};
pub use counting::{CountingStore, OperationCounts};
pub use harness::{Fixture, Outcome, Report, Suite, Unavailable, services_required};
pub use limit::DEFAULT_CALL_LIMIT;
pub use load::{Event, HANG, Load, LoadReport};
pub use runner::{Counts, TestError, TestReport, TestResult, Tests, Trial};
pub use setup::expect_setup_error;
