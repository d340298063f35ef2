//! The session manager: from a `Cookie` header to a [`Session`], and the cookie policy.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use cookie::Cookie;
use cookie::time::{Duration as CookieDuration, OffsetDateTime};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, utf8_percent_encode};

use crate::client::{ClientFormat, MAX_HEADER_TOKEN_LEN, NoStore};
use crate::config::SameSite;
use crate::expiry::ExpiryPolicy;
use crate::gc::GcHandle;
use crate::guard::GuardedStore;
use crate::lease::{Gates, Renewals};
use crate::session::{CookieAction, Incoming};
use crate::telemetry::Metrics;
use crate::transport::{AUTHORIZATION, COOKIE, Transport, Transports, bearer_token};
use crate::{
    Error, ErrorKind, Record, Registry, Result, Session, SessionConfig, SessionId, SessionStore,
    Signer, StoreKey, Timestamp,
};

/// The longest cookie value looked at. A signed id of the maximum length, percent-encoded,
/// is under 300 bytes; anything longer is hostile and skipped without decoding.
const MAX_COOKIE_VALUE_LEN: usize = 512;

/// What JavaScript's `encodeURIComponent` leaves alone, so cookies match ThinkJS's bytes.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Turns requests' cookies into [`Session`]s, and sessions into `Set-Cookie` headers.
///
/// One manager serves the whole application; it is cheap to clone.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{SessionConfig, SessionManager};
/// # use session_core::{Capabilities, ChangeSet, Record, Result, SessionStore, StoreKey, Timestamp};
/// # #[derive(Debug)] struct Nowhere;
/// # #[async_trait::async_trait] impl SessionStore for Nowhere {
/// #   async fn load(&self, _: &StoreKey) -> Result<Option<Record>> { Ok(None) }
/// #   async fn create(&self, _: &StoreKey, _: &Record) -> Result<bool> { Ok(true) }
/// #   async fn update(&self, _: &StoreKey, _: &ChangeSet) -> Result<bool> { Ok(false) }
/// #   async fn touch(&self, _: &StoreKey, _: Timestamp) -> Result<bool> { Ok(false) }
/// #   async fn delete(&self, _: &StoreKey) -> Result<bool> { Ok(false) }
/// #   async fn gc(&self) -> Result<u64> { Ok(0) }
/// #   fn capabilities(&self) -> Capabilities { Capabilities::new() }
/// # }
/// # async fn run() -> Result<()> {
/// let config = SessionConfig::from_json_str(r#"{ "name": "sid", "secret": "change me" }"#)?;
/// let manager = SessionManager::new(Arc::new(Nowhere), config)?;
///
/// // A request without a cookie gets a new, empty session...
/// let session = manager.session_from_cookie_header(None);
/// session.set("user", "ada").await?;
/// // ...which is stored at the end of the request, and the response carries its cookie.
/// let set_cookie = session.flush().await?.expect("a new session with data gets a cookie");
/// assert_eq!(set_cookie.name(), "sid");
/// assert_eq!(set_cookie.http_only(), Some(true));
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run()).unwrap();
/// ```
#[derive(Clone)]
pub struct SessionManager {
    pub(crate) inner: Arc<ManagerInner>,
}

pub(crate) struct ManagerInner {
    /// The application's store inside a [`GuardedStore`]: every call bounded, traced and
    /// counted.
    pub(crate) store: Arc<dyn SessionStore>,
    /// The session-level counters (cycled, cleared); the store's are kept by the guard.
    pub(crate) metrics: Metrics,
    pub(crate) config: SessionConfig,
    /// The configuration's timeouts, applied by every load and flush.
    pub(crate) expiry: ExpiryPolicy,
    signer: Option<Signer>,
    /// How a client-side type (`type = "cookie"`, `"jwt"`) keeps sessions in their
    /// tokens; `None` for a store.
    pub(crate) client: Option<ClientFormat>,
    /// The transports requests may carry their token in, in order of precedence.
    transports: Transports,
    /// The configuration's `token_header`, shared with each response that sends one.
    pub(crate) token_header: Arc<str>,
    /// The in-process queues of locked sessions.
    pub(crate) gates: Arc<Gates>,
    /// The leases this manager holds, renewed by one task.
    pub(crate) renewals: Arc<Renewals>,
}

