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
use http::header::{CONTENT_TYPE, HeaderName, RETRY_AFTER, SET_COOKIE};
use http::{HeaderValue, Request, Response, StatusCode};
use session_core::web::{Finish, Middleware, Policy, Reply};
use session_core::{LockMode, SessionManager};
use tower_layer::Layer;
use tower_service::Service;

#[cfg(feature = "axum")]
mod extract;
mod lock;

#[cfg(feature = "axum")]
pub use extract::{MissingSessionLayer, Session, SessionError};
pub use lock::{SessionLock, SessionLockService};
/// The answers to failures, shared with every integration: see [`session_core::web`].
pub use session_core::web::{DEFAULT_RETRY_AFTER, OnLockTimeout, OnStoreError};

/// The tower layer that manages sessions. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SessionLayer {
    middleware: Middleware,
}

impl SessionLayer {
    /// A layer over `manager`, with [`OnStoreError::InternalServerError`],
    /// [`OnLockTimeout::ServiceUnavailable`] and the lock mode of the configuration's
    /// `lock`.
    pub fn new(manager: SessionManager) -> Self {
        Self {
            middleware: Middleware::new(manager),
        }
    }

    /// Sets what happens on a store failure.
    #[must_use]
    pub fn on_store_error(mut self, policy: OnStoreError) -> Self {
        self.middleware = self.middleware.on_store_error(policy);
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
        self.middleware = self.middleware.on_lock_timeout(policy);
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
        self.middleware = self.middleware.lock_mode(mode);
        self
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            middleware: self.middleware.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    middleware: Middleware,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    ResBody: Default + From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let headers = request.headers();
        let session = match self
            .middleware
            .start(|name| headers.get_all(name).iter().map(HeaderValue::as_bytes))
        {
            Ok(session) => session,
            Err(reply) => return lock::answer(reply_response(reply)),
        };
        request.extensions_mut().insert(session.clone());
        // Nothing here waits before the inner service takes the request, so the service
        // that `poll_ready` drove to readiness takes it now: no clone of the inner service
        // per request, and only its future is kept until the response.
        let policy = self.middleware.policy();
        // `and_then` keeps either the inner service's future or the flush's, never both: an
        // `async` block would keep room for the first beside the second, and the future
        // is allocated for every request.
        Box::pin(
            self.inner
                .call(request)
                .and_then(move |response| apply(session, policy, response)),
        )
    }
}

/// Flushes `session`, then adds `Set-Cookie` to `response` or replaces it, as `policy`
/// says.
///
/// Not an `async fn`: one would copy its arguments into its body, and keep room for both.
/// The flush's future is made here, not when the request arrives: made earlier, it would
/// take its full size beside the inner service's future.
#[allow(clippy::manual_async_fn)]
fn apply<B: Default + From<String>, E>(
    session: session_core::Session,
    policy: Policy,
    mut response: Response<B>,
) -> impl Future<Output = Result<Response<B>, E>> {
    async move {
        Ok(match policy.finish(session).await {
            Finish::Respond {
                set_cookie: None,
                token: None,
            } => response,
            Finish::Respond {
                set_cookie: Some(value),
                ..
            } => match HeaderValue::try_from(value) {
                Ok(value) => {
                    response.headers_mut().append(SET_COOKIE, value);
                    response
                }
                // `Finish` promises a valid header value; should it not be one, the client
                // must not believe its session was saved.
                Err(_) => reply_response(Reply::INTERNAL_SERVER_ERROR),
            },
            Finish::Respond {
                token: Some(token), ..
            } => {
                let name = HeaderName::try_from(token.name());
                match (name, HeaderValue::try_from(token.into_value())) {
                    (Ok(name), Ok(value)) => {
                        response.headers_mut().insert(name, value);
                        response
                    }
                    _ => reply_response(Reply::INTERNAL_SERVER_ERROR),
                }
            }
            Finish::Replace(reply) => reply_response(reply),
        })
    }
}

/// The response of `reply`: its status, `Retry-After` and body (with its content type).
pub(crate) fn reply_response<B: Default + From<String>>(reply: Reply) -> Response<B> {
    let status = StatusCode::from_u16(reply.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = reply.content_type();
    let retry_after = reply.retry_after();
    let mut response = match content_type {
        Some(_) => Response::new(B::from(reply.into_body())),
        None => Response::new(B::default()),
    };
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
