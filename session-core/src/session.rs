//! The per-request session handle: lazy load, typed access, change tracking, flush.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::lock::{Mutex, MutexGuard};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod client;
mod flash;
mod locking;
mod remember;
mod users;

pub use remember::REMEMBER_KEY;

use crate::expiry::NextExpiry;
use crate::lease::Lease;
use crate::manager::ManagerInner;
use crate::transport::Transport;
use crate::{
    ChangeSet, Data, Error, ErrorKind, LockMode, Owner, Record, Result, Revision, SessionId,
    StoreKey, Timestamp,
};

/// How many fresh ids a new session tries before giving up. A collision of two 192-bit ids
/// is not expected in the life of the universe; a store that keeps answering "exists" is
/// broken, and looping forever on it would hang the request.
const CREATE_ATTEMPTS: usize = 3;

/// One request's view of its session.
///
/// Created by [`SessionManager::session`](crate::SessionManager::session) from the request's
/// `Cookie` header; cheap to clone (clones share state), so a web framework can hand it to
/// the handler and flush it afterwards.
///
/// - Nothing touches the store until the first `get`, `set`, `remove` or `cycle_id`, and the
///   store is read at most once per request.
/// - [`flush`](Session::flush) sends one change set, or nothing when nothing changed.
/// - A new session that ends the request empty is neither stored nor given a cookie.
/// - An id the store does not know is never adopted: writes go to a fresh id.
/// - With a client-side type (`type = "cookie"`, `"jwt"`) the same calls work on the data
///   the request's token carries, and the flush issues a new token instead of writing to
///   a store.
///
/// ```
/// # use session_core::Session;
/// # async fn handler(session: Session) -> session_core::Result<()> {
/// // ThinkJS: this.session('userInfo')
/// let visits: u64 = session.get("visits").await?.unwrap_or(0);
/// // ThinkJS: this.session('userInfo', value)
/// session.set("visits", &(visits + 1)).await?;
/// // ThinkJS: this.session(null)
/// session.clear().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

struct Shared {
    manager: Arc<ManagerInner>,
    /// Where the request's token came from; fixed for the request (the state has a copy).
    transport: Transport,
    state: Mutex<State>,
}

/// The session as stored before this request changed it.
#[derive(Clone)]
struct Persisted {
    id: SessionId,
    key: StoreKey,
    expires_at: Timestamp,
    created_at: Timestamp,
    /// The record's revision as this request last saw it, if the store keeps revisions:
    /// `data` is then exactly that record plus this request's changes.
    revision: Option<Revision>,
}

#[derive(Default)]
struct State {
    /// A syntactically valid, correctly signed id from the request, not yet looked up.
    incoming: Option<SessionId>,
    /// The request carried a session token (valid or not) in one of the accepted
    /// transports.
    had_token: bool,
    /// Where the request's token came from, and so where the response's goes: the first
    /// accepted transport for a request without one.
    transport: Transport,
    /// A client-side session (`type = "cookie"` or `"jwt"`): its token and what it held.
    client: Option<Box<client::ClientState>>,
    loaded: bool,
    persisted: Option<Persisted>,
    /// The working data: what was loaded, with this request's changes applied.
    data: Data,
    /// This request's changes since the last flush, built as they happen so that a flush
    /// sends them as they are: the keys set (with their new values) and the keys removed.
    /// Its `expires_at` is filled in at flush.
    pending: ChangeSet,
    /// A record to delete at flush (the session was cleared).
    destroy: Option<StoreKey>,
    /// Move the data to a fresh id at flush.
    cycle: bool,
    /// A timeout set by `set_with_timeout` or `remember`, replacing the configured one for
    /// this request.
    timeout_override: Option<Duration>,
    /// The session's `remember` choice, as loaded or as this request made it.
    remember: Option<bool>,
    /// The user the session is bound to, as loaded or as `set_user` made it.
    owner: Option<Owner>,
    /// A label set before the session was bound, given to the binding `set_user` makes.
    label: String,
    /// `set_user` bound the session in this request: after the flush that stores the
    /// binding, the manager enforces `max_sessions_per_user`.
    bound: bool,
    /// What the response must do with the cookie, accumulated over flushes.
    cookie: CookieAction,
    /// The first store failure of this request, kept for the framework integration.
    store_error: Option<(ErrorKind, String)>,
    /// A failed load makes the session new and detached, rather than failing the request
    /// ([`OnStoreError::ContinueWithoutSession`](crate::web::OnStoreError)).
    continue_without_store: bool,
    /// The load failed and the session went on without the store: the flush drops every
    /// change, with a warning.
    detached: bool,
    /// How this request treats the session lock.
    lock_mode: LockMode,
    /// The session lock, while this request holds it.
    lease: Option<Lease>,
}

/// What the response must do with the session cookie.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum CookieAction {
    #[default]
    None,
    Set {
        id: SessionId,
        expires_at: Timestamp,
    },
    /// A client-side session's new token.
    Token {
        value: String,
        expires_at: Timestamp,
    },
    Remove,
}