impl SessionManager {
    /// A manager over `store` with `config` (validated here).
    ///
    /// The manager calls `store` through a wrapper (which [`SessionManager::store`] hands
    /// out): each call is bounded by `store_timeout` (`gc` by `gc.interval`), and fails
    /// with [`ErrorKind::Timeout`] naming the operation when the store does not answer in
    /// time; each runs in a `tracing` span `session_store` at debug level, with the fields
    /// `store` (`config.store_type`) and `op` (the method's name), never a key or an id;
    /// with the `metrics` feature each is counted and timed (see the crate docs), on
    /// handles registered now with the recorder in force, so install the recorder first.
    ///
    /// With a client-side `type` (`"cookie"`, `"jwt"`), sessions live in their tokens
    /// and never call `store`; [`SessionManager::client_side`] needs none.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the offending key.
    pub fn new(store: Arc<dyn SessionStore>, mut config: SessionConfig) -> Result<Self> {
        config.validate()?;
        let client = ClientFormat::for_config(&config)?;
        if config.store_type == crate::client::JWT_TYPE {
            // Claims are JSON: so are the values of a jwt session, whatever `codec` says.
            config.codec = crate::Codec::Json;
        }
        if config.lock && !store.capabilities().lock {
            return Err(Error::config(
                "lock",
                "this store keeps no session locks (its Capabilities::lock is false); on a \
                 store that reports revisions, Session::update still gives atomic \
                 read-modify-writes without the lock",
            ));
        }
        let signer = if config.secret.is_empty() {
            None
        } else {
            Some(Signer::new(config.secret.iter().cloned())?)
        };
        let metrics = Metrics::new(&config.store_type);
        let store: Arc<dyn SessionStore> =
            Arc::new(GuardedStore::new(store, &config, metrics.clone()));
        let store = crate::at_rest::wrap(store, &config)?;
        let renewals = Arc::new(Renewals::new(Arc::clone(&store), config.lock_ttl));
        Ok(Self {
            inner: Arc::new(ManagerInner {
                store,
                metrics,
                expiry: ExpiryPolicy::new(&config),
                transports: config.transports(),
                token_header: config.token_header.as_str().into(),
                config,
                signer,
                client,
                gates: Arc::default(),
                renewals,
            }),
        })
    }

    /// A manager whose sessions live in their tokens (`type = "cookie"` or `"jwt"`),
    /// with no store.
    ///
    /// ```
    /// # #[cfg(feature = "cookie-session")] {
    /// use session_core::{SessionConfig, SessionManager};
    ///
    /// let config = SessionConfig::from_json_str(
    ///     r#"{ "type": "cookie", "secret": "a secret of at least thirty-two bytes" }"#,
    /// )?;
    /// let manager = SessionManager::client_side(config)?;
    /// # let _ = manager; }
    /// # Ok::<(), session_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a server-side `type`, a client-side type whose feature is
    /// off, or an invalid configuration (no `secret`, one under 32 bytes, ...).
    pub fn client_side(config: SessionConfig) -> Result<Self> {
        if !config.is_client_side() {
            return Err(Error::config(
                "type",
                format!(
                    "\"{}\" keeps sessions in a store: open it and call SessionManager::new",
                    config.store_type
                ),
            ));
        }
        let store = Arc::new(NoStore::new(&config.store_type));
        Self::new(store, config)
    }

    /// Opens the store named by `config.store_type` through `registry`, then builds the
    /// manager; a client-side type (`"cookie"`, `"jwt"`) needs no store.
    ///
    /// # Errors
    /// An unknown store type, invalid adapter options, or a store that cannot be opened.
    pub async fn from_config(config: SessionConfig, registry: &Registry) -> Result<Self> {
        config.validate()?;
        if config.is_client_side() {
            return Self::client_side(config);
        }
        let store = registry.open(&config).await?;
        Self::new(store, config)
    }

