//! Whole database servers killed under load: a PostgreSQL and a MariaDB server of the
//! test's own (a data folder in a temporary directory, a spare loopback port) SIGKILLed,
//! with every process they started, while 16 concurrent requests run through a
//! `SessionManager`, left dead for five seconds, then started again on the same folder.
//!
//! The application is not restarted: the same store and pool serve once the server is
//! back. Expected: 0 panics, no request longer than the pool's `acquire_timeout` (plus
//! scheduling slack), the first success within 2 s of the server accepting connections
//! again, and 0 acknowledged writes lost (both servers commit durably, and an acknowledged
//! increment read back lower afterwards is a loss). Each prints a `figure:` line.
//!
//! Each test skips loudly when the machine has no server binaries (a failure under
//! `SESSION_REQUIRE_SERVICES=1`).

#![allow(unreachable_pub)]
#![cfg_attr(
    not(all(feature = "postgres", feature = "mysql")),
    allow(dead_code, unused_imports)
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::servers::{Kind, PrivateServer};
use session_core::{SessionConfig, SessionManager, SessionStore};
use session_db::DbOptions;
use session_db::sqlx::Connection;
use session_testkit::{Load, TestResult, Tests, Trial};

fn main() -> std::process::ExitCode {
    let mut trials = Vec::new();
    #[cfg(feature = "postgres")]
    trials.extend([Trial::tokio(
        "postgres::server_killed_under_load_recovers_without_losing_a_write",
        postgres::server_killed_under_load_recovers_without_losing_a_write,
    )
    .multi_thread(2)]);
    #[cfg(feature = "mysql")]
    trials.extend([Trial::tokio(
        "mysql::server_killed_under_load_recovers_without_losing_a_write",
        mysql::server_killed_under_load_recovers_without_losing_a_write,
    )
    .multi_thread(2)]);
    Tests::new(trials).main()
}

/// Concurrent requests.
const WORKERS: usize = 16;
/// How long the server stays dead.
const OUTAGE: Duration = Duration::from_secs(5);
/// The pool's `acquire_timeout` (connecting included): the longest a request may wait.
const ACQUIRE: Duration = Duration::from_secs(2);
/// Scheduling slack on a busy 2-core machine on top of the timeout.
const MARGIN: Duration = Duration::from_secs(1);
/// The first successful request must come within this long of the server accepting
/// connections again.
const BACK_WITHIN: Duration = Duration::from_secs(2);
/// How long a restarted server may take to start and recover before the test gives up.
const START_LIMIT: Duration = Duration::from_secs(60);

/// The store's options against `server`: the default pool of 10 connections, with a
/// two-second `acquire_timeout`.
fn options(server: &PrivateServer) -> DbOptions {
    let mut options = DbOptions::new(server.url());
    options.prefix = common::random_prefix();
    options.acquire_timeout = ACQUIRE;
    options
}

/// Whether the server at `url` takes a connection and answers a ping.
async fn answers<C: Connection>(url: &str) -> bool {
    let Ok(mut connection) = C::connect(url).await else {
        return false;
    };
    let answered = connection.ping().await.is_ok();
    let _ = connection.close().await;
    answered
}

/// Waits until `server` takes connections and answers.
async fn until_accepting<C: Connection>(what: &str, server: &PrivateServer) {
    let started = Instant::now();
    while !answers::<C>(&server.url()).await {
        assert!(
            started.elapsed() < START_LIMIT,
            "{what}: the server did not accept connections within {START_LIMIT:?}:\n{}",
            server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs counter requests on `store`, kills `server` after a second, starts it again
/// after [`OUTAGE`], and checks what the requests saw. `C` is the driver's connection,
/// for telling when the server accepts connections again.
async fn killed_under_load<C: Connection>(
    backend: &str,
    server: &mut PrivateServer,
    store: Arc<dyn SessionStore>,
) {
    let manager = SessionManager::new(store, SessionConfig::default()).expect("manager");
    let load = Load::start(manager, WORKERS);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down = load.elapsed();
    server.kill();
    tokio::time::sleep(OUTAGE).await;
    let restarted = load.elapsed();
    server.resume();
    until_accepting::<C>(backend, server).await;
    let back = load.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = load.stop().await;

    let first = report.assert_recovered(backend, down, down, back, BACK_WITHIN);
    assert_eq!(report.sessions_lost, 0, "{backend}: sessions lost");
    let slowest = report.slowest();
    assert!(
        slowest <= ACQUIRE + MARGIN,
        "{backend}: a request took {slowest:?} (acquire_timeout {ACQUIRE:?})"
    );
    println!(
        "figure: {backend} | server SIGKILLed for {OUTAGE:?} under load ({WORKERS} concurrent \
         requests, pool of 10) | {} ok, {} failed with errors, {} panics, {} acknowledged writes \
         lost, slowest request {slowest:?} (acquire_timeout {ACQUIRE:?}), server accepting \
         {:?} after its start, first success {first:?} after that, no restart of the \
         application",
        report.succeeded(),
        report.failed(),
        report.panics,
        report.lost_increments,
        back.saturating_sub(restarted),
    );
}

#[cfg(feature = "postgres")]
mod postgres {
    use session_db::PostgresStore;
    use session_db::sqlx::PgConnection;

    use super::*;

    pub(super) async fn server_killed_under_load_recovers_without_losing_a_write() -> TestResult {
        let mut server = PrivateServer::start(Kind::Postgres)?;
        until_accepting::<PgConnection>("postgres", &server).await;
        let store = PostgresStore::connect(&options(&server))
            .await
            .expect("open the store on the private server");
        killed_under_load::<PgConnection>("postgres", &mut server, Arc::new(store)).await;
        Ok(())
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use session_db::MySqlStore;
    use session_db::sqlx::MySqlConnection;

    use super::*;

    pub(super) async fn server_killed_under_load_recovers_without_losing_a_write() -> TestResult {
        let mut server = PrivateServer::start(Kind::MariaDb)?;
        until_accepting::<MySqlConnection>("mysql", &server).await;
        let store = MySqlStore::connect(&options(&server))
            .await
            .expect("open the store on the private server");
        killed_under_load::<MySqlConnection>("mysql", &mut server, Arc::new(store)).await;
        Ok(())
    }
}
