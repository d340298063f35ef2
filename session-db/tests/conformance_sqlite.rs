//! The whole conformance suite against SQLite: a real database file in a temp folder (WAL
//! mode), one per case, with a second pool on the same file as the "other process".

mod common;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use session_db::sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use session_db::{Concurrency, DbOptions, SqliteStore};
use session_testkit::{Fixture, Suite, Unavailable};

fn main() -> ExitCode {
    // Once per update strategy: the default (row lock), then optimistic. A listing names
    // each case once.
    let listing = std::env::args().any(|arg| arg == "--list");
    let strategies: &[Concurrency] = if listing {
        &[Concurrency::RowLock]
    } else {
        &[Concurrency::RowLock, Concurrency::Optimistic]
    };
    let outcomes = strategies
        .iter()
        .map(|&concurrency| Suite::new(suite_name(concurrency), move || open(concurrency)).main());
    if outcomes
        .collect::<Vec<_>>()
        .iter()
        .all(|outcome| *outcome == ExitCode::SUCCESS)
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn suite_name(concurrency: Concurrency) -> &'static str {
    match concurrency {
        Concurrency::Optimistic => "db-sqlite-optimistic",
        _ => "db-sqlite",
    }
}

async fn open(concurrency: Concurrency) -> Result<Fixture, Unavailable> {
    let unavailable = |err: &dyn std::fmt::Display| {
        Unavailable::new(format!("SQLite: {err:#}").replace('\n', "; "))
    };
    let dir = tempfile::tempdir().map_err(|err| unavailable(&err))?;
    let file = dir.path().join("sessions.db");
    let mut options = DbOptions::new("sqlite:");
    options.prefix = common::random_prefix();
    options.concurrency = concurrency;
    options.acquire_timeout = Duration::from_secs(30);
    let connect = SqliteConnectOptions::new()
        .filename(&file)
        .create_if_missing(true);
    let store = SqliteStore::connect_with(connect.clone(), &options)
        .await
        .map_err(|err| unavailable(&err))?;
    options.migrate = false;
    let second = SqliteStore::connect_with(connect, &options)
        .await
        .map_err(|err| unavailable(&err))?;

    // A database file inside a folder that does not exist cannot be opened.
    let down_pool = SqlitePoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with(
            SqliteConnectOptions::new().filename(dir.path().join("missing/folder/sessions.db")),
        );
    let down = SqliteStore::new(down_pool)
        .with_prefix(&options.prefix)
        .map_err(|err| unavailable(&err))?;

    let cleanup = {
        let (store, second) = (store.clone(), second.clone());
        async move {
            for table in [store.table(), store.lock_table()] {
                let drop = format!("DROP TABLE IF EXISTS {table}");
                if let Err(err) = session_db::sqlx::query(&drop).execute(store.pool()).await {
                    eprintln!("cleanup: {err}");
                }
            }
            second.pool().close().await;
            store.pool().close().await;
            drop_dir(dir);
        }
    };
    Ok(Fixture::new(Arc::new(store))
        .with_second_handle(Arc::new(second))
        .with_unreachable(Arc::new(down))
        .with_cleanup(cleanup))
}

fn drop_dir(dir: tempfile::TempDir) {
    if let Err(err) = dir.close() {
        eprintln!("cleanup: {err}");
    }
}
