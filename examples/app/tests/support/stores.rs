//! The stores the process-level tests run the example on (the disconnect storm, the
//! soak): their configurations, and what can be counted of each in this process and on
//! its server.

use std::path::Path;

use session_core::{SessionConfig, SessionId, SessionManager};
use session_example::Framework;
use session_testkit::TestError;

/// The stores under test, by the name the tests give them.
pub(crate) const STORES: &[&str] = &["memory", "file", "sqlite", "postgres", "mysql", "redis"];

/// A name of `test`'s own run, for tables, key prefixes and connection names.
pub(crate) fn unique(test: &str, store: &str, framework: Framework) -> String {
    let id = SessionId::generate(32).expect("id");
    format!(
        "{test}_{store}_{framework}_{}",
        &id.store_key().as_str()[..10]
    )
}

/// The configuration of `store` with the top-level `settings` (`{"lock": true}`, say):
/// tables, prefixes and connection names from `name`; `folder` holds file and SQLite data.
pub(crate) fn config(
    store: &str,
    name: &str,
    folder: &Path,
    settings: serde_json::Value,
) -> SessionConfig {
    let adapter = match store {
        "memory" => serde_json::json!({}),
        "file" => serde_json::json!({"file": {"path": folder.join("sessions")}}),
        "sqlite" => serde_json::json!({"db": {
            "url": format!("sqlite://{}?mode=rwc", folder.join("sessions.db").display()),
        }}),
        "postgres" => serde_json::json!({"db": {
            "url": format!("{}?application_name={name}", postgres_url()),
            "prefix": format!("{name}_"),
        }}),
        "mysql" => serde_json::json!({"db": {"url": mysql_url(), "prefix": format!("{name}_")}}),
        "redis" => serde_json::json!({"redis": {"url": redis_url(), "prefix": format!("{name}:")}}),
        other => panic!("unknown store {other}"),
    };
    let store_type = match store {
        "sqlite" | "postgres" | "mysql" => "db",
        other => other,
    };
    let mut config = serde_json::json!({"type": store_type, "adapter": adapter});
    if let (Some(config), serde_json::Value::Object(settings)) = (config.as_object_mut(), settings)
    {
        config.extend(settings);
    }
    SessionConfig::from_value(config).expect("config")
}

/// A manager on `store` with `config`. A store with a server that cannot be opened is a
/// skip that names the cause (a failure under `SESSION_REQUIRE_SERVICES=1`); any other
/// store that cannot be opened fails the test.
pub(crate) async fn manager_for(
    store: &str,
    config: SessionConfig,
) -> Result<SessionManager, TestError> {
    SessionManager::from_config(config, &session_example::registry())
        .await
        .map_err(|err| {
            let shown = session_core::Report::new(&err)
                .to_string()
                .replace('\n', "; ");
            if server_port(store).is_some() {
                TestError::skip(format!("{store}: {shown}"))
            } else {
                TestError::fail(format!("{store}: {shown}"))
            }
        })
}

/// The loopback port of `store`'s server, if it has one.
pub(crate) fn server_port(store: &str) -> Option<u16> {
    match store {
        "postgres" => port_of(&postgres_url()),
        "mysql" => port_of(&mysql_url()),
        "redis" => port_of(&redis_url()),
        _ => None,
    }
}

