//! The lease table of the session locks (`<prefix>session_locks`) on each SQL dialect,
//! beyond what the conformance suite checks through the trait:
//!
//! - each lock call is one statement (counted from sqlx's log of each statement it runs,
//!   target `sqlx::query`, per thread, as `user_index_costs.rs` does; SQLite's driver runs
//!   statements on a thread of its own, so they are not counted there), except MySQL's
//!   `unlock` by a token that held no live lease, which takes a second one;
//! - the holder asking again, and renewing, is always granted, also when the call changes
//!   nothing in the row (the same expiry, within one millisecond: MySQL reports such a row
//!   as "affected" exactly like a refusal, so the grant must be told apart otherwise);
//! - `gc` sweeps lapsed leases, leaves live ones, and does not count them as sessions.
//!
//! Each server test skips loudly when its server is unreachable, and fails instead under
//! `SESSION_REQUIRE_SERVICES=1`.

#![allow(unreachable_pub)]
#![cfg_attr(
    not(all(feature = "postgres", feature = "mysql", feature = "sqlite")),
    allow(dead_code, unused_imports)
)]

mod common;

use std::time::{Duration, Instant};

use session_core::{LockToken, SessionId, SessionStore, StoreKey, Timestamp};
use session_testkit::{TestResult, Tests, Trial};
use tracing_subscriber::layer::SubscriberExt;

use crate::common::statements::{Statements, statements};

fn main() -> std::process::ExitCode {
    if let Err(err) =
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Statements))
    {
        eprintln!("statements cannot be counted: {err}");
        return std::process::ExitCode::FAILURE;
    }
    let trials = [
        #[cfg(feature = "postgres")]
        Trial::tokio("postgres::lease_table", postgres::lease_table),
        #[cfg(feature = "mysql")]
        Trial::tokio("mysql::lease_table", mysql::lease_table),
        #[cfg(feature = "sqlite")]
        Trial::tokio("sqlite::lease_table", sqlite::lease_table),
    ];
    Tests::new(trials).main()
}

/// Same-token calls in a row in the re-lock and renewal checks.
const REPEATS: usize = 500;
/// A lease no check outlives.
const LONG: Duration = Duration::from_secs(60);

fn new_key() -> StoreKey {
    SessionId::generate(32).expect("id").store_key()
}

fn token() -> LockToken {
    LockToken::generate().expect("token")
}

/// Runs the lock call `call`, and checks its answer and (where they can be counted) the
/// statements it ran.
async fn expect_call(
    backend: &str,
    what: &str,
    expected: bool,
    statements_expected: u64,
    call: impl Future<Output = session_core::Result<bool>>,
) {
    let before = statements();
    let outcome = call.await.expect(what);
    let used = statements() - before;
    assert_eq!(outcome, expected, "{backend}: {what}");
    if backend != "sqlite" {
        assert_eq!(used, statements_expected, "{backend}: statements of {what}");
    }
}

