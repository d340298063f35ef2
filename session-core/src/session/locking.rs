//! The session's side of same-session concurrency: how a request treats the session lock,
//! and atomic read-modify-writes of one key without it.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{CookieAction, Persisted, Session, State};
use crate::expiry::NextExpiry;
use crate::lease::Lease;
use crate::transport::Transport;
use crate::{ChangeSet, Error, ErrorKind, LockMode, Result, Timestamp};

/// How many compare-and-swap rounds [`Session::update`] tries before it reports a
/// [`ErrorKind::Conflict`]. Each refused round means another request's write landed, so
/// with fewer than this many requests updating one session at once, every update lands.
const UPDATE_ATTEMPTS: u32 = 128;

/// The longest pause between two rounds of [`Session::update`]; the pause doubles from a
/// quarter of a millisecond up to this, jittered, so that contenders spread out.
const UPDATE_MAX_BACKOFF: Duration = Duration::from_millis(8);

impl Session {
    /// Chooses how this request treats the session lock, overriding the configuration's
    /// `lock` (a web layer calls it for the routes configured otherwise). Call it before
    /// the session is first used.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] after the session's first use, or for
    /// [`LockMode::Exclusive`] on a store without [`Capabilities::lock`](crate::Capabilities).
    pub async fn set_lock_mode(&self, mode: LockMode) -> Result<()> {
        if mode == LockMode::Exclusive && !self.shared.manager.store.capabilities().lock {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "this store keeps no session locks (its Capabilities::lock is false)",
            ));
        }
        let mut state = self.shared.state.lock().await;
        if state.loaded && state.lock_mode != mode {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "the lock mode must be chosen before the session is first used",
            ));
        }
        state.lock_mode = mode;
        Ok(())
    }

    /// How this request treats the session lock.
    pub async fn lock_mode(&self) -> LockMode {
        self.shared.state.lock().await.lock_mode
    }

    /// Whether this request holds its session's lock now: from its first use of a stored
    /// session in [`LockMode::Exclusive`] until its flush.
    pub async fn holds_lock(&self) -> bool {
        self.shared.state.lock().await.lease.is_some()
    }

    /// Replaces the value at `key` with `f` of the current one (`None` if there is none),
    /// atomically: of any number of concurrent updates of one session, none is lost,
    /// without the session lock. Returns the new value.
    ///
    /// The update is written at once, not at flush: the session's record is read afresh
    /// and written back only if nobody wrote it meanwhile (a compare-and-swap on the
    /// store's revisions), and `f` is called again on a fresh read if somebody did, so `f`
    /// may run more than once and should have no other effect. A new session, or one this
    /// request holds the lock of, has no concurrent writer and is updated in place (and
    /// stored at flush, as `set` does). The request's other pending changes are kept for
    /// its flush; an earlier `set` or `remove` of `key` in this request is what `f` sees.
    /// A client-side session (`type = "cookie"`, `"jwt"`) is updated in place too: each
    /// request carries its own copy in its token, so concurrent requests are not merged.
    ///
    /// ```
    /// # async fn handler(session: session_core::Session) -> session_core::Result<()> {
    /// let visits = session.update("visits", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
    /// # let _ = visits; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::Conflict`] if the session changed under every one of the bounded
    /// attempts; [`ErrorKind::ReadOnly`] in a read-only request; [`ErrorKind::Decode`] if
    /// the stored value is not a `T`; [`ErrorKind::Unsupported`] on a store that keeps
    /// neither revisions nor locks; store failures.
    pub async fn update<T, F>(&self, key: &str, mut f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T,
    {
        let mut state = self.writable_state().await?;
        if state.persisted.is_none() || state.lease.is_some() || state.cycle {
            // Nobody else can write it: a new id no one else knows, the lock this request
            // holds, or an id this flush replaces.
            let old = self.decode_value(state.data.get(key))?;
            let new = f(old);
            let bytes = self.encode_value(&new)?;
            state.set_bytes(key, bytes);
            return Ok(new);
        }
        // Boxed: updates are the exception, and inline this future would grow the handler's.
        Box::pin(self.update_in_store(&mut state, key, &mut f)).await
    }

    /// The compare-and-swap loop of [`Session::update`] for a stored session.
    async fn update_in_store<T, F>(&self, state: &mut State, key: &str, f: &mut F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T,
    {
        let manager = &*self.shared.manager;
        let own = state.own_change(key);
        let mut backoff = Duration::from_micros(250);
        for _ in 0..UPDATE_ATTEMPTS {
            let Some(persisted) = &state.persisted else {
                break;
            };
            let store_key = persisted.key.clone();
            let loaded = manager
                .load_live(&store_key)
                .await
                .map_err(|err| state.failed(err))?;
            let Some(mut record) = loaded else {
                // Deleted meanwhile (a logout): like any write after it, this one starts a
                // new session.
                state.forget();
                let new = f(self.decode_value(None)?);
                state.set_bytes(key, self.encode_value(&new)?);
                return Ok(new);
            };
            let Some(revision) = record.revision else {
                return Box::pin(self.update_under_lease(state, key, f)).await;
            };
            let new = f(self.decode_value(own.current(&record.data, key))?);
            let bytes = self.encode_value(&new)?;
            let now = Timestamp::now();
            let NextExpiry { expires_at, moved } =
                manager.expiry_for(state.remember).after_request(
                    now,
                    record.created_at,
                    record.expires_at,
                    state.timeout_override,
                );
            record.data.insert(key.to_owned(), bytes);
            record.expires_at = expires_at;
            let written = manager
                .store
                .update_if_unchanged(&store_key, revision, &record)
                .await
                .map_err(|err| state.failed(err))?;
            if let Some(written) = written {
                state.adopt(record, written, moved);
                state.pending.set.remove(key);
                state.pending.removed.remove(key);
                let pending = std::mem::take(&mut state.pending);
                pending.apply_to(&mut state.data);
                state.pending = pending;
                return Ok(new);
            }
            tokio::time::sleep(crate::lease::jittered(backoff)).await;
            backoff = (backoff * 2).min(UPDATE_MAX_BACKOFF);
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "the session changed under each of {UPDATE_ATTEMPTS} attempts to update `{key}`"
            ),
        ))
    }

    /// [`Session::update`] on a store that reports no revisions: under the session lock,
    /// if the store keeps locks, as one change set.
    async fn update_under_lease<T, F>(&self, state: &mut State, key: &str, f: &mut F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T,
    {
        let manager = &*self.shared.manager;
        if !manager.store.capabilities().lock {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "Session::update needs a store that reports revisions or keeps session locks; \
                 this one does neither",
            ));
        }
        let Some(persisted) = &state.persisted else {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "Session::update of a session that is not stored",
            ));
        };
        let store_key = persisted.key.clone();
        let own = state.own_change(key);
        let (lease, loaded): (Lease, _) = manager
            .lease_and_load(&store_key)
            .await
            .map_err(|err| state.failed(err))?;
        let result = async {
            let Some(record) = loaded else {
                return Ok(None);
            };
            let new = f(self.decode_value(own.current(&record.data, key))?);
            let bytes = self.encode_value(&new)?;
            let NextExpiry { expires_at, moved } =
                manager.expiry_for(state.remember).after_request(
                    Timestamp::now(),
                    record.created_at,
                    record.expires_at,
                    state.timeout_override,
                );
            let mut changes = ChangeSet {
                expires_at,
                ..ChangeSet::default()
            };
            changes.set.insert(key.to_owned(), bytes.clone());
            lease.check()?;
            // The write releases the lock with it where the store can: one call, not two.
            let applied = manager
                .store
                .update_and_unlock(&store_key, &changes, lease.token())
                .await?;
            Ok(applied.then_some((new, bytes, expires_at, moved)))
        }
        .await;
        if matches!(result, Ok(Some(_))) {
            lease.released_by_write();
        } else {
            lease.release().await;
        }
        match result.map_err(|err| state.failed(err))? {
            Some((new, bytes, expires_at, moved)) => {
                state.pending.set.remove(key);
                state.pending.removed.remove(key);
                if let Some(persisted) = &mut state.persisted {
                    persisted.expires_at = expires_at;
                    if moved && state.transport == Transport::Cookie {
                        state.cookie = CookieAction::Set {
                            id: persisted.id.clone(),
                            expires_at,
                        };
                    }
                }
                state.data.insert(key.to_owned(), bytes);
                Ok(new)
            }
            None => {
                state.forget();
                let new = f(self.decode_value(None)?);
                state.set_bytes(key, self.encode_value(&new)?);
                Ok(new)
            }
        }
    }

    fn decode_value<T: DeserializeOwned>(&self, bytes: Option<&Vec<u8>>) -> Result<Option<T>> {
        bytes.map(|bytes| self.codec().decode(bytes)).transpose()
    }

    fn encode_value<T: Serialize>(&self, value: &T) -> Result<Vec<u8>> {
        self.codec()
            .encode(value, self.shared.manager.config.max_value_size)
    }
}

