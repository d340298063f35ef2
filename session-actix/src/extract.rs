//! The `Session` extractor and error responses.

use std::fmt;
use std::future::{Ready, ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError};
use session_core::web::{Reply, handler_error};

use crate::reply_response;

/// The request's session, as an actix-web extractor. Dereferences to
/// [`session_core::Session`], so `session.get(..)`, `session.set(..)` and
/// `session.clear()` work directly.
///
/// Needs [`SessionMiddleware`](crate::SessionMiddleware) around the route; without it the
/// request fails with [`MissingSessionMiddleware`] (a 500: a wiring mistake, not a client
/// error).
#[derive(Clone, Debug)]
pub struct Session(pub session_core::Session);

impl Deref for Session {
    type Target = session_core::Session;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl FromRequest for Session {
    type Error = MissingSessionMiddleware;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(
            request
                .extensions()
                .get::<session_core::Session>()
                .cloned()
                .map(Session)
                .ok_or(MissingSessionMiddleware),
        )
    }
}

/// The `Session` extractor ran on a route without
/// [`SessionMiddleware`](crate::SessionMiddleware).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingSessionMiddleware;

impl fmt::Display for MissingSessionMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the Session extractor needs session_actix::SessionMiddleware around the route")
    }
}

impl std::error::Error for MissingSessionMiddleware {}

impl ResponseError for MissingSessionMiddleware {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        tracing::error!("{self}");
        HttpResponse::InternalServerError().body(self.to_string())
    }
}

/// A session error as a handler's error type: `?` on any session call, and the client
/// gets a 500 without internal details; a 413 for a value over `max_value_size`, and a
/// `503 Service Unavailable` with `Retry-After`
/// ([`DEFAULT_RETRY_AFTER`](crate::DEFAULT_RETRY_AFTER)) for a lock not granted within
/// `lock_timeout` ([`ErrorKind::Locked`](session_core::ErrorKind::Locked)). After a lock
/// timeout, [`SessionMiddleware`](crate::SessionMiddleware) answers as its
/// [`OnLockTimeout`](crate::OnLockTimeout) says, whatever the handler returned.
#[derive(Debug)]
pub struct SessionError(pub session_core::Error);

impl From<session_core::Error> for SessionError {
    fn from(err: session_core::Error) -> Self {
        Self(err)
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl ResponseError for SessionError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(Reply::for_handler_error(&self.0).status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        reply_response(handler_error(&self.0))
    }
}
