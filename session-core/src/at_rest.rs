//! Encryption at rest (`encrypt_at_rest`): a store wrapper that encrypts every value on
//! its way in and decrypts it on its way out, so the store keeps only ciphertext and
//! still moves bytes.
//!
//! ```text
//! value    magic 4 bytes 0xFF "SE1", then nonce (24 bytes), then the XChaCha20-Poly1305
//!          ciphertext of the plain value with its 16-byte tag
//! aad      "session-core at rest v1", the store key, a zero byte, the field name
//! ```
//!
//! Binding the store key and the field name means a value copied into another session or
//! another field does not decrypt: it reads as a corrupt record, which the session treats
//! as no session. The magic tells an encrypted value from one written before the option
//! was on; such a value is read as it is only with `accept_plaintext` (for migrating a
//! live store), and is an error otherwise.

use std::sync::Arc;

use crate::{Error, Result, SessionConfig, SessionStore};

/// `store`, wrapped to encrypt its values if `config.encrypt_at_rest` asks for it.
///
/// # Errors
/// [`ErrorKind::Config`](crate::ErrorKind::Config) for keys that are missing or short, or
/// when the `encrypt-at-rest` feature is off.
pub(crate) fn wrap(
    store: Arc<dyn SessionStore>,
    config: &SessionConfig,
) -> Result<Arc<dyn SessionStore>> {
    let Some(options) = &config.encrypt_at_rest else {
        return Ok(store);
    };
    #[cfg(feature = "encrypt-at-rest")]
    {
        Ok(Arc::new(encrypted::EncryptedStore::new(store, options)?))
    }
    #[cfg(not(feature = "encrypt-at-rest"))]
    {
        let _ = (store, options);
        Err(Error::config(
            "encrypt_at_rest",
            "needs session-core's `encrypt-at-rest` feature",
        ))
    }
}

#[cfg(feature = "encrypt-at-rest")]
pub use encrypted::EncryptedStore;

#[cfg(feature = "encrypt-at-rest")]
mod encrypted {
    use std::time::Duration;

    use async_trait::async_trait;

    use super::*;
    use crate::aead::Keyring;
    use crate::config::EncryptAtRestConfig;
    use crate::{
        Capabilities, ChangeSet, Data, IndexedSession, LockToken, Record, Revision, StoreKey,
        Timestamp, UserId,
    };

    /// The first bytes of every encrypted value. `0xFF` starts no JSON text and no value
    /// bincode writes, so a plain value is never taken for an encrypted one.
    pub(super) const MAGIC: &[u8; 4] = b"\xffSE1";

    /// What the keys are derived for, and the start of every value's associated data.
    const PURPOSE: &[u8] = b"session-core at rest v1";

    /// A store whose values are encrypted, bound to their session and field: what
    /// [`SessionManager::new`](crate::SessionManager::new) puts around the store when
    /// `encrypt_at_rest` is set. Build one yourself to run a store under it through the
    /// conformance suite, or to read a store's values outside a manager.
    pub struct EncryptedStore {
        inner: Arc<dyn SessionStore>,
        keys: Keyring,
        accept_plaintext: bool,
    }

    impl EncryptedStore {
        /// `inner`, with its values encrypted under `options.keys`.
        ///
        /// # Errors
        /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming `encrypt_at_rest.keys`
        /// when there is no key or one is shorter than 32 bytes.
        pub fn new(inner: Arc<dyn SessionStore>, options: &EncryptAtRestConfig) -> Result<Self> {
            Ok(Self {
                inner,
                keys: Keyring::new(options.keys.iter(), PURPOSE, "encrypt_at_rest.keys")?,
                accept_plaintext: options.accept_plaintext,
            })
        }

        fn aad(key: &StoreKey, field: &str) -> Vec<u8> {
            let mut aad = Vec::with_capacity(PURPOSE.len() + 65 + field.len());
            aad.extend_from_slice(PURPOSE);
            aad.extend_from_slice(key.as_str().as_bytes());
            aad.push(0);
            aad.extend_from_slice(field.as_bytes());
            aad
        }

        fn seal_data(&self, key: &StoreKey, data: &Data) -> Result<Data> {
            data.iter()
                .map(|(field, value)| {
                    let sealed = self.keys.seal(&Self::aad(key, field), value)?;
                    let mut out = Vec::with_capacity(MAGIC.len() + sealed.len());
                    out.extend_from_slice(MAGIC);
                    out.extend_from_slice(&sealed);
                    Ok((field.clone(), out))
                })
                .collect()
        }

        fn seal_record(&self, key: &StoreKey, record: &Record) -> Result<Record> {
            Ok(Record {
                data: self.seal_data(key, &record.data)?,
                expires_at: record.expires_at,
                created_at: record.created_at,
                revision: record.revision,
                owner: record.owner.clone(),
            })
        }

