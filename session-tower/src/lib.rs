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

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, Response, StatusCode};
use session_core::SessionManager;
use tower_layer::Layer;
use tower_service::Service;

#[cfg(feature = "axum")]
mod extract;
#[cfg(feature = "axum")]
pub use extract::{MissingSessionLayer, Session, SessionError};

/// What the layer does when the store fails while loading or flushing a session.
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

/// The tower layer that manages sessions. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SessionLayer {
    manager: SessionManager,
    on_error: OnStoreError,
}

impl SessionLayer {
    /// A layer over `manager`, with [`OnStoreError::InternalServerError`].
    pub fn new(manager: SessionManager) -> Self {
        Self {
            manager,
            on_error: OnStoreError::default(),
        }
    }

    /// Sets what happens on a store failure.
    #[must_use]
    pub fn on_store_error(mut self, policy: OnStoreError) -> Self {
        self.on_error = policy;
        self
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            manager: self.manager.clone(),
            on_error: self.on_error,
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    manager: SessionManager,
    on_error: OnStoreError,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
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
        request.extensions_mut().insert(session.clone());
        // Nothing here waits before the inner service takes the request, so the service
        // that `poll_ready` drove to readiness takes it now: no clone of the inner service
        // per request, and only its future is kept until the response.
        let handled = self.inner.call(request);
        let on_error = self.on_error;
        Box::pin(async move {
            let mut response = handled.await?;
            // Logged now rather than kept across the flush: the error would take room in
            // this future, allocated for every request.
            let load_failed = match session.store_error().await {
                Some(err) => {
                    tracing::error!(error = %err, "session store failed while loading the session");
                    true
                }
                None => false,
            };
            let flushed = session.flush().await;
            // After a failed load, the flush's outcome (even a cookie) is not used.
            let failure = load_failed
                || match flushed {
                    Err(err) => {
                        tracing::error!(error = %err, "session store failed while saving the session");
                        true
                    }
                    Ok(Some(cookie)) => {
                        match HeaderValue::try_from(session_core::set_cookie_header(&cookie)) {
                            Ok(value) => {
                                response.headers_mut().append(SET_COOKIE, value);
                                false
                            }
                            Err(err) => {
                                tracing::error!(error = %err, "session cookie is not a valid header value");
                                true
                            }
                        }
                    }
                    Ok(None) => false,
                };
            if failure && on_error == OnStoreError::InternalServerError {
                let mut failed = Response::new(ResBody::default());
                *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                return Ok(failed);
            }
            Ok(response)
        })
    }
}
