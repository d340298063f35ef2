//! Benchmarks against MongoDB, when `SESSION_TEST_MONGODB_URL` names a server (there is
//! none on the machines this project is built on: the run says so and does nothing).
//!
//! `SESSION_TEST_MONGODB_URL=mongodb://127.0.0.1:27017 cargo bench -p session-db --features mongodb --bench mongodb`

mod common;

use std::sync::Arc;

use session_db::{DbOptions, MongoStore};

fn main() {
    let Ok(url) = std::env::var("SESSION_TEST_MONGODB_URL") else {
        println!("SKIPPED: SESSION_TEST_MONGODB_URL not set; no MongoDB server on this machine");
        return;
    };
    let runtime = common::runtime();
    let mut options = DbOptions::new(url);
    options.prefix = common::random_prefix();
    options.max_connections = 16;
    if options.database.is_none() {
        options.database = Some("session_bench".to_owned());
    }
    let store = match runtime.block_on(MongoStore::connect(&options)) {
        Ok(store) => store,
        Err(err) => {
            println!("SKIPPED: MongoDB unreachable (SESSION_TEST_MONGODB_URL): {err}");
            return;
        }
    };
    // MongoDB updates single fields in place: there is no strategy to compare, so both
    // rows of the comparison run the same store.
    let stores = common::Stores {
        optimistic: Arc::new(store.clone()),
        row_lock: Arc::new(store.clone()),
    };
    let mut criterion = common::criterion();
    common::bench_backend(&mut criterion, &runtime, "mongodb", &stores);
    runtime.block_on(async {
        let _ = store.collection().drop().await;
    });
    criterion.final_summary();
}
