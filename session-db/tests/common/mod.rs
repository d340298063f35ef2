//! Helpers shared by the test binaries: server URLs from the environment, random table
//! prefixes (so concurrent runs never share a table), and the skip of an unreachable
//! server.

#![allow(dead_code, unreachable_pub)]

pub mod servers;
pub mod statements;

use session_core::SessionId;
use session_testkit::TestError;

/// The URL in `var`, or `default` (a loopback server) when it is unset.
pub fn env_url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// A fresh prefix such as `t3f9c01a2b4d7_`: an identifier, unique per call.
pub fn random_prefix() -> String {
    let key = SessionId::generate(32)
        .map(|id| id.store_key())
        .map(|key| key.as_str()[..12].to_owned())
        .unwrap_or_else(|_| format!("{:012x}", std::process::id()));
    format!("t{key}_")
}

/// The URL without its password, for messages.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{user}@{}", &url[..scheme_end + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The skip of a test whose server is unreachable (the runner makes it a failure under
/// `SESSION_REQUIRE_SERVICES=1`), with the error's causes and its hint, on one line: the
/// outermost error alone ("connect failed") does not say what went wrong.
pub fn unreachable(server: &str, err: &(dyn std::error::Error + 'static)) -> TestError {
    let shown = session_core::Report::new(err).to_string();
    TestError::skip(format!(
        "{server} unreachable: {}",
        shown.replace('\n', "; ")
    ))
}

/// A PostgreSQL store on tables of its own (a random prefix), at `SESSION_TEST_POSTGRES_URL`
/// or the loopback server; a skip when the server is unreachable. Drop its tables with
/// [`drop_postgres`].
#[cfg(feature = "postgres")]
pub async fn postgres_store() -> Result<session_db::PostgresStore, TestError> {
    let url = env_url(
        "SESSION_TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let mut options = session_db::DbOptions::new(url.clone());
    options.prefix = random_prefix();
    session_db::PostgresStore::connect(&options)
        .await
        .map_err(|err| unreachable(&format!("PostgreSQL at {}", redacted(&url)), &err))
}

/// A MySQL or MariaDB store on tables of its own, at `SESSION_TEST_MYSQL_URL` or the
/// loopback server; a skip when the server is unreachable. Drop its tables with
/// [`drop_mysql`].
#[cfg(feature = "mysql")]
pub async fn mysql_store() -> Result<session_db::MySqlStore, TestError> {
    let url = env_url("SESSION_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test");
    let mut options = session_db::DbOptions::new(url.clone());
    options.prefix = random_prefix();
    session_db::MySqlStore::connect(&options)
        .await
        .map_err(|err| unreachable(&format!("MariaDB at {}", redacted(&url)), &err))
}

/// The statement that drops a store's sessions table and lease table.
fn drop_statement(table: &str, lock_table: &str) -> String {
    format!("DROP TABLE IF EXISTS {table}, {lock_table}")
}

/// Drops the tables of `store` (sessions and leases) and closes its pool.
#[cfg(feature = "postgres")]
pub async fn drop_postgres(store: &session_db::PostgresStore) {
    let drop = drop_statement(store.table(), store.lock_table());
    let dropped = session_db::sqlx::query(&drop).execute(store.pool()).await;
    dropped.expect("drop the test tables");
    store.pool().close().await;
}

/// Drops the tables of `store` (sessions and leases) and closes its pool.
#[cfg(feature = "mysql")]
pub async fn drop_mysql(store: &session_db::MySqlStore) {
    let drop = drop_statement(store.table(), store.lock_table());
    let dropped = session_db::sqlx::query(&drop).execute(store.pool()).await;
    dropped.expect("drop the test tables");
    store.pool().close().await;
}
