//! The request path of a web framework integration, without the framework: what
//! `session-tower` and `session-actix` both do around a handler, written once.
//!
//! A [`Middleware`] is built from a [`SessionManager`] and the answers to failures
//! ([`OnStoreError`], [`OnLockTimeout`]). For each request, [`Middleware::start`] makes the
//! session from the request's `Cookie` headers (in the lock mode asked for); after the
//! handler, [`Middleware::finish`] checks the load, flushes, and says what to do with the
//! handler's response: send it, with a `Set-Cookie` value or without, or replace it with
//! a [`Reply`] (a status, maybe `Retry-After`, maybe a body). An integration only moves
//! headers, statuses and bodies between this and its framework's types.
//!
//! ```
//! use std::sync::Arc;
//! use session_core::web::{Finish, Middleware};
//! use session_core::{SessionConfig, SessionManager};
//! use session_memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> session_core::Result<()> {
//! let manager = SessionManager::new(Arc::new(MemoryStore::new()), SessionConfig::default())?;
//! let middleware = Middleware::new(manager);
//!
//! // A request without a cookie; its handler stores something.
//! let session = middleware.start(|_| std::iter::empty()).expect("no lock mode to set");
//! session.set("n", &1u64).await?;
//! match middleware.finish(session).await {
//!     Finish::Respond { set_cookie, .. } => {
//!         let header = set_cookie.expect("a new session with data sends its cookie");
//!         assert!(header.starts_with("thinkjs="));
//!     }
//!     Finish::Replace(reply) => panic!("the store failed: answer {}", reply.status()),
//! }
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::transport::Transport;
use crate::{Error, ErrorKind, LockMode, Session, SessionManager, set_cookie_header};

/// The `Retry-After` of a `503 Service Unavailable` for a lock timeout, unless the
/// integration is told otherwise ([`OnLockTimeout::ServiceUnavailable`]), and always that
/// of a handler's own [`ErrorKind::Locked`] error ([`handler_error`]): one
/// second.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What the integration does when the store fails while loading or flushing a session.
///
/// A lock timeout has a policy of its own, [`OnLockTimeout`]; a lease on the lock that
/// lapsed ([`ErrorKind::LockLost`]) or an update that kept meeting concurrent changes
/// ([`ErrorKind::Conflict`]) is a store failure like any other: the changes were not
/// written, and the response must not say they were.
///
/// Every policy logs the failure with its whole cause chain.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub enum OnStoreError {
    /// Replace the handler's response with an empty `500 Internal Server Error` (default):
    /// a client must not believe a write happened when it did not.
    #[default]
    InternalServerError,
    /// Log the error and keep the handler's response (for handlers that deal with store
    /// failures themselves). No `Set-Cookie` is sent.
    KeepResponse,
    /// Replace the handler's response with an empty `503 Service Unavailable` carrying
    /// `Retry-After` (whole seconds, rounded up): the store is down, and the client may
    /// try again later.
    ServiceUnavailable {
        /// How long the client is asked to wait before it tries again.
        retry_after: Duration,
    },
    /// Serve the request as if it had no session: a session that cannot be loaded reads
    /// as new and empty, the handler runs, its writes are dropped with a warning, and the
    /// response goes out as the handler made it, with no `Set-Cookie`. For pages that
    /// work for anonymous visitors too (a shop's catalogue while the session store is
    /// down). A lock not granted in time still follows [`OnLockTimeout`].
    ContinueWithoutSession,
    /// Replace the handler's response with the [`Reply`] this function builds from the
    /// error: the application's own status and body (an error page, a JSON problem
    /// document). The function must not panic; it sees the error, never the session id.
    Respond(fn(&Error) -> Reply),
}