    /// The configuration in force.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The store sessions live in, as the manager calls it: each call bounded by
    /// `store_timeout` (`gc` by `gc.interval`), traced and, with the `metrics` feature,
    /// counted, as [`SessionManager::new`] describes. Calls made here count like the
    /// sessions' own.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.store
    }

    /// The session of a request, from the values of its `Cookie` headers (HTTP/2 may send
    /// several). Bytes that are not valid cookies are skipped.
    ///
    /// The cookie is only parsed and its signature checked here; the store is read lazily,
    /// on first use of the session. An invalid, unsigned or badly signed cookie gives a new
    /// session without any store access.
    ///
    /// Only the cookie is looked at, whatever `transport` says; a web layer that accepts
    /// other transports calls [`SessionManager::session_from_headers`].
    pub fn session<'a>(&self, cookie_headers: impl IntoIterator<Item = &'a [u8]>) -> Session {
        let incoming = self.inner.incoming_from_cookies(cookie_headers);
        Session::new(Arc::clone(&self.inner), incoming)
    }

    /// The session of a request, from its token in whichever of the configured
    /// `transport`s carries it first: `headers(name)` gives the values of the request's
    /// headers named `name` (lowercase: `cookie`, `authorization`, the `token_header`).
    ///
    /// A token is validated the same way whatever carries it, and an invalid one gives a
    /// new session without any store access. A transport with its header present decides,
    /// valid or not: an invalid token there is not replaced by one from a later transport.
    /// A header token sent twice (two header lines) is refused as ambiguous, and so is a
    /// second `Authorization: Bearer`; an `Authorization` of another scheme is not a token.
    /// A client that wants its first token in a header sends the header empty.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::transport::Transport;
    /// use session_core::{SessionConfig, SessionManager};
    /// use session_memory::MemoryStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> session_core::Result<()> {
    /// let config = SessionConfig::from_json_str(r#"{ "transport": ["cookie", "bearer"] }"#)?;
    /// let manager = SessionManager::new(Arc::new(MemoryStore::new()), config)?;
    /// let authorization = b"Bearer not-a-valid-token".as_slice();
    /// let session = manager.session_from_headers(|name| match name {
    ///     "authorization" => vec![authorization],
    ///     _ => vec![],
    /// });
    /// assert_eq!(session.transport(), Transport::Bearer);
    /// assert!(!session.exists().await?, "an invalid token is no session");
    /// # Ok(()) }
    /// ```
    pub fn session_from_headers<'a, I>(&self, headers: impl Fn(&str) -> I) -> Session
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let incoming = self.inner.incoming_from_headers(headers);
        Session::new(Arc::clone(&self.inner), incoming)
    }

    /// [`SessionManager::session`] for a single, optional `Cookie` header value.
    pub fn session_from_cookie_header(&self, header: Option<&str>) -> Session {
        self.session(header.map(str::as_bytes))
    }

    /// The cookie value that carries `id`: signed when a secret is set, percent-encoded as
    /// ThinkJS writes it.
    pub fn cookie_value(&self, id: &SessionId) -> String {
        self.inner.cookie_value(id)
    }

    /// Whether sessions live in their tokens (`type = "cookie"` or `"jwt"`) rather than
    /// in the store.
    pub fn is_client_side(&self) -> bool {
        self.inner.client.is_some()
    }

    /// Starts the gc scheduler for this manager's store, unless `gc.on` is false or the
    /// store expires records natively. Stop it with [`GcHandle::stop`] (or drop it).
    ///
    /// Its runs go through the manager's store wrapper, traced and counted
    /// (`session_gc_removed_total`), and are bounded by `gc.interval` rather than
    /// `store_timeout`: a sweep of a large store may take long, and the next run is due
    /// then anyway.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] outside a tokio runtime.
    pub fn spawn_gc(&self) -> Result<Option<GcHandle>> {
        let config = &self.inner.config;
        if !config.gc.on
            || self.inner.client.is_some()
            || self.inner.store.capabilities().native_ttl
        {
            return Ok(None);
        }
        GcHandle::spawn(Arc::clone(&self.inner.store), config.gc.interval).map(Some)
    }
}