        fn open_record(&self, key: &StoreKey, mut record: Record) -> Result<Record> {
            for (field, value) in &mut record.data {
                match value.strip_prefix(MAGIC) {
                    Some(sealed) => {
                        *value = self.keys.open(&Self::aad(key, field), sealed).ok_or_else(
                            || {
                                Error::decode(format!(
                                    "the encrypted value of `{field}` does not decrypt: another \
                                 key, or a value copied from another session or field"
                                ))
                            },
                        )?;
                    }
                    None if self.accept_plaintext => {}
                    None => {
                        return Err(Error::decode(format!(
                            "the value of `{field}` is not encrypted (set \
                             `encrypt_at_rest.accept_plaintext` while migrating a store)"
                        )));
                    }
                }
            }
            Ok(record)
        }

        fn open_loaded(&self, key: &StoreKey, loaded: Option<Record>) -> Result<Option<Record>> {
            loaded
                .map(|record| self.open_record(key, record))
                .transpose()
        }

        fn seal_changes(&self, key: &StoreKey, changes: &ChangeSet) -> Result<ChangeSet> {
            Ok(ChangeSet {
                cleared: changes.cleared,
                set: self.seal_data(key, &changes.set)?,
                removed: changes.removed.clone(),
                expires_at: changes.expires_at,
                owner: changes.owner.clone(),
            })
        }
    }