impl PartialEq for OnStoreError {
    /// Equal variants with equal fields; two [`Respond`](Self::Respond) policies are equal
    /// when they call the same function (compared by address).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::InternalServerError, Self::InternalServerError)
            | (Self::KeepResponse, Self::KeepResponse)
            | (Self::ContinueWithoutSession, Self::ContinueWithoutSession) => true,
            (
                Self::ServiceUnavailable { retry_after: a },
                Self::ServiceUnavailable { retry_after: b },
            ) => a == b,
            (Self::Respond(a), Self::Respond(b)) => std::ptr::fn_addr_eq(*a, *b),
            _ => false,
        }
    }
}

impl Eq for OnStoreError {}

/// What the integration answers when a request's session lock was not granted within the
/// configuration's `lock_timeout` ([`ErrorKind::Locked`]): another request of the same
/// session held it all along.
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
    /// Treat it as any other store failure: [`OnStoreError`] decides.
    SameAsStoreError,
}

impl Default for OnLockTimeout {
    fn default() -> Self {
        Self::ServiceUnavailable {
            retry_after: DEFAULT_RETRY_AFTER,
        }
    }
}

/// A response an integration sends instead of the handler's: a status, for a `503` the
/// seconds of its `Retry-After`, and a body (empty unless an [`OnStoreError::Respond`]
/// policy gave one).
///
/// ```
/// use session_core::web::Reply;
/// let page = Reply::new(503).with_body("text/html; charset=utf-8", "<h1>Back soon</h1>");
/// assert_eq!((page.status(), page.body()), (503, "<h1>Back soon</h1>"));
/// assert_eq!(Reply::new(42).status(), 500, "not a status code");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    status: u16,
    retry_after: Option<u64>,
    content_type: &'static str,
    body: Cow<'static, str>,
}

impl Reply {
    /// `500 Internal Server Error`.
    pub const INTERNAL_SERVER_ERROR: Self = Self::empty(500);

    /// `413 Payload Too Large`.
    pub const PAYLOAD_TOO_LARGE: Self = Self::empty(413);

    const fn empty(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            content_type: "",
            body: Cow::Borrowed(""),
        }
    }

    /// An empty reply with `status`; a number outside `100..=599` is not an HTTP status
    /// an integration can send, and gives `500` instead.
    pub const fn new(status: u16) -> Self {
        Self::empty(if status >= 100 && status <= 599 {
            status
        } else {
            500
        })
    }

    /// `503 Service Unavailable`, asking the client to come back after `retry_after`,
    /// rounded up to whole seconds so that it never comes back before the time asked for.
    pub fn service_unavailable(retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)),
            ..Self::empty(503)
        }
    }

    /// The reply with `body`, sent with `Content-Type: content_type`. A content type that
    /// is not a valid header value (control characters, non-ASCII) is sent as
    /// `application/octet-stream`.
    #[must_use]
    pub fn with_body(
        mut self,
        content_type: &'static str,
        body: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.content_type = if is_header_value(content_type) && !content_type.is_empty() {
            content_type
        } else {
            "application/octet-stream"
        };
        self.body = body.into();
        self
    }

    /// The reply asking the client to come back after `retry_after` (rounded up to whole
    /// seconds), with any status.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0));
        self
    }

    /// The body, empty for most replies.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The body, taken out of the reply.
    pub fn into_body(self) -> String {
        self.body.into_owned()
    }

    /// The body's content type, if the reply has a body.
    pub fn content_type(&self) -> Option<&'static str> {
        (!self.body.is_empty()).then_some(self.content_type)
    }

    /// The answer to a handler that returned `err`: `413` for a value over
    /// `max_value_size`, `503` with [`DEFAULT_RETRY_AFTER`] for a lock not granted in time,
    /// `500` for anything else, with no internal details. [`handler_error`] also logs it.
    pub fn for_handler_error(err: &Error) -> Self {
        match err.kind() {
            ErrorKind::Locked => Self::service_unavailable(DEFAULT_RETRY_AFTER),
            ErrorKind::TooLarge => Self::PAYLOAD_TOO_LARGE,
            _ => Self::INTERNAL_SERVER_ERROR,
        }
    }

    /// The HTTP status code.
    pub const fn status(&self) -> u16 {
        self.status
    }

    /// The value of the `Retry-After` header in seconds, if the reply has one.
    pub const fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
}

