//! The Redis session store: the store to take when sessions must outlive one machine.
//!
//! - One key per session, `<prefix><64 hex digits of the store key>`, holding a hash: one
//!   field per session key, plus the creation time (see [Layout](#layout)).
//! - The expiry is kept in the hash and as the key's own TTL, both set by the same command
//!   on every write (`RESTORE … ABSTTL` for a new session, a Lua script with `PEXPIREAT`
//!   after): no key ever lives without a TTL, none has a negative one, and gc is Redis'
//!   job ([`SessionStore::gc`] does nothing and reports 0).
//! - One round trip per operation, and as little work for Redis as each needs: a load is
//!   one plain `HGETALL` (no script: the expiry is a field of the hash); a new session is
//!   one `RESTORE … ABSTTL` of the whole hash, which writes the hash and its expiry
//!   together and refuses a key that exists (no script); a change set is one `EVALSHA`
//!   that changes only the fields it names (so concurrent requests changing different
//!   keys both survive) and never recreates a session deleted meanwhile; a touch is one
//!   `EVALSHA` that never revives one either; a delete is one `DEL`. Scripts are loaded on
//!   first use (`SCRIPT LOAD`, once per server).
//! - A user index ([`Capabilities::user_index`]): each user's bound sessions in a sorted
//!   set of their own, kept in step by the same scripts on a single server, so binding a
//!   session at log-in and every later request cost no extra round trip; a listing is two
//!   round trips and a `delete_many` one, for 1 or 1,000 sessions (see
//!   [User index](#user-index)).
//! - Session locks ([`Capabilities::lock`], `lock = true`): a lease key per locked
//!   session, next to its record, taken with `SET NX PX` and renewed and released only by
//!   its holder, one script each (see [Locks](#locks)).
//! - When `RESTORE` finds something at the key (never the case for a fresh id unless a
//!   record is corrupt), the create script decides: a live session stays, anything else
//!   is replaced. A server that refuses `RESTORE` (older than Redis 5.0, or an ACL
//!   without it, as on some managed services) gets the script for every new session from
//!   then on.
//! - Bounded and self-healing: every call fails with
//!   [`ErrorKind::Timeout`] or
//!   [`ErrorKind::Backend`] within
//!   [`RedisConfig::response_timeout`] when Redis is stopped, paused or unreachable; it
//!   never hangs and never panics. The connection reconnects on its own, so the first
//!   request after Redis is back succeeds without restarting the application.
//! - Set-up mistakes are named: [`RedisStore::connect`] sends a `PING` once connected (a
//!   server with `requirepass` takes a connection without a password and refuses its
//!   first command), and an error for a refused connection, a missing password
//!   (`NOAUTH`), a refused one (`WRONGPASS`) or a missing ACL permission (`NOPERM`)
//!   carries a [`Hint`] of what to do, which `{:#}` prints after the cause chain; a lazy
//!   store's first call does the same.
//! - One connection per runtime: a connection's I/O runs on the runtime that made it, and
//!   a call from another runtime would cross threads twice per command. So a store called
//!   from single-threaded runtimes other than its own (actix-web's workers) makes, on each
//!   one's first call, a connection of its own there, with the same settings; one opened
//!   with [`RedisStore::from_connection_manager`] or on a cluster uses the one it was
//!   given everywhere.
//! - The tests run against Redis 7; the store needs Redis 4.0 (an `HSET` of several
//!   fields), and creates sessions with one command from Redis 5.0 on (`RESTORE` with
//!   `ABSTTL`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_core::{SessionConfig, SessionManager};
//! use session_redis::{RedisConfig, RedisStore};
//!
//! # async fn run() -> session_core::Result<()> {
//! let store = RedisStore::connect(&RedisConfig::new("redis://127.0.0.1:6379")).await?;
//! let manager = SessionManager::new(Arc::new(store), SessionConfig::default())?;
//!
//! let session = manager.session_from_cookie_header(None);
//! session.set("visits", &1u32).await?;
//! let cookie = session.flush().await?.expect("a new session with data gets a cookie");
//!
//! let again = manager.session_from_cookie_header(Some(&format!("thinkjs={}", cookie.value())));
//! assert_eq!(again.get::<u32>("visits").await?, Some(1));
//! # Ok(()) }
//! ```
//!
//! Selecting it from configuration (`type = "redis"`), after calling [`register`]:
//!
//! ```
//! use session_core::{Registry, SessionConfig};
//!
//! let mut registry = Registry::new();
//! session_redis::register(&mut registry);
//!
//! let config = SessionConfig::from_json_str(r#"{
//!     "type": "redis",
//!     "adapter": { "redis": {
//!         "url": "redis://127.0.0.1:6379/0",
//!         "prefix": "shop:session:",
//!         "connect_timeout": "1s",
//!         "response_timeout": "500ms",
//!         "lazy": true
//!     } }
//! }"#)?;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // `lazy`: opened without waiting for Redis; the first request connects.
//! let store = registry.open(&config).await?;
//! assert!(store.capabilities().native_ttl, "Redis expires sessions itself");
//! assert_eq!(store.gc().await?, 0);
//! # Ok::<(), session_core::Error>(()) }).unwrap();
//! # Ok::<(), session_core::Error>(())
//! ```
//!
//! The same in TOML:
//!
//! ```toml
//! type = "redis"
//! [adapter.redis]
//! url = "redis://127.0.0.1:6379/0"  # or `nodes = ["redis://10.0.0.1:7000", ...]` (cluster)
//! prefix = "think_session:"
//! connect_timeout = "2s"            # seconds, or a duration such as "500ms"
//! response_timeout = "2s"           # the longest one store call may take
//! lazy = false                      # true: start even while Redis is down
//! ```
//!
//! An application that already has a Redis client passes it in with
//! [`RedisStore::from_client`] or [`RedisStore::from_connection_manager`]; the
//! [`redis`] crate is re-exported so both sides use the same version.
//!
//! # Layout
//!
//! | Redis key | type | content |
//! |-----------|------|---------|
//! | `<prefix><store key>` | hash | `m:created`: creation time (ms since the epoch, decimal); `m:expires`: expiry (the same); `d:<key>`: the encoded value of session key `<key>`; for a bound session also `m:user` (the user id), `m:label` (the session's label) and `m:index` (the key of the user's index) |
//! | `<prefix>lock:<store key>` | string | while a request holds the session's lock: the holder's token (32 hex digits); the key's TTL is the lease's |
//! | `<prefix>user:{<32 hex digits>}` | sorted set | a user's index: the store keys (64 hex digits) of the user's bound sessions, scored by their expiry (ms since the epoch); the digits are the first half of the SHA-256 of the user id |
//!
//! The key's TTL is the session's expiry too, so Redis removes it then; the `m:expires`
//! field is what a load compares with the application's clock. Data fields carry the `d:`
//! prefix, so no session key can collide with the metadata. A hash that does not follow
//! this layout is reported as a [`Decode`](ErrorKind::Decode) error, which the session
//! turns into "no session"; `create` replaces it. An index's TTL is the expiry of its
//! newest entry: no key the store writes ever lives without a TTL.
//!
//! # User index
//!
//! A session bound to a user ([`Session::set_user`](session_core::Session::set_user), at
//! log-in) carries its owner in its hash and is filed in the user's index, which
//! [`SessionStore::sessions_of`] reads to list, and the manager to end, a user's
//! sessions. The records stay the truth: a listing reads every listed session's owner and
//! expiry (pipelined) and lists only the live sessions still bound to the user, with the
//! expiry the record has, so an entry left behind by a deleted, expired or rebound session
//! is never listed; the listing prunes such entries as it finds them.
//!
//! | operation | single server | cluster |
//! |-----------|---------------|---------|
//! | create, unbound | 1 (`RESTORE`) | 1 |
//! | create, bound (log-in with `set_user`) | 1 (create script that files the session) | 2 (the session, then its index) |
//! | update or touch, unbound | 1 (the script's first command checks for an owner instead of the key's type: the same commands as before) | 1 |
//! | update or touch, bound | 1 (the script moves the index entry when the expiry or the owner changes) | 1, or 2 when the expiry or the owner changed |
//! | delete | 1 (`DEL`; the entry is pruned by the next listing) | 1 |
//! | `sessions_of`, any number of sessions | 2 (`ZRANGE`, one pipeline of `HMGET`), 3 when it prunes | 1, then one request per slot sent at once, then the prune |
//! | `delete_many`, any number of sessions | 1 (one pipeline, a script per 500 sessions) | one request per slot sent at once, then one per index |
//! | `user_index_len` | 1 (`ZCARD`) | 1 |
//!
//! **Cluster-safe names.** The braces around the hash make it the index key's Redis
//! Cluster hash tag, so all that is kept for one user is in one slot and every script over
//! a user's index is single-slot, whatever the user id holds (hashing keeps braces, length
//! and personal data out of key names). A session key and its owner's index are in
//! different slots, so in a cluster no script touches both: the session script reports
//! what moved and the store updates the index next, raising scores only, so racing
//! requests never leave an entry below its session's expiry once their updates land. On a
//! single server the scripts update the index key named in the session hash themselves;
//! that key is not among the script's declared keys, which a single server allows but a
//! proxy that routes commands by key (a sharded deployment without the cluster protocol)
//! does not: use the `cluster` feature there.
//!
//! **Failover.** When a master of a cluster dies, requests for sessions in its slots fail
//! (within `response_timeout`) until its replica takes over, then the client finds the new
//! master by itself; no application restart. Redis replicates asynchronously, so a write
//! the dead master acknowledged and had not yet sent to its replica is lost; the store
//! offers no `WAIT`-based option that would hold each write until a replica has it. The
//! tests measure both: on loopback, with `cluster-node-timeout` 1 s, the replica took over
//! 2.2 s after the kill, no request failed after that, and 0 acknowledged writes were lost
//! (`tests/cluster_failover.rs`).
//!
//! **Migration.** Nothing to do for existing sessions: unbound sessions keep exactly their
//! layout, and the index exists only for sessions bound after the upgrade. A version of
//! this crate from before the index reads a bound session as corrupt (an unknown field),
//! that is as "no session": finish rolling the new version out before the application
//! starts calling `set_user`. A change set or touch on a hash without an `m:expires` field
//! (which no version of this store writes, and which a load already reports as corrupt)
//! now leaves it alone, like a missing session, where it used to write into it.
//!
//! # Locks
//!
//! With `lock = true` the manager holds a lease on a session's lock from a request's
//! first use of the session until its flush. In Redis a lease is the string
//! [`RedisStore::lock_key`], `<prefix>lock:<store key>`, holding the holder's token, with
//! the lease's TTL as the key's own. Each call is one `EVALSHA` over that one key, bounded
//! by [`RedisConfig::response_timeout`] like every other call:
//! - `lock`: `SET <lease> <token> NX PX <ttl>`; if the key is taken, a `GET` in the same
//!   script grants the holder asking again and refuses anyone else;
//! - `renew_lock`: `PEXPIRE` only if the key still holds the caller's token;
//! - `unlock`: `DEL` only if the key still holds the caller's token, so a holder whose
//!   lease lapsed never frees the lock of the holder after it.
//!
//! Redis expires a lapsed lease itself: a holder that stalls (or whose Redis was paused)
//! past `lock_ttl` loses the lease, the next request gets it, and the manager refuses the
//! stalled holder's flush with [`ErrorKind::LockLost`]. The lease is apart from the record
//! (deleting a session keeps its lease; locking creates no record), and every script
//! names one key only, so locks work on Redis Cluster unchanged. Pick prefixes of stores
//! sharing one Redis so that none is another's followed by `lock:`.
//!
//! # Features
//!
//! | feature   | default | what it adds |
//! |-----------|---------|--------------|
//! | `cluster` | no      | Redis Cluster: [`RedisConfig::nodes`], `RedisStore::from_cluster_connection` |
//! | `tls`     | no      | `rediss://` URLs, with rustls (ring), verified against the system's root certificates; for a private CA, build the client with `redis::Client::build_with_tls` and pass it to [`RedisStore::from_client`] |
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod config;
mod connection;
mod layout;
mod lock;
mod users;

