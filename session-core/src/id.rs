//! Session ids (what the cookie carries) and store keys (what a store sees).

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::{Error, ErrorKind, Result};

/// The shortest id accepted or generated: 22 characters (132 bits, at least 128), each
/// character carrying 6 random bits.
pub const MIN_ID_LENGTH: usize = 22;
/// The longest id accepted or generated.
pub const MAX_ID_LENGTH: usize = 128;
/// The id length used when `cookie.length` is not configured (as in ThinkJS).
pub const DEFAULT_ID_LENGTH: usize = 32;

/// The URL-safe base64 alphabet: 64 symbols, so one random byte masked to 6 bits picks a
/// symbol uniformly, with no modulo bias.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A session id: the secret a client holds in its cookie.
///
/// Generated from the operating system's CSPRNG, 6 bits of entropy per character, from the
/// URL-safe alphabet `A-Z a-z 0-9 - _`. Stores never see it: they get its [`StoreKey`].
/// `Debug` shows only a short prefix, so ids cannot leak into logs by accident.
///
/// Cloning one is cheap (a reference count): a request's session keeps its id in several
/// places.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(Arc<str>);

impl SessionId {
    /// Generates a fresh id of `length` characters.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidId`] if `length` is outside
    /// [`MIN_ID_LENGTH`]`..=`[`MAX_ID_LENGTH`]; [`ErrorKind::Random`] if the OS random number
    /// generator fails.
    pub fn generate(length: usize) -> Result<Self> {
        check_length(length)?;
        let mut bytes = [0u8; MAX_ID_LENGTH];
        let bytes = &mut bytes[..length];
        getrandom::fill(bytes).map_err(|err| {
            Error::new(ErrorKind::Random, "the OS random number generator failed").with_source(err)
        })?;
        for byte in bytes.iter_mut() {
            *byte = ALPHABET[usize::from(*byte & 0x3f)];
        }
        // Every byte is now an ASCII character of the alphabet.
        let id = std::str::from_utf8(bytes)
            .map_err(|_| Error::new(ErrorKind::Random, "a generated id is not ASCII"))?;
        Ok(Self(Arc::from(id)))
    }

    /// Validates `candidate` as an id: length within bounds and only URL-safe characters.
    ///
    /// Anything else (`../`, NUL, `%2e`, spaces, empty, oversize) is rejected, so an invalid
    /// id can never reach a store, a file name or a query.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidId`], without echoing the candidate.
    pub fn parse(candidate: &str) -> Result<Self> {
        check_length(candidate.len())?;
        if !candidate.bytes().all(is_id_byte) {
            return Err(Error::new(
                ErrorKind::InvalidId,
                "a session id may contain only A-Z, a-z, 0-9, '-' and '_'",
            ));
        }
        Ok(Self(candidate.into()))
    }

    /// The id as text, for the cookie. Treat it as a secret: do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key under which stores keep this session: the SHA-256 of the id.
    pub fn store_key(&self) -> StoreKey {
        StoreKey::from_digest(Sha256::digest(self.0.as_bytes()).into())
    }
}

/// Which bytes may appear in an id: the 64 characters of [`ALPHABET`].
const ID_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = true;
        i += 1;
    }
    table
};

fn is_id_byte(byte: u8) -> bool {
    ID_BYTES[usize::from(byte)]
}

fn check_length(length: usize) -> Result<()> {
    if (MIN_ID_LENGTH..=MAX_ID_LENGTH).contains(&length) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidId,
            format!(
                "a session id must be {MIN_ID_LENGTH} to {MAX_ID_LENGTH} characters long, not {length}"
            ),
        ))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = self.0.get(..4).unwrap_or_default();
        write!(f, "SessionId({prefix}…)")
    }
}

/// Where a store keeps a session: the lowercase hex SHA-256 of its [`SessionId`].
///
/// A leaked store dump or a timing leak in a lookup therefore gives no usable cookie, and a
/// client can never choose a file name or a key. `Debug` and [`StoreKey::short`] show the
/// first 8 hex digits, which is what logs use.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey {
    digest: [u8; 32],
    /// The digest in lowercase hex, kept inline: no allocation per request.
    hex: [u8; 64],
}

impl StoreKey {
    /// Length of [`StoreKey::as_str`]: 64 hex digits.
    pub const HEX_LEN: usize = 64;