impl ManagerInner {
    /// What the request's `Cookie` headers bring of its session.
    fn incoming_from_cookies<'a>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'a [u8]>,
    ) -> Incoming {
        let name = self.config.name.as_bytes();
        let mut incoming = Incoming::none(Transport::Cookie);
        'headers: for header in cookie_headers {
            for pair in header.split(|byte| *byte == b';') {
                let pair = pair.trim_ascii();
                let Some(eq) = pair.iter().position(|byte| *byte == b'=') else {
                    continue;
                };
                if &pair[..eq] != name {
                    continue;
                }
                incoming.had_token = true;
                if self.take_token(&mut incoming, &pair[eq + 1..]) {
                    break 'headers;
                }
            }
        }
        incoming
    }

    /// What the request's headers bring of its session, in the configured transports.
    fn incoming_from_headers<'a, I>(&self, headers: impl Fn(&str) -> I) -> Incoming
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        for &transport in self.transports.as_slice() {
            let incoming = match transport {
                Transport::Cookie => self.incoming_from_cookies(headers(COOKIE)),
                Transport::Header => {
                    self.incoming_from_header(transport, headers(&self.config.token_header), Some)
                }
                Transport::Bearer => {
                    self.incoming_from_header(transport, headers(AUTHORIZATION), bearer_token)
                }
            };
            if incoming.had_token {
                return incoming;
            }
        }
        Incoming::none(self.transports.primary())
    }

    /// What a header that carries at most one token brings: the token `extract` finds in
    /// its single value; present but invalid when it is sent twice.
    fn incoming_from_header<'a>(
        &self,
        transport: Transport,
        values: impl IntoIterator<Item = &'a [u8]>,
        extract: impl Fn(&'a [u8]) -> Option<&'a [u8]>,
    ) -> Incoming {
        let mut incoming = Incoming::none(transport);
        let mut found = None;
        for value in values {
            // An `Authorization` of another scheme is somebody else's header.
            let Some(token) = extract(value) else {
                continue;
            };
            if found.is_some() {
                tracing::debug!(%transport, "session token sent twice: ignored as ambiguous");
                incoming.had_token = true;
                return incoming;
            }
            found = Some(token);
        }
        if let Some(token) = found {
            incoming.had_token = true;
            let token = token.trim_ascii();
            if !token.is_empty() {
                self.take_token(&mut incoming, token);
            }
        }
        incoming
    }

    /// Puts `raw` into `incoming` if it is a valid token: an id (unsigned, or correctly
    /// signed) for a store, a token of a usable size for a client-side type. Says whether
    /// it was.
    fn take_token(&self, incoming: &mut Incoming, raw: &[u8]) -> bool {
        if self.client.is_some() {
            let max = match incoming.transport {
                Transport::Cookie => crate::client::MAX_COOKIE_LEN,
                _ => MAX_HEADER_TOKEN_LEN,
            };
            if raw.len() > max {
                tracing::debug!(len = raw.len(), "oversize session token ignored");
                return false;
            }
            return match std::str::from_utf8(unquoted(raw)) {
                Ok(token) if token.bytes().all(|b| b.is_ascii_graphic()) => {
                    incoming.token = Some(token.to_owned());
                    true
                }
                _ => {
                    tracing::debug!("session token with bytes no token has ignored");
                    false
                }
            };
        }
        match self.id_from_cookie_value(raw) {
            Some(id) => {
                incoming.id = Some(id);
                true
            }
            None => false,
        }
    }

    fn id_from_cookie_value(&self, raw: &[u8]) -> Option<SessionId> {
        if raw.len() > MAX_COOKIE_VALUE_LEN {
            tracing::debug!(len = raw.len(), "oversize session cookie ignored");
            return None;
        }
        let raw = unquoted(raw);
        // An unsigned id never needs decoding; only a signature may carry `%2B`-style escapes.
        let decoded = if raw.contains(&b'%') {
            percent_decode(raw).decode_utf8().ok()?
        } else {
            Cow::Borrowed(std::str::from_utf8(raw).ok()?)
        };
        let id = match &self.signer {
            Some(signer) => signer.verify(&decoded)?,
            None => &decoded,
        };
        let id = SessionId::parse(id).ok();
        if id.is_none() {
            tracing::debug!("malformed session id in cookie ignored");
        }
        id
    }

    fn cookie_value(&self, id: &SessionId) -> String {
        // An id's alphabet (`A-Z a-z 0-9 - _`) is all left alone by `encodeURIComponent`:
        // only a signature may need escaping.
        let Some(signer) = &self.signer else {
            return id.expose().to_owned();
        };
        let signed = signer.sign(id.expose());
        match Cow::from(utf8_percent_encode(&signed, URI_COMPONENT)) {
            Cow::Borrowed(_) => signed,
            Cow::Owned(encoded) => encoded,
        }
    }

    /// Loads a record the session may use: live, within its absolute lifetime, decodable.
    pub(crate) async fn load_live(&self, key: &StoreKey) -> Result<Option<Record>> {
        self.usable(key, self.store.load(key).await)
    }

    /// The record of a load the session may use: a corrupt one is absent (with a
    /// warning), and one past its expiry or absolute lifetime too.
    pub(crate) fn usable(
        &self,
        key: &StoreKey,
        loaded: Result<Option<Record>>,
    ) -> Result<Option<Record>> {
        let record = match loaded {
            Ok(record) => record,
            Err(err) if err.kind() == ErrorKind::Decode => {
                tracing::warn!(session = key.short(), error = %format_args!("{err:#}"), "corrupt session record treated as absent");
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        let now = Timestamp::now();
        Ok(record.filter(|record| {
            self.expiry
                .is_usable(record.expires_at, record.created_at, now)
        }))
    }

    /// The idle timeout of a session whose [`Session::remember`] choice is `remember`.
    pub(crate) fn idle_timeout(&self, remember: Option<bool>) -> std::time::Duration {
        match remember {
            Some(true) => self.config.remember_timeout,
            Some(false) | None => self.config.timeout,
        }
    }

    /// The expiry policy of a session whose [`Session::remember`] choice is `remember`.
    pub(crate) fn expiry_for(&self, remember: Option<bool>) -> ExpiryPolicy {
        match remember {
            Some(true) => self.expiry.with_idle(self.config.remember_timeout),
            Some(false) | None => self.expiry,
        }
    }

    /// The `Set-Cookie` of `action` for a session whose [`Session::remember`] choice is
    /// `remember`: persistent (`Max-Age` and `Expires`) unless the choice, or for a session
    /// without one `cookie.persistent`, says the browser should drop it when it closes.
    pub(crate) fn cookie_for(
        &self,
        action: &CookieAction,
        remember: Option<bool>,
        now: Timestamp,
    ) -> Option<Cookie<'static>> {
        let cookie_config = &self.config.cookie;
        // A removal always carries its past expiry, or the browser would keep the cookie
        // until it closes.
        let persistent =
            matches!(action, CookieAction::Remove) || remember.unwrap_or(cookie_config.persistent);
        let lifetime = |expires_at: &Timestamp| {
            cookie_config
                .max_age
                .unwrap_or_else(|| expires_at.saturating_duration_since(now))
        };
        let (value, max_age) = match action {
            CookieAction::None => return None,
            CookieAction::Set { id, expires_at } => (self.cookie_value(id), lifetime(expires_at)),
            CookieAction::Token { value, expires_at } => (value.clone(), lifetime(expires_at)),
            CookieAction::Remove => (String::new(), std::time::Duration::ZERO),
        };
        let max_age = CookieDuration::try_from(max_age).unwrap_or(CookieDuration::MAX);
        let expires = if max_age.is_zero() {
            OffsetDateTime::UNIX_EPOCH
        } else {
            // The flush's `now` plus `Max-Age`, both in whole seconds as the header has them.
            let seconds = now
                .as_millis()
                .div_euclid(1000)
                .saturating_add(max_age.whole_seconds());
            OffsetDateTime::from_unix_timestamp(seconds)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH + CookieDuration::days(365 * 400))
        };
        let mut builder = Cookie::build((self.config.name.clone(), value))
            .path(cookie_config.path.clone())
            .http_only(cookie_config.http_only)
            .secure(cookie_config.secure)
            .same_site(match cookie_config.same_site {
                SameSite::Strict => cookie::SameSite::Strict,
                SameSite::Lax => cookie::SameSite::Lax,
                SameSite::None => cookie::SameSite::None,
            });
        if persistent {
            builder = builder.max_age(max_age).expires(expires);
        }
        if let Some(domain) = &cookie_config.domain {
            builder = builder.domain(domain.clone());
        }
        Some(builder.build())
    }
}

