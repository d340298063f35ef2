//! Sessions for actix-web applications: the stores, configuration and guarantees of
//! `session-tower`, on actix-web.
//!
//! [`SessionMiddleware`] gives every request a lazily loaded [`session_core::Session`]
//! built from its `Cookie` header, and after the handler has produced its response,
//! flushes the session and adds `Set-Cookie` when needed (a new session with data, a
//! cycled id, a cleared session, a refreshed rolling expiry), before the response leaves.
//! A client that got a 2xx can rely on the session write having happened.
//!
//! A store failure, in the load or in the flush, turns the response into a
//! `500 Internal Server Error` by default ([`OnStoreError`]), logged with `tracing`; the
//! handler also sees the error itself from `session.get(..)`. Handlers take a [`Session`]
//! argument, and can return [`SessionError`] to turn a store error into a 500 with `?`:
//!
//! ```
//! use std::sync::Arc;
//! use actix_web::{App, web};
//! use session_actix::{Session, SessionError, SessionMiddleware};
//! use session_core::{SessionConfig, SessionManager};
//! use session_memory::MemoryStore;
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
//! # #[actix_web::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = SessionManager::new(Arc::new(MemoryStore::new()), SessionConfig::default())?;
//! let app = App::new()
//!     .route("/", web::get().to(greet))
//!     .route("/login", web::post().to(login))
//!     .route("/logout", web::post().to(logout))
//!     .wrap(SessionMiddleware::new(manager));
//! // In a real application: HttpServer::new(move || App::new()...).bind(..)?.run().await
//! let app = actix_web::test::init_service(app).await;
//! let request = actix_web::test::TestRequest::post().uri("/login").to_request();
//! let response = actix_web::test::call_service(&app, request).await;
//! assert!(response.headers().contains_key("set-cookie"));
//! # Ok(()) }
//! ```
//!
//! # Same-session concurrency
//!
//! Requests of one session run side by side unless the configuration's `lock` is on: then
//! each holds the session's lock from its first use of the session until the flush, and
//! the others wait (up to `lock_timeout`). [`SessionMiddleware::lock_mode`] sets the mode
//! for every request the middleware serves, and [`SessionLock`] (wrapped around a
//! resource or scope) for some routes, typically [`LockMode::ReadOnly`] for routes that
//! only read, which never wait. A request whose lock was not granted in time gets
//! `503 Service Unavailable` with `Retry-After` ([`OnLockTimeout`]). Without the lock,
//! [`Session::update`](session_core::Session::update) gives atomic read-modify-writes of
//! one key.
//!
//! # Threads
//!
//! actix-web runs each worker on a runtime of its own thread. A [`SessionManager`] is
//! cheap to clone and may be shared by all of them (build it once, before
//! `HttpServer::new`): the stores' connections work from any worker.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, SET_COOKIE};
use actix_web::{HttpMessage as _, HttpResponse};
use session_core::web::{Finish, Middleware, Reply};
use session_core::{LockMode, SessionManager};

mod extract;
mod lock;

pub use extract::{MissingSessionMiddleware, Session, SessionError};
pub use lock::{SessionLock, SessionLockService};
/// The answers to failures, shared with every integration: see [`session_core::web`].
pub use session_core::web::{DEFAULT_RETRY_AFTER, OnLockTimeout, OnStoreError};

/// The actix-web middleware that manages sessions (`App::wrap`). Cheap to clone.
#[derive(Clone, Debug)]
pub struct SessionMiddleware {
    middleware: Middleware,
}

impl SessionMiddleware {
    /// Middleware over `manager`, with [`OnStoreError::InternalServerError`],
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
    /// # use session_actix::{OnLockTimeout, SessionMiddleware};
    /// # fn wrap(middleware: SessionMiddleware) -> SessionMiddleware {
    /// middleware.on_lock_timeout(OnLockTimeout::ServiceUnavailable {
    ///     retry_after: Duration::from_secs(3),
    /// })
    /// # }
    /// ```
    #[must_use]
    pub fn on_lock_timeout(mut self, policy: OnLockTimeout) -> Self {
        self.middleware = self.middleware.on_lock_timeout(policy);
        self
    }

    /// Sets the lock mode of every request the middleware serves, overriding the
    /// configuration's `lock` ([`LockMode::Exclusive`] for `true`, [`LockMode::Off`] for
    /// `false`); a [`SessionLock`] inside it overrides it again for its routes.
    ///
    /// [`LockMode::Exclusive`] needs a store with locks: over one without, every request
    /// is answered with a 500 (and the reason logged).
    #[must_use]
    pub fn lock_mode(mut self, mode: LockMode) -> Self {
        self.middleware = self.middleware.lock_mode(mode);
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionService {
            service: Rc::new(service),
            middleware: self.middleware.clone(),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an inner service.
#[derive(Debug)]
pub struct SessionService<S> {
    service: Rc<S>,
    middleware: Middleware,
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<S, B> Service<ServiceRequest> for SessionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let headers = request.headers();
        let session = match self
            .middleware
            .start(|name| headers.get_all(name).map(HeaderValue::as_bytes))
        {
            Ok(session) => session,
            Err(reply) => {
                let response = request.into_response(reply_response(reply));
                return Box::pin(ready(Ok(response.map_into_right_body())));
            }
        };
        request.extensions_mut().insert(session.clone());
        let policy = self.middleware.policy();
        let handled = self.service.call(request);
        Box::pin(async move {
            let mut response = handled.await?;
            Ok(match policy.finish(session).await {
                Finish::Respond {
                    set_cookie: None,
                    token: None,
                } => response.map_into_left_body(),
                Finish::Respond {
                    token: Some(token),
                    set_cookie: None,
                } => {
                    let name = HeaderName::try_from(token.name());
                    match (name, HeaderValue::try_from(token.into_value())) {
                        (Ok(name), Ok(value)) => {
                            response.headers_mut().insert(name, value);
                            response.map_into_left_body()
                        }
                        _ => replace(response, Reply::INTERNAL_SERVER_ERROR),
                    }
                }
                Finish::Respond {
                    set_cookie: Some(value),
                    ..
                } => match HeaderValue::try_from(value) {
                    Ok(value) => {
                        response.headers_mut().append(SET_COOKIE, value);
                        response.map_into_left_body()
                    }
                    // `Finish` promises a valid header value; should it not be one, the
                    // client must not believe its session was saved.
                    Err(_) => replace(response, Reply::INTERNAL_SERVER_ERROR),
                },
                Finish::Replace(reply) => replace(response, reply),
            })
        })
    }
}

/// `response` replaced by the empty `reply`, for the same request.
fn replace<B>(response: ServiceResponse<B>, reply: Reply) -> ServiceResponse<EitherBody<B>> {
    let (request, _) = response.into_parts();
    ServiceResponse::new(request, reply_response(reply)).map_into_right_body()
}

/// The response of `reply`: its status, `Retry-After` and body (with its content type).
pub(crate) fn reply_response(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    if let Some(seconds) = reply.retry_after() {
        response.insert_header((RETRY_AFTER, HeaderValue::from(seconds)));
    }
    match reply.content_type() {
        Some(content_type) => response
            .insert_header((CONTENT_TYPE, HeaderValue::from_static(content_type)))
            .body(reply.into_body()),
        None => response.finish(),
    }
}
