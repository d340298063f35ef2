//! The one error type of the session crates: a kind to match on, a message, the source,
//! and, for a set-up mistake, a hint of what to do; and [`Report`], which shows any error
//! with its cause chain and hint.

use std::borrow::Cow;
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
/// [`source()`](StdError::source) rather than flattened into the message. Where the
/// error looks like a known set-up mistake (a server that refuses the connection, a
/// login that is refused, a missing privilege, a table of another shape, a folder that
/// cannot be written), the store adds a [`Hint`]: what to do about it.
///
/// Show it to a person with `{:#}` (or [`Report`] for any error that may hold one), which
/// gives the whole cause chain and the hint:
///
/// ```
/// use session_core::{Error, Hint, SetupProblem};
///
/// let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
/// let err = Error::backend("postgres: connect failed", cause).with_hint(Hint::new(
///     SetupProblem::Unreachable,
///     "nothing accepts connections at 127.0.0.1:5432: start the server",
/// ));
/// assert_eq!(err.to_string(), "store backend error: postgres: connect failed");
/// assert_eq!(
///     format!("{err:#}"),
///     "store backend error: postgres: connect failed: Connection refused\n\
///      hint: nothing accepts connections at 127.0.0.1:5432: start the server"
/// );
/// assert_eq!(err.hint().map(Hint::problem), Some(SetupProblem::Unreachable));
/// ```
pub struct Error {
    kind: ErrorKind,
    // Boxed, as the hint is: the error is in every `Result` of the crates, and these keep
    // it at six words, the size it had before hints.
    message: Box<str>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
    hint: Option<Box<Hint>>,
}

/// `kind: message`; with `{:#}`, then `: cause` for each error of the source chain, and
/// the [`Hint`], if any, on a line of its own (`hint: ...`). That is how the crates log
/// errors and how a person should be shown one (a reporter that walks
/// [`source`](StdError::source) itself uses the plain form, so nothing repeats, and
/// finds the hint with [`Hint::find`]).
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return Report::new(self).fmt(f);
        }
        write!(f, "{}: {}", self.kind, self.message)
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
            message: message.into().into_boxed_str(),
            source: None,
            hint: None,
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

    /// Attaches what a person can do about the error (replacing a hint attached before).
    #[must_use]
    pub fn with_hint(mut self, hint: Hint) -> Self {
        self.hint = Some(Box::new(hint));
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

    /// What a person can do about the error: this error's hint, or else the first one
    /// among the errors of its source chain (an error that wraps a store's keeps its hint).
    pub fn hint(&self) -> Option<&Hint> {
        self.hint.as_deref().or_else(|| {
            self.source()
                .and_then(|source| Hint::find(source as &(dyn StdError + 'static)))
        })
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        if let Some(hint) = &self.hint {
            d.field("hint", hint);
        }
        d.finish()
    }
}

/// Which set-up mistake a [`Hint`] takes an error for, so that a program can tell them
/// apart without reading the text (an installer that offers to start the server, say).
///
/// The enum is `#[non_exhaustive]`: match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SetupProblem {
    /// Nothing answers at the configured address: the server is down, or the host or port
    /// is wrong.
    Unreachable,
    /// The server refused the login: wrong user or password, or no such user.
    Authentication,
    /// The login worked, but the user may not do what the store needs (create its
    /// tables, use the database).
    Privilege,
    /// The database (or other named container) does not exist.
    MissingDatabase,
    /// A table (or other object) with the store's name exists but is not what the store
    /// made: another application's, or of another shape.
    TableShape,
    /// A folder or file cannot be created or written.
    Storage,
    /// Any other mistake the text explains.
    Other,
}

/// What a person can do about an [`Error`]: a sentence naming the likely mistake and its
/// remedy ("nothing accepts connections at 127.0.0.1:5432: start PostgreSQL, or fix the
/// host and port in `adapter.db.url`"), and the [`SetupProblem`] it stands for.
///
/// Stores attach hints where they recognise a set-up mistake while opening; `{:#}` on the
/// error (or [`Report`]) shows the hint after the cause chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    problem: SetupProblem,
    text: Cow<'static, str>,
}

impl Hint {
    /// A hint taking the error for `problem`, with `text` telling what to do.
    pub fn new(problem: SetupProblem, text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            problem,
            text: text.into(),
        }
    }

    /// Which mistake the error looks like.
    pub fn problem(&self) -> SetupProblem {
        self.problem
    }

    /// What to do, as a sentence.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The first hint of `err` or of the errors of its source chain: each that is an
    /// [`Error`] with a hint of its own. For a reporter that holds a `dyn Error` (a
    /// `Box<dyn Error>` from `main`, say).
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Hint> {
        let mut next = Some(err);
        while let Some(err) = next {
            if let Some(hint) = err
                .downcast_ref::<Error>()
                .and_then(|err| err.hint.as_deref())
            {
                return Some(hint);
            }
            next = err.source();
        }
        None
    }
}