use std::fmt;
use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, RedisError, RedisResult, RedisWrite, Script, Value};
use session_core::{
    Capabilities, ChangeSet, Error, ErrorKind, Hint, IndexedSession, LockToken, Record, Registry,
    Result, SessionStore, SetupProblem, StoreKey, Timestamp, UserId, async_trait,
};

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_PREFIX, DEFAULT_RESPONSE_TIMEOUT, DEFAULT_URL, RedisConfig,
};
/// Re-exported so applications build clients with the version this crate uses.
pub use redis;

use crate::connection::{Connection, Connections};
use crate::layout::{Binding, IndexWrites};
use crate::users::IndexMove;

/// Reconnection attempts after the first, before a broken connection's waiters get an
/// error. Few, so that a dead server is reported quickly; the next call starts over.
const RECONNECT_RETRIES: usize = 2;
/// The first pause between reconnection attempts (doubled on each attempt, with jitter).
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
/// The longest pause between reconnection attempts, so a server that is back is found
/// within a fraction of a second.
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// Sessions in Redis. Cheap to clone: clones share the connection.
///
/// Open it with [`RedisStore::connect`] (or [`register`] and `type = "redis"`), or wrap a
/// client or connection the application already has.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connections,
    prefix: Arc<str>,
    response_timeout: Duration,
    /// Where the store connects, safe to log (no password).
    target: Arc<str>,
    /// Whether new sessions are written with `RESTORE` (cleared, for this store and its
    /// clones, once the server refuses it).
    restore_creates: Arc<AtomicBool>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .field("response_timeout", &self.response_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the server (or cluster) `config` names and waits for the first
    /// connection, so a wrong URL or a server that is down is reported here.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for an invalid URL or timeout; [`ErrorKind::Backend`] or
    /// [`ErrorKind::Timeout`] when no connection could be made within
    /// [`RedisConfig::connect_timeout`].
    pub async fn connect(config: &RedisConfig) -> Result<Self> {
        validate(config)?;
        #[cfg(feature = "cluster")]
        if !config.nodes.is_empty() {
            let client = cluster_client(config)?;
            let connection =
                tokio::time::timeout(config.connect_timeout, client.get_async_connection())
                    .await
                    .map_err(|_| connect_timed_out(&config.target(), config.connect_timeout))?
                    .map_err(|err| connect_failed(&config.target(), err))?;
            return Ok(Self::build(
                Connections::new(Connection::Cluster(connection), None),
                config,
            ));
        }
        let client = single_client(config)?;
        let manager = open_manager(&client, config, &config.target()).await?;
        let connections = Connections::new(
            Connection::Single(manager),
            Some((client, manager_config(config))),
        );
        Ok(Self::build(connections, config))
    }

    /// Opens the store without connecting: the first call connects (and fails, within
    /// [`RedisConfig::response_timeout`], while Redis is unreachable). Lets an application
    /// start while Redis is down.
    ///
    /// Call it from within a Tokio runtime: the connection's background work runs there.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for an invalid URL or timeout; [`ErrorKind::Unsupported`] when
    /// called outside a Tokio runtime, as the gc scheduler does: the configuration is fine,
    /// the caller's context cannot run the store.
    pub fn connect_lazy(config: &RedisConfig) -> Result<Self> {
        validate(config)?;
        if let Err(err) = tokio::runtime::Handle::try_current() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "RedisStore::connect_lazy must be called from within a Tokio runtime",
            )
            .with_source(err));
        }
        #[cfg(feature = "cluster")]
        if !config.nodes.is_empty() {
            let client = cluster_client(config)?;
            let settings = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(config.connect_timeout)
                .set_response_timeout(config.response_timeout);
            let connection = client.get_pending_async_connection_with_config(settings);
            return Ok(Self::build(
                Connections::new(Connection::Cluster(connection), None),
                config,
            ));
        }
        let client = single_client(config)?;
        let manager =
            ConnectionManager::new_lazy_with_config(client.clone(), manager_config(config))
                .map_err(|err| connect_failed(&config.target(), err))?;
        let connections = Connections::new(
            Connection::Single(manager),
            Some((client, manager_config(config))),
        );
        Ok(Self::build(connections, config))
    }

    /// Wraps a client the application already has, with the prefix and time limits of
    /// `config` (its `url`, `nodes` and `lazy` are not used), and waits for the first
    /// connection.
    ///
    /// # Errors
    /// As [`RedisStore::connect`].
    pub async fn from_client(client: redis::Client, config: &RedisConfig) -> Result<Self> {
        validate(config)?;
        prepare_tls(matches!(
            client.get_connection_info().addr(),
            redis::ConnectionAddr::TcpTls { .. }
        ));
        // The client's address (host and port, never a password) stands for the URL.
        let target = client.get_connection_info().addr().to_string();
        let manager = open_manager(&client, config, &target).await?;
        let connections = Connections::new(
            Connection::Single(manager),
            Some((client, manager_config(config))),
        );
        let mut store = Self::build(connections, config);
        store.target = Arc::from(target);
        Ok(store)
    }

    /// Wraps a connection manager the application already has, with [`DEFAULT_PREFIX`]
    /// and [`DEFAULT_RESPONSE_TIMEOUT`]; change them with [`RedisStore::with_prefix`] and
    /// [`RedisStore::with_response_timeout`].
    ///
    /// The manager's own settings (reconnection, its response timeout) stay as the
    /// application made them; the store's response timeout bounds each call on top.
    pub fn from_connection_manager(manager: ConnectionManager) -> Self {
        let mut store = Self::build(
            Connections::new(Connection::Single(manager), None),
            &RedisConfig::default(),
        );
        store.target = Arc::from("an application's ConnectionManager");
        store
    }

    /// Wraps a Redis Cluster connection the application already has, with
    /// [`DEFAULT_PREFIX`] and [`DEFAULT_RESPONSE_TIMEOUT`].
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
    pub fn from_cluster_connection(connection: redis::cluster_async::ClusterConnection) -> Self {
        let mut store = Self::build(
            Connections::new(Connection::Cluster(connection), None),
            &RedisConfig::default(),
        );
        store.target = Arc::from("an application's ClusterConnection");
        store
    }

    /// The same store with keys under `prefix`.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Arc::from(prefix.into());
        self
    }

    /// The same store with calls bounded by `timeout` (a zero timeout is taken as one
    /// millisecond).
    #[must_use]
    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The prefix of every key the store writes.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The longest one call may take.
    pub fn response_timeout(&self) -> Duration {
        self.response_timeout
    }

    /// The Redis key of the session at `key`: `<prefix><64 hex digits>`. For operators and
    /// tests; the store never logs it (logs show [`StoreKey::short`]).
    pub fn redis_key(&self, key: &StoreKey) -> String {
        let mut redis_key = String::with_capacity(self.prefix.len() + StoreKey::HEX_LEN);
        redis_key.push_str(&self.prefix);
        redis_key.push_str(key.as_str());
        redis_key
    }

    /// The Redis key of `user`'s index of sessions: `<prefix>user:{<32 hex digits>}`, the
    /// digits being the first half of the SHA-256 of the user id (see
    /// [User index](crate#user-index)). For operators and tests; the store never logs it.
    pub fn user_index_key(&self, user: &UserId) -> String {
        self.index_key(user)
    }

    /// `command` followed by the Redis key of the session at `key`.
    fn command(&self, command: &str, key: &StoreKey) -> Cmd {
        let mut cmd = Cmd::with_capacity(2, command.len() + self.redis_key_len());
        cmd.arg(command);
        self.write_redis_key(&mut cmd, key);
        cmd
    }

    /// An `EVALSHA` of `script` on the session at `key`, with room for `(arguments,
    /// bytes)` of `ARGV`, which follow.
    fn script_command(&self, script: &Script, key: &StoreKey, argv: (usize, usize)) -> Cmd {
        let (arguments, bytes) = argv;
        let hash = script.get_hash();
        let mut cmd = Cmd::with_capacity(
            4 + arguments,
            "EVALSHA".len() + hash.len() + 1 + self.redis_key_len() + bytes,
        );
        cmd.arg("EVALSHA").arg(hash).arg(1);
        self.write_redis_key(&mut cmd, key);
        cmd
    }

    /// An `EVALSHA` of `script` on the session at `key` and the index `index`.
    fn script_command_with_index(
        &self,
        script: &Script,
        key: &StoreKey,
        index: &str,
        argv: (usize, usize),
    ) -> Cmd {
        let (arguments, bytes) = argv;
        let hash = script.get_hash();
        let mut cmd = Cmd::with_capacity(
            5 + arguments,
            "EVALSHA".len() + hash.len() + 1 + self.redis_key_len() + index.len() + bytes,
        );
        cmd.arg("EVALSHA").arg(hash).arg(2);
        self.write_redis_key(&mut cmd, key);
        cmd.arg(index);
        cmd
    }

    fn redis_key_len(&self) -> usize {
        self.prefix.len() + StoreKey::HEX_LEN
    }

    /// Writes [`RedisStore::redis_key`] straight into the command, without a String.
    fn write_redis_key(&self, cmd: &mut Cmd, key: &StoreKey) {
        let mut arg = cmd.writer_for_next_arg();
        // Writing to a command's buffer cannot fail.
        let _ = arg.write_all(self.prefix.as_bytes());
        let _ = arg.write_all(key.as_str().as_bytes());
    }

    fn build(connection: Connections, config: &RedisConfig) -> Self {
        Self {
            connection,
            prefix: Arc::from(config.prefix.as_str()),
            response_timeout: config.response_timeout,
            target: Arc::from(config.target()),
            restore_creates: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Writes a new session with one `RESTORE … ABSTTL`, which fails if anything is at the
    /// key. `None` when the caller must run the create script instead: something is at
    /// the key (the script tells a live session from a corrupt one), or this server does
    /// not take the command (older than Redis 5, an ACL without it), which turns the
    /// fast path off for good.
    async fn create_by_restore(
        &self,
        key: &StoreKey,
        record: &Record,
        binding: Option<Binding<'_>>,
    ) -> Result<Option<bool>> {
        let payload = layout::restore_payload(record, binding);
        let mut command = Cmd::with_capacity(5, 32 + self.redis_key_len() + payload.len());
        command.arg("RESTORE");
        self.write_redis_key(&mut command, key);
        command
            .arg(record.expires_at.as_millis())
            .arg(payload)
            .arg("ABSTTL");
        let mut connection = self.connection.get();
        self.call("create", key, async {
            match command.query_async::<()>(&mut connection).await {
                Ok(()) => Ok(Some(true)),
                Err(err) if err.code() == Some("BUSYKEY") => Ok(None),
                Err(err)
                    if matches!(
                        err.kind(),
                        redis::ErrorKind::Server(
                            redis::ServerErrorKind::ResponseError | redis::ServerErrorKind::NoPerm
                        )
                    ) =>
                {
                    // Creates in flight at the same time are refused too: one says so.
                    if self.restore_creates.swap(false, Ordering::Relaxed) {
                        tracing::info!(
                            target = &*self.target,
                            error = %format_args!("{err:#}"),
                            "redis refused RESTORE; new sessions are created with a script"
                        );
                    }
                    Ok(None)
                }
                Err(err) => Err(err),
            }
        })
        .await
    }

    /// Runs one call against Redis within the response timeout.
    async fn call<T>(
        &self,
        operation: &'static str,
        key: &StoreKey,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Result<T> {
        self.bounded(operation, Some(key), async {
            call.await
                .map_err(|err| self.failure(operation, Some(key), err))
        })
        .await
    }

    /// Runs `work`, one store call (of one or more round trips), within the response
    /// timeout. `key` is the session it is about, if there is one (logs show its short
    /// form; user-index calls log no user).
    async fn bounded<T>(
        &self,
        operation: &'static str,
        key: Option<&StoreKey>,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.response_timeout, work).await {
            Ok(result) => result,
            Err(_) => {
                tracing::debug!(
                    session = key.map_or("-", StoreKey::short),
                    operation,
                    target = &*self.target,
                    "redis call timed out"
                );
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "redis {operation} at {} did not answer within {:?}",
                        self.target, self.response_timeout
                    ),
                ))
            }
        }
    }

    /// The store error for a failed Redis call, with the Redis error as its source.
    fn failure(&self, operation: &'static str, key: Option<&StoreKey>, err: RedisError) -> Error {
        tracing::debug!(
            session = key.map_or("-", StoreKey::short),
            operation,
            target = &*self.target,
            error = %format_args!("{err:#}"),
            "redis call failed"
        );
        let kind = if err.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Backend
        };
        // A lazy store meets the set-up mistakes at its first call, not when it opens.
        let hint = setup_hint(&self.target, &err);
        let failed = Error::new(kind, format!("redis {operation} at {} failed", self.target))
            .with_source(err);
        match hint {
            Some(hint) => failed.with_hint(hint),
            None => failed,
        }
    }

    /// Writes a new session: one `RESTORE` where possible, the create script otherwise.
    async fn create_session(
        &self,
        key: &StoreKey,
        record: &Record,
        binding: Option<Binding<'_>>,
    ) -> Result<bool> {
        // `RESTORE` reads an expiry of 0 as "none": such a record takes the script, which
        // lets Redis delete it at once, as an expired record must be.
        if record.expires_at.as_millis() > 0
            && self.restore_creates.load(Ordering::Relaxed)
            && let Some(created) = self.create_by_restore(key, record, binding).await?
        {
            return Ok(created);
        }
        self.create_by_script(key, record, binding, None).await
    }

    /// Runs the create script, declaring the owner's `index` key when the script files the
    /// session there itself (a bound session on a single server).
    async fn create_by_script(
        &self,
        key: &StoreKey,
        record: &Record,
        binding: Option<Binding<'_>>,
        index: Option<&str>,
    ) -> Result<bool> {
        let argv = layout::create_args_size(record, binding);
        let mut command = match index {
            Some(index) => self.script_command_with_index(&layout::CREATE, key, index, argv),
            None => self.script_command(&layout::CREATE, key, argv),
        };
        layout::write_create_args(&mut command, record, binding);
        let mut connection = self.connection.get();
        let created: i64 = self
            .call(
                "create",
                key,
                run_script(&mut connection, &layout::CREATE, &command),
            )
            .await?;
        Ok(created == 1)
    }

    /// The index moves a cluster script reported, checked: `reply` is the script's reply
    /// after its leading 1, `leave` and `join` positions for an update, `join` only for a
    /// touch.
    fn reported_moves(
        &self,
        key: &StoreKey,
        reply: Vec<Value>,
        expires_at: Timestamp,
    ) -> Result<Vec<IndexMove>> {
        let mut reply = reply.into_iter();
        if !matches!(reply.next(), Some(Value::Int(1))) {
            return Err(Error::decode(
                "a session script replied with something other than its index moves",
            ));
        }
        let mut named: Vec<Option<String>> = Vec::with_capacity(2);
        for value in reply {
            named.push(self.checked_index(value)?);
        }
        // An update reports the index to leave and the one to join; a touch only the one
        // to join.
        let (leave, join) = match named.len() {
            1 => (None, named.pop().flatten()),
            _ => {
                let join = named.pop().flatten();
                (named.pop().flatten(), join)
            }
        };
        let member = key.as_str().to_owned();
        let mut moves = Vec::with_capacity(2);
        if let Some(index) = leave {
            moves.push(IndexMove::Remove {
                index,
                members: vec![member.clone()],
            });
        }
        if let Some(index) = join {
            moves.push(IndexMove::Raise {
                index,
                member,
                expires: expires_at.as_millis(),
            });
        }
        Ok(moves)
    }

    /// Runs the cluster follow-ups of a session write.
    async fn follow_up(
        &self,
        operation: &'static str,
        key: &StoreKey,
        moves: Vec<IndexMove>,
    ) -> Result<()> {
        if moves.is_empty() {
            return Ok(());
        }
        self.call(operation, key, self.move_entries(moves))
            .await
            .map_err(|err| {
                Error::new(
                    err.kind(),
                    format!(
                        "the session was written, but its user index entry could not be \
                         moved: {}",
                        err.message()
                    ),
                )
                .with_source(err)
            })
    }

    /// A session script's reply: `false` (no session), `true` (written, nothing more to
    /// do), or the index moves a cluster store makes next.
    fn script_outcome(
        &self,
        key: &StoreKey,
        reply: Value,
        expires_at: Timestamp,
    ) -> Result<Option<Vec<IndexMove>>> {
        match reply {
            Value::Int(0) => Ok(None),
            Value::Int(_) => Ok(Some(Vec::new())),
            Value::Array(items) => self.reported_moves(key, items, expires_at).map(Some),
            other => Err(Error::decode(format!(
                "a session script replied with {}",
                layout::shape(&other)
            ))),
        }
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        let mut connection = self.connection.get();
        let command = self.command("HGETALL", key);
        let reply = self
            .call("load", key, async {
                match command.query_async::<Value>(&mut connection).await {
                    // Something other than a hash at the key: corrupt, not a failing server.
                    Err(err) if err.code() == Some("WRONGTYPE") => Ok(None),
                    reply => reply.map(Some),
                }
            })
            .await?;
        match reply {
            Some(reply) => {
                layout::decode_load(reply, Timestamp::now(), |user| self.index_key(user))
            }
            None => Err(Error::decode(
                "the session key holds something other than a hash",
            )),
        }
    }

    /// An unbound session is one `RESTORE`, as it always was. A bound one is one create
    /// script that also files it in its owner's index on a single server; in a cluster,
    /// the session as usual, then the index.
    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        let Some(owner) = &record.owner else {
            return self.create_session(key, record, None).await;
        };
        let index = self.index_key(&owner.user);
        let binding = Some(Binding {
            owner,
            index: &index,
        });
        if record.is_expired(Timestamp::now()) {
            // Dead on arrival: written (and deleted by Redis at once), never indexed.
            return self.create_session(key, record, binding).await;
        }
        match self.index_writes() {
            IndexWrites::Inline => {
                self.create_by_script(key, record, binding, Some(&index))
                    .await
            }
            IndexWrites::Deferred => {
                let created = self.create_session(key, record, binding).await?;
                if created {
                    let raise = IndexMove::Raise {
                        index,
                        member: key.as_str().to_owned(),
                        expires: record.expires_at.as_millis(),
                    };
                    self.follow_up("create", key, vec![raise]).await?;
                }
                Ok(created)
            }
        }
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        let index = changes
            .owner
            .as_ref()
            .map(|owner| self.index_key(&owner.user));
        let binding = changes
            .owner
            .as_ref()
            .zip(index.as_deref())
            .map(|(owner, index)| Binding { owner, index });
        let script = layout::update_script(self.index_writes());
        let mut connection = self.connection.get();
        let mut command =
            self.script_command(script, key, layout::update_args_size(changes, binding));
        layout::write_update_args(&mut command, changes, binding);
        let reply: Value = self
            .call("update", key, run_script(&mut connection, script, &command))
            .await?;
        match self.script_outcome(key, reply, changes.expires_at)? {
            None => Ok(false),
            Some(moves) => {
                self.follow_up("update", key, moves).await?;
                Ok(true)
            }
        }
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
        let script = layout::touch_script(self.index_writes());
        let mut connection = self.connection.get();
        let mut command = self.script_command(script, key, (1, 20));
        command.arg(expires_at.as_millis());
        let reply: Value = self
            .call("touch", key, run_script(&mut connection, script, &command))
            .await?;
        match self.script_outcome(key, reply, expires_at)? {
            None => Ok(false),
            Some(moves) => {
                self.follow_up("touch", key, moves).await?;
                Ok(true)
            }
        }
    }

    /// One `DEL`. A bound session's index entry stays until the next listing of its
    /// user prunes it (or the index expires): the listing checks every session, so it is
    /// never listed.
    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        let mut connection = self.connection.get();
        let command = self.command("DEL", key);
        let deleted: i64 = self
            .call("delete", key, command.query_async(&mut connection))
            .await?;
        Ok(deleted > 0)
    }

    /// One pipeline of scripts that delete the sessions and their index entries (a
    /// script per 500 sessions); in a cluster, one request per slot, sent at once, then
    /// one per index.
    async fn delete_many(&self, keys: &[StoreKey]) -> Result<u64> {
        self.delete_keys(keys).await
    }

    /// Reads the user's index, then every listed session, in two round trips (three
    /// when stale entries are pruned), whatever the number of sessions.
    async fn sessions_of(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
        self.list_user(user).await
    }

    /// One `ZCARD` of the user's index.
    async fn user_index_len(&self, user: &UserId) -> Result<u64> {
        self.index_len(user).await
    }

    /// One script: `SET NX PX` of the lease key, or a `GET` that tells the holder asking
    /// again from another token (see [Locks](crate#locks)).
    async fn lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        self.take_lease(key, token, ttl).await
    }

    /// One script on a single server: the lease's `SET NX PX` and the session's `HGETALL`.
    async fn lock_and_load(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<Option<Option<Record>>> {
        self.take_lease_and_load(key, token, ttl).await
    }

    /// One script on a single server: the change set, then the lease's release.
    async fn update_and_unlock(
        &self,
        key: &StoreKey,
        changes: &ChangeSet,
        token: &LockToken,
    ) -> Result<bool> {
        self.update_releasing(key, changes, token).await
    }

    /// One script: `PEXPIRE` of the lease key if it still holds `token`.
    async fn renew_lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        self.renew_lease(key, token, ttl).await
    }

    /// One script: `DEL` of the lease key if it still holds `token`.
    async fn unlock(&self, key: &StoreKey, token: &LockToken) -> Result<bool> {
        self.release_lease(key, token).await
    }

    /// Redis expires keys on its own (sessions and leases): nothing to do.
    async fn gc(&self) -> Result<u64> {
        Ok(0)
    }

    /// Native TTL (Redis expires sessions), shared (every process that connects to the
    /// same Redis and prefix sees the same sessions), persistent (sessions outlive the
    /// application; whether they outlive a restart of Redis depends on its persistence
    /// settings), a user index and session locks (a lease holds for every process).
    fn capabilities(&self) -> Capabilities {
        Capabilities::new()
            .with_native_ttl(true)
            .with_shared(true)
            .with_persistent(true)
            .with_user_index(true)
            .with_lock(true)
    }
}