    /// The key of a raw SHA-256 `digest`, for stores that keep keys as bytes.
    pub fn from_digest(digest: [u8; 32]) -> Self {
        let mut hex = [0u8; 64];
        // Cannot fail: the output is exactly twice the input's length.
        let _ = hex::encode_to_slice(digest, &mut hex);
        Self { digest, hex }
    }

    /// Parses 64 lowercase hex digits, as written by [`StoreKey::as_str`]; used by stores that
    /// enumerate their keys (file names, rows).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidId`] for anything that is not 64 lowercase hex digits.
    pub fn parse(hex_digits: &str) -> Result<Self> {
        let lowercase = hex_digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let mut digest = [0u8; 32];
        if hex_digits.len() != Self::HEX_LEN
            || !lowercase
            || hex::decode_to_slice(hex_digits, &mut digest).is_err()
        {
            return Err(Error::new(
                ErrorKind::InvalidId,
                "a store key is 64 lowercase hex digits",
            ));
        }
        Ok(Self::from_digest(digest))
    }

    /// The 64 lowercase hex digits: safe in file names, SQL parameters and Redis keys.
    pub fn as_str(&self) -> &str {
        // Hex digits are ASCII, so this never takes the fallback.
        std::str::from_utf8(&self.hex).unwrap_or_default()
    }

    /// The raw 32-byte digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The first 8 hex digits, for logs.
    pub fn short(&self) -> &str {
        self.as_str().get(..8).unwrap_or_default()
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({}…)", self.short())
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn generated_ids_have_the_requested_length_and_alphabet() {
        for length in [MIN_ID_LENGTH, DEFAULT_ID_LENGTH, MAX_ID_LENGTH] {
            let id = SessionId::generate(length).expect("generate");
            assert_eq!(id.expose().len(), length);
            assert!(id.expose().bytes().all(is_id_byte));
            assert_eq!(SessionId::parse(id.expose()).expect("parse"), id);
        }
    }

    #[test]
    fn refuses_lengths_under_128_bits() {
        let err = SessionId::generate(21).expect_err("too short");
        assert_eq!(err.kind(), ErrorKind::InvalidId);
        assert!(SessionId::generate(MAX_ID_LENGTH + 1).is_err());
    }

    #[test]
    fn parse_rejects_hostile_input() {
        let long = "a".repeat(MAX_ID_LENGTH + 1);
        for bad in [
            "",
            "../../../../etc/passwd/aaaaaaaaaa",
            "aaaaaaaaaaaaaaaaaaaaa\0aaaaaaaa",
            "%2e%2e%2faaaaaaaaaaaaaaaaaaaaaaa",
            "aaaaaaaaaaa aaaaaaaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.",
            "ääääääääääääääääääääääääää",
            "short",
            long.as_str(),
        ] {
            let err = SessionId::parse(bad).expect_err(bad);
            assert_eq!(err.kind(), ErrorKind::InvalidId);
            assert!(!err.to_string().contains(bad) || bad.is_empty());
        }
    }

    #[test]
    fn ids_do_not_repeat() {
        let ids: HashSet<_> = (0..10_000)
            .map(|_| SessionId::generate(DEFAULT_ID_LENGTH).expect("generate"))
            .collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn debug_hides_the_id() {
        let id = SessionId::parse("Zq3_fJ8kLm2nPq4rSt6uVw8xYz0aBc1D").expect("valid");
        assert_eq!(format!("{id:?}"), "SessionId(Zq3_…)");
    }

    #[test]
    fn store_key_is_the_sha256_hex_of_the_id() {
        let id = SessionId::parse("Zq3_fJ8kLm2nPq4rSt6uVw8xYz0aBc1D").expect("valid");
        let key = id.store_key();
        assert_eq!(key.as_str().len(), StoreKey::HEX_LEN);
        assert!(!key.as_str().contains(id.expose()));
        assert_eq!(StoreKey::parse(key.as_str()).expect("round trip"), key);
        assert_eq!(
            format!("{key:?}"),
            format!("StoreKey({}…)", &key.as_str()[..8])
        );
        assert!(StoreKey::parse(&key.as_str().to_uppercase()).is_err());
        assert!(StoreKey::parse("../etc").is_err());
    }
}
