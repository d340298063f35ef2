//! The `adapter.db` options, the table prefix check and the update strategy.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use session_core::secrecy::{ExposeSecret, SecretString};
use session_core::{Error, Result};

/// The table (or collection) prefix used when none is configured, as in ThinkJS.
pub const DEFAULT_PREFIX: &str = "think_";

/// The longest accepted prefix. PostgreSQL cuts identifiers at 63 bytes, and the prefix is
/// followed by `session_expire` in the index name.
pub const MAX_PREFIX_LEN: usize = 48;

/// How [`update`](session_core::SessionStore::update) keeps concurrent change sets to one
/// session from losing each other's keys. The crate docs explain the choice and the
/// measurements behind it. MongoDB ignores this setting: it updates single fields in
/// place, atomically.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Concurrency {
    /// Apply the change set inside a transaction holding the row lock (`BEGIN`,
    /// `SELECT ... FOR UPDATE`, `UPDATE`, `COMMIT`; `BEGIN IMMEDIATE` on SQLite). Four
    /// round trips, never a wasted attempt. The default: under contention the optimistic
    /// path spends a wasted attempt before it takes the lock anyway (the measured
    /// comparison is in the workspace's `docs/benchmarks.md`).
    #[default]
    RowLock,
    /// Read the row, merge, and write it back only if its `version` is still the one read:
    /// two round trips, no lock held between them. On a conflict, apply the change set once
    /// more under the row lock, which always makes progress (no retry loop to tune). Worth
    /// it when each round trip is expensive (a database across a network) and sessions are
    /// seldom written concurrently.
    Optimistic,
}

/// The options of `adapter.db`, also usable directly with the stores' `connect`.
///
/// ```
/// use session_db::{Concurrency, DbOptions};
///
/// let mut options = DbOptions::new("sqlite://sessions.db?mode=rwc");
/// options.prefix = "app_".into();
/// options.max_connections = 4;
/// assert_eq!(options.concurrency, Concurrency::RowLock);
/// ```
///
/// As configuration (TOML shown; JSON has the same keys):
///
/// ```toml
/// type = "db"
/// [adapter.db]
/// url = "postgres://app@127.0.0.1/app"  # postgres://, mysql://, sqlite://, mongodb://
/// prefix = "think_"                     # table <prefix>session
/// max_connections = 10
/// acquire_timeout = "5s"                # or seconds: 5
/// test_before_acquire = false           # ping each connection before use
/// migrate = true                        # create (or upgrade) the table and indexes
/// concurrency = "row_lock"              # or "optimistic"
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DbOptions {
    /// Where the database is. The scheme picks the driver: `postgres://` (or
    /// `postgresql://`), `mysql://` (or `mariadb://`), `sqlite://` and `mongodb://` (or
    /// `mongodb+srv://`). It may hold a password, so it is a secret and never printed.
    pub url: SecretString,
    /// Prefix of the table (`<prefix>session`) or MongoDB collection: ASCII letters,
    /// digits and `_`, not starting with a digit, at most [`MAX_PREFIX_LEN`] bytes.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Most connections the store has open at once (10 by default).
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Connections opened when the store is, and kept open while idle (none by default).
    #[serde(default)]
    pub min_connections: u32,
    /// How long a call waits for a connection, connecting included, before it fails with
    /// [`ErrorKind::Timeout`](session_core::ErrorKind::Timeout) (5 s by default). Seconds
    /// or a human-readable duration (`"500ms"`).
    #[serde(
        default = "default_acquire_timeout",
        deserialize_with = "session_core::deserialize_duration"
    )]
    pub acquire_timeout: Duration,
    /// Ping a connection before each statement (sqlx's `test_before_acquire`); `false` by
    /// default. A ping is one more round trip before every statement, which would double
    /// the cost of each session read and write. Without it, a connection the server has
    /// closed (a restart, a killed backend) fails the one call that finds it and is then
    /// closed; turn it on to spend the round trip and avoid those failures.
    #[serde(default)]
    pub test_before_acquire: bool,
    /// Create the table and its indexes (the MongoDB TTL and user indexes) and the lease
    /// table of the session locks when the store is opened, if they are missing, and add
    /// the owner columns to a table an earlier version made (`true` by default). Turn it off when the application's database user
    /// may not run DDL, and create or upgrade the table from the DDL in the crate docs.
    #[serde(default = "default_true")]
    pub migrate: bool,
    /// How concurrent change sets to one session are kept apart.
    #[serde(default)]
    pub concurrency: Concurrency,
    /// MongoDB only: the database holding the collection. By default, the one named in the
    /// URL's path, or `thinkjs`.
    #[serde(default)]
    pub database: Option<String>,
}

