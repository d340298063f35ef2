//! SQL and MongoDB session stores for `session-core`: the ThinkJS `db` session type.
//!
//! - [`PostgresStore`], [`MySqlStore`] (MySQL and MariaDB) and [`SqliteStore`] keep each
//!   session as one row of ThinkJS's `think_session` table (the prefix is configurable),
//!   through [sqlx] with runtime-checked queries and bound parameters only.
//! - [`MongoStore`] keeps one document per session, updates single keys with `$set` /
//!   `$unset`, and lets a TTL index expire sessions.
//! - Every store keeps a user index: the sessions bound to a user are listed, and ended
//!   together, in one statement or command (see "Sessions of a user").
//! - Every store keeps session locks (`lock = true`): leases in a table (or collection) of
//!   their own, one statement per call (see "Session locks").
//! - [`register`] makes `type = "db"` pick the store from `adapter.db.url`.
//!
//! # Example
//!
//! A SQLite file (the same code runs on PostgreSQL or MariaDB with another URL):
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! use std::sync::Arc;
//! use session_core::{Registry, SessionConfig, SessionManager, UserId};
//! use session_db::SqliteStore;
//!
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(dir.path().join("sessions.db")).await?;
//! let manager = SessionManager::new(Arc::new(store), SessionConfig::default())?;
//!
//! // Log in: a new session with data, bound to its user, gets a cookie.
//! let ada = UserId::new("ada@example.org")?;
//! let session = manager.session_from_cookie_header(None);
//! session.set("userInfo", "Ada").await?;
//! session.set_user(ada.clone()).await?;
//! session.set_label("Firefox on Linux").await?;
//! let cookie = session.flush().await?.expect("Set-Cookie");
//!
//! // The user's sessions, listed through the `user_id` index.
//! let listed = manager.sessions_of(&ada).await?;
//! assert_eq!(listed.len(), 1);
//! assert_eq!(listed[0].label, "Firefox on Linux");
//!
//! // The next request brings the cookie back.
//! let header = format!("{}={}", cookie.name(), cookie.value());
//! let next = manager.session_from_cookie_header(Some(&header));
//! assert_eq!(next.get::<String>("userInfo").await?, Some("Ada".to_owned()));
//!
//! // The same store from configuration, as `type = "db"`.
//! let mut registry = Registry::new();
//! session_db::register(&mut registry);
//! let url = format!("sqlite://{}?mode=rwc", dir.path().join("sessions.db").display());
//! let config = SessionConfig::from_value(serde_json::json!({
//!     "type": "db",
//!     "adapter": { "db": { "url": url, "prefix": "think_" } },
//! }))?;
//! let store = registry.open(&config).await?;
//! let manager = SessionManager::new(store, config)?;
//! let again = manager.session_from_cookie_header(Some(&header));
//! assert_eq!(again.get::<String>("userInfo").await?, Some("Ada".to_owned()));
//! # Ok::<(), Box<dyn std::error::Error>>(()) })
//! # }
//! # #[cfg(not(feature = "sqlite"))]
//! # fn main() {}
//! ```
//!
//! # Features
//!
//! Each backend is a feature, so an application compiles only the driver it uses.
//!
//! | feature    | default | what it adds |
//! |------------|---------|--------------|
//! | `sqlite`   | yes     | [`SqliteStore`], `sqlite://` URLs (SQLite is bundled: no system library needed) |
//! | `postgres` | no      | [`PostgresStore`], `postgres://` / `postgresql://` URLs |
//! | `mysql`    | no      | [`MySqlStore`], `mysql://` / `mariadb://` URLs |
//! | `mongodb`  | no      | [`MongoStore`], `mongodb://` / `mongodb+srv://` URLs (official driver, rustls) |
//!
//! sqlx is re-exported as [`sqlx`] and the MongoDB driver as [`mongodb`], so an
//! application that builds its own pool uses the same versions as the stores.
//!
//! # Configuration
//!
//! `type = "db"` with the options of [`DbOptions`]; the URL's scheme picks the driver, and
//! a scheme whose feature is not compiled in is an error naming `adapter.db.url`:
//!
//! ```toml
//! type = "db"
//! [adapter.db]
//! url = "postgres://app@127.0.0.1/app"   # or mysql://, sqlite://path?mode=rwc, mongodb://
//! prefix = "think_"                      # table (or collection) think_session
//! max_connections = 10
//! acquire_timeout = "5s"
//! ```
//!
//! An existing pool works too: [`PostgresStore::new`], [`MySqlStore::new`],
//! [`SqliteStore::new`] and [`MongoStore::new`] take one.
//!
//! ## When opening fails
//!
//! The SQL stores recognise the common set-up mistakes while connecting and migrating,
//! and attach a [`Hint`](session_core::Hint) to the error, which `{:#}` prints after the
//! cause chain: nothing listening at the URL's host and port, a refused login, a missing
//! database, a user who may not create the tables (PostgreSQL `42501`; MySQL `1044`,
//! `1142`), a table named `<prefix>session` without the store's columns (checked before
//! any DDL), and a SQLite file that cannot be opened or created (a missing folder, a file
//! in the path, no `?mode=rwc`, a read-only file). sqlx retries a refused connection until
//! `acquire_timeout` and then reports only its pool timeout; after such a timeout at open,
//! the store makes one more attempt directly, and its error, the real cause ("Connection
//! refused"), becomes the error's source.
//!
//! # The table
//!
//! ThinkJS's `think_session` layout: `id` auto-increment, `cookie` unique, `data`, `expire`
//! (milliseconds since the Unix epoch) with an index. `cookie` holds the session's store
//! key (the SHA-256 of the id, 64 hex digits), never the id itself. `data` is binary: the
//! record in the [`session_core::wire`] layout. Three columns are added: `version`, which
//! every write increments (see "Concurrent change sets" below), and `user_id` and `label`,
//! the session's owner (see "Sessions of a user" below). The `expire`, `user_id` and
//! `label` columns, not the blob, are the truth about expiry and owner: they are what the
//! statements filter on, and every write sets them from the same record as the blob.
//!
//! `migrate()` (run on `connect` unless `migrate = false`) creates what is missing, the
//! lease table of the session locks included (its DDL is under "Session locks"). To create
//! the sessions table by hand, with `think_` replaced by your prefix:
//!
//! PostgreSQL:
//! ```sql
//! CREATE TABLE IF NOT EXISTS "think_session" (
//!     id BIGSERIAL PRIMARY KEY,
//!     cookie VARCHAR(64) NOT NULL UNIQUE,
//!     data BYTEA NOT NULL,
//!     expire BIGINT NOT NULL,
//!     version BIGINT NOT NULL DEFAULT 0,
//!     user_id VARCHAR(256),
//!     label VARCHAR(256)
//! );
//! CREATE INDEX IF NOT EXISTS "think_session_expire" ON "think_session" (expire);
//! CREATE INDEX IF NOT EXISTS "think_session_user" ON "think_session" (user_id)
//!     WHERE user_id IS NOT NULL;
//! ```
//!
//! MySQL / MariaDB:
//! ```sql
//! CREATE TABLE IF NOT EXISTS `think_session` (
//!     `id` BIGINT NOT NULL AUTO_INCREMENT,
//!     `cookie` VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
//!     `data` LONGBLOB NOT NULL,
//!     `expire` BIGINT NOT NULL,
//!     `version` BIGINT NOT NULL DEFAULT 0,
//!     `user_id` VARBINARY(256) NULL,
//!     `label` VARCHAR(256) CHARACTER SET utf8mb4 NULL,
//!     PRIMARY KEY (`id`),
//!     UNIQUE KEY `think_session_cookie` (`cookie`),
//!     KEY `think_session_expire` (`expire`),
//!     KEY `think_session_user` (`user_id`)
//! ) ENGINE=InnoDB;
//! ```
//!
//! SQLite:
//! ```sql
//! CREATE TABLE IF NOT EXISTS "think_session" (
//!     id INTEGER PRIMARY KEY AUTOINCREMENT,
//!     cookie TEXT NOT NULL UNIQUE,
//!     data BLOB NOT NULL,
//!     expire INTEGER NOT NULL,
//!     version INTEGER NOT NULL DEFAULT 0,
//!     user_id TEXT,
//!     label TEXT
//! );
//! CREATE INDEX IF NOT EXISTS "think_session_expire" ON "think_session" (expire);
//! CREATE INDEX IF NOT EXISTS "think_session_user" ON "think_session" (user_id)
//!     WHERE user_id IS NOT NULL;
//! ```
//!
//! `user_id` is binary on MySQL so that it compares byte for byte (a `_bin` collation pads
//! with spaces, and would match `"ada "` for `"ada"`). On PostgreSQL and SQLite the index
//! is partial: unbound sessions have no entry, so writing them costs what it did before
//! the index existed.
//!
//! ## Upgrading a table made by an earlier version
//!
//! Tables created before the user index lack `user_id`, `label` and the `user_id` index.
//! `migrate()` adds them in place and keeps every stored session (they read as unbound):
//! it looks each one up in the catalog and adds only what is missing, so running it again
//! changes nothing, and several processes may run it at once (PostgreSQL takes turns on
//! an advisory lock, SQLite in `BEGIN IMMEDIATE`, and on MySQL a change another process
//! made meanwhile counts as made). None of the changes rewrites the table: the columns are
//! nullable without a default. Building the index reads the table once; on PostgreSQL
//! that blocks writes meanwhile, so on a large table create the index first with
//! `CREATE INDEX CONCURRENTLY` (same name), and `migrate()` leaves it alone. By hand:
//!
//! ```sql
//! -- PostgreSQL
//! ALTER TABLE "think_session" ADD COLUMN IF NOT EXISTS user_id VARCHAR(256);
//! ALTER TABLE "think_session" ADD COLUMN IF NOT EXISTS label VARCHAR(256);
//! CREATE INDEX CONCURRENTLY IF NOT EXISTS "think_session_user" ON "think_session" (user_id)
//!     WHERE user_id IS NOT NULL;
//! -- MySQL / MariaDB
//! ALTER TABLE `think_session`
//!     ADD COLUMN `user_id` VARBINARY(256) NULL,
//!     ADD COLUMN `label` VARCHAR(256) CHARACTER SET utf8mb4 NULL,
//!     ADD KEY `think_session_user` (`user_id`);
//! -- SQLite
//! ALTER TABLE "think_session" ADD COLUMN user_id TEXT;
//! ALTER TABLE "think_session" ADD COLUMN label TEXT;
//! CREATE INDEX IF NOT EXISTS "think_session_user" ON "think_session" (user_id)
//!     WHERE user_id IS NOT NULL;
//! ```
//!
//! Databases created before the session locks lack the lease table: `migrate()` creates
//! it (`CREATE TABLE IF NOT EXISTS`, like the sessions table), so a store opened on such a
//! database can lock at once; by hand, it is the DDL under "Session locks". Processes of
//! an earlier version never read it: while they run beside upgraded ones, their requests
//! take no lock and wait for none.
//!
//! Processes of the earlier version still running beside upgraded ones work on the
//! migrated table (their statements name their columns and leave `user_id` and `label` as
//! they are), and read every unbound session an upgraded process wrote (its blob stays in
//! wire layout 1). A session bound to a user is in layout 2, which they do not know: to
//! them it is no session, and the request starts a new one. Upgrade every process before
//! the application starts calling `set_user`, or expect such log-outs while both versions
//! run.
//!
//! The prefix is the only text spliced into SQL, and it is checked to be an identifier
//! ([`validate_prefix`]); keys, data and times are always bound parameters.
//!
//! SQLite runs in WAL mode (readers never wait for the writer) with `busy_timeout` set to
//! `acquire_timeout`; the store's own writers queue in process instead of polling
//! SQLite's lock.
//!
//! # How each operation maps to SQL
//!
//! - **load** is one query: `SELECT ... WHERE cookie = ? AND expire > now`.
//! - **create** stores a session only where none is alive: PostgreSQL and SQLite with one
//!   `INSERT ... ON CONFLICT (cookie) DO UPDATE ... WHERE <existing>.expire <= now`;
//!   MySQL deletes a dead row at the key, then inserts, a duplicate key meaning "taken".
//!   Of concurrent creates of one key exactly one succeeds. A corrupt row at the key
//!   counts as absent and is replaced, guarded by its version.
//! - **update** applies a [`ChangeSet`](session_core::ChangeSet) atomically (next section).
//!   A missing or expired row is not written: the result is `false`, and a session deleted
//!   by a racing logout stays deleted.
//! - **touch** is one `UPDATE ... SET expire = ? WHERE cookie = ? AND expire > now`.
//! - **delete** is one `DELETE` (`RETURNING expire` to tell whether the row was alive; on
//!   MySQL a live-only delete, followed by removing a dead remnant when nothing live was
//!   there).
//! - **gc** deletes `expire <= now` through the `expire` index in batches of 1,000 rows
//!   (PostgreSQL and SQLite by a sub-select of ids, PostgreSQL skipping rows a request
//!   holds locked; MySQL with `DELETE ... LIMIT`), so no statement holds locks for long,
//!   and returns the total.
//! - Unchanged read-only requests issue no write: the session handle sends nothing.
//!
//! # Sessions of a user
//!
//! The stores keep a user index ([`Capabilities::user_index`](session_core::Capabilities)):
//! a session bound to a user (see [`Record::owner`](session_core::Record::owner)) has that
//! user in `user_id` and its label in `label`, written by the same statement that writes
//! its blob. No statement is added for it: `create` inserts them with the row, a change
//! set with an owner sets them in its `UPDATE` (one without keeps them), and
//! `update_if_unchanged` writes them with the whole record. A request that does not change
//! the binding costs exactly what it did before.
//!
//! - **sessions_of** is one `SELECT cookie, <the blob's first 21 bytes>, expire, label
//!   WHERE user_id = ? AND expire > now` through the `user_id` index: the user's live
//!   sessions, never an expired one whether gc has run or not, with the expiry the row has
//!   now. The header bytes give the creation time without reading the sessions' data.
//! - **user_index_len** counts the rows bound to the user (`COUNT(*) WHERE user_id = ?`),
//!   expired rows gc has not removed yet included: the index is the table, so a deleted
//!   session leaves no entry behind and gc prunes the rest.
//! - **delete_many** is one `DELETE ... WHERE expire > now AND cookie IN (...)` for up to
//!   16,384 keys on SQLite and 32,768 on the others (their limits on bind parameters),
//!   counting the live rows it removed; a longer list takes one statement per batch. The
//!   list is padded to a power of two with its last key, so a store prepares a handful of
//!   these statements, not one per length.
//!
//! Measured on loopback PostgreSQL 15 and MariaDB 10.11 (`tests/user_index_costs.rs`
//! prints the figures; three runs on a busy two-core machine): listing a user with 1,000
//! sessions takes one statement (7 to 13 ms on either), `delete_many` of 1,000 one
//! statement (3 to 4 ms on PostgreSQL, 16 to 18 ms on MariaDB, against 380 to 720 ms for 1,000
//! `delete`s), and a log-in takes the same one (PostgreSQL) or two (MariaDB) statements
//! with a binding as without.
//!
//! # Session locks
//!
//! The stores keep session locks ([`Capabilities::lock`](session_core::Capabilities)):
//! with `lock = true` the manager holds a session's lock from its first use in a request
//! until the flush. A lock is a lease, a token and an expiry, kept in a table of its own
//! beside the sessions, `<prefix>session_locks`, one row per locked key and apart from
//! the session's row: locking neither needs nor changes a session, and deleting a
//! session keeps its lease. Every call is one statement on the key, made atomic by the
//! database's own row lock, so of concurrent attempts exactly one wins, across processes:
//!
//! - **lock**: PostgreSQL and SQLite `INSERT ... ON CONFLICT (key) DO UPDATE SET token,
//!   expires_at WHERE` the lease has lapsed or is this token's (a row affected: granted);
//!   MySQL `INSERT ... ON DUPLICATE KEY UPDATE` with an `IF` on each column, which reports
//!   the grant through `LAST_INSERT_ID(n)` (with the `CLIENT_FOUND_ROWS` flag sqlx sets,
//!   the affected-rows count of a refusal equals that of an insert).
//! - **renew_lock**: `UPDATE ... SET expires_at WHERE key = ? AND token = ? AND
//!   expires_at > now`.
//! - **unlock**: `DELETE ... WHERE key = ? AND token = ? RETURNING expires_at`, telling
//!   from the expiry whether the lease was still good; MySQL deletes the live lease, and
//!   only when there was none, a lapsed one of the token's, in a second statement.
//! - **gc** also deletes lapsed leases (not counted: they are no sessions); `lock` takes a
//!   lapsed lease over anyway.
//!
//! Leases are judged by the application's clock, as sessions' expiry is: the processes
//! sharing a database need clocks that agree to well within `lock_ttl`. Measured on
//! loopback servers on a busy two-core machine (`tests/lease_table.rs`, medians of 500
//! calls, two runs): a lock or a renewal takes 130 to 260 µs on PostgreSQL 15, 28 to 38 µs
//! on MariaDB 10.11 and 11 to 12 µs on SQLite.
//!
//! The databases' advisory locks (`pg_advisory_lock`, MySQL's `GET_LOCK`) are not used:
//! they belong to a connection, so holding one for a request pins a pooled connection for
//! the whole request, and they have no expiry, so a holder that stalls with its
//! connection open blocks the session for ever, and no token fences its late writes. A
//! lease row lapses after its ttl, and its token is checked by every renewal and release.
//!
//! The lease table, with `think_` replaced by your prefix:
//!
//! ```sql
//! -- PostgreSQL
//! CREATE TABLE IF NOT EXISTS "think_session_locks" (
//!     "key" VARCHAR(64) PRIMARY KEY,
//!     token TEXT NOT NULL,
//!     expires_at BIGINT NOT NULL
//! );
//! -- MySQL / MariaDB
//! CREATE TABLE IF NOT EXISTS `think_session_locks` (
//!     `key` VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
//!     `token` VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
//!     `expires_at` BIGINT NOT NULL,
//!     PRIMARY KEY (`key`)
//! ) ENGINE=InnoDB;
//! -- SQLite
//! CREATE TABLE IF NOT EXISTS "think_session_locks" (
//!     "key" TEXT PRIMARY KEY NOT NULL,
//!     token TEXT NOT NULL,
//!     expires_at INTEGER NOT NULL
//! ) WITHOUT ROWID;
//! ```
//!
//! # Concurrent change sets
//!
//! Each row holds the whole session, so applying a change set means read, merge, write.
//! Two requests doing that at once on one session must not lose each other's keys. Both
//! classic answers are implemented, and [`Concurrency`] picks one:
//!
//! - [`Concurrency::RowLock`] (the default): a transaction holding the row lock: `BEGIN`,
//!   `SELECT ... FOR UPDATE`, `UPDATE`, `COMMIT` (on SQLite `BEGIN IMMEDIATE`, SQLite's
//!   lock being the whole database). Four round trips; a concurrent change set waits for
//!   the lock and never wastes work.
//! - [`Concurrency::Optimistic`]: read the row, merge, then
//!   `UPDATE ... WHERE id = ? AND version = ?` (every write bumps `version`). Two round
//!   trips and no lock held in between. When the version has moved, the change set is
//!   applied once more under the row lock, which always makes progress: no retry loop to
//!   tune and no starvation under contention.
//!
//! A deadlock or serialization failure reported by the database (SQLSTATE `40001` /
//! `40P01`) is retried a few times with a short random backoff under either strategy; the
//! database rolled the attempt back whole, so that is safe.
//!
//! Alone, a change set costs about the same either way: the commit's flush to disk
//! dominates. Under contention the row lock is faster, because the optimistic path spends
//! a wasted attempt before it takes the lock anyway; hence the default. The optimistic
//! strategy pays off where round trips are expensive (a database across a network: it
//! saves two per change set) and sessions are seldom written concurrently. The figures
//! behind this, and the command that measures them again, are in the workspace's
//! benchmark report, `docs/benchmarks.md` ("session-db: row lock or optimistic updates").
//!
//! # Connections
//!
//! sqlx's pool pings every connection handed back to it before anyone may reuse it, so a
//! statement run on a pool costs two round trips. A store opened from [`DbOptions`]
//! (`connect`, or `type = "db"` through the registry) owns its pool and keeps the
//! connections it used, at most `max_connections`, for its next statements: one round
//! trip each. A connection whose statement failed is closed, and the next statement opens
//! a fresh one. A store built on a pool the application passes in (`PostgresStore::new`,
//! ...) shares that pool, so it gives each connection back after use.
//!
//! # Corrupt rows
//!
//! A row whose `data` is not a valid record (garbage, truncated, NULL) or whose `expire`
//! is NULL or not an integer, or whose `user_id` or `label` is not a valid user id or label
//! (a hand-made table, a foreign writer) makes `load` return an
//! [`ErrorKind::Decode`](session_core::ErrorKind::Decode) error with a `tracing` warning
//! (naming the key by its short prefix only); the session handle treats it as "no session"
//! and the next write creates a fresh one. A listing leaves out, with a warning, a row
//! whose key or blob header it cannot read, rather than failing the user's whole listing.
//! Nothing a row holds can make a store panic.
//!
//! # MongoDB
//!
//! [`MongoStore`] is selected by a `mongodb://` URL with the same `type = "db"`; see its
//! docs for the document layout, its user index (a `user` field with a partial index,
//! which `migrate` adds to an existing collection) and its session locks (a
//! `<prefix>session_locks` collection, one upsert per lock). It was compiled and
//! unit-tested here,
//! but its
//! conformance run needs a server: it runs when `SESSION_TEST_MONGODB_URL` is set, and
//! says it was skipped otherwise.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::sync::Arc;