/// What a request brings of its session: found by the manager among its headers.
#[derive(Debug)]
pub(crate) struct Incoming {
    /// A valid id (server-side types).
    pub(crate) id: Option<SessionId>,
    /// A token of the right size, not yet opened (client-side types).
    pub(crate) token: Option<String>,
    /// Whether the request carried a token at all, valid or not.
    pub(crate) had_token: bool,
    /// The transport it came in, or the first accepted one.
    pub(crate) transport: Transport,
}

impl Incoming {
    /// Nothing, for a response in `transport`.
    pub(crate) fn none(transport: Transport) -> Self {
        Self {
            id: None,
            token: None,
            had_token: false,
            transport,
        }
    }
}

impl Session {
    pub(crate) fn new(manager: Arc<ManagerInner>, incoming: Incoming) -> Self {
        let client = manager
            .client
            .is_some()
            .then(|| Box::new(client::ClientState::new(incoming.token)));
        Self {
            shared: Arc::new(Shared {
                manager: Arc::clone(&manager),
                transport: incoming.transport,
                state: Mutex::new(State {
                    incoming: incoming.id,
                    had_token: incoming.had_token,
                    transport: incoming.transport,
                    client,
                    lock_mode: LockMode::from_config(manager.config.lock),
                    ..State::default()
                }),
            }),
        }
    }

    /// Where this request's session token travels: the transport the request's token came
    /// in, or for a request without one the first that `transport` accepts. A new or
    /// changed token goes back the same way.
    pub fn transport(&self) -> Transport {
        self.shared.transport
    }

    /// The configuration's `token_header`, for a response that sends the token in it.
    pub(crate) fn token_header(&self) -> Arc<str> {
        Arc::clone(&self.shared.manager.token_header)
    }

    /// The value at `key`, decoded as `T`; `None` if the session has no such key.
    ///
    /// # Errors
    /// A store failure while loading; [`ErrorKind::Decode`] if the stored value is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let state = self.loaded_state().await?;
        match state.data.get(key) {
            Some(bytes) => self.codec().decode(bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `value` at `key`.
    ///
    /// # Errors
    /// A store failure while loading; [`ErrorKind::Encode`] or [`ErrorKind::TooLarge`] if
    /// the value cannot be encoded within `max_value_size`.
    pub async fn set<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        let bytes = self
            .codec()
            .encode(value, self.shared.manager.config.max_value_size)?;
        let mut state = self.writable_state().await?;
        state.set_bytes(key, bytes);
        Ok(())
    }

    /// Stores `value` at `key` and sets this session's idle timeout to `timeout`, as
    /// ThinkJS's `session(name, value, timeout)` does: the session (and its cookie) now
    /// expire `timeout` after this request.
    ///
    /// # Errors
    /// As [`Session::set`].
    pub async fn set_with_timeout<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        timeout: Duration,
    ) -> Result<()> {
        self.set(key, value).await?;
        self.shared.state.lock().await.timeout_override = Some(timeout);
        Ok(())
    }

    /// Removes `key`; returns whether it was there.
    ///
    /// # Errors
    /// A store failure while loading.
    pub async fn remove(&self, key: &str) -> Result<bool> {
        let mut state = self.writable_state().await?;
        state.pending.set.remove(key);
        let present = state.data.remove(key).is_some();
        if present && state.persisted.is_some() {
            state.pending.removed.insert(key.to_owned());
        }
        if present && let Some(client) = &mut state.client {
            client.dirty = true;
        }
        Ok(present)
    }

    /// Whether the session holds `key`.
    ///
    /// # Errors
    /// A store failure while loading.
    pub async fn contains_key(&self, key: &str) -> Result<bool> {
        Ok(self.loaded_state().await?.data.contains_key(key))
    }

    /// The session's keys, in no particular order.
    ///
    /// # Errors
    /// A store failure while loading.
    pub async fn keys(&self) -> Result<Vec<String>> {
        Ok(self.loaded_state().await?.data.keys().cloned().collect())
    }