/// Runs `command`, an `EVALSHA` of `script`; if Redis does not know the script yet (after
/// a restart or `SCRIPT FLUSH`), loads it and runs the command once more.
pub(crate) async fn run_script<T: FromRedisValue>(
    connection: &mut Connection,
    script: &Script,
    command: &Cmd,
) -> RedisResult<T> {
    match command.query_async(connection).await {
        Err(err) if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            script.prepare_invoke().load_async(connection).await?;
            command.query_async(connection).await
        }
        result => result,
    }
}

/// Registers `type = "redis"`, configured by the `adapter.redis` table ([`RedisConfig`]).
///
/// Opening connects and waits for Redis (so a wrong URL fails at start-up) unless
/// `adapter.redis.lazy` is `true`.
pub fn register(registry: &mut Registry) {
    registry.register("redis", |options| async move {
        let config: RedisConfig = options.parse()?;
        let store = if config.lazy {
            RedisStore::connect_lazy(&config)?
        } else {
            RedisStore::connect(&config).await?
        };
        Ok(Arc::new(store) as Arc<dyn SessionStore>)
    });
}

fn validate(config: &RedisConfig) -> Result<()> {
    if config.connect_timeout.is_zero() {
        return Err(Error::config(
            "adapter.redis.connect_timeout",
            "must be longer than zero",
        ));
    }
    if config.response_timeout.is_zero() {
        return Err(Error::config(
            "adapter.redis.response_timeout",
            "must be longer than zero",
        ));
    }
    if !config.nodes.is_empty() && cfg!(not(feature = "cluster")) {
        return Err(Error::config(
            "adapter.redis.nodes",
            "Redis Cluster needs the `cluster` feature of session-redis",
        ));
    }
    Ok(())
}

