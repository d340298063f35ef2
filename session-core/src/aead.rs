//! Authenticated encryption shared by the `cookie` session type and encryption at rest:
//! XChaCha20-Poly1305 keys derived from configured secrets, a fresh random nonce per
//! message, and rotation (seal with the first key, open with any).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::{Error, ErrorKind, Result};

/// The bytes of a nonce, written before each ciphertext.
pub(crate) const NONCE_LEN: usize = 24;

/// The bytes of the authentication tag at the end of each ciphertext.
pub(crate) const TAG_LEN: usize = 16;

/// A list of keys: the first seals, every one opens.
pub(crate) struct Keyring {
    ciphers: Vec<XChaCha20Poly1305>,
}

impl Keyring {
    /// Keys derived from `secrets` (HKDF-SHA256 with `purpose` as its info, so the keys of
    /// one secret differ from use to use). `key` names the configuration key in errors.
    pub(crate) fn new<'a>(
        secrets: impl IntoIterator<Item = &'a SecretString>,
        purpose: &[u8],
        key: &str,
    ) -> Result<Self> {
        let secrets: Vec<&SecretString> = secrets.into_iter().collect();
        crate::config::check_key_secrets(secrets.iter().copied(), key)?;
        let mut ciphers = Vec::with_capacity(secrets.len());
        for secret in secrets {
            let mut okm = [0u8; 32];
            Hkdf::<Sha256>::new(None, secret.expose_secret().as_bytes())
                .expand(purpose, &mut okm)
                .map_err(|_| Error::new(ErrorKind::Config, "HKDF refused a 32-byte key"))?;
            ciphers.push(XChaCha20Poly1305::new(&okm.into()));
        }
        Ok(Self { ciphers })
    }

    /// `plaintext` sealed with the first key and a fresh nonce, bound to `aad`: the nonce,
    /// then the ciphertext and its tag.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|err| {
            Error::new(
                ErrorKind::Encode,
                format!("the OS random source failed: {err}"),
            )
        })?;
        let Some(cipher) = self.ciphers.first() else {
            return Err(Error::new(ErrorKind::Config, "no encryption key"));
        };
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| Error::new(ErrorKind::Encode, "encryption failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The plaintext of `sealed` if one of the keys opens it with `aad`: `None` for bytes
    /// that were tampered with, truncated, sealed under another key or bound to other data.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = XNonce::from_slice(nonce);
        self.ciphers.iter().find_map(|cipher| {
            cipher
                .decrypt(
                    nonce,
                    Payload {
                        msg: ciphertext,
                        aad,
                    },
                )
                .ok()
        })
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.ciphers.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    const A: &str = "a secret of thirty-two bytes....";
    const B: &str = "another secret of 32 bytes......";

    #[test]
    fn seals_with_the_first_key_and_opens_with_any() {
        let old = Keyring::new(&[secret(A)], b"test", "secret").expect("keys");
        let rotated = Keyring::new(&[secret(B), secret(A)], b"test", "secret").expect("keys");
        let sealed = old.seal(b"aad", b"hello").expect("seal");
        assert_eq!(
            rotated.open(b"aad", &sealed).as_deref(),
            Some(&b"hello"[..])
        );
        let resealed = rotated.seal(b"aad", b"hello").expect("seal");
        assert_eq!(
            old.open(b"aad", &resealed),
            None,
            "the old key alone cannot open"
        );
        assert_ne!(
            sealed,
            old.seal(b"aad", b"hello").expect("seal"),
            "fresh nonces"
        );
    }

    #[test]
    fn refuses_other_data_other_purposes_and_damaged_bytes() {
        let keys = Keyring::new(&[secret(A)], b"one", "secret").expect("keys");
        let other = Keyring::new(&[secret(A)], b"two", "secret").expect("keys");
        let sealed = keys.seal(b"aad", b"hello").expect("seal");
        assert_eq!(keys.open(b"other", &sealed), None);
        assert_eq!(other.open(b"aad", &sealed), None);
        for cut in 0..sealed.len() {
            assert_eq!(keys.open(b"aad", &sealed[..cut]), None, "cut at {cut}");
        }
        let mut flipped = sealed.clone();
        flipped[NONCE_LEN + 1] ^= 1;
        assert_eq!(keys.open(b"aad", &flipped), None);
    }

    #[test]
    fn short_or_missing_secrets_are_configuration_errors_naming_the_key() {
        let err = Keyring::new(&[secret(A), secret("short")], b"x", "secret").expect_err("short");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("secret[1]"), "{err}");
        let err = Keyring::new(&[], b"x", "encrypt_at_rest.keys").expect_err("none");
        assert!(err.to_string().contains("encrypt_at_rest.keys"), "{err}");
    }
}