pub(crate) fn postgres_url() -> String {
    std::env::var("SESSION_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub(crate) fn mysql_url() -> String {
    std::env::var("SESSION_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

pub(crate) fn redis_url() -> String {
    std::env::var("SESSION_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Most connections a store's pool opens (the SQL stores' default `max_connections`).
pub(crate) const POOL: usize = 10;

/// Most files of its own a store keeps open: the file store one lock file per stripe, for
/// sessions and for users; SQLite its database, log and shared-memory files per pooled
/// connection.
pub(crate) fn store_files_bound(store: &str) -> usize {
    match store {
        "file" => 2 * 256,
        "sqlite" => 3 * POOL,
        _ => 0,
    }
}

/// The loopback port of the server in `url`, if it names one.
pub(crate) fn port_of(url: &str) -> Option<u16> {
    let rest = url.split_once("://")?.1;
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = host.split(['/', '?']).next()?;
    host.rsplit_once(':')?.1.parse().ok()
}

/// The socket inodes of this process's TCP connections to `port`.
pub(crate) fn sockets_to(port: u16) -> std::collections::HashSet<String> {
    let mut inodes = std::collections::HashSet::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port = fields
                .get(2)
                .and_then(|remote| remote.rsplit_once(':'))
                .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok());
            if remote_port == Some(port)
                && let Some(inode) = fields.get(9)
            {
                inodes.insert(format!("socket:[{inode}]"));
            }
        }
    }
    inodes
}

/// This process's open file descriptors: on the store's own files (under `folder`), on
/// connections to its server (at `port`), and the others.
pub(crate) fn open_files(folder: &Path, port: Option<u16>) -> (usize, usize, usize) {
    let sockets = port.map(sockets_to).unwrap_or_default();
    let (mut store_files, mut connections, mut others) = (0, 0, 0);
    for entry in std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
    {
        match std::fs::read_link(entry.path()) {
            Ok(target) if target.starts_with(folder) => store_files += 1,
            Ok(target) if sockets.contains(target.to_string_lossy().as_ref()) => connections += 1,
            _ => others += 1,
        }
    }
    (store_files, connections, others)
}

/// What is counted on a store's server, before and after the storm.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerCounts {
    /// Transactions open (PostgreSQL: the store's backends idle in one; MariaDB: InnoDB's).
    pub(crate) transactions: i64,
    /// Locks the store's backends hold (PostgreSQL).
    pub(crate) locks: i64,
    /// Connections the server has from the store (PostgreSQL: by its `application_name`),
    /// or in all (MariaDB, Redis).
    pub(crate) connections: i64,
}

/// Counts on the server of `store`; zeros for a store without one.
pub(crate) async fn server_counts(store: &str, name: &str) -> ServerCounts {
    match store {
        "postgres" => {
            use session_db::sqlx::{Connection, PgConnection};
            let mut admin = PgConnection::connect(&postgres_url()).await.expect("admin");
            let (transactions, locks, connections): (i64, i64, i64) = session_db::sqlx::query_as(
                "SELECT \
                   (SELECT COUNT(*) FROM pg_stat_activity \
                     WHERE application_name = $1 AND state LIKE 'idle in transaction%'), \
                   (SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                     WHERE a.application_name = $1), \
                   (SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1)",
            )
            .bind(name)
            .fetch_one(&mut admin)
            .await
            .expect("count on PostgreSQL");
            let _ = admin.close().await;
            ServerCounts {
                transactions,
                locks,
                connections,
            }
        }
        "mysql" => {
            use session_db::sqlx::{Connection, MySqlConnection};
            let mut admin = MySqlConnection::connect(&mysql_url()).await.expect("admin");
            let (transactions, connections): (i64, i64) = session_db::sqlx::query_as(
                "SELECT \
                   (SELECT COUNT(*) FROM information_schema.innodb_trx), \
                   (SELECT COUNT(*) FROM information_schema.processlist)",
            )
            .fetch_one(&mut admin)
            .await
            .expect("count on MariaDB");
            let _ = admin.close().await;
            ServerCounts {
                transactions,
                locks: 0,
                connections,
            }
        }
        "redis" => {
            use session_redis::redis;
            let mut connection = redis_connection().await;
            let clients: String = redis::cmd("CLIENT")
                .arg("LIST")
                .query_async(&mut connection)
                .await
                .expect("CLIENT LIST");
            ServerCounts {
                transactions: 0,
                locks: 0,
                connections: i64::try_from(clients.lines().count()).unwrap_or(i64::MAX),
            }
        }
        _ => ServerCounts::default(),
    }
}

/// Temporary files under `folder`.
pub(crate) fn temp_files(folder: &Path) -> usize {
    files_where(folder, |path| path.to_string_lossy().ends_with(".tmp"))
}

/// Records `store` holds now: the memory store's sessions, the file store's files, the
/// rows of the SQL table, the Redis keys under the prefix.
pub(crate) async fn stored_records(
    store: &str,
    name: &str,
    folder: &Path,
    memory: Option<&session_memory::MemoryStore>,
) -> u64 {
    use session_db::sqlx;
    match store {
        "memory" => memory.map_or(0, |memory| memory.len() as u64),
        "file" => files_where(&folder.join("sessions"), |_| true) as u64,
        "sqlite" => {
            let url = format!("sqlite://{}", folder.join("sessions.db").display());
            rows_in::<sqlx::SqliteConnection>(&url, "think_session").await
        }
        "postgres" => {
            rows_in::<sqlx::PgConnection>(&postgres_url(), &format!("{name}_session")).await
        }
        "mysql" => rows_in::<sqlx::MySqlConnection>(&mysql_url(), &format!("{name}_session")).await,
        "redis" => {
            use session_redis::redis;
            let mut connection = redis_connection().await;
            let (mut cursor, mut keys) = (0u64, 0u64);
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{name}:*"))
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut connection)
                    .await
                    .expect("SCAN");
                keys += batch.len() as u64;
                if next == 0 {
                    return keys;
                }
                cursor = next;
            }
        }
        other => panic!("unknown store {other}"),
    }
}

/// The rows of `table` in the database at `url`, on a connection `C` of its own.
async fn rows_in<C>(url: &str, table: &str) -> u64
where
    C: session_db::sqlx::Connection,
    for<'c> &'c mut C: session_db::sqlx::Executor<'c, Database = C::Database>,
    for<'q> <C::Database as session_db::sqlx::Database>::Arguments<'q>:
        session_db::sqlx::IntoArguments<'q, C::Database>,
    (i64,): for<'r> session_db::sqlx::FromRow<'r, <C::Database as session_db::sqlx::Database>::Row>,
{
    let mut connection = C::connect(url).await.expect("connect to count the rows");
    let sql = format!("SELECT COUNT(*) FROM {table}");
    let rows: i64 = session_db::sqlx::query_scalar(&sql)
        .fetch_one(&mut connection)
        .await
        .expect("count the rows");
    u64::try_from(rows).unwrap_or(0)
}

/// Files under `folder` for which `wanted` holds, apart from the file store's lock files.
fn files_where(folder: &Path, wanted: impl Fn(&Path) -> bool) -> usize {
    let mut count = 0;
    let mut stack = vec![folder.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if entry.file_name() != ".locks" {
                    stack.push(path);
                }
            } else if wanted(&path) {
                count += 1;
            }
        }
    }
    count
}

/// A connection of the test's own to the test Redis, for counting.
async fn redis_connection() -> session_redis::redis::aio::MultiplexedConnection {
    session_redis::redis::Client::open(redis_url())
        .expect("a Redis client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis")
}
