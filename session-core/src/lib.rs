//! ThinkJS-style server-side sessions for Rust: the core every store and framework
//! integration builds on.
//!
//! - [`SessionId`]: ids from the OS CSPRNG, validated before they reach any store;
//!   stores see only a [`StoreKey`] (the SHA-256 of the id).
//! - [`Signer`]: ThinkJS-compatible signed cookies, constant-time checks, key rotation.
//! - [`SessionConfig`]: ThinkJS's configuration keys and defaults, from TOML or JSON.
//! - [`Codec`]: values encoded one by one (bincode by default, JSON as an option).
//! - [`SessionStore`]: the small async trait a store implements (see its docs for a whole
//!   store in a page), with [`Capabilities`] the conformance suite reads.
//! - [`SessionManager`] and [`Session`]: cookie in, lazy per-request handle, one change set
//!   and an optional `Set-Cookie` out.
//! - Sessions that belong to users: [`Session::set_user`] at log-in, then
//!   [`Session::user_sessions`], [`Session::revoke`], [`SessionManager::revoke_user`] and
//!   `max_sessions_per_user`, over stores that keep a user index
//!   ([`Capabilities::user_index`]); listings hand out [`SessionHandle`]s, never ids.
//! - Many concurrent requests of one session: [`Session::update`] for an atomic
//!   read-modify-write of one key, and the opt-in session lock (`lock = true`,
//!   [`LockMode`], [`Session::set_lock_mode`]) over stores that keep leases
//!   ([`Capabilities::lock`]), fenced so a holder whose lease lapsed cannot write.
//! - Everyday helpers: [`flash`] messages shown once on the next page
//!   ([`Session::flash`], [`Session::take_flashes`]), and remember-me
//!   ([`Session::remember`], `remember_timeout`, `cookie.persistent`): a long life with a
//!   persistent cookie, or a short one with a cookie the browser drops when it closes.
//! - [`Registry`] (`type = "redis"` picks the Redis store) and the gc scheduler
//!   ([`GcHandle`]).
//! - Outages and observability: the manager bounds every store call by `store_timeout`
//!   ([`ErrorKind::Timeout`] naming the call), runs each in a `tracing` span, and with the
//!   `metrics` feature counts and times them (see [Metrics](#metrics)).
//! - [`web`]: the request path of a framework integration, written once for every
//!   framework: the session from the `Cookie` headers, the flush, `Set-Cookie`, and the
//!   answers to store failures (500, 503 with `Retry-After`, continue without a session,
//!   keep the response, or the application's own reply) and lock timeouts.
//! - [`wire`]: a versioned, bounded binary layout for stores that keep a record as one blob.
//!
//! # Example
//!
//! A request cycle by hand, with a tiny in-memory store (real applications take
//! `session-memory`, `session-file`, `session-redis` or `session-db`, and a framework
//! integration such as `session-tower` that does the cookie plumbing):
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{SessionConfig, SessionManager};
//! # use std::collections::HashMap;
//! # use std::sync::Mutex;
//! # use session_core::{Capabilities, ChangeSet, Record, Result, SessionStore, StoreKey, Timestamp};
//! # #[derive(Debug, Default)] struct MapStore(Mutex<HashMap<StoreKey, Record>>);
//! # #[async_trait::async_trait] impl SessionStore for MapStore {
//! #   async fn load(&self, k: &StoreKey) -> Result<Option<Record>> { Ok(self.0.lock().unwrap().get(k).cloned()) }
//! #   async fn create(&self, k: &StoreKey, r: &Record) -> Result<bool> { Ok(self.0.lock().unwrap().insert(k.clone(), r.clone()).is_none()) }
//! #   async fn update(&self, k: &StoreKey, c: &ChangeSet) -> Result<bool> {
//! #     Ok(self.0.lock().unwrap().get_mut(k).map(|r| { c.apply_to(&mut r.data); r.expires_at = c.expires_at; }).is_some()) }
//! #   async fn touch(&self, k: &StoreKey, t: Timestamp) -> Result<bool> { Ok(self.0.lock().unwrap().get_mut(k).map(|r| r.expires_at = t).is_some()) }
//! #   async fn delete(&self, k: &StoreKey) -> Result<bool> { Ok(self.0.lock().unwrap().remove(k).is_some()) }
//! #   async fn gc(&self) -> Result<u64> { Ok(0) }
//! #   fn capabilities(&self) -> Capabilities { Capabilities::new() }
//! # }
//!
//! #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
//! struct User { name: String }
//!
//! # async fn run() -> session_core::Result<()> {
//! let config = SessionConfig::from_json_str(r#"{ "secret": "keyboard cat" }"#)?;
//! let manager = SessionManager::new(Arc::new(MapStore::default()), config)?;
//!
//! // Request 1: log in.
//! let session = manager.session_from_cookie_header(None);
//! session.set("userInfo", &User { name: "Ada".into() }).await?;
//! let cookie = session.flush().await?.expect("new session with data: Set-Cookie");
//! let header = format!("{}={}", cookie.name(), cookie.value());
//!
//! // Request 2: the browser sends the cookie back.
//! let session = manager.session_from_cookie_header(Some(&header));
//! let user: Option<User> = session.get("userInfo").await?;
//! assert_eq!(user, Some(User { name: "Ada".into() }));
//! assert!(session.flush().await?.is_none(), "read-only: no write, no cookie");
//!
//! // Request 3: log out; the old cookie opens nothing any more.
//! let session = manager.session_from_cookie_header(Some(&header));
//! session.clear().await;
//! let removal = session.flush().await?.expect("the cookie is expired");
//! assert_eq!(removal.value(), "");
//! let replay = manager.session_from_cookie_header(Some(&header));
//! assert_eq!(replay.get::<User>("userInfo").await?, None);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run()).unwrap();
//! ```
//!
//! # Features
//!
//! | feature   | default | what it adds |
//! |-----------|---------|--------------|
//! | `bincode` | yes     | [`Codec::Bincode`] (bincode 2, pinned), the default codec; [`Codec::Json`] is always there |
//! | `toml`    | no      | [`SessionConfig::from_toml_str`] and `.toml` files |
//! | `metrics` | no      | counters and timings of sessions and store calls through the `metrics` facade (below) |
//! | `cookie-session` | no | `type = "cookie"`: the whole session in an encrypted cookie ([`client`], [`SessionManager::client_side`]) |
//! | `jwt-session` | no | `type = "jwt"`: the whole session in an HS256 JSON Web Token, as ThinkJS 3's `think-session-jwt` writes it |
//! | `encrypt-at-rest` | no | `encrypt_at_rest`: every stored value encrypted ([`at_rest::EncryptedStore`]) |
//!
//! Where the token travels (the cookie, a header, `Authorization: Bearer`) is the
//! configuration's `transport`: see [`transport`] and [`SessionManager::session_from_headers`].
//!
//! # Store calls: the bound, the spans and the metrics
//!
//! [`SessionManager::new`] puts a wrapper around the store (the one
//! [`SessionManager::store`] hands out). Every call through it:
//!
//! - is bounded by `store_timeout` (5 s by default; `gc` by `gc.interval`): one that does
//!   not answer in time fails with [`ErrorKind::Timeout`], its message naming the store
//!   type, the operation and the limit ("the `redis` store did not answer `load` within
//!   5s (`store_timeout`)"). The bound needs a tokio runtime with its timer; a call that
//!   answers at its first poll arms no timer.
//! - runs in a `tracing` span named `session_store`, at debug level, with the fields
//!   `store` (`config.store_type`) and `op` (the [`SessionStore`] method), never an id or
//!   a key.
//!
//! # Metrics
//!
//! With the `metrics` feature the manager records these through the `metrics` facade,
//! each labelled `store` with `config.store_type`. Its handles are registered when the
//! manager is built, with the recorder in force then (the global one, or a local one
//! around [`SessionManager::new`]): install the exporter before building the manager.
//!
//! | metric | kind | what it counts |
//! |--------|------|----------------|
//! | `session_created_total` | counter | sessions created in the store: new sessions, and the new record of a cycled id |
//! | `session_loaded_total` | counter | live records loaded (`load`, and `lock_and_load` when granted) |
//! | `session_updated_total` | counter | change sets and conditional writes that applied |
//! | `session_touched_total` | counter | expiries moved by `touch` |
//! | `session_cycled_total` | counter | ids cycled ([`Session::cycle_id`]) |
//! | `session_cleared_total` | counter | stored sessions deleted by [`Session::clear`] |
//! | `session_gc_removed_total` | counter | expired records removed by `gc` (the scheduler's runs included) |
//! | `session_conflicts_total` | counter | refused conditional writes: `update_if_unchanged` after another write, `create` over a live record |
//! | `session_store_errors_total` | counter, label `kind` | failed store calls, by [`ErrorKind`] in snake case (`backend`, `timeout`, `decode`, ...) |
//! | `session_store_call_seconds` | histogram, label `op` | the time of each store call, by operation |
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

