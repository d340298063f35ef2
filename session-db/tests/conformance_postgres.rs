//! The whole conformance suite against PostgreSQL (`SESSION_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test`), one random table per case.

mod common;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use session_db::sqlx::postgres::PgPoolOptions;
use session_db::{Concurrency, DbOptions, PostgresStore};
use session_testkit::{Fixture, Suite, Unavailable};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn main() -> ExitCode {
    let url = common::env_url("SESSION_TEST_POSTGRES_URL", DEFAULT_URL);
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
        Concurrency::Optimistic => "db-postgres-optimistic",
        _ => "db-postgres",
    }
}

async fn open(url: String, concurrency: Concurrency) -> Result<Fixture, Unavailable> {
    let unavailable = |err: session_core::Error| {
        Unavailable::new(format!(
            "PostgreSQL at {} (SESSION_TEST_POSTGRES_URL): {}",
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
        let pool = PgPoolOptions::new()
            .acquire_timeout(options.acquire_timeout)
            .connect(&url)
            .await
            .map_err(|err| unavailable(session_core::Error::backend("pool", err)))?;
        let store = PostgresStore::new(pool)
            .with_prefix(&options.prefix)
            .map_err(unavailable)?
            .with_concurrency(concurrency);
        store.migrate().await.map_err(unavailable)?;
        store
    } else {
        PostgresStore::connect(&options)
            .await
            .map_err(unavailable)?
    };
    options.migrate = false;
    let second = PostgresStore::connect(&options)
        .await
        .map_err(unavailable)?;

    // Nothing listens on port 1: every call fails once the short acquire timeout is up.
    let down_pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy("postgres://postgres@127.0.0.1:1/test")
        .map_err(|err| unavailable(session_core::Error::backend("lazy pool", err)))?;
    let down = PostgresStore::new(down_pool)
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