/// The text.
impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Shows any error as `{:#}` shows an [`Error`]: the error, `: cause` for each error of its
/// source chain, and the first [`Hint`] found along it on a line of its own.
///
/// A cause whose text already ends the text of the error before it (drivers that print
/// their source inside their own message) is not repeated.
///
/// ```
/// use session_core::{Error, Hint, Report, SetupProblem};
///
/// let err = Error::new(session_core::ErrorKind::Backend, "redis: connect failed")
///     .with_hint(Hint::new(SetupProblem::Authentication, "set the password in the URL"));
/// let boxed: Box<dyn std::error::Error> = Box::new(err);
/// assert_eq!(
///     Report::new(boxed.as_ref()).to_string(),
///     "store backend error: redis: connect failed\nhint: set the password in the URL"
/// );
/// ```
#[derive(Clone, Copy)]
pub struct Report<'a> {
    err: &'a (dyn StdError + 'static),
}

impl<'a> Report<'a> {
    /// The report of `err`.
    pub fn new(err: &'a (dyn StdError + 'static)) -> Self {
        Self { err }
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The plain form of each link: an `Error` in the chain must not print its own
        // chain again.
        let mut previous = self.err.to_string();
        f.write_str(&previous)?;
        let mut source = self.err.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !previous.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            previous = text;
            source = cause.source();
        }
        if let Some(hint) = Hint::find(self.err) {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
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
    fn the_alternate_form_ends_with_the_hint_on_its_own_line() {
        let io = std::io::Error::new(std::io::ErrorKind::NotADirectory, "Not a directory");
        let hint = Hint::new(
            SetupProblem::Storage,
            "/srv/s is under a file: point `adapter.file.path` at a folder",
        );
        let err = Error::backend("cannot create the session folder /srv/s", io).with_hint(hint);
        assert_eq!(
            err.to_string(),
            "store backend error: cannot create the session folder /srv/s",
            "the plain form stays one line"
        );
        assert_eq!(
            format!("{err:#}"),
            "store backend error: cannot create the session folder /srv/s: Not a directory\n\
             hint: /srv/s is under a file: point `adapter.file.path` at a folder"
        );
        assert_eq!(err.hint().map(Hint::problem), Some(SetupProblem::Storage));

        // A wrapping error shows, and answers with, the hint of the one it wraps.
        let outer = Error::new(ErrorKind::Config, "opening the store").with_source(err);
        assert_eq!(outer.hint().map(Hint::problem), Some(SetupProblem::Storage));
        let shown = format!("{outer:#}");
        assert!(
            shown
                .ends_with("\nhint: /srv/s is under a file: point `adapter.file.path` at a folder"),
            "{shown}"
        );
        assert_eq!(shown.matches("hint:").count(), 1, "{shown}");

        // So does a report of it behind a `dyn Error`.
        let boxed: Box<dyn StdError> = Box::new(outer);
        assert_eq!(Report::new(boxed.as_ref()).to_string(), shown);
        assert!(Hint::find(boxed.as_ref()).is_some());

        // Without a hint, nothing is added.
        let plain = Error::new(ErrorKind::Backend, "x");
        assert_eq!(plain.hint(), None);
        assert_eq!(format!("{plain:#}"), "store backend error: x");
    }

    #[test]
    fn a_cause_already_in_the_text_before_it_is_not_repeated() {
        /// A driver error that prints its source inside its own message.
        #[derive(Debug)]
        struct Driver(std::io::Error);
        impl fmt::Display for Driver {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "error communicating with database: {}", self.0)
            }
        }
        impl StdError for Driver {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let err = Error::backend("postgres: connect failed", Driver(io));
        assert_eq!(
            format!("{err:#}"),
            "store backend error: postgres: connect failed: error communicating with database: \
             Connection refused"
        );
    }

    #[test]
    fn hints_cost_the_error_no_size() {
        // Six words: kind, boxed message (two), source (two), boxed hint. The message was
        // a `String` (three words) before hints, which made the same six.
        assert_eq!(
            std::mem::size_of::<Error>(),
            6 * std::mem::size_of::<usize>()
        );
        assert_eq!(
            std::mem::size_of::<Result<()>>(),
            6 * std::mem::size_of::<usize>()
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
