//! What the user index costs on PostgreSQL and MariaDB, printed as `figure:` lines and not
//! asserted (timings depend on the machine): the statements and the time of listing a user
//! with 1,000 sessions, of `delete_many` of 1,000 sessions (against 1,000 `delete`s), and
//! of a log-in and a later request with and without a binding. One check is asserted: a
//! `delete_many` longer than a statement may bind (on SQLite too) is split into batches
//! and still counts exactly.
//!
//! Statements are counted from sqlx's own log of each statement it runs (target
//! `sqlx::query`), per thread: each test runs on a current-thread runtime of its own, so
//! the count is that test's. The stores come from `connect`, which keep their connections,
//! so a statement is one round trip once it is prepared (each is run once before it is
//! measured). sqlx sends PostgreSQL's `BEGIN` without logging it, so a row-lock change
//! set counts one statement less there than it costs; the user-index calls use no
//! transaction. Each server test skips loudly when its server is unreachable, and fails
//! instead under `SESSION_REQUIRE_SERVICES=1`.

#![allow(unreachable_pub)]
#![cfg_attr(
    not(all(feature = "postgres", feature = "mysql", feature = "sqlite")),
    allow(dead_code, unused_imports)
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{
    Data, Owner, Record, SessionConfig, SessionId, SessionManager, SessionStore, StoreKey,
    Timestamp, UserId,
};
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
        Trial::tokio("postgres::user_index_costs", postgres::user_index_costs),
        #[cfg(feature = "mysql")]
        Trial::tokio("mysql::user_index_costs", mysql::user_index_costs),
        #[cfg(feature = "sqlite")]
        Trial::tokio(
            "sqlite::delete_many_past_the_bind_limit",
            sqlite::delete_many_past_the_bind_limit,
        ),
    ];
    Tests::new(trials).main()
}

/// Sessions of the user who is listed and whose sessions are deleted.
const SESSIONS: usize = 1000;
/// Runs of each measured operation.
const RUNS: usize = 20;

/// Statements per run and the median time of `runs` runs of `operation(run)`.
async fn measure<F, Fut>(runs: usize, mut operation: F) -> (f64, Duration)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let before = statements();
    let mut times = Vec::with_capacity(runs);
    for run in 0..runs {
        let started = Instant::now();
        operation(run).await;
        times.push(started.elapsed());
    }
    times.sort_unstable();
    let per_run = (statements() - before) as f64 / runs.max(1) as f64;
    (per_run, times[times.len() / 2])
}

fn in_an_hour() -> Timestamp {
    Timestamp::now() + Duration::from_secs(3600)
}

fn user(name: &str) -> UserId {
    UserId::new(format!("{name}-{}", common::random_prefix())).expect("user")
}

/// Creates `count` sessions, bound to `owner` if given; their keys.
async fn sessions(store: &dyn SessionStore, count: usize, owner: Option<&Owner>) -> Vec<StoreKey> {
    let mut keys = Vec::with_capacity(count);
    for i in 0..count {
        let key = SessionId::generate(32).expect("id").store_key();
        let data = Data::from([("i".to_owned(), i.to_le_bytes().to_vec())]);
        let record = Record::new(data, in_an_hour(), Timestamp::now()).with_owner(owner.cloned());
        assert!(store.create(&key, &record).await.expect("create"));
        keys.push(key);
    }
    keys
}