    impl std::fmt::Debug for EncryptedStore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("EncryptedStore")
                .field("inner", &self.inner)
                .field("keys", &self.keys)
                .field("accept_plaintext", &self.accept_plaintext)
                .finish()
        }
    }

    #[async_trait]
    #[deny(clippy::missing_trait_methods)]
    impl SessionStore for EncryptedStore {
        async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
            let loaded = self.inner.load(key).await?;
            self.open_loaded(key, loaded)
        }

        async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
            self.inner
                .create(key, &self.seal_record(key, record)?)
                .await
        }

        async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
            self.inner
                .update(key, &self.seal_changes(key, changes)?)
                .await
        }

        async fn update_if_unchanged(
            &self,
            key: &StoreKey,
            revision: Revision,
            record: &Record,
        ) -> Result<Option<Revision>> {
            let sealed = self.seal_record(key, record)?;
            self.inner.update_if_unchanged(key, revision, &sealed).await
        }

        async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
            self.inner.touch(key, expires_at).await
        }

        async fn delete(&self, key: &StoreKey) -> Result<bool> {
            self.inner.delete(key).await
        }

        async fn gc(&self) -> Result<u64> {
            self.inner.gc().await
        }

        async fn delete_many(&self, keys: &[StoreKey]) -> Result<u64> {
            self.inner.delete_many(keys).await
        }

        async fn sessions_of(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
            self.inner.sessions_of(user).await
        }

        async fn user_index_len(&self, user: &UserId) -> Result<u64> {
            self.inner.user_index_len(user).await
        }

        async fn lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
            self.inner.lock(key, token, ttl).await
        }

        async fn lock_and_load(
            &self,
            key: &StoreKey,
            token: &LockToken,
            ttl: Duration,
        ) -> Result<Option<Option<Record>>> {
            match self.inner.lock_and_load(key, token, ttl).await? {
                Some(loaded) => Ok(Some(self.open_loaded(key, loaded)?)),
                None => Ok(None),
            }
        }

        async fn update_and_unlock(
            &self,
            key: &StoreKey,
            changes: &ChangeSet,
            token: &LockToken,
        ) -> Result<bool> {
            let sealed = self.seal_changes(key, changes)?;
            self.inner.update_and_unlock(key, &sealed, token).await
        }

        async fn update_if_unchanged_and_unlock(
            &self,
            key: &StoreKey,
            revision: Revision,
            record: &Record,
            token: &LockToken,
        ) -> Result<Option<Revision>> {
            let sealed = self.seal_record(key, record)?;
            self.inner
                .update_if_unchanged_and_unlock(key, revision, &sealed, token)
                .await
        }

        async fn renew_lock(
            &self,
            key: &StoreKey,
            token: &LockToken,
            ttl: Duration,
        ) -> Result<bool> {
            self.inner.renew_lock(key, token, ttl).await
        }

        async fn unlock(&self, key: &StoreKey, token: &LockToken) -> Result<bool> {
            self.inner.unlock(key, token).await
        }

        fn capabilities(&self) -> Capabilities {
            self.inner.capabilities()
        }
    }

    #[cfg(test)]
    mod tests {
        //! What the store holds under encryption, and what copied, foreign and plain
        //! values read as.

        use super::*;
        use crate::test_store::{Counted, header, manager};
        use crate::{ErrorKind, Secrets, SessionId};

        const KEY: &str = "an at-rest key of thirty-two bytes";

        fn options(keys: &[&str], accept_plaintext: bool) -> EncryptAtRestConfig {
            EncryptAtRestConfig {
                keys: Secrets::new(keys.iter().map(|k| (*k).to_owned().into())),
                accept_plaintext,
            }
        }

        fn record(pairs: &[(&str, &[u8])]) -> Record {
            let now = Timestamp::now();
            Record::new(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
                    .collect(),
                now + Duration::from_secs(600),
                now,
            )
        }

        fn key() -> StoreKey {
            SessionId::generate(32).expect("id").store_key()
        }

        #[tokio::test]
        async fn the_store_holds_only_ciphertext_bound_to_its_session_and_field() {
            let inner = Arc::new(Counted::default());
            let store = EncryptedStore::new(inner.clone(), &options(&[KEY], false)).expect("store");
            let (a, b) = (key(), key());
            let secret = b"the user's address";
            assert!(
                store
                    .create(&a, &record(&[("addr", secret), ("x", b"1")]))
                    .await
                    .expect("create")
            );
            let raw = inner.load(&a).await.expect("load").expect("stored");
            let sealed = raw.data["addr"].clone();
            assert!(sealed.starts_with(MAGIC));
            assert!(
                !sealed.windows(secret.len()).any(|w| w == secret),
                "plaintext in the store"
            );
            let read = store.load(&a).await.expect("load").expect("record");
            assert_eq!(read.data["addr"], secret);

            // Copied into another session, or into another field of the same one.
            assert!(
                inner
                    .create(&b, &record(&[("addr", &sealed)]))
                    .await
                    .expect("create")
            );
            assert_eq!(
                store.load(&b).await.expect_err("copied").kind(),
                ErrorKind::Decode
            );
            let moved = record(&[("x", &sealed)]);
            assert!(inner.delete(&a).await.expect("delete"));
            assert!(inner.create(&a, &moved).await.expect("create"));
            assert_eq!(
                store.load(&a).await.expect_err("moved").kind(),
                ErrorKind::Decode
            );
        }

        #[tokio::test]
        async fn rotation_and_plaintext_migration() {
            let inner = Arc::new(Counted::default());
            let old = EncryptedStore::new(inner.clone(), &options(&[KEY], false)).expect("store");
            let new_key = "a newer at-rest key of 32 bytes...";
            let rotated = EncryptedStore::new(inner.clone(), &options(&[new_key, KEY], false))
                .expect("store");
            let (sealed, plain) = (key(), key());
            assert!(
                old.create(&sealed, &record(&[("n", b"1")]))
                    .await
                    .expect("create")
            );
            assert_eq!(
                rotated
                    .load(&sealed)
                    .await
                    .expect("load")
                    .expect("record")
                    .data["n"],
                b"1"
            );
            assert!(
                inner
                    .create(&plain, &record(&[("n", b"2")]))
                    .await
                    .expect("create")
            );
            assert_eq!(
                rotated.load(&plain).await.expect_err("plain").kind(),
                ErrorKind::Decode
            );
            let migrating =
                EncryptedStore::new(inner.clone(), &options(&[new_key], true)).expect("store");
            assert_eq!(
                migrating
                    .load(&plain)
                    .await
                    .expect("load")
                    .expect("record")
                    .data["n"],
                b"2"
            );
            assert!(
                migrating.load(&sealed).await.is_err(),
                "its key was dropped"
            );
        }

        #[tokio::test]
        async fn a_manager_with_the_option_round_trips_sessions_through_ciphertext() {
            let (manager, inner) =
                manager(&format!(r#"{{"encrypt_at_rest": {{"keys": ["{KEY}"]}}}}"#));
            let login = manager.session_from_cookie_header(None);
            login.set("user", "ada").await.expect("set");
            let cookie = login.flush().await.expect("flush").expect("cookie");
            let next = manager.session_from_cookie_header(Some(&header(&cookie)));
            assert_eq!(
                next.get::<String>("user").await.expect("get").as_deref(),
                Some("ada")
            );
            next.set("user", "grace").await.expect("set");
            next.flush().await.expect("flush");
            let id = SessionId::parse(cookie.value()).expect("id");
            let raw = inner
                .load(&id.store_key())
                .await
                .expect("load")
                .expect("stored");
            assert!(
                raw.data["user"].starts_with(MAGIC),
                "the update was encrypted too"
            );
        }

        #[test]
        fn short_or_missing_keys_are_refused() {
            for keys in [&[][..], &["short"][..]] {
                let err = EncryptedStore::new(Arc::new(Counted::default()), &options(keys, false))
                    .expect_err("refused");
                assert_eq!(err.kind(), ErrorKind::Config);
                assert!(err.to_string().contains("encrypt_at_rest.keys"), "{err}");
            }
        }
    }
}