fn single_client(config: &RedisConfig) -> Result<redis::Client> {
    prepare_tls(is_tls_url(&config.url));
    redis::Client::open(config.url.as_str()).map_err(|err| {
        Error::config(
            "adapter.redis.url",
            format!(
                "{} is not a usable Redis URL: {err}",
                config::redact_url(&config.url)
            ),
        )
    })
}

#[cfg(feature = "cluster")]
fn cluster_client(config: &RedisConfig) -> Result<redis::cluster::ClusterClient> {
    prepare_tls(config.nodes.iter().any(|node| is_tls_url(node)));
    redis::cluster::ClusterClientBuilder::new(config.nodes.iter().map(String::as_str))
        .connection_timeout(config.connect_timeout)
        .response_timeout(config.response_timeout)
        .build()
        .map_err(|err| {
            Error::config(
                "adapter.redis.nodes",
                format!("{} are not usable cluster nodes: {err}", config.target()),
            )
        })
}

/// Makes sure rustls has a crypto provider before a TLS connection is made (`needed`):
/// redis enables none, and two enabled by different crates would leave rustls unable to
/// choose. A provider the application installed itself is kept.
fn prepare_tls(needed: bool) {
    #[cfg(feature = "tls")]
    if needed && rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing the race to another thread installing one is fine: any provider will do.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    #[cfg(not(feature = "tls"))]
    let _ = needed;
}