/// Measures everything on `store` and prints it.
async fn figures(backend: &str, store: Arc<dyn SessionStore>) {
    let manager =
        SessionManager::new(Arc::clone(&store), SessionConfig::default()).expect("manager");
    let login = |bind: bool| {
        let manager = &manager;
        move |run: usize| async move {
            let session = manager.session_from_cookie_header(None);
            session.set("cart", "book").await.expect("set");
            if bind {
                session
                    .set_user(UserId::new(format!("login-{run}")).expect("user"))
                    .await
                    .expect("set_user");
                session.set_label("laptop").await.expect("label");
            }
            session.flush().await.expect("flush").expect("a cookie");
        }
    };
    // Warm up: prepare every statement once.
    login(false)(0).await;
    login(true)(0).await;
    for (what, bind) in [("without a binding", false), ("with a binding", true)] {
        let (per_run, median) = measure(RUNS * 5, login(bind)).await;
        println!(
            "figure: {backend} | a log-in {what} (set, {}flush) | {per_run} statement(s), \
             median {median:?} ({} runs)",
            if bind { "set_user, set_label, " } else { "" },
            RUNS * 5
        );
    }

    // A later request that changes data, on an unbound and on a bound session: the hot
    // path, which the binding must not make dearer.
    let bob = Owner::new(user("bob")).with_label("phone").expect("label");
    for (what, owner) in [("an unbound", None), ("a bound", Some(&bob))] {
        let keys = sessions(store.as_ref(), 1, owner).await;
        let change = session_core::ChangeSet {
            set: Data::from([("cart".to_owned(), b"2".to_vec())]),
            expires_at: in_an_hour(),
            ..Default::default()
        };
        let (per_run, median) = measure(RUNS * 5, |_| async {
            let record = store.load(&keys[0]).await.expect("load").expect("live");
            let revision = record.revision.expect("a revision");
            let written = store
                .update_if_unchanged(&keys[0], revision, &record)
                .await
                .expect("write");
            assert!(written.is_some());
            assert!(store.update(&keys[0], &change).await.expect("update"));
        })
        .await;
        println!(
            "figure: {backend} | a request on {what} session (load, conditional write, \
             change set) | {per_run} statement(s), median {median:?} ({} runs)",
            RUNS * 5
        );
    }

    let ada = Owner::new(user("ada")).with_label("laptop").expect("label");
    let keys = sessions(store.as_ref(), SESSIONS, Some(&ada)).await;
    let _ = store.sessions_of(&ada.user).await.expect("warm-up listing");
    let (per_run, median) = measure(RUNS, |_| async {
        let listed = store.sessions_of(&ada.user).await.expect("list");
        assert_eq!(listed.len(), SESSIONS);
    })
    .await;
    println!(
        "figure: {backend} | sessions_of a user with {SESSIONS} sessions | {per_run} \
         statement(s), median {median:?} ({RUNS} runs)"
    );
    let (per_run, median) = measure(RUNS, |_| async {
        let listed = manager.sessions_of(&ada.user).await.expect("list");
        assert_eq!(listed.len(), SESSIONS);
    })
    .await;
    println!(
        "figure: {backend} | SessionManager::sessions_of, {SESSIONS} sessions | {per_run} \
         statement(s), median {median:?} ({RUNS} runs)"
    );

    // delete_many of 1,000 (after one to prepare its statement), then 1,000 sessions
    // deleted one at a time, as the trait's default would: each on fresh sessions.
    let warm_up = store.delete_many(&keys).await.expect("warm-up");
    assert_eq!(warm_up, SESSIONS as u64);
    let mut batches = Vec::new();
    for _ in 0..3 {
        batches.push(sessions(store.as_ref(), SESSIONS, Some(&ada)).await);
    }
    let mut remaining = batches.into_iter();
    let (per_run, median) = measure(2, |_| {
        let batch = remaining.next().unwrap_or_default();
        let store = Arc::clone(&store);
        async move {
            let removed = store.delete_many(&batch).await.expect("delete_many");
            assert_eq!(removed, SESSIONS as u64);
        }
    })
    .await;
    println!(
        "figure: {backend} | delete_many of {SESSIONS} sessions | {per_run} statement(s), \
         median {median:?} (2 runs)"
    );
    let one_by_one = remaining.next().unwrap_or_default();
    let (per_run, median) = measure(1, |_| async {
        for key in &one_by_one {
            assert!(store.delete(key).await.expect("delete"));
        }
    })
    .await;
    println!(
        "figure: {backend} | {SESSIONS} deletes one by one (the trait's default \
         delete_many) | {per_run} statement(s), {median:?}"
    );

    let revoked = sessions(store.as_ref(), SESSIONS, Some(&ada)).await;
    let (per_run, median) = measure(1, |_| async {
        let ended = manager.revoke_user(&ada.user, None).await.expect("revoke");
        assert_eq!(ended, revoked.len() as u64);
    })
    .await;
    println!(
        "figure: {backend} | SessionManager::revoke_user, {SESSIONS} sessions | {per_run} \
         statement(s), {median:?}"
    );
}

/// Keys in the long `delete_many`: more than two statements' worth on every dialect.
const LONG_LIST: usize = 70_000;
/// Live sessions among them.
const LIVE_IN_LONG_LIST: usize = 300;

/// `delete_many` of [`LONG_LIST`] keys, [`LIVE_IN_LONG_LIST`] of them live and spread
/// over the list, the rest unknown: removes and counts exactly the live ones, in one
/// statement per batch the dialect can bind.
async fn delete_many_past_the_bind_limit_on(backend: &str, store: &dyn SessionStore) {
    let live = sessions(store, LIVE_IN_LONG_LIST, None).await;
    let mut keys: Vec<StoreKey> = (0..LONG_LIST - LIVE_IN_LONG_LIST)
        .map(|_| SessionId::generate(32).expect("id").store_key())
        .collect();
    let step = keys.len() / LIVE_IN_LONG_LIST;
    for (i, key) in live.iter().enumerate() {
        keys.insert(i * (step + 1), key.clone());
    }
    let before = statements();
    let started = Instant::now();
    let removed = store.delete_many(&keys).await.expect("delete_many");
    let elapsed = started.elapsed();
    let used = statements() - before;
    assert_eq!(removed, LIVE_IN_LONG_LIST as u64, "{backend}: removed");
    for key in &live {
        assert!(store.load(key).await.expect("load").is_none(), "{backend}");
    }
    // SQLite's driver runs statements on a thread of its own, which this count misses.
    let used = if backend == "sqlite" {
        "statements not counted".to_owned()
    } else {
        format!("{used} statement(s)")
    };
    println!(
        "figure: {backend} | delete_many of {LONG_LIST} keys ({LIVE_IN_LONG_LIST} live) | \
         {used}, {elapsed:?}, exactly the live ones removed"
    );
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;

    pub(super) async fn user_index_costs() -> TestResult {
        let store = common::postgres_store().await?;
        figures("postgres", Arc::new(store.clone())).await;
        delete_many_past_the_bind_limit_on("postgres", &store).await;
        common::drop_postgres(&store).await;
        Ok(())
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;

    pub(super) async fn user_index_costs() -> TestResult {
        let store = common::mysql_store().await?;
        figures("mysql", Arc::new(store.clone())).await;
        delete_many_past_the_bind_limit_on("mysql", &store).await;
        common::drop_mysql(&store).await;
        Ok(())
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use session_db::SqliteStore;

    use super::*;

    pub(super) async fn delete_many_past_the_bind_limit() -> TestResult {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path().join("sessions.db"))
            .await
            .expect("open");
        delete_many_past_the_bind_limit_on("sqlite", &store).await;
        store.pool().close().await;
        Ok(())
    }
}
