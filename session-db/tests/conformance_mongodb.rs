//! The whole conformance suite against MongoDB, when `SESSION_TEST_MONGODB_URL` names a
//! server. There is no MongoDB server on the machines this project is built on, so without
//! the variable every case reads `skipped: SESSION_TEST_MONGODB_URL not set; ...` (even
//! with `SESSION_REQUIRE_SERVICES=1`: a server that cannot exist here is not "down").

mod common;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use session_db::{DbOptions, MongoStore};
use session_testkit::{CASES, Fixture, Suite, TestError, Tests, Trial, Unavailable};

fn main() -> ExitCode {
    let Ok(url) = std::env::var("SESSION_TEST_MONGODB_URL") else {
        // `--list` (how nextest finds tests) lists no case: nextest judges a test by its
        // exit status alone, so each skip would read as a pass there.
        if std::env::args().any(|arg| arg == "--list") {
            return ExitCode::SUCCESS;
        }
        // A run reports every case, under the names it has with a server, as skipped.
        return Tests::new(CASES.iter().map(|case| {
            Trial::test(case.name, || {
                Err(TestError::not_applicable(
                    "SESSION_TEST_MONGODB_URL not set; no MongoDB server on this machine",
                ))
            })
        }))
        .main();
    };
    Suite::new("db-mongodb", move || open(url.clone())).main()
}

async fn open(url: String) -> Result<Fixture, Unavailable> {
    let unavailable = |err: session_core::Error| {
        Unavailable::new(format!(
            "MongoDB at {} (SESSION_TEST_MONGODB_URL): {}",
            common::redacted(&url),
            // The cause chain and the hint, on one line.
            format!("{err:#}").replace('\n', "; ")
        ))
    };
    let mut options = DbOptions::new(url.clone());
    options.prefix = common::random_prefix();
    options.acquire_timeout = Duration::from_secs(10);
    if options.database.is_none() {
        options.database = Some("session_test".to_owned());
    }
    let store = MongoStore::connect(&options).await.map_err(unavailable)?;
    options.migrate = false;
    let second = MongoStore::connect(&options).await.map_err(unavailable)?;
    // A client does not connect until used: against a closed port, each call fails once
    // server selection gives up.
    let mut down_options = DbOptions::new("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=1000");
    down_options.prefix = options.prefix.clone();
    down_options.acquire_timeout = Duration::from_secs(1);
    down_options.migrate = false;
    let down = MongoStore::connect(&down_options)
        .await
        .map_err(unavailable)?;

    let cleanup = {
        let store = store.clone();
        async move {
            for collection in [store.collection(), store.lock_collection()] {
                if let Err(err) = collection.drop().await {
                    eprintln!("cleanup: {err}");
                }
            }
        }
    };
    Ok(Fixture::new(Arc::new(store))
        .with_second_handle(Arc::new(second))
        .with_unreachable(Arc::new(down))
        .with_cleanup(cleanup))
}