/// What to do with the handler's response once the session is flushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finish {
    /// Send the handler's response, adding a `Set-Cookie` header with this value if there
    /// is one (a new session with data, a cycled id, a cleared session, a refreshed
    /// rolling expiry). The value is a valid header value: visible ASCII and spaces.
    Respond {
        /// The `Set-Cookie` header's value.
        set_cookie: Option<String>,
        /// The value of the `token_header` response header, for a request whose token
        /// travels in a header ([`Transport::Header`](crate::transport::Transport) or
        /// `Bearer`): a new or changed token, or an empty value after `clear()`, telling
        /// the client to drop its token. Nothing when the token is unchanged.
        token: Option<TokenHeader>,
    },
    /// Send this reply instead: the session was not loaded or not written.
    Replace(Reply),
}

/// A session token for a response header: the configuration's `token_header` and the
/// token (visible ASCII; empty after `clear()`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenHeader {
    name: Arc<str>,
    value: String,
}

impl TokenHeader {
    /// The header's name, lowercase.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The header's value: the token, or nothing when the client is to drop its token.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The value, taken out.
    pub fn into_value(self) -> String {
        self.value
    }
}

/// The answers to failures, as [`Middleware::finish`] applies them: small and `Copy`, so
/// that an integration can keep it in a request's future instead of the middleware.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// What a store failure answers.
    pub on_store_error: OnStoreError,
    /// What a lock timeout answers.
    pub on_lock_timeout: OnLockTimeout,
}

/// The framework-independent half of a session middleware. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Middleware {
    manager: SessionManager,
    policy: Policy,
    lock_mode: Option<LockMode>,
}

impl Middleware {
    /// Middleware over `manager`, with [`OnStoreError::InternalServerError`],
    /// [`OnLockTimeout::ServiceUnavailable`] and the lock mode of the configuration's
    /// `lock`.
    pub fn new(manager: SessionManager) -> Self {
        Self {
            manager,
            policy: Policy::default(),
            lock_mode: None,
        }
    }

    /// The manager sessions come from.
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }

    /// The answers to failures.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Sets what happens on a store failure.
    #[must_use]
    pub fn on_store_error(mut self, policy: OnStoreError) -> Self {
        self.policy.on_store_error = policy;
        self
    }

    /// Sets what a request answers when its session's lock was not granted within the
    /// configuration's `lock_timeout`.
    #[must_use]
    pub fn on_lock_timeout(mut self, policy: OnLockTimeout) -> Self {
        self.policy.on_lock_timeout = policy;
        self
    }

    /// Sets the lock mode of every request, overriding the configuration's `lock`
    /// ([`LockMode::Exclusive`] for `true`, [`LockMode::Off`] for `false`).
    ///
    /// [`LockMode::Exclusive`] needs a store with locks: over one without, every request
    /// is answered with a 500 (and the reason logged).
    #[must_use]
    pub fn lock_mode(mut self, mode: LockMode) -> Self {
        if mode == LockMode::Exclusive && !self.manager.store().capabilities().lock {
            tracing::error!(
                "lock mode Exclusive over a store that keeps no session locks: every \
                 request will fail"
            );
        }
        // The configuration's own mode is what every session starts with: nothing to set.
        self.lock_mode =
            (mode != LockMode::from_config(self.manager.config().lock)).then_some(mode);
        self
    }

    /// The session of a request whose headers named `name` have the values
    /// `headers(name)` (see [`SessionManager::session_from_headers`]), in the lock mode
    /// asked for; nothing is loaded yet. `Err` with the reply to send if the lock mode
    /// cannot be set (a server-side mistake, logged).
    pub fn start<'a, I>(&self, headers: impl Fn(&str) -> I) -> Result<Session, Reply>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let session = self.manager.session_from_headers(headers);
        if self.policy.on_store_error == OnStoreError::ContinueWithoutSession {
            session.continue_without_store();
        }
        if let Some(mode) = self.lock_mode {
            // No other task has seen this session, so setting its mode never waits.
            match set_lock_mode_now(&session, mode) {
                Some(Ok(())) => {}
                Some(Err(err)) => return Err(lock_mode_refused(&err)),
                None => {
                    let err = Error::new(
                        ErrorKind::Unsupported,
                        "a session made for this request was busy before the request began",
                    );
                    return Err(lock_mode_refused(&err));
                }
            }
        }
        Ok(session)
    }

    /// After the handler: checks the session for a failed load, flushes it, logs any
    /// failure, and says what to send ([`Policy::finish`] with this middleware's policy).
    pub fn finish(&self, session: Session) -> impl Future<Output = Finish> + Send + 'static {
        self.policy.finish(session)
    }
}