fn is_tls_url(url: &str) -> bool {
    url.starts_with("rediss://")
}

fn manager_config(config: &RedisConfig) -> ConnectionManagerConfig {
    // The store bounds every call by the response timeout itself (waiting for a
    // reconnection included), so the manager needs no timer of its own per command.
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(None)
        .set_number_of_retries(RECONNECT_RETRIES)
        .set_min_delay(RECONNECT_MIN_DELAY)
        .set_max_delay(RECONNECT_MAX_DELAY)
}

/// The longest a direct connection attempt after a connect timeout may take: it only
/// finds out why the manager's attempts did not succeed in time.
const DIAGNOSIS_TIMEOUT: Duration = Duration::from_secs(1);

/// The connection manager of `client`, connected and answering, within
/// `config.connect_timeout`. The first connection is made and a `PING` sent now, so that
/// a server that is down, refuses the password or wants one is reported here (a server
/// with `requirepass` accepts a connection without a password and refuses its first
/// command), with a hint.
async fn open_manager(
    client: &redis::Client,
    config: &RedisConfig,
    target: &str,
) -> Result<ConnectionManager> {
    let opened = tokio::time::timeout(config.connect_timeout, async {
        let mut manager =
            ConnectionManager::new_with_config(client.clone(), manager_config(config)).await?;
        redis::cmd("PING").query_async::<()>(&mut manager).await?;
        Ok::<_, RedisError>(manager)
    })
    .await;
    match opened {
        Ok(Ok(manager)) => Ok(manager),
        Ok(Err(err)) => Err(connect_failed(target, err)),
        Err(_) => {
            // The manager retries a refused connection, and a short connect timeout can
            // end before it reports why: one direct attempt finds the cause.
            let attempt =
                tokio::time::timeout(DIAGNOSIS_TIMEOUT, client.get_multiplexed_async_connection())
                    .await;
            match attempt {
                Ok(Err(err)) => Err(connect_failed(target, err)),
                _ => Err(connect_timed_out(target, config.connect_timeout)),
            }
        }
    }
}