use session_core::{Error, Registry, Result, SessionStore};

#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod dialect;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod hints;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod lease;
mod options;
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
mod sql;

#[cfg(feature = "mongodb")]
mod mongo;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "mongodb")]
pub use mongo::{DEFAULT_DATABASE, MongoStore};
#[cfg(feature = "mysql")]
pub use mysql::MySqlStore;
pub use options::{Concurrency, DEFAULT_PREFIX, DbOptions, MAX_PREFIX_LEN, validate_prefix};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// Re-exported so applications use the same sqlx as the stores (to build a pool, say).
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite")))
)]
pub use sqlx;

/// Re-exported so applications use the same MongoDB driver as [`MongoStore`].
#[cfg(feature = "mongodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "mongodb")))]
pub use mongodb;

/// Registers `type = "db"`: the store for `adapter.db.url`, whose scheme picks the driver
/// (`postgres://`, `mysql://`, `sqlite://`, `mongodb://`). See [`DbOptions`] for the keys.
pub fn register(registry: &mut Registry) {
    registry.register("db", |options| async move {
        let options: DbOptions = options.parse()?;
        connect(&options).await
    });
}

/// Opens the store `options.url` names, creating its table or index if `options.migrate`.
///
/// # Errors
/// [`ErrorKind::Config`](session_core::ErrorKind::Config) naming `adapter.db.url` for an
/// unknown scheme or one whose feature is not compiled in, `adapter.db.prefix` for a bad
/// prefix; backend errors if the database cannot be reached.
pub async fn connect(options: &DbOptions) -> Result<Arc<dyn SessionStore>> {
    let scheme = options.scheme();
    // The store of `$feature`, or the error naming that feature when it is not compiled in.
    macro_rules! connect_with_feature {
        ($feature:literal, $store:ident) => {{
            #[cfg(feature = $feature)]
            return Ok(Arc::new($store::connect(options).await?));
            #[cfg(not(feature = $feature))]
            return Err(missing_feature(&scheme, $feature));
        }};
    }
    match scheme.as_str() {
        "postgres" | "postgresql" => connect_with_feature!("postgres", PostgresStore),
        "mysql" | "mariadb" => connect_with_feature!("mysql", MySqlStore),
        "sqlite" => connect_with_feature!("sqlite", SqliteStore),
        "mongodb" | "mongodb+srv" => connect_with_feature!("mongodb", MongoStore),
        _ => Err(Error::config(
            "adapter.db.url",
            format!(
                "unknown scheme `{scheme}`; expected postgres://, mysql://, sqlite:// or mongodb://"
            ),
        )),
    }
}

