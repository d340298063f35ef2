//! Signed cookie values in the ThinkJS format: `value.base64(HMAC-SHA256(secret, value))`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::{Error, ErrorKind, Result};

type HmacSha256 = Hmac<Sha256>;

/// Length of a signature: 32 bytes in unpadded base64.
const SIGNATURE_LEN: usize = 43;

/// Signs and verifies cookie values with one or more secrets.
///
/// The format is ThinkJS's: `value + "." + base64(HMAC-SHA256(secret, value))`, standard
/// base64 alphabet, padding stripped. The first secret signs; every secret verifies, so a
/// secret can be rotated by putting the new one first and keeping the old one for a while.
///
/// Verification decodes the signature and compares MACs in constant time. The secrets are
/// held only as keyed HMAC states and never printed: `Debug` shows how many there are.
///
/// ```
/// use secrecy::SecretString;
/// use session_core::Signer;
///
/// let signer = Signer::new([SecretString::from("secret")])?;
/// let signed = signer.sign("abc");
/// assert_eq!(signed, "abc.mUba1OAOkT/Ivo5dP34RCkqegy+D+wnDRShdeGONig4");
/// assert_eq!(signer.verify(&signed), Some("abc"));
/// assert_eq!(signer.verify("abc.mUba1OAOkT/Ivo5dP34RCkqegy+D+wnDRShdeGONig5"), None);
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Signer {
    keys: Vec<HmacSha256>,
}

impl Signer {
    /// Builds a signer; the first secret signs, all of them verify.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when no secret is given or one of them is empty.
    pub fn new(secrets: impl IntoIterator<Item = SecretString>) -> Result<Self> {
        let mut keys = Vec::new();
        for (index, secret) in secrets.into_iter().enumerate() {
            let bytes = secret.expose_secret().as_bytes();
            if bytes.is_empty() {
                return Err(Error::config(
                    &format!("secret[{index}]"),
                    "must not be empty",
                ));
            }
            let key = HmacSha256::new_from_slice(bytes).map_err(|err| {
                Error::new(ErrorKind::Config, "`secret`: unusable HMAC key").with_source(err)
            })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(Error::config(
                "secret",
                "at least one secret is required to sign cookies",
            ));
        }
        Ok(Self { keys })
    }

    /// `value.signature`, signed with the first secret.
    pub fn sign(&self, value: &str) -> String {
        let mut signed = String::with_capacity(value.len() + 1 + SIGNATURE_LEN);
        signed.push_str(value);
        signed.push('.');
        if let Some(key) = self.keys.first() {
            let mut mac = key.clone();
            mac.update(value.as_bytes());
            STANDARD_NO_PAD.encode_string(mac.finalize().into_bytes(), &mut signed);
        }
        signed
    }

    /// The value inside `signed` if its signature is valid under any secret, else `None`.
    ///
    /// A missing, wrong, truncated, extended or padded signature is `None`. The comparison of
    /// MACs is constant-time.
    pub fn verify<'a>(&self, signed: &'a str) -> Option<&'a str> {
        let (value, signature) = signed.rsplit_once('.')?;
        if signature.len() != SIGNATURE_LEN {
            return None;
        }
        let mut tag = [0u8; 32];
        let written = STANDARD_NO_PAD
            .decode_slice(signature.as_bytes(), &mut tag)
            .ok()?;
        if written != tag.len() {
            return None;
        }
        // Every key is tried, so the time taken does not reveal which secret matched.
        let mut valid = false;
        for key in &self.keys {
            let mut mac = key.clone();
            mac.update(value.as_bytes());
            valid |= mac.verify_slice(&tag).is_ok();
        }
        valid.then_some(value)
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer {{ secrets: [REDACTED; {}] }}", self.keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(secrets: &[&str]) -> Signer {
        Signer::new(secrets.iter().map(|s| SecretString::from(*s))).expect("valid secrets")
    }

    #[test]
    fn produces_and_verifies_the_thinkjs_vectors() {
        let vectors = [
            (
                "abc",
                "secret",
                "abc.mUba1OAOkT/Ivo5dP34RCkqegy+D+wnDRShdeGONig4",
            ),
            (
                "Zq3_fJ8kLm2nPq4rSt6uVw8xYz0aBc1D",
                "s3cr3t-k3y",
                "Zq3_fJ8kLm2nPq4rSt6uVw8xYz0aBc1D.QFoqygFQcnLocg5ZNemiiK8oGYP1TGN3cY2I1gye03k",
            ),
        ];
        for (value, secret, expected) in vectors {
            let signer = signer(&[secret]);
            assert_eq!(signer.sign(value), expected);
            assert_eq!(signer.verify(expected), Some(value));
        }
    }

    #[test]
    fn rejects_every_kind_of_tampering() {
        let signer = signer(&["s3cr3t-k3y"]);
        let good = "Zq3_fJ8kLm2nPq4rSt6uVw8xYz0aBc1D.QFoqygFQcnLocg5ZNemiiK8oGYP1TGN3cY2I1gye03k";
        let bad = [
            "Zq3_fJ8kLm2nPq4rSt6uVw8xYz0aBc1D",
            "Zq3_fJ8kLm2nPq4rSt6uVw8xYz0aBc1D.",
            "Zq3_fJ8kLm2nPq4rSt6uVw8xYz0aBc1D.QFoqygFQcnLocg5ZNemiiK8oGYP1TGN3cY2I1gye03",
            "Zq3_fJ8kLm2nPq4rSt6uVw8xYz0aBc1D.QFoqygFQcnLocg5ZNemiiK8oGYP1TGN3cY2I1gye03kA",
            "Zq3_fJ8kLm2nPq4rSt6uVw8xYz0aBc1D.QFoqygFQcnLocg5ZNemiiK8oGYP1TGN3cY2I1gye03k=",
            "Zq3_fJ8kLm2nPq4rSt6uVw8xYz0aBc1E.QFoqygFQcnLocg5ZNemiiK8oGYP1TGN3cY2I1gye03k",
            "Zq3_fJ8kLm2nPq4rSt6uVw8xYz0aBc1D.RFoqygFQcnLocg5ZNemiiK8oGYP1TGN3cY2I1gye03k",
            "Zq3_fJ8kLm2nPq4rSt6uVw8xYz0aBc1D.QFoqygFQcnLocg5ZNemiiK8oGYP1TGN3cY2I1gye03!",
            "",
            ".",
        ];
        assert!(signer.verify(good).is_some());
        for value in bad {
            assert_eq!(signer.verify(value), None, "{value}");
        }
        assert_eq!(self::signer(&["another secret"]).verify(good), None);
    }

    #[test]
    fn signs_with_the_first_secret_and_accepts_any() {
        let old = signer(&["old"]);
        let rotated = signer(&["new", "old"]);
        let legacy = old.sign("value");
        assert_eq!(rotated.verify(&legacy), Some("value"));
        let fresh = rotated.sign("value");
        assert_eq!(fresh, signer(&["new"]).sign("value"));
        assert_eq!(old.verify(&fresh), None);
    }

    #[test]
    fn never_shows_a_secret() {
        let signer = signer(&["hunter2-very-secret"]);
        let debug = format!("{signer:?}");
        assert_eq!(debug, "Signer { secrets: [REDACTED; 1] }");
    }

    #[test]
    fn refuses_empty_secrets() {
        assert_eq!(
            Signer::new(Vec::new()).expect_err("none").kind(),
            ErrorKind::Config
        );
        let err = Signer::new([SecretString::from("")]).expect_err("empty");
        assert!(err.to_string().contains("secret[0]"));
    }
}
