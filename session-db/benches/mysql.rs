//! Benchmarks against MariaDB (`SESSION_TEST_MYSQL_URL`, by default
//! `mysql://root@127.0.0.1:3306/test`); skipped with a message when it is down.
//!
//! `cargo bench -p session-db --features mysql --bench mysql`

mod common;

use std::sync::Arc;

use session_db::{Concurrency, DbOptions, MySqlStore};

fn main() {
    let url = std::env::var("SESSION_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    let runtime = common::runtime();
    let mut options = DbOptions::new(url);
    options.prefix = common::random_prefix();
    options.max_connections = 16;
    let store = match runtime.block_on(MySqlStore::connect(&options)) {
        Ok(store) => store,
        Err(err) => {
            println!("SKIPPED: MariaDB unreachable (SESSION_TEST_MYSQL_URL): {err}");
            return;
        }
    };
    let stores = common::Stores {
        optimistic: Arc::new(store.clone().with_concurrency(Concurrency::Optimistic)),
        row_lock: Arc::new(store.clone().with_concurrency(Concurrency::RowLock)),
    };
    let mut criterion = common::criterion();
    common::bench_backend(&mut criterion, &runtime, "mysql", &stores);
    common::compare_strategies(&runtime, "mysql", &stores);
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
