//! The one error type of the session crates: a kind to match on, a message, and the source.

use std::error::Error as StdError;
use std::fmt;

/// What went wrong, in terms a caller can act on.
///
/// The enum is `#[non_exhaustive]`: stores may grow new failure modes without a breaking
/// release, so match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is invalid; the message names the offending key.
    Config,
    /// A session id or store key failed validation (length, alphabet, signature).
    InvalidId,
    /// A value could not be encoded.
    Encode,
    /// Stored bytes could not be decoded: corrupt, truncated or of a foreign format.
    Decode,
    /// A value or record exceeds a configured size limit.
    TooLarge,
    /// The backend (file system, database, Redis, ...) failed.
    Backend,
    /// The backend did not answer within the configured time.
    Timeout,
    /// The operating system's random number generator failed.
    Random,
    /// The requested operation or store type is not available.
    Unsupported,
    /// The session's lock was not granted within `lock_timeout`: another request of the
    /// same session held it all along. Worth retrying later (web layers answer 503 with
    /// `Retry-After`).
    Locked,
    /// This request's lease on the session lock lapsed (it was not renewed within
    /// `lock_ttl`: a stalled process, a store unreachable for renewals) or the session
    /// changed under it; its changes were not written, so that they cannot overwrite the
    /// next holder's work.
    LockLost,
    /// [`Session::update`](crate::Session::update) met a concurrent change of the session
    /// on every one of its bounded attempts.
    Conflict,
    /// A write through a session opened in [`LockMode::ReadOnly`](crate::LockMode::ReadOnly).
    ReadOnly,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Config => "invalid configuration",
            Self::InvalidId => "invalid session id",
            Self::Encode => "encode error",
            Self::Decode => "decode error",
            Self::TooLarge => "too large",
            Self::Backend => "store backend error",
            Self::Timeout => "store timeout",
            Self::Random => "random number generator error",
            Self::Unsupported => "unsupported",
            Self::Locked => "session locked",
            Self::LockLost => "session lock lost",
            Self::Conflict => "concurrent updates conflict",
            Self::ReadOnly => "read-only session",
        })
    }
}

/// An error from a session store, the codec, the configuration or the session handle.
///
/// The underlying error (an `std::io::Error`, a driver error, ...) is kept as
/// [`source()`](StdError::source) rather than flattened into the message.
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

/// `kind: message`; with `{:#}`, then `: cause` for each error of the source chain, which
/// is how the crates log errors and how a person should be shown one (a reporter that
/// walks [`source`](StdError::source) itself uses the plain form, so nothing repeats).
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if f.alternate() {
            let mut source = self.source();
            while let Some(cause) = source {
                write!(f, ": {cause}")?;
                source = cause.source();
            }
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

impl Error {
    /// Creates an error of `kind` with a human-readable message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    /// A [`ErrorKind::Backend`] error wrapping a driver or I/O error.
    pub fn backend(
        message: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Self::new(ErrorKind::Backend, message).with_source(source)
    }

    /// A [`ErrorKind::Decode`] error: stored bytes are not a valid record or value.
    pub fn decode(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Decode, message)
    }

    /// A [`ErrorKind::Config`] error; `key` is the dotted path of the offending setting.
    pub fn config(key: &str, message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Config, format!("`{key}`: {message}"))
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alternate_form_shows_the_whole_cause_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let err = Error::backend("cannot create the session folder /srv/s", io);
        assert_eq!(
            err.to_string(),
            "store backend error: cannot create the session folder /srv/s"
        );
        assert_eq!(
            format!("{err:#}"),
            "store backend error: cannot create the session folder /srv/s: permission denied"
        );
        let outer = Error::new(ErrorKind::Config, "opening the store").with_source(err);
        assert_eq!(
            format!("{outer:#}"),
            "invalid configuration: opening the store: store backend error: cannot create the \
             session folder /srv/s: permission denied"
        );
    }

    #[test]
    fn keeps_the_source_and_shows_the_kind() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let err = Error::backend("writing session file", io);
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert_eq!(err.to_string(), "store backend error: writing session file");
        let source = err.source().map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("denied"));
    }
}
