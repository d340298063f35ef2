//! The axum side: the `Session` extractor and error responses.

use std::fmt;
use std::ops::Deref;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use session_core::web::handler_error;

/// The request's session, as an axum extractor. Dereferences to
/// [`session_core::Session`], so `session.get(..)`, `session.set(..)` and
/// `session.clear()` work directly.
///
/// Needs [`SessionLayer`](crate::SessionLayer) around the route; without it the request
/// fails with [`MissingSessionLayer`] (a 500: a wiring mistake, not a client error).
#[derive(Clone, Debug)]
pub struct Session(pub session_core::Session);

impl Deref for Session {
    type Target = session_core::Session;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<session_core::Session>()
            .cloned()
            .map(Session)
            .ok_or(MissingSessionLayer)
    }
}

/// The `Session` extractor ran on a route without [`SessionLayer`](crate::SessionLayer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingSessionLayer;

impl fmt::Display for MissingSessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the Session extractor needs session_tower::SessionLayer around the route")
    }
}

impl std::error::Error for MissingSessionLayer {}

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

/// A session error as a handler's error type: `?` on any session call, and the client
/// gets a 500 without internal details; a 413 for a value over `max_value_size`, and a
/// `503 Service Unavailable` with `Retry-After` ([`DEFAULT_RETRY_AFTER`](crate::DEFAULT_RETRY_AFTER)) for a lock not
/// granted within `lock_timeout` ([`ErrorKind::Locked`](session_core::ErrorKind::Locked)).
/// After a lock timeout, [`SessionLayer`](crate::SessionLayer) answers as its
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

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        crate::reply_response(handler_error(&self.0))
    }
}