impl Policy {
    /// After the handler: checks the session for a failed load, flushes it, logs any
    /// failure, and says what to send.
    ///
    /// Not an `async fn`: one would copy its arguments into its body and keep room for
    /// both, and the integrations allocate this future for every request.
    #[allow(clippy::manual_async_fn)]
    pub fn finish(self, session: Session) -> impl Future<Output = Finish> + Send + 'static {
        let Self {
            on_store_error,
            on_lock_timeout,
        } = self;
        async move {
            // Logged now rather than kept across the flush: the error would take room in
            // this future. Only its kind is kept.
            let load_failed = session.store_error().await.map(|err| {
                log_failure(&err, "while loading the session");
                err.kind()
            });
            let flushed = session.flush().await;
            // After a failed load, the flush's outcome (even a cookie) is not used.
            let failure = match (load_failed, flushed) {
                (Some(kind), _) => Failure::Kind(kind),
                (None, Ok(None)) => {
                    return Finish::Respond {
                        set_cookie: None,
                        token: None,
                    };
                }
                (None, Ok(Some(cookie))) => {
                    let header = match session.transport() {
                        Transport::Cookie => set_cookie_header(&cookie),
                        _ => cookie.value().to_owned(),
                    };
                    if is_header_value(&header) {
                        return match session.transport() {
                            Transport::Cookie => Finish::Respond {
                                set_cookie: Some(header),
                                token: None,
                            },
                            _ => Finish::Respond {
                                set_cookie: None,
                                token: Some(TokenHeader {
                                    name: session.token_header(),
                                    value: header,
                                }),
                            },
                        };
                    }
                    tracing::error!("session token is not a valid header value");
                    Failure::Kind(ErrorKind::Encode)
                }
                (None, Err(err)) => {
                    log_failure(&err, "while saving the session");
                    Failure::Flush(err)
                }
            };
            if failure.kind() == ErrorKind::Locked
                && let OnLockTimeout::ServiceUnavailable { retry_after } = on_lock_timeout
            {
                return Finish::Replace(Reply::service_unavailable(retry_after));
            }
            match on_store_error {
                OnStoreError::InternalServerError => Finish::Replace(Reply::INTERNAL_SERVER_ERROR),
                OnStoreError::KeepResponse | OnStoreError::ContinueWithoutSession => {
                    Finish::Respond {
                        set_cookie: None,
                        token: None,
                    }
                }
                OnStoreError::ServiceUnavailable { retry_after } => {
                    Finish::Replace(Reply::service_unavailable(retry_after))
                }
                OnStoreError::Respond(respond) => {
                    // The load's error was logged and dropped to keep this future small;
                    // its kind and message are what the function gets.
                    let err = match failure {
                        Failure::Flush(err) => err,
                        Failure::Kind(kind) => match session.store_error().await {
                            Some(err) => err,
                            None => Error::new(kind, "the session could not be used"),
                        },
                    };
                    Finish::Replace(respond(&err))
                }
            }
        }
    }
}