impl DbOptions {
    /// The defaults, for the database at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            prefix: default_prefix(),
            max_connections: default_max_connections(),
            min_connections: 0,
            acquire_timeout: default_acquire_timeout(),
            test_before_acquire: false,
            migrate: true,
            concurrency: Concurrency::default(),
            database: None,
        }
    }

    /// The URL's scheme (`postgres`, `mysql`, ...), lowercased; empty if it has none.
    pub fn scheme(&self) -> String {
        let url = self.url.expose_secret();
        url.split_once(':')
            .map(|(scheme, _)| scheme.to_ascii_lowercase())
            .unwrap_or_default()
    }
}

impl fmt::Debug for DbOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbOptions")
            .field("url", &format_args!("{}://[redacted]", self.scheme()))
            .field("prefix", &self.prefix)
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("test_before_acquire", &self.test_before_acquire)
            .field("migrate", &self.migrate)
            .field("concurrency", &self.concurrency)
            .field("database", &self.database)
            .finish()
    }
}

fn default_prefix() -> String {
    DEFAULT_PREFIX.to_owned()
}

fn default_max_connections() -> u32 {
    10
}

fn default_acquire_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_true() -> bool {
    true
}

/// Checks a table prefix: it is spliced into SQL, so only identifier characters pass.
///
/// # Errors
/// [`ErrorKind::Config`](session_core::ErrorKind::Config) naming `adapter.db.prefix`.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    let mut bytes = prefix.bytes();
    let first_ok = bytes
        .next()
        .is_none_or(|b| b.is_ascii_alphabetic() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !first_ok || !rest_ok {
        return Err(Error::config(
            "adapter.db.prefix",
            "only ASCII letters, digits and `_` are allowed, and it may not start with a digit",
        ));
    }
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(Error::config(
            "adapter.db.prefix",
            format!("at most {MAX_PREFIX_LEN} characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_identifiers() {
        for good in ["", "think_", "_", "App_2", &"a".repeat(MAX_PREFIX_LEN)] {
            assert!(validate_prefix(good).is_ok(), "{good:?}");
        }
        for bad in [
            "1abc",
            "a-b",
            "a b",
            "a;drop table x;--",
            "a\"b",
            "a`b",
            "é",
            &"a".repeat(MAX_PREFIX_LEN + 1),
        ] {
            let err = validate_prefix(bad).expect_err(bad);
            assert!(err.to_string().contains("adapter.db.prefix"), "{err}");
        }
    }

    #[test]
    fn parses_options_with_defaults_and_durations() {
        let options: DbOptions = session_core::AdapterOptions::new(
            "db",
            serde_json::json!({"url": "postgres://u:hunter2@h/db", "acquire_timeout": "250ms"}),
        )
        .parse()
        .expect("options");
        assert_eq!(options.prefix, DEFAULT_PREFIX);
        assert_eq!(options.acquire_timeout, Duration::from_millis(250));
        assert_eq!(options.scheme(), "postgres");
        let shown = format!("{options:?}");
        assert!(!shown.contains("hunter2"), "{shown}");

        let err = session_core::AdapterOptions::new("db", serde_json::json!({"prefix": "x_"}))
            .parse::<DbOptions>()
            .expect_err("url is required");
        assert!(err.to_string().contains("adapter.db"), "{err}");
        let err = session_core::AdapterOptions::new(
            "db",
            serde_json::json!({"url": "sqlite://x", "concurrency": "pessimistic"}),
        )
        .parse::<DbOptions>()
        .expect_err("unknown strategy");
        assert!(err.to_string().contains("adapter.db.concurrency"), "{err}");
    }
}