/// What this request did to a key before updating it.
enum OwnChange {
    /// Nothing: the update starts from the stored value.
    None,
    /// It set the key to these bytes, or removed it (`None`).
    Changed(Option<Vec<u8>>),
}

impl OwnChange {
    /// The bytes the update starts from, given the stored `data`.
    fn current<'a>(&'a self, data: &'a crate::Data, key: &str) -> Option<&'a Vec<u8>> {
        match self {
            Self::None => data.get(key),
            Self::Changed(bytes) => bytes.as_ref(),
        }
    }
}

impl State {
    /// This request's earlier `set` or `remove` of `key`, which an update starts from.
    fn own_change(&self, key: &str) -> OwnChange {
        match self.pending.set.get(key) {
            Some(bytes) => OwnChange::Changed(Some(bytes.clone())),
            None if self.pending.removed.contains(key) => OwnChange::Changed(None),
            None => OwnChange::None,
        }
    }

    /// Takes `record`, just written at `revision`, as the session's stored state.
    fn adopt(&mut self, record: crate::Record, revision: crate::Revision, moved: bool) {
        if let Some(persisted) = &mut self.persisted {
            *persisted = Persisted {
                id: persisted.id.clone(),
                key: persisted.key.clone(),
                expires_at: record.expires_at,
                created_at: record.created_at,
                revision: Some(revision),
            };
            if moved && self.transport == Transport::Cookie {
                self.cookie = CookieAction::Set {
                    id: persisted.id.clone(),
                    expires_at: record.expires_at,
                };
            }
        }
        self.data = record.data;
        if self.pending.owner.is_none() {
            self.owner = record.owner;
        }
    }
}
