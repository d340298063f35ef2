//! Sessions that belong to a user: who owns a session, what a store's index lists, and the
//! opaque handles a listing hands out.
//!
//! A session is bound to a user with [`Session::set_user`](crate::Session::set_user) at
//! log-in. Stores that declare [`Capabilities::user_index`](crate::Capabilities::user_index)
//! keep an index from each user to the store keys of their live sessions, which the
//! manager reads to list a user's sessions ([`SessionManager::sessions_of`]), end one of
//! them ([`SessionManager::revoke`]) or all of them ([`SessionManager::revoke_user`]).
//!
//! [`SessionManager::sessions_of`]: crate::SessionManager::sessions_of
//! [`SessionManager::revoke`]: crate::SessionManager::revoke
//! [`SessionManager::revoke_user`]: crate::SessionManager::revoke_user

use std::fmt;
use std::str::FromStr;

use crate::{Error, ErrorKind, Result, StoreKey, Timestamp};

/// The longest user id, in bytes.
pub const MAX_USER_ID_LEN: usize = 256;
/// The longest session label, in bytes.
pub const MAX_LABEL_LEN: usize = 256;
/// Hex digits of a [`SessionHandle`]: 128 bits of the store key.
const HANDLE_LEN: usize = 32;

/// The user a session belongs to: the application's own id for them (a primary key, an
/// email address, a subject claim), as text.
///
/// Between 1 and [`MAX_USER_ID_LEN`] bytes, without control characters, so that every
/// store can keep it as a key or a column and a log line can never be forged with it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    /// Checks and wraps `id`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidId`] for an empty id, one longer than [`MAX_USER_ID_LEN`] bytes,
    /// or one holding a control character.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        check_text("user id", &id, MAX_USER_ID_LEN)?;
        if id.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidId,
                "a user id cannot be empty",
            ));
        }
        Ok(Self(id))
    }

    /// The id as the application gave it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UserId").field(&self.0).finish()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for UserId {
    type Err = Error;

    fn from_str(id: &str) -> Result<Self> {
        Self::new(id)
    }
}

impl TryFrom<&str> for UserId {
    type Error = Error;

    fn try_from(id: &str) -> Result<Self> {
        Self::new(id)
    }
}

impl TryFrom<String> for UserId {
    type Error = Error;

    fn try_from(id: String) -> Result<Self> {
        Self::new(id)
    }
}

/// Who a stored session belongs to, kept with the record: the user and the label the
/// application gave this session (say "Firefox on Linux"), shown in listings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    /// The user the session is bound to.
    pub user: UserId,
    /// A short description of the session; empty when the application set none.
    pub label: String,
}

impl Owner {
    /// The owner `user`, with no label.
    pub fn new(user: UserId) -> Self {
        Self {
            user,
            label: String::new(),
        }
    }

    /// Sets the label, checked as [`check_label`] does.
    ///
    /// # Errors
    /// As [`check_label`].
    pub fn with_label(mut self, label: impl Into<String>) -> Result<Self> {
        let label = label.into();
        check_label(&label)?;
        self.label = label;
        Ok(self)
    }
}

/// Checks a session label: at most [`MAX_LABEL_LEN`] bytes, no control characters.
///
/// # Errors
/// [`ErrorKind::TooLarge`] for a longer label, [`ErrorKind::InvalidId`] for a control
/// character.
pub fn check_label(label: &str) -> Result<()> {
    check_text("session label", label, MAX_LABEL_LEN)
}

fn check_text(what: &str, text: &str, max: usize) -> Result<()> {
    if text.len() > max {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "a {what} is at most {max} bytes, this one has {}",
                text.len()
            ),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::new(
            ErrorKind::InvalidId,
            format!("a {what} cannot hold control characters"),
        ));
    }
    Ok(())
}

/// One entry of a store's user index, as [`SessionStore::sessions_of`] returns it: a live
/// session of the user.
///
/// [`SessionStore::sessions_of`]: crate::SessionStore::sessions_of
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedSession {
    /// The session's store key.
    pub key: StoreKey,
    /// When the session was created.
    pub created_at: Timestamp,
    /// When it expires, as the store has it now.
    pub expires_at: Timestamp,
    /// The label its owner was given.
    pub label: String,
}

