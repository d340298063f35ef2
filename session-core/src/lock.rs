//! The session lock's public vocabulary: how a request locks its session, and the token
//! that names one holder of a lease in a store.
//!
//! The lease itself (waiting, renewal, release on drop, fencing) is the manager's, in
//! `lease.rs`; stores only keep leases ([`SessionStore::lock`](crate::SessionStore::lock),
//! [`renew_lock`](crate::SessionStore::renew_lock),
//! [`unlock`](crate::SessionStore::unlock)).

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

use crate::{Error, ErrorKind, Result};

/// How a request treats its session's lock.
///
/// The configuration's `lock` key picks the default for every request
/// ([`LockMode::Exclusive`] when `true`, [`LockMode::Off`] otherwise); a web layer can
/// choose per route, and a request per call of
/// [`Session::set_lock_mode`](crate::Session::set_lock_mode) before it first uses the
/// session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LockMode {
    /// No lock: concurrent requests of one session run side by side. Change sets to
    /// different keys all survive; for the same key the later write wins (use
    /// [`Session::update`](crate::Session::update) for read-modify-writes).
    #[default]
    Off,
    /// The request holds the session's lock from its first use of the session until its
    /// flush (or until it is dropped): other requests of the same session wait, in this
    /// process and, on a shared store, in every process. A holder whose lease lapsed
    /// cannot write over the next holder's work.
    Exclusive,
    /// The request neither takes nor waits for the lock: for routes that only read the
    /// session. Writes (`set`, `remove`, `update`, `cycle_id`, `set_user`) are refused
    /// with [`ErrorKind::ReadOnly`]; the rolling expiry is still refreshed.
    ReadOnly,
}

impl LockMode {
    /// The mode of a configuration whose `lock` key is `on`.
    pub const fn from_config(on: bool) -> Self {
        if on { Self::Exclusive } else { Self::Off }
    }
}

/// The length of a [`LockToken`] in hex characters (128 random bits).
pub const LOCK_TOKEN_LEN: usize = 32;

/// One holder's claim on a session lock, in lower-case hex: 64 bits drawn once per
/// process from the operating system's CSPRNG, then a 64-bit count of the tokens this
/// process made. Tokens are unique (two processes share a prefix with odds of 2^-64), and
/// cost no system call after the first. A store keeps the token of the lease's holder,
/// and renews or releases a lease only for the token that holds it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LockToken(String);

/// This process's token prefix, and the count of tokens made.
static PROCESS_NONCE: OnceLock<u64> = OnceLock::new();
static TOKENS_MADE: AtomicU64 = AtomicU64::new(0);

impl LockToken {
    /// A fresh token.
    ///
    /// # Errors
    /// [`ErrorKind::Random`] if the operating system's generator fails (for the first
    /// token of the process).
    pub fn generate() -> Result<Self> {
        let nonce = match PROCESS_NONCE.get() {
            Some(nonce) => *nonce,
            None => {
                let drawn = getrandom::u64().map_err(|err| {
                    Error::new(
                        ErrorKind::Random,
                        format!("cannot draw a lock token prefix from the OS: {err}"),
                    )
                })?;
                *PROCESS_NONCE.get_or_init(|| drawn)
            }
        };
        let count = TOKENS_MADE.fetch_add(1, Ordering::Relaxed);
        Ok(Self(format!("{nonce:016x}{count:016x}")))
    }

    /// A token read back from a store: exactly [`LOCK_TOKEN_LEN`] lower-case hex digits.
    ///
    /// # Errors
    /// [`ErrorKind::Decode`] for anything else.
    pub fn parse(text: &str) -> Result<Self> {
        let valid = text.len() == LOCK_TOKEN_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(Error::decode("a stored lock token is not 32 hex digits"))
        }
    }

    /// The token's text, as a store keeps it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LockToken {
    /// Shows no digit: a token in a log would let anyone who reads it release the lease.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_never_printed() {
        let a = LockToken::generate().expect("token"); // ok: test
        let b = LockToken::generate().expect("token"); // ok: test
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), LOCK_TOKEN_LEN);
        assert_eq!(LockToken::parse(a.as_str()).expect("parse"), a); // ok: test
        assert!(!format!("{a:?}").contains(a.as_str()));
        for bad in ["", "xyz", &"A".repeat(32), &"a".repeat(31)] {
            assert_eq!(
                LockToken::parse(bad).expect_err("refused").kind(), // ok: test
                ErrorKind::Decode
            );
        }
    }

    #[test]
    fn the_configuration_flag_picks_the_mode() {
        assert_eq!(LockMode::from_config(true), LockMode::Exclusive);
        assert_eq!(LockMode::from_config(false), LockMode::Off);
        assert_eq!(LockMode::default(), LockMode::Off);
    }
}