#[cfg(not(all(
    feature = "postgres",
    feature = "mysql",
    feature = "sqlite",
    feature = "mongodb"
)))]
fn missing_feature(scheme: &str, feature: &str) -> Error {
    Error::config(
        "adapter.db.url",
        format!(
            "`{scheme}://` needs the `{feature}` feature of session-db, which is not enabled \
             (session-db = {{ version = \"0.1\", features = [\"{feature}\"] }})"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_schemes_and_missing_features_name_the_url_key() {
        for url in ["redis://127.0.0.1", "no scheme at all", "file:///tmp/x"] {
            let err = connect(&DbOptions::new(url)).await.expect_err(url);
            assert_eq!(err.kind(), session_core::ErrorKind::Config);
            assert!(err.to_string().contains("adapter.db.url"), "{err}");
        }
        #[cfg(not(feature = "postgres"))]
        {
            let err = connect(&DbOptions::new("postgres://x@127.0.0.1/db"))
                .await
                .expect_err("postgres feature off");
            assert!(err.to_string().contains("`postgres` feature"), "{err}");
        }
    }

    #[tokio::test]
    async fn registers_db_and_checks_the_prefix() {
        let mut registry = Registry::new();
        register(&mut registry);
        assert!(registry.contains("db"));
        let config = session_core::SessionConfig::from_json_str(
            r#"{"type": "db", "adapter": {"db": {"url": "sqlite://x.db", "prefix": "bad-prefix"}}}"#,
        )
        .expect("config");
        let err = registry.open(&config).await.expect_err("bad prefix");
        assert!(
            err.to_string().contains("adapter.db.prefix")
                || err.to_string().contains("adapter.db.url"),
            "{err}"
        );
        let config =
            session_core::SessionConfig::from_json_str(r#"{"type": "db"}"#).expect("config");
        let err = registry.open(&config).await.expect_err("no url");
        assert!(err.to_string().contains("adapter.db"), "{err}");
    }
}
