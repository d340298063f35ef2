//! Sessions for tower and axum applications.
//!
//! [`SessionLayer`] gives every request a lazily loaded [`session_core::Session`] built
//! from its `Cookie` header, and after the handler has produced its response, flushes the
//! session and adds `Set-Cookie` when needed (a new session with data, a cycled id, a
//! cleared session, a refreshed rolling expiry), before the response leaves. A client that
//! got a 2xx can rely on the session write having happened.
//!
//! A store failure, in the load or in the flush, turns the response into a
//! `500 Internal Server Error` by default ([`OnStoreError`]), logged with `tracing`; the
//! handler also sees the error itself from `session.get(..)`.
//!
//! With the `axum` feature (default), handlers take a [`Session`] argument, and can return
//! [`SessionError`] to turn a store error into a 500 with `?`:
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use session_core::{SessionConfig, SessionManager};
//! use session_memory::MemoryStore;
//! use session_tower::{Session, SessionError, SessionLayer};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct User { name: String }
//!
//! async fn greet(session: Session) -> Result<String, SessionError> {
//!     // ThinkJS: this.session('userInfo')
//!     let user: Option<User> = session.get("userInfo").await?;
//!     Ok(match user {
//!         Some(user) => format!("Hello, {}", user.name),
//!         None => "Hello, stranger".to_owned(),
//!     })
//! }
//!
//! async fn login(session: Session) -> Result<&'static str, SessionError> {
//!     session.cycle_id().await?; // a new id at login: no session fixation
//!     // ThinkJS: this.session('userInfo', user)
//!     session.set("userInfo", &User { name: "Ada".into() }).await?;
//!     Ok("logged in")
//! }
//!
//! async fn logout(session: Session) -> &'static str {
//!     // ThinkJS: this.session(null)
//!     session.clear().await;
//!     "logged out"
//! }
//!
//! # fn build() -> session_core::Result<Router> {
//! let manager = SessionManager::new(Arc::new(MemoryStore::new()), SessionConfig::default())?;
//! let app: Router = Router::new()
//!     .route("/", get(greet))
//!     .route("/login", get(login))
//!     .route("/logout", get(logout))
//!     .layer(SessionLayer::new(manager));
//! # Ok(app) }
//! # build().unwrap();
//! ```
//!
//! # Same-session concurrency
//!
//! Requests of one session run side by side unless the configuration's `lock` is on: then
//! each holds the session's lock from its first use of the session until the flush, and
//! the others wait (up to `lock_timeout`). [`SessionLayer::lock_mode`] sets the mode for
//! every request the layer serves, and [`SessionLock`] (with axum's `route_layer`) for
//! single routes, typically [`LockMode::ReadOnly`] for routes that only read, which never
//! wait. A request whose lock was not granted in time gets `503 Service Unavailable` with
//! `Retry-After` ([`OnLockTimeout`]). Without the lock,
//! [`Session::update`](session_core::Session::update) gives atomic read-modify-writes of
//! one key.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `axum`  | yes     | the [`Session`] extractor and [`SessionError`] responses |
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::TryFutureExt as _;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, Response, StatusCode};
use session_core::{ErrorKind, LockMode, SessionManager};
use tower_layer::Layer;
use tower_service::Service;

#[cfg(feature = "axum")]
mod extract;
mod lock;

#[cfg(feature = "axum")]
pub use extract::{MissingSessionLayer, Session, SessionError};
pub use lock::{DEFAULT_RETRY_AFTER, OnLockTimeout, SessionLock, SessionLockService};

/// What the layer does when the store fails while loading or flushing a session.
///
/// A lock timeout has a policy of its own, [`OnLockTimeout`]; a lease on the lock that
/// lapsed ([`ErrorKind::LockLost`]) or an update that kept meeting concurrent changes
/// ([`ErrorKind::Conflict`]) is a store failure like any other: the changes were not
/// written, and the response must not say they were.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnStoreError {
    /// Replace the handler's response with an empty `500 Internal Server Error` (default):
    /// a client must not believe a write happened when it did not.
    #[default]
    InternalServerError,
    /// Log the error and keep the handler's response (for handlers that deal with store
    /// failures themselves).
    KeepResponse,
}

/// The layer's answers to failures, copied into each request's future.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Policy {
    on_error: OnStoreError,
    on_lock_timeout: OnLockTimeout,
}

/// The tower layer that manages sessions. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SessionLayer {
    manager: SessionManager,
    policy: Policy,
    lock_mode: Option<LockMode>,
}

impl SessionLayer {
    /// A layer over `manager`, with [`OnStoreError::InternalServerError`],
    /// [`OnLockTimeout::ServiceUnavailable`] and the lock mode of the configuration's
    /// `lock`.
    pub fn new(manager: SessionManager) -> Self {
        Self {
            manager,
            policy: Policy::default(),
            lock_mode: None,
        }
    }

    /// Sets what happens on a store failure.
    #[must_use]
    pub fn on_store_error(mut self, policy: OnStoreError) -> Self {
        self.policy.on_error = policy;
        self
    }