/// A cookie value without the double quotes RFC 6265 allows around it.
fn unquoted(raw: &[u8]) -> &[u8] {
    raw.strip_prefix(b"\"")
        .and_then(|r| r.strip_suffix(b"\""))
        .unwrap_or(raw)
}

impl fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("store", &self.inner.store)
            .field("config", &self.inner.config)
            .field("signer", &self.inner.signer)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    //! From `Cookie` headers to ids, and from sessions to `Set-Cookie`, with the doc store.

    use std::time::Duration;

    use super::*;
    use crate::test_store::manager;

    const ID: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz012345";

    /// A manager whose store holds a live session under [`ID`].
    async fn with_stored_id(json: &str) -> SessionManager {
        let (manager, store) = manager(json);
        let key = SessionId::parse(ID).expect("id").store_key();
        let record = Record::new(
            crate::Data::from([("user".to_owned(), b"ada".to_vec())]),
            Timestamp::now() + Duration::from_secs(600),
            Timestamp::now(),
        );
        assert!(store.create(&key, &record).await.expect("create"));
        manager
    }

    #[tokio::test]
    async fn takes_the_named_cookie_among_others_and_across_headers() {
        let manager = with_stored_id("{}").await;
        for headers in [
            vec![format!("thinkjs={ID}")],
            vec![format!("a=1; thinkjs={ID}; b=2")],
            vec!["a=1".to_owned(), format!("thinkjs=\"{ID}\"")],
            vec![format!("thinkjsx=nope; thinkjs={ID}")],
            vec![format!("thinkjs=bad; thinkjs={ID}")],
        ] {
            let session = manager.session(headers.iter().map(|h| h.as_bytes()));
            assert!(session.exists().await.expect("load"), "{headers:?}");
        }
        for headers in [
            vec![format!("thinkjsx={ID}")],
            vec![format!("THINKJS={ID}")],
            vec![],
        ] {
            let session = manager.session(headers.iter().map(|h| h.as_bytes()));
            assert!(!session.exists().await.expect("load"), "{headers:?}");
        }
    }

    #[test]
    fn ignores_oversize_malformed_and_non_utf8_values() {
        let (manager, _) = manager("{}");
        let inner = &manager.inner;
        let oversize = "A".repeat(MAX_COOKIE_VALUE_LEN + 1);
        let values: [&[u8]; 5] = [
            oversize.as_bytes(),
            b"short",
            b"has space in it aaaaaaaaaaaaaaaa",
            b"%FF%FE",
            &[0xff; 32],
        ];
        for value in values {
            assert!(inner.id_from_cookie_value(value).is_none(), "{value:?}");
        }
    }

    #[test]
    fn signed_cookies_verify_with_any_secret_and_sign_with_the_first() {
        let (old, _) = manager(r#"{"secret": "old secret"}"#);
        let (rotated, _) = manager(r#"{"secret": ["new secret", "old secret"]}"#);
        let (new_only, _) = manager(r#"{"secret": "new secret"}"#);
        let id = SessionId::parse(ID).expect("id");
        let signed_by_old = old.cookie_value(&id);
        assert!(
            signed_by_old.starts_with(&format!("{ID}.")),
            "{signed_by_old}"
        );
        assert_eq!(
            rotated.inner.id_from_cookie_value(signed_by_old.as_bytes()),
            Some(id.clone())
        );
        assert_eq!(
            new_only
                .inner
                .id_from_cookie_value(signed_by_old.as_bytes()),
            None
        );
        assert_eq!(rotated.cookie_value(&id), new_only.cookie_value(&id));
        assert_eq!(
            rotated.inner.id_from_cookie_value(ID.as_bytes()),
            None,
            "unsigned refused"
        );
    }

    #[test]
    fn set_cookie_carries_the_configured_attributes() {
        let (manager, _) = manager(
            r#"{"name": "sid", "cookie": {"path": "/app", "domain": "example.com",
                "secure": true, "same_site": "strict", "http_only": true}}"#,
        );
        let id = SessionId::parse(ID).expect("id");
        let now = Timestamp::from_millis(1_700_000_000_000);
        let set = CookieAction::Set {
            id,
            expires_at: now + Duration::from_secs(3600),
        };
        let cookie = manager.inner.cookie_for(&set, None, now).expect("a cookie");
        assert_eq!((cookie.name(), cookie.value()), ("sid", ID));
        assert_eq!(cookie.path(), Some("/app"));
        assert_eq!(cookie.domain(), Some("example.com"));
        assert_eq!(cookie.secure(), Some(true));
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.same_site(), Some(cookie::SameSite::Strict));
        assert_eq!(cookie.max_age(), Some(CookieDuration::seconds(3600)));
        let expires = cookie.expires_datetime().expect("Expires");
        assert_eq!(expires.unix_timestamp(), 1_700_000_000 + 3600);

        let removal = manager
            .inner
            .cookie_for(&CookieAction::Remove, None, now)
            .expect("a removal");
        assert_eq!(removal.value(), "");
        assert_eq!(removal.max_age(), Some(CookieDuration::ZERO));
        assert_eq!(removal.expires_datetime(), Some(OffsetDateTime::UNIX_EPOCH));
        assert!(
            manager
                .inner
                .cookie_for(&CookieAction::None, None, now)
                .is_none()
        );
    }

    #[test]
    fn a_fixed_max_age_overrides_the_session_lifetime() {
        let (manager, _) = manager(r#"{"cookie": {"max_age": 600}}"#);
        let now = Timestamp::from_millis(0);
        let set = CookieAction::Set {
            id: SessionId::parse(ID).expect("id"),
            expires_at: now + Duration::from_secs(86_400),
        };
        let cookie = manager.inner.cookie_for(&set, None, now).expect("a cookie");
        assert_eq!(cookie.max_age(), Some(CookieDuration::seconds(600)));
    }

    #[tokio::test]
    async fn a_session_past_its_absolute_lifetime_is_not_loaded() {
        let (manager, store) = manager(r#"{"absolute_timeout": 3600}"#);
        let key = SessionId::parse(ID).expect("id").store_key();
        let old = Record::new(
            crate::Data::new(),
            Timestamp::now() + Duration::from_secs(600),
            Timestamp::now() - Duration::from_secs(3601),
        );
        assert!(store.create(&key, &old).await.expect("create"));
        assert!(manager.inner.load_live(&key).await.expect("load").is_none());
        let session = manager.session_from_cookie_header(Some(&format!("thinkjs={ID}")));
        assert!(!session.exists().await.expect("load"));
    }
}
