//! Benchmarks against SQLite: a database file in a temp folder, WAL mode.
//!
//! `cargo bench -p session-db --features sqlite --bench sqlite`

mod common;

use std::sync::Arc;

use session_db::sqlx::sqlite::SqliteConnectOptions;
use session_db::{Concurrency, DbOptions, SqliteStore};

fn main() {
    let runtime = common::runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = DbOptions::new("sqlite:");
    options.prefix = common::random_prefix();
    options.max_connections = 16;
    let connect = SqliteConnectOptions::new()
        .filename(dir.path().join("sessions.db"))
        .create_if_missing(true);
    let store = match runtime.block_on(SqliteStore::connect_with(connect, &options)) {
        Ok(store) => store,
        Err(err) => {
            println!("SKIPPED: cannot open a SQLite file: {err}");
            return;
        }
    };
    let stores = common::Stores {
        optimistic: Arc::new(store.clone().with_concurrency(Concurrency::Optimistic)),
        row_lock: Arc::new(store.clone().with_concurrency(Concurrency::RowLock)),
    };
    let mut criterion = common::criterion();
    common::bench_backend(&mut criterion, &runtime, "sqlite", &stores);
    common::compare_strategies(&runtime, "sqlite", &stores);
    criterion.final_summary();
}