    /// Whether the session holds no data (a new session, or one that was cleared).
    ///
    /// # Errors
    /// A store failure while loading.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.loaded_state().await?.data.is_empty())
    }

    /// Whether the request's cookie named a live session in the store.
    ///
    /// # Errors
    /// A store failure while loading.
    pub async fn exists(&self) -> Result<bool> {
        let state = self.loaded_state().await?;
        Ok(state.persisted.is_some() || state.client.as_ref().is_some_and(|c| c.live.is_some()))
    }

    /// Deletes the session (ThinkJS `session(null)`): the record is removed at flush and the
    /// cookie expired. Setting values afterwards starts a new session with a new id.
    ///
    /// Needs no store read: a cookie that was never looked up is deleted without one.
    pub async fn clear(&self) {
        let mut state = self.shared.state.lock().await;
        let key = match (&state.persisted, &state.incoming) {
            (Some(persisted), _) => Some(persisted.key.clone()),
            (None, Some(incoming)) if !state.loaded => Some(incoming.store_key()),
            _ => None,
        };
        if key.is_some() {
            state.destroy = key;
        }
        if let Some(client) = &mut state.client {
            client.clear();
        }
        state.incoming = None;
        state.loaded = true;
        state.persisted = None;
        state.data.clear();
        state.pending.clear();
        state.cycle = false;
        state.timeout_override = None;
        state.remember = None;
        state.owner = None;
        state.label.clear();
        state.bound = false;
    }

    /// Gives the session a fresh id at flush, keeping its data, and deletes the old record.
    /// Call it when privileges change (log-in): a fixated or stolen pre-login id then
    /// opens nothing.
    ///
    /// # Errors
    /// A store failure while loading.
    pub async fn cycle_id(&self) -> Result<()> {
        let mut state = self.writable_state().await?;
        // A new session gets a fresh id at its first flush anyway.
        state.cycle = state.persisted.is_some();
        if let Some(client) = &mut state.client {
            // A fresh token, with a fresh nonce: the old one stays valid until it expires.
            client.dirty = true;
        }
        Ok(())
    }

    /// When the session expires on the server, if it is stored.
    ///
    /// # Errors
    /// A store failure while loading.
    pub async fn expires_at(&self) -> Result<Option<Timestamp>> {
        let state = self.loaded_state().await?;
        Ok(match (&state.persisted, &state.client) {
            (Some(persisted), _) => Some(persisted.expires_at),
            (None, Some(client)) => client.live.map(|live| live.expires_at),
            (None, None) => None,
        })
    }

    /// Sends this request's changes to the store and returns the `Set-Cookie` the response
    /// needs, if any.
    ///
    /// One change set at most; nothing at all for an untouched or read-only session (unless
    /// a rolling expiry is due for refresh, which costs one `touch`). A change set for a
    /// session deleted meanwhile is dropped, never re-created. Calling `flush` again returns
    /// the same cookie plus whatever changed since.
    ///
    /// # Errors
    /// Store failures. The changes stay pending, so a later flush can retry them.
    pub async fn flush(&self) -> Result<Option<cookie::Cookie<'static>>> {
        let mut state = self.shared.state.lock().await;
        let result = self.flush_locked(&mut state).await;
        if let Some(lease) = state.lease.take() {
            // The lock ends with the flush. Boxed: only locked requests pay for its room.
            Box::pin(lease.release()).await;
        }
        if let Err(err) = &result {
            state
                .store_error
                .get_or_insert_with(|| (err.kind(), err.message().to_owned()));
        }
        result
    }

    /// Makes a failed load give a new, empty session that drops its changes at flush,
    /// instead of an error ([`OnStoreError::ContinueWithoutSession`](crate::web::OnStoreError)).
    /// Set before the session is used: a session already in use by another task keeps its
    /// behaviour.
    pub(crate) fn continue_without_store(&self) {
        if let Some(mut state) = self.shared.state.try_lock() {
            state.continue_without_store = true;
        }
    }

    /// The first store error this request's session ran into, in a load or a flush, if any.
    ///
    /// Framework integrations check it after the handler: a handler that ignored a failed
    /// load (`get(..).unwrap_or_default()`) must not turn a store outage into a response
    /// that looks fine.
    pub async fn store_error(&self) -> Option<Error> {
        let state = self.shared.state.lock().await;
        state
            .store_error
            .as_ref()
            .map(|(kind, message)| Error::new(*kind, message.clone()))
    }

    async fn flush_locked(&self, state: &mut State) -> Result<Option<cookie::Cookie<'static>>> {
        if state.detached {
            if state.destroy.is_some() || state.pending.changes_data() || !state.data.is_empty() {
                tracing::warn!(
                    "session changes dropped: the store could not load the session, and the \
                     request went on without it"
                );
            }
            state.destroy = None;
            state.data.clear();
            state.pending.clear();
            return Ok(None);
        }
        // Borrowed, not cloned: the manager's reference count is shared by every request on
        // every core, and a flush has no reason to write to it.
        let manager = &*self.shared.manager;
        let now = Timestamp::now();
        if let Some(format) = &manager.client {
            return client::flush(manager, format, state, now);
        }
        let store = &manager.store;

        // The flush borrows what it sends from the state rather than cloning it: this
        // future lives inside every request's future, and a copy of the session's key and
        // timestamps across each await would make it larger than malloc's small sizes.
        if let Some(key) = &state.destroy {
            manager.metrics.cleared(store.delete(key).await?);
            state.destroy = None;
            if state.had_token {
                state.cookie = CookieAction::Remove;
            }
        }

        if state.loaded {
            match (state.persisted.is_some(), state.cycle) {
                (false, _) => self.flush_new(manager, state, now).await?,
                (true, true) => self.flush_cycle(manager, state, now).await?,
                (true, false) => self.flush_existing(manager, state, now).await?,
            }
        }
        if state.bound
            && let (Some(owner), Some(persisted)) = (&state.owner, &state.persisted)
        {
            // The binding is stored: hold the user to the configured number of sessions.
            // Boxed: log-ins are rare, and inline this future would grow every request's.
            Box::pin(manager.enforce_session_limit(&owner.user, &persisted.key)).await?;
            state.bound = false;
        }
        Ok(manager.cookie_for(&state.cookie, state.remember, now))
    }

    async fn flush_new(
        &self,
        manager: &ManagerInner,
        state: &mut State,
        now: Timestamp,
    ) -> Result<()> {
        if state.data.is_empty() && state.owner.is_none() {
            // Nothing to keep: no record and no cookie, so bots cannot fill the store.
            state.pending.clear();
            return Ok(());
        }
        let expires_at = manager
            .expiry_for(state.remember)
            .for_new(now, state.timeout_override);
        let lent = Lent::new(&mut state.data, &mut state.owner, expires_at, now);
        let (id, key) = self.create_with_fresh_id(manager, &lent.record).await?;
        drop(lent);
        state.persisted = Some(Persisted {
            id: id.clone(),
            key,
            expires_at,
            created_at: now,
            revision: None,
        });
        state.pending.clear();
        state.cookie = CookieAction::Set { id, expires_at };
        Ok(())
    }

    async fn flush_cycle(
        &self,
        manager: &ManagerInner,
        state: &mut State,
        now: Timestamp,
    ) -> Result<()> {
        let Some(old) = &state.persisted else {
            return Ok(());
        };
        if let Some(lease) = &state.lease {
            lease.check()?;
        }
        // Delete first: if the old record is already gone (a logout won the race), the
        // session must stay gone rather than reappear under a new id.
        if !manager.store.delete(&old.key).await? {
            tracing::debug!(
                session = old.key.short(),
                "session deleted during the request; id not cycled"
            );
            state.forget();
            state.cookie = CookieAction::Remove;
            return Ok(());
        }
        let expires_at = manager.expiry_for(state.remember).target(
            now,
            old.created_at,
            old.expires_at,
            state.timeout_override,
        );
        let created_at = old.created_at;
        let lent = Lent::new(&mut state.data, &mut state.owner, expires_at, created_at);
        let (id, key) = self.create_with_fresh_id(manager, &lent.record).await?;
        manager.metrics.cycled();
        drop(lent);
        state.persisted = Some(Persisted {
            id: id.clone(),
            key,
            expires_at,
            created_at,
            revision: None,
        });
        state.cycle = false;
        state.pending.clear();
        state.cookie = CookieAction::Set { id, expires_at };
        Ok(())
    }

    async fn flush_existing(
        &self,
        manager: &ManagerInner,
        state: &mut State,
        now: Timestamp,
    ) -> Result<()> {
        let state_transport = state.transport;
        let State {
            persisted: Some(persisted),
            data,
            pending,
            timeout_override,
            cookie,
            owner,
            lease,
            remember,
            ..
        } = state
        else {
            return Ok(());
        };
        // The expiry moves in steps of at least `touch_after`, and every step sends a fresh
        // cookie, so the cookie and the server always agree on when the session ends.
        let NextExpiry {
            expires_at,
            moved: refresh,
        } = manager.expiry_for(*remember).after_request(
            now,
            persisted.created_at,
            persisted.expires_at,
            *timeout_override,
        );
        let changes_data = pending.changes_data();
        if let Some(lease) = lease
            && (changes_data || refresh)
        {
            lease.check()?;
        }
        let mut revision = None;
        // Whether the write released this request's lock with it.
        let mut released = false;
        if changes_data && let Some(loaded) = persisted.revision {
            // One conditional write of the whole working data, for the common case of a
            // request that changed a session nobody else touched meanwhile.
            let lent = Lent::new(data, owner, expires_at, persisted.created_at);
            let store = &manager.store;
            revision = match lease {
                Some(lease) => {
                    let token = lease.token();
                    let written = store
                        .update_if_unchanged_and_unlock(&persisted.key, loaded, &lent.record, token)
                        .await?;
                    released = written.is_some();
                    written
                }
                None => {
                    store
                        .update_if_unchanged(&persisted.key, loaded, &lent.record)
                        .await?
                }
            };
            drop(lent);
            if revision.is_none() {
                tracing::debug!(
                    session = persisted.key.short(),
                    "session changed during the request; merging the change set"
                );
            }
        }
        let applied = if revision.is_some() {
            true
        } else if changes_data {
            if let Some(lease) = lease
                && persisted.revision.is_some()
            {
                // Refused under the lock: a request that does not lock (a read-only one
                // refreshing the expiry, an `update`) wrote, or this request's lease lapsed
                // and the next holder wrote. Only the first may merge. Boxed: it is rare.
                Box::pin(lease.confirm()).await?;
            }
            pending.expires_at = expires_at;
            match lease {
                Some(lease) => {
                    let token = lease.token();
                    released = manager
                        .store
                        .update_and_unlock(&persisted.key, pending, token)
                        .await?;
                    released
                }
                None => manager.store.update(&persisted.key, pending).await?,
            }
        } else if refresh {
            manager.store.touch(&persisted.key, expires_at).await?
        } else {
            return Ok(());
        };
        if released && let Some(lease) = lease.take() {
            lease.released_by_write();
        }
        if !applied {
            // Deleted meanwhile (a logout, gc of an expired record): never bring it back.
            tracing::debug!(
                session = persisted.key.short(),
                "session deleted during the request; changes dropped"
            );
            state.forget();
            return Ok(());
        }
        pending.clear();
        persisted.expires_at = expires_at;
        // After a merge or a touch the store's revision is unknown here (the merge may have
        // taken in another request's keys), so later flushes merge too.
        persisted.revision = revision;
        // A header token is the id alone, which a refresh does not change: only a cookie
        // carries the expiry, and needs sending again.
        if refresh && state_transport == Transport::Cookie {
            *cookie = CookieAction::Set {
                id: persisted.id.clone(),
                expires_at,
            };
        }
        Ok(())
    }

    async fn create_with_fresh_id(
        &self,
        manager: &ManagerInner,
        record: &Record,
    ) -> Result<(SessionId, StoreKey)> {
        for _ in 0..CREATE_ATTEMPTS {
            let id = SessionId::generate(manager.config.cookie.length)?;
            let key = id.store_key();
            if manager.store.create(&key, record).await? {
                return Ok((id, key));
            }
            tracing::warn!(
                session = key.short(),
                "store reported a fresh session id as taken; retrying"
            );
        }
        Err(Error::new(
            ErrorKind::Backend,
            format!("the store refused {CREATE_ATTEMPTS} fresh session ids as already taken"),
        ))
    }

    fn codec(&self) -> crate::Codec {
        self.shared.manager.config.codec
    }

    /// [`Session::loaded_state`] for a change: refused in a read-only request.
    async fn writable_state(&self) -> Result<MutexGuard<'_, State>> {
        let state = self.loaded_state().await?;
        if state.lock_mode == LockMode::ReadOnly {
            return Err(Error::new(
                ErrorKind::ReadOnly,
                "this request opened its session read-only (LockMode::ReadOnly), so it holds \
                 no lock and may not change it",
            ));
        }
        Ok(state)
    }

    /// Locks the state, loading the session from the store first if this request has not.
    async fn loaded_state(&self) -> Result<MutexGuard<'_, State>> {
        let mut state = self.shared.state.lock().await;
        if !state.loaded {
            let manager = &self.shared.manager;
            if let Some(format) = &manager.client {
                client::load(manager, format, &mut state);
            }
            if let Some(id) = state.incoming.clone() {
                let key = id.store_key();
                let loaded = if state.lock_mode == LockMode::Exclusive {
                    // Boxed: only locked requests pay for the wait's room.
                    match Box::pin(manager.lease_and_load(&key)).await {
                        Ok((lease, Some(record))) => {
                            state.lease = Some(lease);
                            Some(record)
                        }
                        Ok((lease, None)) => {
                            // Nothing to protect: this request's writes go to a fresh id.
                            Box::pin(lease.release()).await;
                            None
                        }
                        Err(err) => return state.load_failed(err).map(|()| state),
                    }
                } else {
                    match manager.load_live(&key).await {
                        Ok(loaded) => loaded,
                        Err(err) => return state.load_failed(err).map(|()| state),
                    }
                };
                if let Some(record) = loaded {
                    state.persisted = Some(Persisted {
                        id,
                        key,
                        expires_at: record.expires_at,
                        created_at: record.created_at,
                        revision: record.revision,
                    });
                    state.data = record.data;
                    state.owner = record.owner;
                    state.remember = state.stored_remember(manager.config.codec);
                }
            }
            state.incoming = None;
            state.loaded = true;
        }
        Ok(state)
    }
}

