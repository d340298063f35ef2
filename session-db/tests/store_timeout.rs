//! The manager's `store_timeout` ends every call of a SQL store that hangs, within the
//! bound plus 50 ms, with an `ErrorKind::Timeout` naming the call, while the store's own
//! `acquire_timeout` is far longer:
//!
//! - a server that accepts connections and never answers (a loopback listener of the
//!   test's own), for PostgreSQL and MySQL: the connection handshake hangs;
//! - PostgreSQL answering, but the store's table locked by another session of the test
//!   (`LOCK TABLE ... ACCESS EXCLUSIVE` in an open transaction): every statement waits
//!   for the lock; once it is released the same store serves again.
//!
//! Each prints a `figure:` line with the worst wait. The locked-table test skips loudly
//! when PostgreSQL is unreachable (a failure under `SESSION_REQUIRE_SERVICES=1`); the
//! listener tests need no server.

#![allow(unreachable_pub)]
#![cfg_attr(
    not(all(feature = "postgres", feature = "mysql")),
    allow(dead_code, unused_imports)
)]

mod common;

use std::future::Future;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{
    ChangeSet, Data, ErrorKind, Record, SessionConfig, SessionId, SessionManager, SessionStore,
    StoreKey, Timestamp,
};
use session_testkit::{TestResult, Tests, Trial};

fn main() -> std::process::ExitCode {
    let mut trials = Vec::new();
    #[cfg(feature = "postgres")]
    trials.extend([
        Trial::tokio(
            "postgres::silent_server_is_cut_by_store_timeout",
            postgres::silent_server_is_cut_by_store_timeout,
        )
        .multi_thread(2),
        Trial::tokio(
            "postgres::locked_table_is_cut_by_store_timeout_and_the_store_recovers",
            postgres::locked_table_is_cut_by_store_timeout_and_the_store_recovers,
        )
        .multi_thread(2),
    ]);
    #[cfg(feature = "mysql")]
    trials.push(
        Trial::tokio(
            "mysql::silent_server_is_cut_by_store_timeout",
            mysql::silent_server_is_cut_by_store_timeout,
        )
        .multi_thread(2),
    );
    Tests::new(trials).main()
}

/// The manager's bound in these tests.
const STORE_TIMEOUT: Duration = Duration::from_millis(300);
/// What the issue allows on top of it.
const SLACK: Duration = Duration::from_millis(50);
/// The stores' own `acquire_timeout`: far longer, so that the manager's bound is what acts.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