fn connect_timed_out(target: &str, timeout: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("could not connect to Redis at {target} within {timeout:?}"),
    )
    .with_hint(Hint::new(
        SetupProblem::Unreachable,
        format!(
            "Redis at {target} did not answer within {timeout:?}: check that it runs and that \
             the host and port in `adapter.redis.url` are right (and that no firewall drops \
             the connection), or raise `adapter.redis.connect_timeout` if it is only slow"
        ),
    ))
}

fn connect_failed(target: &str, err: RedisError) -> Error {
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Backend
    };
    let hint = setup_hint(target, &err);
    let failed =
        Error::new(kind, format!("could not connect to Redis at {target}")).with_source(err);
    match hint {
        Some(hint) => failed.with_hint(hint),
        None => failed,
    }
}

/// What to do about `err`, met connecting to (or first calling) the Redis at `target`,
/// where it is a set-up mistake: nothing listening, a password refused or missing, a user
/// without the permissions the store needs.
fn setup_hint(target: &str, err: &RedisError) -> Option<Hint> {
    if err.is_connection_refusal() {
        return Some(Hint::new(
            SetupProblem::Unreachable,
            format!(
                "nothing accepts connections at {target}: start Redis there, or fix the host \
                 and port in `adapter.redis.url`"
            ),
        ));
    }
    let password = "`adapter.redis.url` (`redis://:PASSWORD@host:port`, or \
                    `redis://USER:PASSWORD@host:port` for an ACL user)";
    let (problem, text) = match (err.kind(), err.code()) {
        (redis::ErrorKind::AuthenticationFailed, _) | (_, Some("WRONGPASS")) => (
            SetupProblem::Authentication,
            format!("Redis at {target} refused the user or password: fix them in {password}"),
        ),
        (_, Some("NOAUTH")) => (
            SetupProblem::Authentication,
            format!("Redis at {target} requires a password: give it in {password}"),
        ),
        (_, Some("NOPERM")) => (
            SetupProblem::Privilege,
            "the Redis user may not run a command the store needs, or reach its keys: allow \
             it the keys under `adapter.redis.prefix` (ACL `~<prefix>*`) and the store's \
             commands (`+@read +@write +@scripting`)"
                .to_owned(),
        ),
        _ => return None,
    };
    Some(Hint::new(problem, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_zero_timeouts_and_bad_urls() {
        let err = validate(&RedisConfig::default().with_response_timeout(Duration::ZERO))
            .expect_err("zero");
        assert!(err.to_string().contains("adapter.redis.response_timeout"));
        let err = validate(&RedisConfig::default().with_connect_timeout(Duration::ZERO))
            .expect_err("zero");
        assert!(err.to_string().contains("adapter.redis.connect_timeout"));
        let err = single_client(&RedisConfig::new("http://u:hunter2@host")).expect_err("scheme");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("adapter.redis.url"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[cfg(not(feature = "cluster"))]
    #[test]
    fn cluster_nodes_need_the_feature() {
        let err = validate(&RedisConfig::default().with_nodes(["redis://127.0.0.1:7000"]))
            .expect_err("no cluster feature");
        assert!(err.to_string().contains("`cluster` feature"), "{err}");
    }

    #[tokio::test]
    async fn lazy_store_opens_without_a_server_and_fails_in_time() {
        let config = RedisConfig::new("redis://127.0.0.1:1")
            .with_connect_timeout(Duration::from_millis(200))
            .with_response_timeout(Duration::from_millis(300));
        let store = RedisStore::connect_lazy(&config).expect("lazy");
        assert!(format!("{store:?}").contains("127.0.0.1:1"));
        let key = session_core::SessionId::generate(32)
            .expect("id")
            .store_key();
        let started = std::time::Instant::now();
        let err = store
            .load(&key)
            .await
            .expect_err("nothing listens on port 1");
        assert!(
            matches!(err.kind(), ErrorKind::Backend | ErrorKind::Timeout),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(store.gc().await.expect("gc"), 0);
        let caps = store.capabilities();
        assert!(caps.native_ttl && caps.shared && caps.persistent && caps.lock);
        assert!(store.redis_key(&key).starts_with(DEFAULT_PREFIX));
        assert_eq!(store.redis_key(&key).len(), DEFAULT_PREFIX.len() + 64);
    }

    #[test]
    fn lazy_store_needs_a_runtime() {
        let err = RedisStore::connect_lazy(&RedisConfig::default()).expect_err("no runtime");
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        assert!(err.to_string().contains("Tokio runtime"), "{err}");
        assert!(
            std::error::Error::source(&err).is_some(),
            "the runtime error is kept"
        );
    }
}