// The unit tests share the doc example's store, which names this crate as its users do.
#[cfg(test)]
extern crate self as session_core;

#[cfg(any(feature = "cookie-session", feature = "encrypt-at-rest"))]
mod aead;
pub mod at_rest;
pub mod client;
mod codec;
mod config;
mod error;
mod expiry;
pub mod flash;
mod gc;
mod guard;
mod id;
mod lease;
mod lock;
mod manager;
mod record;
mod registry;
mod session;
mod set_cookie;
mod signing;
mod store;
mod telemetry;
#[cfg(test)]
mod test_store;
mod time;
pub mod transport;
mod user;
mod user_index;
pub mod web;
pub mod wire;

pub use codec::Codec;
pub use config::{
    CookieConfig, EncryptAtRestConfig, GcConfig, MAX_VALUE_SIZE_LIMIT, MIN_KEY_SECRET_LEN,
    MIN_LOCK_TTL, SameSite, Secrets, SessionConfig, deserialize_duration,
};
pub use error::{Error, ErrorKind, Hint, Report, Result, SetupProblem};
pub use gc::GcHandle;
pub use id::{DEFAULT_ID_LENGTH, MAX_ID_LENGTH, MIN_ID_LENGTH, SessionId, StoreKey};
pub use lock::{LOCK_TOKEN_LEN, LockMode, LockToken};
pub use manager::SessionManager;
pub use record::{ChangeSet, Data, Record, Revision};
pub use registry::{AdapterOptions, Registry};
pub use session::{REMEMBER_KEY, Session};
pub use set_cookie::set_cookie_header;
pub use signing::Signer;
pub use store::{Capabilities, SessionStore};
pub use time::Timestamp;
pub use user::{
    IndexedSession, MAX_LABEL_LEN, MAX_USER_ID_LEN, Owner, SessionHandle, UserId, UserSession,
    check_label,
};

/// Re-exported so store crates and applications share this crate's versions.
pub use async_trait::async_trait;
/// Re-exported: `Session::flush` returns a [`cookie::Cookie`].
pub use cookie;
/// Re-exported: secrets are [`secrecy::SecretString`]s.
pub use secrecy;