/// The session's working data and owner, lent to a record for one store call, and given
/// back when the lender is dropped: after the call, on an error, or when the flush is
/// cancelled mid-call (its future dropped). A flush sends them without copying, and a
/// cancelled flush leaves the session holding all of it for a later one.
struct Lent<'a> {
    home: &'a mut Data,
    owner_home: &'a mut Option<Owner>,
    record: Record,
}

impl<'a> Lent<'a> {
    /// Lends `home` and `owner_home` to a record with the given expiry and creation time.
    fn new(
        home: &'a mut Data,
        owner_home: &'a mut Option<Owner>,
        expires_at: Timestamp,
        created_at: Timestamp,
    ) -> Self {
        let record = Record {
            data: std::mem::take(home),
            expires_at,
            created_at,
            revision: None,
            owner: owner_home.take(),
        };
        Self {
            home,
            owner_home,
            record,
        }
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        std::mem::swap(self.home, &mut self.record.data);
        std::mem::swap(self.owner_home, &mut self.record.owner);
    }
}

impl State {
    /// Sets `key` to `bytes` in the working data and, for a stored session, in the pending
    /// change set.
    fn set_bytes(&mut self, key: &str, bytes: Vec<u8>) {
        if let Some(client) = &mut self.client {
            client.dirty = true;
        }
        // A session not stored yet is written whole at flush: only a stored one needs its
        // changes tracked.
        if self.persisted.is_some() {
            if !self.pending.removed.is_empty() {
                self.pending.removed.remove(key);
            }
            // Setting a key again (a counter, a cart) reuses the key strings already there.
            match self.pending.set.get_mut(key) {
                Some(slot) => slot.clone_from(&bytes),
                None => {
                    self.pending.set.insert(key.to_owned(), bytes.clone());
                }
            }
        }
        match self.data.get_mut(key) {
            Some(slot) => *slot = bytes,
            None => {
                self.data.insert(key.to_owned(), bytes);
            }
        }
    }