fn manager_over(store: Arc<dyn SessionStore>) -> SessionManager {
    let config = SessionConfig::from_json_str(r#"{"type": "db", "store_timeout": "300ms"}"#)
        .expect("config");
    SessionManager::new(store, config).expect("manager")
}

fn key() -> StoreKey {
    SessionId::generate(32).expect("id").store_key()
}

fn record() -> Record {
    Record::new(
        Data::from([("user".to_owned(), b"ada".to_vec())]),
        Timestamp::now() + Duration::from_secs(3600),
        Timestamp::now(),
    )
}

/// A loopback listener that accepts every connection and never writes a byte: a server
/// that hangs. The connections are kept open until the listener is dropped.
struct Silent {
    port: u16,
    stop: std::sync::mpsc::Sender<()>,
}

impl Silent {
    fn start() -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = listener.local_addr().expect("address").port();
        listener.set_nonblocking(true).expect("non-blocking");
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while stopped.try_recv().is_err() {
                match listener.accept() {
                    Ok((connection, _)) => held.push(connection),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { port, stop }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}

/// Runs `call`, which must fail with a timeout at the manager's bound: how long it took.
async fn time_cut<T: std::fmt::Debug>(
    name: &str,
    call: impl Future<Output = session_core::Result<T>>,
) -> Duration {
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(30), call).await;
    let elapsed = started.elapsed();
    match outcome {
        Err(_) => panic!("{name} hung for 30 s"),
        Ok(Ok(value)) => panic!("{name} succeeded ({value:?}) against a hung store"),
        Ok(Err(err)) => {
            assert_eq!(err.kind(), ErrorKind::Timeout, "{name}: {err}");
            if name != "request" {
                let expected = format!("`{name}` within 300ms (`store_timeout`)");
                assert!(err.message().contains(&expected), "{name}: {err}");
            }
            assert!(
                elapsed >= STORE_TIMEOUT && elapsed <= STORE_TIMEOUT + SLACK,
                "{name} failed after {elapsed:?} (store_timeout {STORE_TIMEOUT:?}): {err}"
            );
            elapsed
        }
    }
}

/// Every kind of call a request makes, each cut at the bound: the worst wait.
async fn every_call_is_cut(manager: &SessionManager, live: &StoreKey) -> Duration {
    let store = manager.store();
    let other = key();
    let changes = ChangeSet {
        set: Data::from([("during".to_owned(), b"outage".to_vec())]),
        expires_at: Timestamp::now() + Duration::from_secs(3600),
        ..ChangeSet::default()
    };
    let header = format!("thinkjs={}", SessionId::generate(32).expect("id").expose());
    let times = [
        time_cut("load", store.load(live)).await,
        time_cut("create", store.create(&other, &record())).await,
        time_cut("update", store.update(live, &changes)).await,
        time_cut(
            "touch",
            store.touch(live, Timestamp::now() + Duration::from_secs(7200)),
        )
        .await,
        time_cut("delete", store.delete(&other)).await,
        time_cut("request", async {
            let session = manager.session_from_cookie_header(Some(&header));
            session.get::<String>("user").await
        })
        .await,
    ];
    times.into_iter().max().unwrap_or_default()
}

#[cfg(feature = "postgres")]
mod postgres {
    use session_db::PostgresStore;
    use session_db::sqlx::postgres::PgPoolOptions;
    use session_db::sqlx::{self, Connection as _, PgConnection};

    use super::*;

    pub(super) async fn silent_server_is_cut_by_store_timeout() -> TestResult {
        let silent = Silent::start();
        let pool = PgPoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy(&format!(
                "postgres://postgres@127.0.0.1:{}/test",
                silent.port
            ))
            .expect("a lazy pool");
        let manager = manager_over(Arc::new(PostgresStore::new(pool)));
        let worst = every_call_is_cut(&manager, &key()).await;
        println!(
            "figure: postgres | server accepts and never answers, acquire_timeout {ACQUIRE_TIMEOUT:?} | \
             worst wait {worst:?} with store_timeout {STORE_TIMEOUT:?} (allowed {:?})",
            STORE_TIMEOUT + SLACK
        );
        Ok(())
    }

    pub(super) async fn locked_table_is_cut_by_store_timeout_and_the_store_recovers() -> TestResult
    {
        let url = common::env_url(
            "SESSION_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        );
        let mut options = session_db::DbOptions::new(url.clone());
        options.prefix = common::random_prefix();
        options.acquire_timeout = ACQUIRE_TIMEOUT;
        let store = PostgresStore::connect(&options).await.map_err(|err| {
            common::unreachable(&format!("PostgreSQL at {}", common::redacted(&url)), &err)
        })?;
        let table = store.table().to_owned();
        let store = Arc::new(store);
        let manager = manager_over(Arc::clone(&store) as Arc<dyn SessionStore>);
        let live = key();
        assert!(manager.store().create(&live, &record()).await?);

        // Another session of the test holds the table's strongest lock: every statement
        // of the store waits for it, as behind a stuck migration or a long transaction.
        let mut locker = PgConnection::connect(&url)
            .await
            .expect("a second connection");
        sqlx::query("BEGIN")
            .execute(&mut locker)
            .await
            .expect("BEGIN");
        sqlx::query(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            .execute(&mut locker)
            .await
            .expect("LOCK TABLE");
        let worst = every_call_is_cut(&manager, &live).await;
        sqlx::query("ROLLBACK")
            .execute(&mut locker)
            .await
            .expect("ROLLBACK");
        locker.close().await.expect("close");

        // The store serves again once the lock is gone, through the same manager: the
        // cancelled statements left no connection unusable for long.
        let started = Instant::now();
        let loaded = loop {
            match manager.store().load(&live).await {
                Ok(loaded) => break loaded,
                Err(err) => assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "no answer 5 s after the lock was released: {err}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let recovered = started.elapsed();
        let loaded = loaded.expect("the session survived");
        assert_eq!(
            loaded.data.get("user").map(Vec::as_slice),
            Some(&b"ada"[..])
        );
        common::drop_postgres(&store).await;
        println!(
            "figure: postgres | table locked by another transaction, acquire_timeout {ACQUIRE_TIMEOUT:?} | \
             worst wait {worst:?} with store_timeout {STORE_TIMEOUT:?} (allowed {:?}); first answer \
             {recovered:?} after the lock was released",
            STORE_TIMEOUT + SLACK
        );
        Ok(())
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use session_db::MySqlStore;
    use session_db::sqlx::mysql::MySqlPoolOptions;

    use super::*;

    pub(super) async fn silent_server_is_cut_by_store_timeout() -> TestResult {
        let silent = Silent::start();
        let pool = MySqlPoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy(&format!("mysql://root@127.0.0.1:{}/test", silent.port))
            .expect("a lazy pool");
        let manager = manager_over(Arc::new(MySqlStore::new(pool)));
        let worst = every_call_is_cut(&manager, &key()).await;
        println!(
            "figure: mysql | server accepts and never answers, acquire_timeout {ACQUIRE_TIMEOUT:?} | \
             worst wait {worst:?} with store_timeout {STORE_TIMEOUT:?} (allowed {:?})",
            STORE_TIMEOUT + SLACK
        );
        Ok(())
    }
}