/// Why [`Policy::finish`] does not send the handler's response as it is.
enum Failure {
    /// The load failed (its error is kept by the session), or the cookie was unusable.
    Kind(ErrorKind),
    /// The flush failed with this.
    Flush(Error),
}

impl Failure {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Kind(kind) => *kind,
            Self::Flush(err) => err.kind(),
        }
    }
}

/// Logs `err`, returned by a handler, and gives the reply for it
/// ([`Reply::for_handler_error`]): what an integration's handler error type answers.
pub fn handler_error(err: &Error) -> Reply {
    if err.kind() == ErrorKind::Locked {
        tracing::warn!(error = %format_args!("{err:#}"), "session lock not granted to a handler");
    } else {
        tracing::error!(error = %format_args!("{err:#}"), "session error in a handler");
    }
    Reply::for_handler_error(err)
}

/// Runs [`Session::set_lock_mode`] if it finishes without waiting, which it does unless
/// another task is using the session at that very moment (a session the middleware has
/// just made has been seen by no other task). `None` if it would have to wait.
///
/// Choosing the mode before the handler runs, rather than in the response future, lets a
/// middleware hand the request on as soon as it arrives.
pub fn set_lock_mode_now(session: &Session, mode: LockMode) -> Option<crate::Result<()>> {
    let future = pin!(session.set_lock_mode(mode));
    match future.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => Some(result),
        Poll::Pending => None,
    }
}

/// The reply to a request whose lock mode could not be set ([`LockMode::Exclusive`] on a
/// store without locks): a server-side mistake, logged, answered with a 500.
pub fn lock_mode_refused(err: &Error) -> Reply {
    tracing::error!(error = %format_args!("{err:#}"), "cannot set the session lock mode of the request");
    Reply::INTERNAL_SERVER_ERROR
}

/// Logs a session failure: a lock timeout is contention, worth a warning; anything else
/// is an error.
fn log_failure(err: &Error, when: &str) {
    if err.kind() == ErrorKind::Locked {
        tracing::warn!(error = %format_args!("{err:#}"), "the session's lock was not granted in time {when}");
    } else {
        tracing::error!(error = %format_args!("{err:#}"), "session store failed {when}");
    }
}

/// Whether `value` may be sent as an HTTP header value: tabs, and visible ASCII and
/// spaces (RFC 9110's field-vchar without obsolete text).
fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|byte| byte == b'\t' || (b' '..=b'~').contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let seconds = |d| Reply::service_unavailable(d).retry_after();
        assert_eq!(seconds(Duration::from_secs(1)), Some(1));
        assert_eq!(seconds(Duration::from_millis(1500)), Some(2));
        assert_eq!(seconds(Duration::from_millis(1)), Some(1));
        assert_eq!(seconds(Duration::ZERO), Some(0));
        assert_eq!(Reply::service_unavailable(Duration::ZERO).status(), 503);
    }

    #[test]
    fn handler_errors_map_to_statuses() {
        let reply = |kind| Reply::for_handler_error(&Error::new(kind, "test"));
        assert_eq!(reply(ErrorKind::TooLarge), Reply::PAYLOAD_TOO_LARGE);
        assert_eq!(
            reply(ErrorKind::Locked),
            Reply::service_unavailable(DEFAULT_RETRY_AFTER)
        );
        assert_eq!(reply(ErrorKind::Backend), Reply::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn header_values_are_checked() {
        assert!(is_header_value("thinkjs=abc; Path=/; HttpOnly"));
        assert!(!is_header_value("thinkjs=abc\r\nX-Evil: 1"));
        assert!(!is_header_value("thinkjs=é"));
    }
}