    /// Sets what a request answers when its session's lock was not granted within the
    /// configuration's `lock_timeout`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use session_tower::{OnLockTimeout, SessionLayer};
    /// # fn wrap(layer: SessionLayer) -> SessionLayer {
    /// layer.on_lock_timeout(OnLockTimeout::ServiceUnavailable {
    ///     retry_after: Duration::from_secs(3),
    /// })
    /// # }
    /// ```
    #[must_use]
    pub fn on_lock_timeout(mut self, policy: OnLockTimeout) -> Self {
        self.policy.on_lock_timeout = policy;
        self
    }

    /// Sets the lock mode of every request the layer serves, overriding the
    /// configuration's `lock` ([`LockMode::Exclusive`] for `true`, [`LockMode::Off`] for
    /// `false`); a [`SessionLock`] inside the layer overrides it again for its routes.
    ///
    /// [`LockMode::Exclusive`] needs a store with locks: over one without, every request
    /// is answered with a 500 (and the reason logged).
    #[must_use]
    pub fn lock_mode(mut self, mode: LockMode) -> Self {
        if mode == LockMode::Exclusive && !self.manager.store().capabilities().lock {
            tracing::error!(
                "SessionLayer::lock_mode(LockMode::Exclusive) over a store that keeps no \
                 session locks: every request will fail"
            );
        }
        // The configuration's own mode is what every session starts with: nothing to set.
        self.lock_mode =
            (mode != LockMode::from_config(self.manager.config().lock)).then_some(mode);
        self
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            manager: self.manager.clone(),
            policy: self.policy,
            lock_mode: self.lock_mode,
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    manager: SessionManager,
    policy: Policy,
    lock_mode: Option<LockMode>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let session = self.manager.session(
            request
                .headers()
                .get_all(COOKIE)
                .iter()
                .map(HeaderValue::as_bytes),
        );
        if let Some(mode) = self.lock_mode {
            // No other task has seen this session, so setting its mode never waits.
            match lock::set_lock_mode_now(&session, mode) {
                Some(Ok(())) => {}
                Some(Err(err)) => return lock::answer(lock::refused(&err)),
                None => {
                    let err = session_core::Error::new(
                        ErrorKind::Unsupported,
                        "a session made for this request was busy before the request began",
                    );
                    return lock::answer(lock::refused(&err));
                }
            }
        }
        request.extensions_mut().insert(session.clone());
        // Nothing here waits before the inner service takes the request, so the service
        // that `poll_ready` drove to readiness takes it now: no clone of the inner service
        // per request, and only its future is kept until the response.
        let policy = self.policy;
        // `and_then` keeps either the inner service's future or the flush's, never both: an
        // `async` block would keep room for the first beside the second, and the future
        // is allocated for every request.
        Box::pin(
            self.inner
                .call(request)
                .and_then(move |response| finish(session, response, policy)),
        )
    }
}

/// After the handler: checks the session for a failed load, flushes it, and adds
/// `Set-Cookie` to the response, or replaces the response as `policy` says on a failure.
///
/// Not an `async fn`: one would copy its arguments into its body, and keep room for both
/// (1,032 bytes instead of 872 for the whole request future).
#[allow(clippy::manual_async_fn)]
fn finish<B: Default, E>(
    session: session_core::Session,
    mut response: Response<B>,
    policy: Policy,
) -> impl Future<Output = Result<Response<B>, E>> {
    async move {
        // Logged now rather than kept across the flush: the error would take room in this
        // future, allocated for every request. Only its kind is kept.
        let load_failed = session.store_error().await.map(|err| {
            log_failure(&err, "while loading the session");
            err.kind()
        });
        let flushed = session.flush().await;
        // After a failed load, the flush's outcome (even a cookie) is not used.
        let failure = load_failed.or_else(|| match flushed {
            Err(err) => {
                log_failure(&err, "while saving the session");
                Some(err.kind())
            }
            Ok(Some(cookie)) => {
                match HeaderValue::try_from(session_core::set_cookie_header(&cookie)) {
                    Ok(value) => {
                        response.headers_mut().append(SET_COOKIE, value);
                        None
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "session cookie is not a valid header value");
                        Some(ErrorKind::Encode)
                    }
                }
            }
            Ok(None) => None,
        });
        Ok(match (failure, policy) {
            (None, _) => response,
            (
                Some(ErrorKind::Locked),
                Policy {
                    on_lock_timeout: OnLockTimeout::ServiceUnavailable { retry_after },
                    ..
                },
            ) => lock::service_unavailable(retry_after),
            (
                Some(_),
                Policy {
                    on_error: OnStoreError::InternalServerError,
                    ..
                },
            ) => lock::empty(StatusCode::INTERNAL_SERVER_ERROR),
            (Some(_), _) => response,
        })
    }
}

/// Logs a session failure: a lock timeout is contention, worth a warning; anything else
/// is an error.
fn log_failure(err: &session_core::Error, when: &str) {
    if err.kind() == ErrorKind::Locked {
        tracing::warn!(error = %err, "the session's lock was not granted in time {when}");
    } else {
        tracing::error!(error = %err, "session store failed {when}");
    }
}
