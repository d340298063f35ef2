//! [`SessionLock`], a layer that picks the session lock mode of the routes it wraps.

use std::task::{Context, Poll};

use http::{Request, Response};
use session_core::web::{Reply, lock_mode_refused, set_lock_mode_now};
use session_core::{LockMode, Session};
use tower_layer::Layer;
use tower_service::Service;

use crate::{BoxFuture, reply_response};

/// A layer that sets the session lock mode of the requests it serves, before the inner
/// service runs: for routes whose needs differ from the configuration's `lock`, with
/// axum's `route_layer`. It goes inside [`SessionLayer`](crate::SessionLayer), which puts
/// the session in the request.
///
/// A read-only route never waits for the lock, even while another request of the session
/// holds it, and is refused writes ([`ErrorKind::ReadOnly`](session_core::ErrorKind::ReadOnly),
/// a 500 through [`SessionError`](crate::SessionError)). A route that must not interleave
/// with other requests of its session takes [`LockMode::Exclusive`] whatever the
/// configuration says.
///
/// If the mode cannot be set ([`LockMode::Exclusive`] on a store without locks, or no
/// [`SessionLayer`](crate::SessionLayer) around), the request is answered with an empty
/// `500 Internal Server Error` and the reason logged: a wiring mistake, not a client error.
///
/// ```
/// use std::sync::Arc;
/// use axum::{Router, routing::get};
/// use session_core::{LockMode, SessionConfig, SessionManager};
/// use session_memory::MemoryStore;
/// use session_tower::{Session, SessionError, SessionLayer, SessionLock};
///
/// async fn cart(session: Session) -> Result<String, SessionError> {
///     Ok(session.get::<String>("cart").await?.unwrap_or_default())
/// }
///
/// # fn build() -> session_core::Result<Router> {
/// let config = SessionConfig::from_json_str(r#"{"lock": true}"#)?;
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), config)?;
/// let app: Router = Router::new()
///     // Reads only: answers even while a checkout of the same session holds the lock.
///     .route("/cart", get(cart).route_layer(SessionLock::new(LockMode::ReadOnly)))
///     .layer(SessionLayer::new(manager));
/// # Ok(app) }
/// # build().unwrap(); // ok: doc example
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLock {
    mode: LockMode,
}

impl SessionLock {
    /// A layer that gives the requests it serves `mode`.
    pub const fn new(mode: LockMode) -> Self {
        Self { mode }
    }

    /// The mode it sets.
    pub const fn mode(&self) -> LockMode {
        self.mode
    }
}

impl<S> Layer<S> for SessionLock {
    type Service = SessionLockService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionLockService {
            inner,
            mode: self.mode,
        }
    }
}

/// The service [`SessionLock`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct SessionLockService<S> {
    inner: S,
    mode: LockMode,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionLockService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    ReqBody: Send + 'static,
    ResBody: Default + From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let Some(session) = request.extensions().get::<Session>().cloned() else {
            tracing::error!(
                "session_tower::SessionLock found no session in the request: it needs \
                 SessionLayer around it"
            );
            return answer(reply_response(Reply::INTERNAL_SERVER_ERROR));
        };
        let mode = self.mode;
        match set_lock_mode_now(&session, mode) {
            Some(Ok(())) => Box::pin(self.inner.call(request)),
            Some(Err(err)) => answer(reply_response(lock_mode_refused(&err))),
            None => {
                // Another task is using the session right now (a middleware between the
                // layers that spawned work on it): wait for it, with the service that
                // `poll_ready` readied, and leave a clone in its place.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move {
                    match session.set_lock_mode(mode).await {
                        Ok(()) => inner.call(request).await,
                        Err(err) => Ok(reply_response(lock_mode_refused(&err))),
                    }
                })
            }
        }
    }
}

/// `response`, as a layer's future.
pub(crate) fn answer<B: Send + 'static, E>(
    response: Response<B>,
) -> BoxFuture<Result<Response<B>, E>> {
    // An `async` block rather than `ready`: it holds no error, so it is `Send` whatever the
    // inner service's error type is.
    Box::pin(async move { Ok(response) })
}