    /// A failed load: the error, or with `continue_without_store` (and unless the lock was
    /// not granted, which its own policy answers) a new, detached session.
    fn load_failed(&mut self, err: Error) -> Result<()> {
        let err = self.failed(err);
        if !self.continue_without_store || err.kind() == ErrorKind::Locked {
            return Err(err);
        }
        self.detached = true;
        self.incoming = None;
        self.loaded = true;
        Ok(())
    }

    /// Keeps the first store failure of the request for the framework, and returns it.
    fn failed(&mut self, err: Error) -> Error {
        self.store_error
            .get_or_insert_with(|| (err.kind(), err.message().to_owned()));
        err
    }

    /// Forgets a session the store no longer has, so later writes start a new one.
    fn forget(&mut self) {
        self.persisted = None;
        self.data.clear();
        self.pending.clear();
        self.cycle = false;
        self.remember = None;
        self.owner = None;
        self.label.clear();
        self.bound = false;
    }

    /// The `remember` choice the loaded data holds; one that does not decode is none.
    fn stored_remember(&self, codec: crate::Codec) -> Option<bool> {
        let bytes = self.data.get(REMEMBER_KEY)?;
        codec.decode(bytes).ok()
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! The session state machine against the doc store, counting what reaches the store.

    use std::time::Duration;

    use crate::SessionStore;
    use crate::test_store::{header, manager};

    #[tokio::test]
    async fn nothing_reaches_the_store_before_the_first_use() {
        let (manager, store) = manager("{}");
        let session =
            manager.session_from_cookie_header(Some("thinkjs=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        assert!(session.flush().await.expect("flush").is_none());
        assert_eq!(store.calls(), 0, "an untouched session costs nothing");
    }

    #[tokio::test]
    async fn a_new_empty_session_is_neither_stored_nor_given_a_cookie() {
        let (manager, store) = manager("{}");
        let session = manager.session_from_cookie_header(None);
        assert_eq!(session.get::<String>("user").await.expect("get"), None);
        session.set("user", "ada").await.expect("set");
        assert!(session.remove("user").await.expect("remove"));
        assert!(session.flush().await.expect("flush").is_none());
        assert_eq!(store.calls(), 0);
    }

    #[tokio::test]
    async fn one_load_per_request_and_one_write_per_change() {
        let (manager, store) = manager("{}");
        let first = manager.session_from_cookie_header(None);
        first.set("visits", &1u32).await.expect("set");
        let cookie = first.flush().await.expect("flush").expect("a cookie");
        assert_eq!(store.calls(), 1, "a new session: one create");
        // A second flush without changes writes nothing and repeats the cookie.
        let again = first
            .flush()
            .await
            .expect("flush")
            .expect("the same cookie");
        assert_eq!(again.value(), cookie.value());
        assert_eq!(store.calls(), 1);

        let second = manager.session_from_cookie_header(Some(&header(&cookie)));
        for _ in 0..3 {
            assert_eq!(second.get::<u32>("visits").await.expect("get"), Some(1));
        }
        assert_eq!(store.calls(), 2, "three reads, one load");
        second.set("visits", &2u32).await.expect("set");
        assert!(
            second.flush().await.expect("flush").is_none(),
            "no cookie: expiry step not due"
        );
        assert_eq!(store.calls(), 3, "one update");
        let third = manager.session_from_cookie_header(Some(&header(&cookie)));
        assert_eq!(third.get::<u32>("visits").await.expect("get"), Some(2));
    }

    #[tokio::test]
    async fn clear_deletes_without_loading_and_expires_the_cookie() {
        let (manager, store) = manager("{}");
        let login = manager.session_from_cookie_header(None);
        login.set("user", "ada").await.expect("set");
        let cookie = login.flush().await.expect("flush").expect("a cookie");
        let calls = store.calls();

        let logout = manager.session_from_cookie_header(Some(&header(&cookie)));
        logout.clear().await;
        let removal = logout
            .flush()
            .await
            .expect("flush")
            .expect("a removal cookie");
        assert_eq!(removal.value(), "");
        assert_eq!(removal.max_age(), Some(cookie::time::Duration::ZERO));
        assert_eq!(store.calls(), calls + 1, "one delete, no load");
        let replay = manager.session_from_cookie_header(Some(&header(&cookie)));
        assert!(!replay.exists().await.expect("load"));
    }

    #[tokio::test]
    async fn cycle_id_keeps_the_data_under_a_new_id_and_is_a_no_op_for_new_sessions() {
        let (manager, store) = manager("{}");
        let fresh = manager.session_from_cookie_header(None);
        fresh.cycle_id().await.expect("cycle a new session");
        fresh.set("user", "ada").await.expect("set");
        let cookie = fresh.flush().await.expect("flush").expect("a cookie");
        assert_eq!(
            store.calls(),
            1,
            "a new session is created once, not cycled"
        );

        let login = manager.session_from_cookie_header(Some(&header(&cookie)));
        login.cycle_id().await.expect("cycle");
        let cycled = login.flush().await.expect("flush").expect("a new cookie");
        assert_ne!(cycled.value(), cookie.value());
        let old = manager.session_from_cookie_header(Some(&header(&cookie)));
        assert!(
            !old.exists().await.expect("load"),
            "the old id opens nothing"
        );
        let new = manager.session_from_cookie_header(Some(&header(&cycled)));
        assert_eq!(
            new.get::<String>("user").await.expect("get").as_deref(),
            Some("ada")
        );
    }

    #[tokio::test]
    async fn set_with_timeout_sets_the_expiry_and_the_cookie_lifetime() {
        let (manager, _store) = manager("{}");
        let session = manager.session_from_cookie_header(None);
        session
            .set_with_timeout("code", "1234", Duration::from_secs(90))
            .await
            .expect("set");
        let cookie = session.flush().await.expect("flush").expect("a cookie");
        assert_eq!(cookie.max_age(), Some(cookie::time::Duration::seconds(90)));
        let expires_at = session.expires_at().await.expect("expiry").expect("stored");
        let left = expires_at.saturating_duration_since(crate::Timestamp::now());
        assert!(
            left <= Duration::from_secs(90) && left > Duration::from_secs(85),
            "{left:?}"
        );
    }

    #[tokio::test]
    async fn a_session_deleted_meanwhile_is_not_brought_back() {
        let (manager, store) = manager("{}");
        let login = manager.session_from_cookie_header(None);
        login.set("user", "ada").await.expect("set");
        let cookie = login.flush().await.expect("flush").expect("a cookie");

        let slow = manager.session_from_cookie_header(Some(&header(&cookie)));
        assert!(slow.exists().await.expect("load"));
        let logout = manager.session_from_cookie_header(Some(&header(&cookie)));
        logout.clear().await;
        logout.flush().await.expect("logout");

        slow.set("cart", "3 items").await.expect("set");
        assert!(slow.flush().await.expect("flush").is_none());
        assert!(
            !slow.exists().await.expect("state"),
            "the session forgets it"
        );
        assert!(store.gc().await.is_ok());
        let replay = manager.session_from_cookie_header(Some(&header(&cookie)));
        assert!(!replay.exists().await.expect("load"), "no resurrection");
    }

    #[tokio::test]
    async fn reads_tell_keys_emptiness_and_whether_the_session_is_stored() {
        let (manager, store) = manager("{}");
        let first = manager.session_from_cookie_header(None);
        assert!(first.is_empty().await.expect("is_empty"));
        assert!(!first.exists().await.expect("exists"));
        first.set("user", "ada").await.expect("set");
        assert!(!first.is_empty().await.expect("is_empty"));
        assert!(first.contains_key("user").await.expect("contains_key"));
        assert!(!first.contains_key("cart").await.expect("contains_key"));
        let cookie = first.flush().await.expect("flush").expect("a cookie");

        let second = manager.session_from_cookie_header(Some(&header(&cookie)));
        assert!(second.exists().await.expect("exists"));
        assert!(!second.is_empty().await.expect("is_empty"));
        assert!(!second.contains_key("cart").await.expect("contains_key"));
        let calls = store.calls();
        assert!(!second.remove("cart").await.expect("remove"), "not there");
        assert!(second.flush().await.expect("flush").is_none());
        assert_eq!(
            store.calls(),
            calls,
            "removing an absent key writes nothing"
        );
        assert_eq!(format!("{second:?}"), "Session { .. }");
    }

    #[tokio::test]
    async fn clear_of_a_session_the_store_does_not_have_deletes_nothing() {
        let (manager, store) = manager("{}");
        let unknown =
            manager.session_from_cookie_header(Some("thinkjs=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        assert!(!unknown.exists().await.expect("load"));
        unknown.clear().await;
        unknown.flush().await.expect("flush");
        assert_eq!(store.calls(), 1, "the load, and no delete");
    }

    #[tokio::test]
    async fn a_key_removed_then_set_again_is_sent_as_set_only() {
        let (manager, store) = manager("{}");
        let first = manager.session_from_cookie_header(None);
        first.set("cart", &1u8).await.expect("set");
        let cookie = first.flush().await.expect("flush").expect("a cookie");
        let second = manager.session_from_cookie_header(Some(&header(&cookie)));
        assert!(second.remove("cart").await.expect("remove"));
        second.set("cart", &2u8).await.expect("set");
        second.flush().await.expect("flush");
        let changes = store.last_update().expect("an update");
        assert!(changes.set.contains_key("cart"), "{changes:?}");
        assert!(!changes.removed.contains("cart"), "{changes:?}");
    }

    #[tokio::test]
    async fn values_are_stored_with_the_configured_codec() {
        let (json, store) = manager(r#"{"codec": "json"}"#);
        let writer = json.session_from_cookie_header(None);
        writer.set("user", "ada").await.expect("set");
        let cookie = writer.flush().await.expect("flush").expect("a cookie");
        let bincode =
            crate::SessionManager::new(store, crate::SessionConfig::default()).expect("manager");
        let reader = bincode.session_from_cookie_header(Some(&header(&cookie)));
        assert!(
            reader.get::<String>("user").await.is_err(),
            "JSON bytes read as bincode"
        );
    }

    #[tokio::test]
    async fn the_flash_queue_keeps_the_newest_and_shrugs_off_a_foreign_value() {
        let (manager, _store) = manager("{}");
        let session = manager.session_from_cookie_header(None);
        // 41: a queue that dropped one message too many would end one short.
        for i in 0..41 {
            session
                .flash(crate::flash::Level::Info, i.to_string())
                .await
                .expect("flash");
        }
        let shown = session.take_flashes().await.expect("take");
        assert_eq!(shown.len(), crate::flash::MAX_FLASHES);
        assert_eq!(shown.first().map(|f| f.message.as_str()), Some("9"));
        assert_eq!(shown.last().map(|f| f.message.as_str()), Some("40"));

        session
            .set(crate::flash::FLASH_KEY, &5u8)
            .await
            .expect("set");
        assert!(session.take_flashes().await.expect("take").is_empty());
    }

    #[tokio::test]
    async fn the_lock_mode_is_chosen_before_the_first_use_and_only_if_the_store_can() {
        use crate::LockMode;
        let (manager, _store) = manager("{}");
        let session = manager.session_from_cookie_header(None);
        let refused = session.set_lock_mode(LockMode::Exclusive).await;
        assert_eq!(
            refused.map_err(|err| err.kind()),
            Err(crate::ErrorKind::Unsupported),
            "the doc store keeps no locks"
        );
        session
            .set_lock_mode(LockMode::ReadOnly)
            .await
            .expect("read-only needs no lock");
        assert_eq!(session.lock_mode().await, LockMode::ReadOnly);
        assert!(session.exists().await.is_ok());
        session
            .set_lock_mode(LockMode::ReadOnly)
            .await
            .expect("the same mode again after the first use");
        assert!(session.set_lock_mode(LockMode::Off).await.is_err());
    }

    #[tokio::test]
    async fn update_after_cycle_id_changes_only_the_request_copy() {
        let (manager, store) = manager("{}");
        let first = manager.session_from_cookie_header(None);
        first.set("n", &1u32).await.expect("set");
        let cookie = first.flush().await.expect("flush").expect("a cookie");
        let second = manager.session_from_cookie_header(Some(&header(&cookie)));
        second.cycle_id().await.expect("cycle");
        let calls = store.calls();
        let n = second
            .update("n", |n: Option<u32>| n.unwrap_or(0) + 1)
            .await
            .expect("update");
        assert_eq!(n, 2);
        assert_eq!(
            store.calls(),
            calls,
            "the new id's record is written whole at flush"
        );
    }

    #[tokio::test]
    async fn binding_again_to_the_same_user_or_label_writes_nothing_and_another_user_rebinds() {
        let (manager, store) = manager("{}");
        let (ada, bob) = (
            crate::UserId::new("ada").expect("user"),
            crate::UserId::new("bob").expect("user"),
        );
        let login = manager.session_from_cookie_header(None);
        login.set_user(ada.clone()).await.expect("bind");
        login.set_label("laptop").await.expect("label");
        let cookie = login.flush().await.expect("flush").expect("a cookie");

        let same = manager.session_from_cookie_header(Some(&header(&cookie)));
        same.set_user(ada.clone()).await.expect("the same user");
        same.set_label("laptop").await.expect("the same label");
        let calls = store.calls();
        same.flush().await.expect("flush");
        assert_eq!(store.calls(), calls, "nothing changed, nothing written");

        let switch = manager.session_from_cookie_header(Some(&header(&cookie)));
        switch.set_user(bob.clone()).await.expect("rebind");
        switch.flush().await.expect("flush");
        let after = manager.session_from_cookie_header(Some(&header(&cookie)));
        assert_eq!(after.user().await.expect("user"), Some(bob));
    }

    /// A store whose every call fails.
    #[derive(Debug)]
    struct Down;

    fn down() -> crate::Error {
        crate::Error::backend("the store is down", std::io::Error::other("refused"))
    }

    #[async_trait::async_trait]
    impl SessionStore for Down {
        async fn load(&self, _: &crate::StoreKey) -> crate::Result<Option<crate::Record>> {
            Err(down())
        }
        async fn create(&self, _: &crate::StoreKey, _: &crate::Record) -> crate::Result<bool> {
            Err(down())
        }
        async fn update(&self, _: &crate::StoreKey, _: &crate::ChangeSet) -> crate::Result<bool> {
            Err(down())
        }
        async fn update_if_unchanged(
            &self,
            _: &crate::StoreKey,
            _: crate::Revision,
            _: &crate::Record,
        ) -> crate::Result<Option<crate::Revision>> {
            Err(down())
        }
        async fn touch(&self, _: &crate::StoreKey, _: crate::Timestamp) -> crate::Result<bool> {
            Err(down())
        }
        async fn delete(&self, _: &crate::StoreKey) -> crate::Result<bool> {
            Err(down())
        }
        async fn gc(&self) -> crate::Result<u64> {
            Err(down())
        }
        fn capabilities(&self) -> crate::Capabilities {
            crate::Capabilities::new()
        }
    }

    #[tokio::test]
    async fn a_failed_load_is_an_error_unless_the_request_goes_on_without_the_store() {
        let manager =
            crate::SessionManager::new(std::sync::Arc::new(Down), crate::SessionConfig::default())
                .expect("manager");
        let cookie = Some("thinkjs=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        let strict = manager.session_from_cookie_header(cookie);
        assert!(strict.get::<String>("user").await.is_err());
        let flashes = manager.session_from_cookie_header(cookie);
        assert!(
            flashes.peek_flashes().await.is_err(),
            "a store failure is not an empty flash queue"
        );

        let lenient = manager.session_from_cookie_header(cookie);
        lenient.continue_without_store();
        assert_eq!(lenient.get::<String>("user").await.expect("detached"), None);
        lenient.set("user", "ada").await.expect("set");
        assert!(lenient.flush().await.expect("dropped").is_none());
    }
}
