//! `type = "jwt"`: the session as the claims of an HS256 JSON Web Token, the format of
//! ThinkJS 3's `think-session-jwt`.
//!
//! Each session key is a claim whose value is the key's JSON value (a jwt session always
//! encodes its values as JSON, whatever `codec` says), next to `iat` (when the session
//! began, in seconds) and `exp` (when it expires). A token that `think-session-jwt` signs
//! with the same secret reads as a session here, and one signed here reads there.
//!
//! Only HS256 is accepted: a token with `alg: none`, another algorithm, a bad signature,
//! or past its `exp` is no session. `exp` is enforced here as every expiry is, not by the
//! JWT library, so the configured timeouts decide; a token without `exp` (ThinkJS signs
//! one unless `sign.expiresIn` is set) expires `timeout` after its `iat`, and one with
//! neither is refused.

use std::collections::HashSet;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use crate::{Data, Error, ErrorKind, Record, Result, SessionConfig, Timestamp};

/// The claims JWT itself defines: never session keys. `think-session-jwt` drops these
/// from the data before it signs a token again, and so does this format.
pub(crate) const REGISTERED_CLAIMS: [&str; 7] = ["exp", "iat", "nbf", "aud", "sub", "iss", "jti"];

/// The longest token looked at.
const MAX_TOKEN_LEN: usize = super::MAX_HEADER_TOKEN_LEN;

/// Signs records into tokens and verifies them.
pub(crate) struct Jwt {
    encoding: EncodingKey,
    decoding: Vec<DecodingKey>,
    validation: Validation,
    /// The idle timeout, for a token that carries `iat` but no `exp`.
    timeout: Duration,
}

impl Jwt {
    /// The format of `config`: signed with the first `secret`, verified with any.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming `secret` when there is none, or one is shorter than
    /// 32 bytes (RFC 7518 asks for a key at least as long as the hash for HS256).
    pub(crate) fn new(config: &SessionConfig) -> Result<Self> {
        // The RustCrypto backend for this process, unless the application chose one.
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        // `SessionConfig::validate` refused short secrets; checked again for a format
        // built from a configuration that skipped it.
        crate::config::check_key_secrets(config.secret.iter(), "secret")?;
        let decoding: Vec<DecodingKey> = config
            .secret
            .iter()
            .map(|secret| DecodingKey::from_secret(secret.expose_secret().as_bytes()))
            .collect();
        let Some(first) = config.secret.iter().next() else {
            return Err(Error::config(
                "secret",
                "type = \"jwt\" signs its tokens with `secret`: set at least one",
            ));
        };
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is the manager's to enforce, with the configured timeouts; the library
        // still checks `nbf` if a token has one.
        validation.validate_exp = false;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.required_spec_claims = HashSet::new();
        Ok(Self {
            encoding: EncodingKey::from_secret(first.expose_secret().as_bytes()),
            decoding,
            validation,
            timeout: config.timeout,
        })
    }

    pub(crate) fn seal(&self, record: &Record) -> Result<String> {
        // Sorted, whatever the data's order: a token then depends only on what it says,
        // with serde_json's maps sorted or in insertion order (`preserve_order`).
        let mut sorted = std::collections::BTreeMap::new();
        for (key, bytes) in &record.data {
            if REGISTERED_CLAIMS.contains(&key.as_str()) {
                return Err(Error::new(
                    ErrorKind::Encode,
                    format!("`{key}` is a registered JWT claim and cannot be a session key"),
                ));
            }
            let value: Value = serde_json::from_slice(bytes).map_err(|err| {
                Error::new(
                    ErrorKind::Encode,
                    format!("the value of `{key}` is not JSON, so it cannot be a JWT claim"),
                )
                .with_source(err)
            })?;
            sorted.insert(key.as_str(), value);
        }
        sorted.insert("iat", seconds(record.created_at).into());
        sorted.insert("exp", seconds(record.expires_at).into());
        let claims: Map<String, Value> = sorted
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect();
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|err| Error::new(ErrorKind::Encode, "JWT signing failed").with_source(err))
    }

    pub(crate) fn open(&self, token: &str) -> Option<Record> {
        if token.len() > MAX_TOKEN_LEN {
            tracing::debug!(len = token.len(), "oversize session token ignored");
            return None;
        }
        let mut claims = None;
        for key in &self.decoding {
            match jsonwebtoken::decode::<Map<String, Value>>(token, key, &self.validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(err) if *err.kind() == JwtErrorKind::InvalidSignature => {}
                Err(err) => {
                    tracing::debug!(reason = %err, "session token refused");
                    return None;
                }
            }
        }
        let Some(mut claims) = claims else {
            tracing::debug!("session token that none of the keys verifies ignored");
            return None;
        };
        let exp = claims.get("exp").map(millis);
        let iat = claims.get("iat").map(millis);
        let (expires_at, created_at) = match (exp, iat) {
            (Some(Some(exp)), Some(Some(iat))) => (exp, iat),
            (Some(Some(exp)), None) => (exp, exp - self.timeout),
            (None, Some(Some(iat))) => (iat + self.timeout, iat),
            _ => {
                tracing::debug!("session token without a usable `exp` or `iat` refused");
                return None;
            }
        };
        for claim in REGISTERED_CLAIMS {
            claims.remove(claim);
        }
        let mut data = Data::with_capacity(claims.len());
        for (key, value) in claims {
            let bytes = serde_json::to_vec(&value).ok()?;
            data.insert(key, bytes);
        }
        Some(Record::new(data, expires_at, created_at))
    }
}

