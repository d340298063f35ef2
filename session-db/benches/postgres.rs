//! Benchmarks against PostgreSQL (`SESSION_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test`); skipped with a message when it is down.
//!
//! `cargo bench -p session-db --features postgres --bench postgres`

mod common;

use std::sync::Arc;

use session_db::{Concurrency, DbOptions, PostgresStore};

fn main() {
    let url = std::env::var("SESSION_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let runtime = common::runtime();
    let mut options = DbOptions::new(url);
    options.prefix = common::random_prefix();
    options.max_connections = 16;
    let store = match runtime.block_on(PostgresStore::connect(&options)) {
        Ok(store) => store,
        Err(err) => {
            println!("SKIPPED: PostgreSQL unreachable (SESSION_TEST_POSTGRES_URL): {err}");
            return;
        }
    };
    let stores = common::Stores {
        optimistic: Arc::new(store.clone().with_concurrency(Concurrency::Optimistic)),
        row_lock: Arc::new(store.clone().with_concurrency(Concurrency::RowLock)),
    };
    let mut criterion = common::criterion();
    common::bench_backend(&mut criterion, &runtime, "postgres", &stores);
    common::compare_strategies(&runtime, "postgres", &stores);
    runtime.block_on(async {
        let drop = format!(
            "DROP TABLE IF EXISTS {}, {}",
            store.table(),
            store.lock_table()
        );
        let _ = session_db::sqlx::query(&drop).execute(store.pool()).await;
    });
    criterion.final_summary();
}
