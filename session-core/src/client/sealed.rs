//! `type = "cookie"`: the whole session, encrypted and authenticated, in its token.
//!
//! ```text
//! token     base64url without padding of:
//! version   1 byte   1
//! nonce     24 bytes random, fresh for every token
//! sealed    XChaCha20-Poly1305 of the record in the wire layout (crate::wire), with its
//!           16-byte tag; the associated data is the version and the cookie name
//! ```
//!
//! The keys come from `secret` (HKDF-SHA256, one key per secret): the first seals, any
//! opens, so a secret can be rotated in without logging anybody out. The expiry and the
//! creation time are inside the sealed record, so a client can neither extend its session
//! nor read when it began, and binding the cookie name keeps a token of one application
//! from opening in another that shares its secret under a different name.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::aead::Keyring;
use crate::{Record, Result, SessionConfig, wire};

/// The layout version, the first byte of every token.
const VERSION: u8 = 1;

/// What the keys are derived for: no other use of the same secret (cookie signatures,
/// encryption at rest) shares them.
const PURPOSE: &[u8] = b"session-core cookie session v1";

/// The longest token looked at: the largest cookie a browser keeps.
const MAX_TOKEN_LEN: usize = super::MAX_HEADER_TOKEN_LEN;

/// Seals records into tokens and opens them.
pub(crate) struct Sealed {
    keys: Keyring,
    /// The version byte and the cookie name: the associated data of every token.
    aad: Vec<u8>,
}

impl Sealed {
    /// The format of `config`: keys from `secret`, bound to the cookie `name`.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming `secret` when there is none,
    /// or one is shorter than 32 bytes.
    pub(crate) fn new(config: &SessionConfig) -> Result<Self> {
        let keys = Keyring::new(config.secret.iter(), PURPOSE, "secret")?;
        let mut aad = vec![VERSION];
        aad.extend_from_slice(config.name.as_bytes());
        Ok(Self { keys, aad })
    }

    pub(crate) fn seal(&self, record: &Record) -> Result<String> {
        let sealed = self.keys.seal(&self.aad, &wire::encode_record(record))?;
        let mut token = Vec::with_capacity(1 + sealed.len());
        token.push(VERSION);
        token.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(token))
    }

    pub(crate) fn open(&self, token: &str) -> Option<Record> {
        if token.len() > MAX_TOKEN_LEN {
            tracing::debug!(len = token.len(), "oversize session token ignored");
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let (&version, sealed) = bytes.split_first()?;
        if version != VERSION {
            tracing::debug!("session token of an unknown layout ignored");
            return None;
        }
        let Some(plain) = self.keys.open(&self.aad, sealed) else {
            tracing::debug!("session token that none of the keys opens ignored");
            return None;
        };
        // Sealed by this application: a record it cannot decode is a bug, not an attack.
        match wire::decode_record(&plain) {
            Ok(record) => Some(record),
            Err(err) => {
                tracing::warn!(error = %format_args!("{err:#}"), "sealed session did not decode");
                None
            }
        }
    }
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed").field("keys", &self.keys).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Data, Timestamp};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn format(json: &str) -> Sealed {
        Sealed::new(&SessionConfig::from_json_str(json).expect("config")).expect("format")
    }

    fn record() -> Record {
        Record::new(
            Data::from([("user".to_owned(), b"ada".to_vec())]),
            Timestamp::from_millis(1_900_000_000_000),
            Timestamp::from_millis(1_800_000_000_000),
        )
    }

    #[test]
    fn round_trips_a_record_and_rotates_keys() {
        let old = format(&format!(r#"{{"type": "cookie", "secret": "{SECRET}"}}"#));
        let rotated = format(&format!(
            r#"{{"type": "cookie", "secret": ["{}", "{SECRET}"]}}"#,
            "new".repeat(11)
        ));
        let token = old.seal(&record()).expect("seal");
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let opened = rotated.open(&token).expect("opened with the old key");
        assert_eq!(opened.data, record().data);
        assert_eq!(opened.expires_at, record().expires_at);
        assert_eq!(opened.created_at, record().created_at);
        assert!(old.open(&rotated.seal(&record()).expect("seal")).is_none());
    }

    #[test]
    fn a_token_of_another_cookie_name_or_layout_opens_nothing() {
        let one = format(&format!(r#"{{"name": "a", "secret": "{SECRET}"}}"#));
        let two = format(&format!(r#"{{"name": "b", "secret": "{SECRET}"}}"#));
        let token = one.seal(&record()).expect("seal");
        assert!(two.open(&token).is_none());
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        bytes[0] = 2;
        assert!(one.open(&URL_SAFE_NO_PAD.encode(bytes)).is_none());
        for hostile in ["", "=", "a.b", "%%%", &"A".repeat(MAX_TOKEN_LEN + 1)] {
            assert!(one.open(hostile).is_none(), "{hostile:.20}");
        }
    }
}