/// Names one session in a listing without revealing anything that opens it.
///
/// A handle is the first 128 bits of the session's store key (itself the SHA-256 of the
/// id), in hex: it cannot be turned back into a cookie, and the revoking calls accept it
/// only together with the user whose session it must be, so a handle copied from one
/// user's page ends nothing of another's. Safe to put in HTML forms and URLs.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionHandle(String);

impl SessionHandle {
    /// The handle of the session at `key`.
    pub fn of(key: &StoreKey) -> Self {
        Self(
            key.as_str()
                .get(..HANDLE_LEN)
                .unwrap_or_default()
                .to_owned(),
        )
    }

    /// Parses a handle as [`Display`](fmt::Display) wrote it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidId`] unless `text` is 32 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() == HANDLE_LEN
            && text
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        {
            Ok(Self(text.to_owned()))
        } else {
            Err(Error::new(
                ErrorKind::InvalidId,
                "a session handle is 32 lowercase hex digits",
            ))
        }
    }

    /// Whether this is the handle of the session at `key`.
    pub fn names(&self, key: &StoreKey) -> bool {
        key.as_str().starts_with(&self.0)
    }

    /// The handle as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SessionHandle").field(&self.0).finish()
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SessionHandle {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

/// One of a user's live sessions, as the manager lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserSession {
    /// Names the session for [`SessionManager::revoke`](crate::SessionManager::revoke).
    pub handle: SessionHandle,
    /// When the session was created (the log-in, for a session bound at log-in).
    pub created_at: Timestamp,
    /// When the session was last refreshed: its expiry minus the idle timeout, so exact to
    /// within `touch_after` for rolling sessions, never before `created_at` and never in
    /// the future.
    pub last_active: Timestamp,
    /// When the session expires unless it is used again.
    pub expires_at: Timestamp,
    /// The label the application gave it; empty if none.
    pub label: String,
    /// Whether this is the session of the request that asked for the listing.
    pub current: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SessionId;

    #[test]
    fn user_ids_are_checked() {
        assert_eq!(UserId::new("ada").expect("valid").as_str(), "ada");
        assert!(UserId::new("ünïcødé@example.org").is_ok());
        assert_eq!(
            UserId::new("").expect_err("empty").kind(),
            ErrorKind::InvalidId
        );
        assert_eq!(
            UserId::new("a\nb").expect_err("newline").kind(),
            ErrorKind::InvalidId
        );
        assert!(UserId::new("x".repeat(MAX_USER_ID_LEN)).is_ok());
        assert_eq!(
            UserId::new("x".repeat(MAX_USER_ID_LEN + 1))
                .expect_err("long")
                .kind(),
            ErrorKind::TooLarge
        );
    }

    #[test]
    fn labels_are_checked() {
        let owner = Owner::new(UserId::new("ada").expect("valid"));
        assert!(owner.clone().with_label("").is_ok());
        assert_eq!(
            owner
                .clone()
                .with_label("Firefox on Linux")
                .expect("valid")
                .label,
            "Firefox on Linux"
        );
        assert!(owner.clone().with_label("\u{7}").is_err());
        assert!(owner.with_label("y".repeat(MAX_LABEL_LEN + 1)).is_err());
    }

    #[test]
    fn handles_name_their_key_and_parse_back() {
        let key = SessionId::generate(32).expect("id").store_key();
        let other = SessionId::generate(32).expect("id").store_key();
        let handle = SessionHandle::of(&key);
        assert!(handle.names(&key));
        assert!(!handle.names(&other));
        assert_ne!(handle.as_str(), key.as_str(), "not the whole key");
        assert_eq!(
            SessionHandle::parse(&handle.to_string()).expect("parse"),
            handle
        );
        for bad in [
            "",
            "xyz",
            &key.as_str()[..31],
            key.as_str(),
            &"A".repeat(32),
        ] {
            assert!(SessionHandle::parse(bad).is_err(), "{bad:?}");
        }
    }
}
