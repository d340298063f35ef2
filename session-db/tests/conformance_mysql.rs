//! The whole conformance suite against MySQL / MariaDB (`SESSION_TEST_MYSQL_URL`, by default
//! `mysql://root@127.0.0.1:3306/test`), one random table per case.

mod common;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use session_db::sqlx::mysql::MySqlPoolOptions;
use session_db::{Concurrency, DbOptions, MySqlStore};
use session_testkit::{Fixture, Suite, Unavailable};

const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306/test";

fn main() -> ExitCode {
    let url = common::env_url("SESSION_TEST_MYSQL_URL", DEFAULT_URL);
    // Once per update strategy: the default (row lock), then optimistic. A listing names
    // each case once.
    let listing = std::env::args().any(|arg| arg == "--list");
    let strategies: &[Concurrency] = if listing {
        &[Concurrency::RowLock]
    } else {
        &[Concurrency::RowLock, Concurrency::Optimistic]
    };
    let outcomes = strategies.iter().map(|&concurrency| {
        let url = url.clone();
        Suite::new(suite_name(concurrency), move || {
            open(url.clone(), concurrency)
        })
        .main()
    });
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
        Concurrency::Optimistic => "db-mysql-optimistic",
        _ => "db-mysql",
    }
}

async fn open(url: String, concurrency: Concurrency) -> Result<Fixture, Unavailable> {
    let unavailable = |err: session_core::Error| {
        Unavailable::new(format!(
            "MariaDB at {} (SESSION_TEST_MYSQL_URL): {}",
            common::redacted(&url),
            // The cause chain and the hint, on one line.
            format!("{err:#}").replace('\n', "; ")
        ))
    };
    let mut options = DbOptions::new(url.clone());
    options.prefix = common::random_prefix();
    options.concurrency = concurrency;
    options.acquire_timeout = Duration::from_secs(10);
    let store = if concurrency == Concurrency::Optimistic {
        // This run also covers a store on a pool the application passes in, which gives
        // its connections back after each statement instead of keeping them.
        let pool = MySqlPoolOptions::new()
            .acquire_timeout(options.acquire_timeout)
            .connect(&url)
            .await
            .map_err(|err| unavailable(session_core::Error::backend("pool", err)))?;
        let store = MySqlStore::new(pool)
            .with_prefix(&options.prefix)
            .map_err(unavailable)?
            .with_concurrency(concurrency);
        store.migrate().await.map_err(unavailable)?;
        store
    } else {
        MySqlStore::connect(&options).await.map_err(unavailable)?
    };
    options.migrate = false;
    let second = MySqlStore::connect(&options).await.map_err(unavailable)?;

    // Nothing listens on port 1: every call fails once the short acquire timeout is up.
    let down_pool = MySqlPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy("mysql://root@127.0.0.1:1/test")
        .map_err(|err| unavailable(session_core::Error::backend("lazy pool", err)))?;
    let down = MySqlStore::new(down_pool)
        .with_prefix(&options.prefix)
        .map_err(unavailable)?;

    let cleanup = {
        let (store, second) = (store.clone(), second.clone());
        async move {
            let drop = format!(
                "DROP TABLE IF EXISTS {}, {}",
                store.table(),
                store.lock_table()
            );
            if let Err(err) = session_db::sqlx::query(&drop).execute(store.pool()).await {
                eprintln!("cleanup: {err}");
            }
            second.pool().close().await;
            store.pool().close().await;
        }
    };
    Ok(Fixture::new(Arc::new(store))
        .with_second_handle(Arc::new(second))
        .with_unreachable(Arc::new(down))
        .with_cleanup(cleanup))
}
