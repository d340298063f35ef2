//! [`SessionLock`], a middleware that picks the session lock mode of the routes it wraps.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::HttpMessage as _;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use session_core::web::{Reply, lock_mode_refused, set_lock_mode_now};
use session_core::{LockMode, Session};

use crate::{LocalBoxFuture, reply_response};

/// A middleware that sets the session lock mode of the requests it serves, before the
/// inner service runs: for resources or scopes whose needs differ from the
/// configuration's `lock` (`Resource::wrap`, `Scope::wrap`). It goes inside
/// [`SessionMiddleware`](crate::SessionMiddleware), which puts the session in the request:
/// in actix-web, the middleware wrapped last around the `App` runs first.
///
/// A read-only route never waits for the lock, even while another request of the session
/// holds it, and is refused writes ([`ErrorKind::ReadOnly`](session_core::ErrorKind::ReadOnly),
/// a 500 through [`SessionError`](crate::SessionError)). A route that must not interleave
/// with other requests of its session takes [`LockMode::Exclusive`] whatever the
/// configuration says.
///
/// If the mode cannot be set ([`LockMode::Exclusive`] on a store without locks, or no
/// [`SessionMiddleware`](crate::SessionMiddleware) around), the request is answered with
/// an empty `500 Internal Server Error` and the reason logged: a wiring mistake, not a
/// client error.
///
/// ```
/// use std::sync::Arc;
/// use actix_web::{App, web};
/// use session_actix::{Session, SessionError, SessionLock, SessionMiddleware};
/// use session_core::{LockMode, SessionConfig, SessionManager};
/// use session_memory::MemoryStore;
///
/// async fn cart(session: Session) -> Result<String, SessionError> {
///     Ok(session.get::<String>("cart").await?.unwrap_or_default())
/// }
///
/// # fn build() -> session_core::Result<()> {
/// let config = SessionConfig::from_json_str(r#"{"lock": true}"#)?;
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), config)?;
/// let app = App::new()
///     // Reads only: answers even while a checkout of the same session holds the lock.
///     .service(
///         web::resource("/cart")
///             .wrap(SessionLock::new(LockMode::ReadOnly))
///             .route(web::get().to(cart)),
///     )
///     .wrap(SessionMiddleware::new(manager));
/// # drop(app); Ok(()) }
/// # build().unwrap(); // ok: doc example
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLock {
    mode: LockMode,
}

impl SessionLock {
    /// A middleware that gives the requests it serves `mode`.
    pub const fn new(mode: LockMode) -> Self {
        Self { mode }
    }

    /// The mode it sets.
    pub const fn mode(&self) -> LockMode {
        self.mode
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionLock
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionLockService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionLockService {
            service: Rc::new(service),
            mode: self.mode,
        }))
    }
}

/// The service [`SessionLock`] wraps around an inner service.
#[derive(Debug)]
pub struct SessionLockService<S> {
    service: Rc<S>,
    mode: LockMode,
}

impl<S, B> Service<ServiceRequest> for SessionLockService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let refuse = |request: ServiceRequest, reply: Reply| {
            request
                .into_response(reply_response(reply))
                .map_into_right_body()
        };
        let Some(session) = request.extensions().get::<Session>().cloned() else {
            tracing::error!(
                "session_actix::SessionLock found no session in the request: it needs \
                 SessionMiddleware around it"
            );
            return Box::pin(ready(Ok(refuse(request, Reply::INTERNAL_SERVER_ERROR))));
        };
        let mode = self.mode;
        match set_lock_mode_now(&session, mode) {
            Some(Ok(())) => {
                let handled = self.service.call(request);
                Box::pin(async move { Ok(handled.await?.map_into_left_body()) })
            }
            Some(Err(err)) => Box::pin(ready(Ok(refuse(request, lock_mode_refused(&err))))),
            None => {
                // Another task is using the session right now (a middleware between the
                // two that spawned work on it): wait for it.
                let service = Rc::clone(&self.service);
                Box::pin(async move {
                    match session.set_lock_mode(mode).await {
                        Ok(()) => Ok(service.call(request).await?.map_into_left_body()),
                        Err(err) => Ok(refuse(request, lock_mode_refused(&err))),
                    }
                })
            }
        }
    }
}