/// `at` in whole seconds since the epoch, as JWT's NumericDate.
fn seconds(at: Timestamp) -> i64 {
    at.as_millis().div_euclid(1000)
}

/// A NumericDate claim as a timestamp; `None` if it is not a number in range.
fn millis(value: &Value) -> Option<Timestamp> {
    let seconds = match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?,
        _ => return None,
    };
    Some(Timestamp::from_millis(seconds.checked_mul(1000)?))
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("keys", &self.decoding.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! Interoperability with ThinkJS 3, from the vectors `think-session-jwt` and the
    //! `jsonwebtoken` npm package made (`tests/vectors/thinkjs-jwt.json`, written by
    //! `tests/vectors/thinkjs-jwt.js`), and the refusals a token verifier owes.

    use super::*;

    const VECTORS: &str = include_str!("../../tests/vectors/thinkjs-jwt.json");

    fn vectors() -> Value {
        serde_json::from_str(VECTORS).expect("the vectors are JSON")
    }

    fn vector(name: &str) -> String {
        vectors()[name].as_str().expect(name).to_owned()
    }

    fn format(timeout: &str) -> Jwt {
        let config = SessionConfig::from_value(serde_json::json!({
            "type": "jwt",
            "secret": vectors()["secret"],
            "timeout": timeout,
        }))
        .expect("config");
        Jwt::new(&config).expect("format")
    }

    fn json(record: &Record, key: &str) -> Value {
        serde_json::from_slice(&record.data[key]).expect("JSON value")
    }

    #[test]
    fn reads_a_token_think_session_jwt_issued() {
        let record = format("1d")
            .open(&vector("issued_by_thinkjs"))
            .expect("a ThinkJS token opens");
        let data = vectors()["data"].clone();
        assert_eq!(json(&record, "userInfo"), data["userInfo"]);
        assert_eq!(json(&record, "visits"), data["visits"]);
        assert_eq!(
            record.data.len(),
            2,
            "registered claims are not session keys"
        );
        assert!(record.expires_at.as_millis() > record.created_at.as_millis());
    }

    #[test]
    fn a_thinkjs_token_without_exp_expires_a_timeout_after_iat() {
        let record = format("36500d")
            .open(&vector("issued_by_thinkjs_without_exp"))
            .expect("a token without exp opens");
        let lifetime = record
            .expires_at
            .saturating_duration_since(record.created_at);
        assert_eq!(lifetime, Duration::from_secs(36_500 * 86_400));
    }

    #[test]
    fn refuses_other_algorithms_none_other_secrets_and_nbf_in_the_future() {
        let format = format("1d");
        for name in ["hs384", "alg_none", "other_secret", "not_yet_valid"] {
            assert!(format.open(&vector(name)).is_none(), "{name} was accepted");
        }
        // Expiry is the manager's to enforce: the format reads the instant it carries.
        let expired = format
            .open(&vector("expired"))
            .expect("an expired token decodes");
        assert_eq!(
            expired.expires_at,
            Timestamp::from_millis(1_000_000_000_000)
        );
    }

    #[test]
    fn issues_the_token_think_session_jwt_read_back() {
        let format = format("1d");
        let data = vectors()["data"].clone();
        let record = Record::new(
            // The values as a JSON codec writes them, with sorted keys, so that the bytes are
            // the same whether serde_json keeps insertion order (`preserve_order`) or not.
            Data::from([
                (
                    "userInfo".to_owned(),
                    r#"{"id":7,"name":"Zoë","roles":["admin"]}"#.as_bytes().to_vec(),
                ),
                ("visits".to_owned(), b"3".to_vec()),
            ]),
            Timestamp::from_millis(4_102_444_800_000),
            Timestamp::from_millis(1_796_000_000_000),
        );
        let token = format.seal(&record).expect("seal");
        // HS256 over the same JSON is deterministic: this is the token the vectors' script
        // gave think-session-jwt, and `issued_here_read_by_thinkjs` is what it read.
        assert_eq!(
            token,
            vector("issued_here"),
            "the token changed: re-run the script"
        );
        let read: Value = serde_json::from_str(&vector("issued_here_read_by_thinkjs"))
            .expect("ThinkJS's reading is JSON");
        assert_eq!(read["userInfo"], data["userInfo"]);
        assert_eq!(read["visits"], data["visits"]);
        assert_eq!(read["exp"], 4_102_444_800u64);
        assert_eq!(read["iat"], 1_796_000_000u64);
    }

    #[test]
    fn registered_claims_and_values_that_are_not_json_cannot_be_sealed() {
        let format = format("1d");
        let at = Timestamp::from_millis(1_796_000_000_000);
        for (key, value) in [("exp", &b"1"[..]), ("sub", b"\"x\""), ("bin", b"\xff\x00")] {
            let record = Record::new(Data::from([(key.to_owned(), value.to_vec())]), at, at);
            let err = format.seal(&record).expect_err(key);
            assert_eq!(err.kind(), ErrorKind::Encode, "{key}");
        }
    }

    #[test]
    fn a_short_secret_is_refused() {
        // By the configuration's validation, and by the format for one that skipped it.
        let json = r#"{"type": "jwt", "secret": "short"}"#;
        let err = SessionConfig::from_json_str(json).expect_err("short secret");
        assert!(err.to_string().contains("secret[0]"), "{err}");
        let config = SessionConfig {
            secret: crate::Secrets::new(["short".to_owned().into()]),
            ..SessionConfig::default()
        };
        let err = Jwt::new(&config).expect_err("short secret");
        assert!(err.to_string().contains("secret[0]"), "{err}");
    }
}