/// Every check on `store`; `leases` counts the rows of its lease table.
async fn check<F, Fut>(backend: &str, store: &dyn SessionStore, leases: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = i64>,
{
    // Warm up: prepare each statement once, so that the counts below are of runs.
    let (warm, other) = (new_key(), token());
    let holder = token();
    assert!(store.lock(&warm, &holder, LONG).await.expect("lock"));
    assert!(!store.lock(&warm, &other, LONG).await.expect("lock"));
    assert!(store.renew_lock(&warm, &holder, LONG).await.expect("renew"));
    assert!(!store.unlock(&warm, &other).await.expect("unlock"));
    assert!(store.unlock(&warm, &holder).await.expect("unlock"));

    // One statement per call.
    let (key, holder, other) = (new_key(), token(), token());
    let unlock_refused = if backend == "mysql" { 2 } else { 1 };
    let lock = store.lock(&key, &holder, LONG);
    expect_call(backend, "lock, free", true, 1, lock).await;
    let lock = store.lock(&key, &other, LONG);
    expect_call(backend, "lock, held by another token", false, 1, lock).await;
    let renew = store.renew_lock(&key, &holder, LONG);
    expect_call(backend, "renew_lock by the holder", true, 1, renew).await;
    let unlock = store.unlock(&key, &other);
    expect_call(
        backend,
        "unlock by another token",
        false,
        unlock_refused,
        unlock,
    )
    .await;
    let unlock = store.unlock(&key, &holder);
    expect_call(backend, "unlock by the holder", true, 1, unlock).await;
    println!(
        "figure: {backend} | lock, renew_lock, unlock | one statement each (unlock by a \
         token holding no live lease: {unlock_refused}){}",
        if backend == "sqlite" {
            ", by the SQL; not counted on SQLite"
        } else {
            ""
        }
    );

    // The holder asking again, and renewing, in a tight loop: calls that land in the same
    // millisecond write the row exactly as it was.
    let (key, holder, other) = (new_key(), token(), token());
    for (what, renew) in [("lock by the holder", false), ("renew_lock", true)] {
        assert!(store.lock(&key, &holder, LONG).await.expect("lock"));
        let (mut same_millisecond, mut last) = (0, Timestamp::now());
        let mut times = Vec::with_capacity(REPEATS);
        for _ in 0..REPEATS {
            let started = (Instant::now(), Timestamp::now());
            let granted = if renew {
                store.renew_lock(&key, &holder, LONG).await
            } else {
                store.lock(&key, &holder, LONG).await
            };
            times.push(started.0.elapsed());
            assert!(granted.expect(what), "{backend}: {what} again was refused");
            same_millisecond += usize::from(started.1 == last);
            last = started.1;
        }
        times.sort_unstable();
        println!(
            "figure: {backend} | {REPEATS} × {what} | all granted, median {:?}, {same_millisecond} \
             in the same millisecond as the call before",
            times[REPEATS / 2]
        );
    }
    assert!(
        !store.lock(&key, &other, LONG).await.expect("lock"),
        "{backend}: another token was granted the re-locked lease"
    );
    assert!(store.unlock(&key, &holder).await.expect("unlock"));

    // gc sweeps lapsed leases only, and counts sessions only.
    let before = leases().await;
    let lapsing: Vec<StoreKey> = (0..3).map(|_| new_key()).collect();
    for key in &lapsing {
        let ttl = Duration::from_millis(30);
        assert!(store.lock(key, &holder, ttl).await.expect("lock"));
    }
    let live = new_key();
    assert!(store.lock(&live, &holder, LONG).await.expect("lock"));
    assert_eq!(
        leases().await,
        before + 4,
        "{backend}: leases after locking"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        store.gc().await.expect("gc"),
        0,
        "{backend}: gc counted leases as sessions"
    );
    assert_eq!(
        leases().await,
        before + 1,
        "{backend}: leases left after gc (the live one only)"
    );
    assert!(
        !store.lock(&live, &other, LONG).await.expect("lock"),
        "{backend}: gc released a live lease"
    );
    assert!(store.unlock(&live, &holder).await.expect("unlock"));
    println!("figure: {backend} | gc | 3 lapsed leases swept, the live one kept, 0 counted");
}

#[cfg(feature = "postgres")]
mod postgres {
    use session_db::sqlx;

    use super::*;

    pub(super) async fn lease_table() -> TestResult {
        let store = common::postgres_store().await?;
        let count = format!("SELECT COUNT(*) FROM {}", store.lock_table());
        let leases = || async {
            let count = sqlx::query_scalar::<_, i64>(&count).fetch_one(store.pool());
            count.await.expect("count")
        };
        check("postgres", &store, leases).await;
        common::drop_postgres(&store).await;
        Ok(())
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use session_db::sqlx;

    use super::*;

    pub(super) async fn lease_table() -> TestResult {
        let store = common::mysql_store().await?;
        let count = format!("SELECT COUNT(*) FROM {}", store.lock_table());
        let leases = || async {
            let count = sqlx::query_scalar::<_, i64>(&count).fetch_one(store.pool());
            count.await.expect("count")
        };
        check("mysql", &store, leases).await;
        common::drop_mysql(&store).await;
        Ok(())
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use session_db::sqlx;
    use session_db::{DbOptions, SqliteStore, sqlx::sqlite::SqliteConnectOptions};

    use super::*;

    pub(super) async fn lease_table() -> TestResult {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut options = DbOptions::new("sqlite:");
        options.prefix = common::random_prefix();
        let connect = SqliteConnectOptions::new()
            .filename(dir.path().join("sessions.db"))
            .create_if_missing(true);
        let store = SqliteStore::connect_with(connect, &options)
            .await
            .expect("open");
        let count = format!("SELECT COUNT(*) FROM {}", store.lock_table());
        let leases = || async {
            let count = sqlx::query_scalar::<_, i64>(&count).fetch_one(store.pool());
            count.await.expect("count")
        };
        check("sqlite", &store, leases).await;
        store.pool().close().await;
        Ok(())
    }
}
