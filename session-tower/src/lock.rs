//! The session lock in the web layer: [`SessionLock`], a layer that picks the lock mode of
//! the routes it wraps, and [`OnLockTimeout`], what a request that waited too long for the
//! lock answers.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{HeaderValue, Request, Response, StatusCode};
use session_core::{LockMode, Session};
use tower_layer::Layer;
use tower_service::Service;

use crate::BoxFuture;

/// The `Retry-After` of a `503 Service Unavailable` for a lock timeout, unless
/// [`SessionLayer::on_lock_timeout`](crate::SessionLayer::on_lock_timeout) says otherwise
/// (and always that of [`SessionError`](crate::SessionError)'s response): one second.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What the layer answers when a request's session lock was not granted within the
/// configuration's `lock_timeout` ([`ErrorKind::Locked`](session_core::ErrorKind::Locked)):
/// another request of the same session held it all along.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnLockTimeout {
    /// Replace the handler's response with an empty `503 Service Unavailable` carrying
    /// `Retry-After` (whole seconds, rounded up): the request did nothing, and trying it
    /// again later is likely to work. The default, with [`DEFAULT_RETRY_AFTER`].
    ServiceUnavailable {
        /// How long the client is asked to wait before it tries again.
        retry_after: Duration,
    },
    /// Treat it as any other store failure: [`OnStoreError`](crate::OnStoreError) decides.
    SameAsStoreError,
}

impl Default for OnLockTimeout {
    fn default() -> Self {
        Self::ServiceUnavailable {
            retry_after: DEFAULT_RETRY_AFTER,
        }
    }
}

/// An empty response with `status`.
pub(crate) fn empty<B: Default>(status: StatusCode) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    response
}

/// An empty `503 Service Unavailable` asking the client to retry after `retry_after`.
pub(crate) fn service_unavailable<B: Default>(retry_after: Duration) -> Response<B> {
    let mut response = empty(StatusCode::SERVICE_UNAVAILABLE);
    // `Retry-After` counts whole seconds: round up, so that a client never comes back
    // before the time asked for.
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// Runs [`Session::set_lock_mode`] if it finishes without waiting, which it does unless
/// another task is using the session at that very moment (a session the layer has just
/// made has been seen by no other task). `None` if it would have to wait.
///
/// Choosing the mode here, rather than in the response future, lets the layers hand the
/// request to the inner service as soon as it arrives, without a clone of that service.
pub(crate) fn set_lock_mode_now(
    session: &Session,
    mode: LockMode,
) -> Option<session_core::Result<()>> {
    let future = pin!(session.set_lock_mode(mode));
    match future.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => Some(result),
        Poll::Pending => None,
    }
}

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
    ResBody: Default + Send + 'static,
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
            return answer(empty(StatusCode::INTERNAL_SERVER_ERROR));
        };
        let mode = self.mode;
        match set_lock_mode_now(&session, mode) {
            Some(Ok(())) => Box::pin(self.inner.call(request)),
            Some(Err(err)) => answer(refused(&err)),
            None => {
                // Another task is using the session right now (a middleware between the
                // layers that spawned work on it): wait for it, with the service that
                // `poll_ready` readied, and leave a clone in its place.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move {
                    match session.set_lock_mode(mode).await {
                        Ok(()) => inner.call(request).await,
                        Err(err) => Ok(refused(&err)),
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

/// The answer to a request whose lock mode could not be set: a server-side mistake.
pub(crate) fn refused<B: Default>(err: &session_core::Error) -> Response<B> {
    tracing::error!(error = %err, "cannot set the session lock mode of the request");
    empty(StatusCode::INTERNAL_SERVER_ERROR)
}
