//! Robustness against what the conformance suite cannot produce through the store API:
//! rows written by someone else (garbage in `data`, NULL or garbage in `expire`), and
//! connections killed by the server under a live pool, idle and under load.
//!
//! The corrupt rows go into a hand-made table with nullable `data` and `expire` (as
//! ThinkJS's own DDL has a nullable `data`), written with raw SQL, which the store's
//! `migrate` then gives the owner columns. Each server test skips
//! loudly when its server is unreachable, and fails instead under
//! `SESSION_REQUIRE_SERVICES=1`.

#![allow(unreachable_pub)]
// Which helpers a build uses depends on the features it has.
#![cfg_attr(
    not(all(feature = "postgres", feature = "mysql", feature = "sqlite")),
    allow(dead_code, unused_imports, unused_mut)
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::wire::encode_record;
use session_core::{
    ChangeSet, Data, ErrorKind, Record, SessionConfig, SessionId, SessionManager, SessionStore,
    StoreKey, Timestamp,
};
use session_testkit::{TestError, TestResult, Tests, Trial};

fn main() -> std::process::ExitCode {
    let mut trials = Vec::new();
    #[cfg(feature = "postgres")]
    trials.extend(postgres::trials());
    #[cfg(feature = "mysql")]
    trials.extend(mysql::trials());
    #[cfg(feature = "sqlite")]
    trials.extend(sqlite::trials());
    Tests::new(trials).main()
}

/// A way one row can be corrupt, with what goes into its columns.
struct Corrupt {
    what: &'static str,
    id: SessionId,
    data: Option<Vec<u8>>,
    expire: Expire,
}

enum Expire {
    Null,
    Millis(i64),
    /// Text in an integer column: only SQLite's dynamic typing lets that in.
    Text(&'static str),
}

fn in_an_hour() -> i64 {
    (Timestamp::now() + Duration::from_secs(3600)).as_millis()
}

fn valid_blob() -> Vec<u8> {
    encode_record(&Record {
        data: Data::from([("user".to_owned(), b"stale".to_vec())]),
        expires_at: Timestamp::now() + Duration::from_secs(3600),
        created_at: Timestamp::now(),
        revision: None,
        owner: None,
    })
}

fn corrupt_rows(with_text_expire: bool) -> Vec<Corrupt> {
    let id = || SessionId::generate(32).expect("id");
    let mut truncated = valid_blob();
    truncated.truncate(truncated.len() - 3);
    let mut rows = vec![
        Corrupt {
            what: "garbage in data",
            id: id(),
            data: Some(b"this is not a session record at all".to_vec()),
            expire: Expire::Millis(in_an_hour()),
        },
        Corrupt {
            what: "truncated data",
            id: id(),
            data: Some(truncated),
            expire: Expire::Millis(in_an_hour()),
        },
        Corrupt {
            what: "NULL data",
            id: id(),
            data: None,
            expire: Expire::Millis(in_an_hour()),
        },
        Corrupt {
            what: "NULL expire",
            id: id(),
            data: Some(valid_blob()),
            expire: Expire::Null,
        },
    ];
    if with_text_expire {
        rows.push(Corrupt {
            what: "text in expire",
            id: id(),
            data: Some(valid_blob()),
            expire: Expire::Text("tomorrow-ish"),
        });
    }
    rows
}

/// Checks every store path against the corrupt rows: no panic, no record, decode errors
/// where there is something to decode, and a corrupt row is replaced by the next create.
async fn check_corrupt_rows(backend: &str, store: Arc<dyn SessionStore>, rows: &[Corrupt]) {
    let manager =
        SessionManager::new(Arc::clone(&store), SessionConfig::default()).expect("manager");
    for row in rows {
        let key = row.id.store_key();
        let what = row.what;
        match store.load(&key).await {
            Err(err) => assert_eq!(err.kind(), ErrorKind::Decode, "{what}: load: {err}"),
            Ok(None) => {}
            Ok(Some(record)) => panic!("{what}: load returned a record: {record:?}"),
        }
        let changes = ChangeSet {
            set: Data::from([("cart".to_owned(), b"1".to_vec())]),
            expires_at: Timestamp::now() + Duration::from_secs(60),
            ..ChangeSet::default()
        };
        match store.update(&key, &changes).await {
            Err(err) => assert_eq!(err.kind(), ErrorKind::Decode, "{what}: update: {err}"),
            Ok(applied) => assert!(!applied, "{what}: update applied to a corrupt row"),
        }

        // Through a session: the corrupt record is "no session", and writing starts a new
        // one under a fresh id.
        let header = format!("thinkjs={}", row.id.expose());
        let session = manager.session_from_cookie_header(Some(&header));
        assert_eq!(
            session.get::<String>("user").await.expect("get"),
            None,
            "{what}: value from a corrupt session"
        );
        session.set("user", "fresh").await.expect("set");
        let cookie = session.flush().await.expect("flush").expect("a new cookie");
        assert_ne!(
            cookie.value(),
            row.id.expose(),
            "{what}: the corrupt id was adopted"
        );
        let again =
            manager.session_from_cookie_header(Some(&format!("thinkjs={}", cookie.value())));
        assert_eq!(
            again.get::<String>("user").await.expect("get"),
            Some("fresh".to_owned()),
            "{what}: the fresh session"
        );

        // A corrupt record counts as absent: create at its key replaces it.
        let record = Record {
            data: Data::from([("user".to_owned(), b"replaced".to_vec())]),
            expires_at: Timestamp::now() + Duration::from_secs(600),
            created_at: Timestamp::now(),
            revision: None,
            owner: None,
        };
        assert!(
            store.create(&key, &record).await.expect("create"),
            "{what}: create did not replace the corrupt row"
        );
        let loaded = store.load(&key).await.expect("load after replace");
        assert_eq!(
            loaded.map(|r| r.data),
            Some(record.data),
            "{what}: replaced record"
        );
    }

    let fresh = SessionId::generate(32).expect("id").store_key();
    let record = Record {
        expires_at: Timestamp::now() + Duration::from_secs(60),
        ..Record::default()
    };
    assert!(store.create(&fresh, &record).await.expect("create"));
    store
        .gc()
        .await
        .expect("gc runs over a table that held corrupt rows");
    let kinds: Vec<&str> = rows.iter().map(|row| row.what).collect();
    println!(
        "figure: {backend} | corrupt records ({} kinds) | each treated as absent, 0 panics, replaced by the next write: {}",
        kinds.len(),
        kinds.join(", ")
    );
}

/// Concurrent requests while connections are killed.
const WORKERS: usize = 16;
/// The first successful request must come within this long of the last kill.
const BACK_WITHIN: Duration = Duration::from_secs(2);

/// Runs counter requests on `store` and, after a second, calls `kill` (which kills the
/// store's connections from the server side and says how many) every 100 ms for two
/// seconds; then checks that requests failed with errors (no panic, no hang, no lost
/// write) and that the same pool serves again within [`BACK_WITHIN`].
async fn connections_killed_under_load<F, Fut>(
    backend: &str,
    store: Arc<dyn SessionStore>,
    mut kill: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let manager = SessionManager::new(store, SessionConfig::default()).expect("manager");
    let load = session_testkit::Load::start(manager, WORKERS);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down = load.elapsed();
    let mut killed = 0;
    for _ in 0..20 {
        killed += kill().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = load.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = load.stop().await;
    println!("{backend}: {killed} connections killed");
    assert!(
        killed > 0,
        "{backend}: no connection of the store was found to kill"
    );
    let first = report.assert_recovered(backend, down, down, back, BACK_WITHIN);
    assert_eq!(report.sessions_lost, 0, "{backend}: sessions lost");
    println!(
        "figure: {backend} | connections killed under load ({killed} kills over 2 s, {WORKERS} concurrent requests) | \
         {} ok, {} failed with errors, 0 panics, 0 lost increments, slowest request {:?}, \
         first success {first:?} after the last kill, no restart",
        report.succeeded(),
        report.failed(),
        report.slowest(),
    );
}

/// Creates a session with one key on `store`: its key and record.
async fn logged_in(store: &dyn SessionStore) -> (StoreKey, Record) {
    let key = SessionId::generate(32).expect("id").store_key();
    let record = Record {
        data: Data::from([("user".to_owned(), b"ada".to_vec())]),
        expires_at: Timestamp::now() + Duration::from_secs(600),
        created_at: Timestamp::now(),
        revision: None,
        owner: None,
    };
    assert!(store.create(&key, &record).await.expect("create"));
    (key, record)
}

/// Calls `attempt` until it succeeds, for at most `limit`; returns how many calls failed.
async fn until_ok<F, Fut>(limit: Duration, mut attempt: F) -> usize
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = session_core::Result<()>>,
{
    let deadline = Instant::now() + limit;
    let mut failures = 0;
    loop {
        match attempt().await {
            Ok(()) => return failures,
            Err(err) => {
                failures += 1;
                assert!(
                    Instant::now() < deadline,
                    "the pool did not recover within {limit:?}: {err}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use session_db::sqlx::{self, PgPool};
    use session_db::{DbOptions, PostgresStore};

    use super::*;

    /// The postgres tests, under the `postgres::` names libtest gave them, so filters still
    /// select them.
    pub(super) fn trials() -> Vec<Trial> {
        vec![
            Trial::tokio(
                "postgres::corrupt_rows_are_no_session_never_a_panic",
                corrupt_rows_are_no_session_never_a_panic,
            )
            .multi_thread(2),
            Trial::tokio(
                "postgres::pool_recovers_after_its_connections_are_killed",
                pool_recovers_after_its_connections_are_killed,
            )
            .multi_thread(2),
            Trial::tokio(
                "postgres::min_connections_are_open_from_the_start_and_no_more",
                min_connections_are_open_from_the_start_and_no_more,
            )
            .multi_thread(2),
            Trial::tokio(
                "postgres::with_test_before_acquire_a_killed_connection_fails_no_call",
                with_test_before_acquire_a_killed_connection_fails_no_call,
            )
            .multi_thread(2),
            Trial::tokio(
                "postgres::connections_killed_under_load_fail_requests_then_recover",
                connections_killed_under_load_fail_requests_then_recover,
            )
            .multi_thread(2),
        ]
    }

    fn url() -> String {
        common::env_url(
            "SESSION_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        )
    }

    /// The server, as a skip names it.
    fn server() -> String {
        format!(
            "PostgreSQL at {} (SESSION_TEST_POSTGRES_URL)",
            common::redacted(&url())
        )
    }

    async fn store(migrate: bool, max_connections: u32) -> Result<PostgresStore, TestError> {
        let mut options = DbOptions::new(url());
        options.prefix = common::random_prefix();
        options.migrate = migrate;
        options.max_connections = max_connections;
        PostgresStore::connect(&options)
            .await
            .map_err(|err| common::unreachable(&server(), &err))
    }

    async fn drop_table(store: &PostgresStore) {
        let sql = format!(
            "DROP TABLE IF EXISTS {}, {}",
            store.table(),
            store.lock_table()
        );
        sqlx::query(&sql).execute(store.pool()).await.expect("drop");
        store.pool().close().await;
    }

    /// A store whose connections have `application_name` set to `name`.
    async fn named_store(name: &str, max_connections: u32) -> Result<PostgresStore, TestError> {
        named_store_with(name, max_connections, false).await
    }

    async fn named_store_with(
        name: &str,
        max_connections: u32,
        test_before_acquire: bool,
    ) -> Result<PostgresStore, TestError> {
        let separator = if url().contains('?') { '&' } else { '?' };
        let mut options = DbOptions::new(format!("{}{separator}application_name={name}", url()));
        options.prefix = common::random_prefix();
        options.max_connections = max_connections;
        options.acquire_timeout = Duration::from_secs(2);
        options.test_before_acquire = test_before_acquire;
        PostgresStore::connect(&options)
            .await
            .map_err(|err| common::unreachable(&server(), &err))
    }

    /// Terminates every backend named `name`; says how many.
    async fn terminate_named(admin: &PgPool, name: &str) -> usize {
        let killed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FILTER (WHERE pg_terminate_backend(pid)) \
             FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(name)
        .fetch_one(admin)
        .await
        .expect("terminate");
        usize::try_from(killed).unwrap_or_default()
    }

    async fn corrupt_rows_are_no_session_never_a_panic() -> TestResult {
        let store = store(false, 5).await?;
        let table = store.table().to_owned();
        sqlx::query(&format!(
            "CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, cookie VARCHAR(255) NOT NULL UNIQUE, \
             data BYTEA, expire BIGINT, version BIGINT NOT NULL DEFAULT 0)"
        ))
        .execute(store.pool())
        .await
        .expect("create table");
        // The store adds the owner columns it reads, as to any table it did not create.
        store.migrate().await.expect("migrate the hand-made table");
        let rows = corrupt_rows(false);
        for row in &rows {
            let expire = match row.expire {
                Expire::Millis(ms) => Some(ms),
                Expire::Null | Expire::Text(_) => None,
            };
            sqlx::query(&format!(
                "INSERT INTO {table} (cookie, data, expire) VALUES ($1, $2, $3)"
            ))
            .bind(row.id.store_key().as_str())
            .bind(row.data.clone())
            .bind(expire)
            .execute(store.pool())
            .await
            .expect("insert");
        }
        check_corrupt_rows("postgres", Arc::new(store.clone()), &rows).await;
        drop_table(&store).await;
        Ok(())
    }

    async fn pool_recovers_after_its_connections_are_killed() -> TestResult {
        // The store's connections carry a name of their own, so only they are killed.
        let name = common::random_prefix();
        let store = named_store(&name, 3).await?;
        let (key, record) = logged_in(&store).await;

        let admin = PgPool::connect(&url()).await.expect("admin pool");
        let killed = terminate_named(&admin, &name).await;
        assert!(killed > 0, "no connection of the store was found to kill");
        admin.close().await;

        let failures = until_ok(Duration::from_secs(5), || async {
            let loaded = store.load(&key).await?;
            assert_eq!(loaded.map(|r| r.data), Some(record.data.clone()));
            Ok(())
        })
        .await;
        println!(
            "figure: postgres | connections killed (pg_terminate_backend) | recovered without restart after {failures} failed call(s)"
        );
        let changes = ChangeSet {
            set: Data::from([("cart".to_owned(), b"1".to_vec())]),
            expires_at: Timestamp::now() + Duration::from_secs(600),
            ..ChangeSet::default()
        };
        assert!(
            store
                .update(&key, &changes)
                .await
                .expect("update after recovery")
        );
        drop_table(&store).await;
        Ok(())
    }

    async fn min_connections_are_open_from_the_start_and_no_more() -> TestResult {
        let name = common::random_prefix();
        let separator = if url().contains('?') { '&' } else { '?' };
        let mut options = DbOptions::new(format!("{}{separator}application_name={name}", url()));
        options.prefix = common::random_prefix();
        options.max_connections = 4;
        options.min_connections = 2;
        let store = match PostgresStore::connect(&options).await {
            Ok(store) => store,
            Err(err) => return Err(common::unreachable(&server(), &err)),
        };
        let admin = PgPool::connect(&url()).await.expect("admin pool");
        let open = || async {
            let count: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1",
            )
            .bind(&name)
            .fetch_one(&admin)
            .await
            .expect("pg_stat_activity");
            count
        };
        assert_eq!(open().await, 2, "connections open after connect");
        let key = SessionId::generate(32).expect("id").store_key();
        assert_eq!(store.load(&key).await.expect("load"), None);
        // The store used one of its two; the pool opened none to replace it.
        assert_eq!(open().await, 2, "connections open after a statement");
        admin.close().await;
        drop_table(&store).await;
        Ok(())
    }

    async fn with_test_before_acquire_a_killed_connection_fails_no_call() -> TestResult {
        let name = common::random_prefix();
        let store = named_store_with(&name, 3, true).await?;
        let (key, record) = logged_in(&store).await;
        let admin = PgPool::connect(&url()).await.expect("admin pool");
        assert!(terminate_named(&admin, &name).await > 0, "nothing killed");
        // pg_terminate_backend only signals: wait until the backends are gone.
        for _ in 0..100 {
            let left: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1",
            )
            .bind(&name)
            .fetch_one(&admin)
            .await
            .expect("pg_stat_activity");
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        admin.close().await;
        // The kept connection is pinged first, found dead and replaced.
        let loaded = store.load(&key).await.expect("load after the kill");
        assert_eq!(loaded.map(|r| r.data), Some(record.data));
        drop_table(&store).await;
        Ok(())
    }

    async fn connections_killed_under_load_fail_requests_then_recover() -> TestResult {
        // The pool's connections carry a name of their own, so only they are killed.
        let name = common::random_prefix();
        let store = named_store(&name, 8).await?;
        let admin = PgPool::connect(&url()).await.expect("admin pool");
        connections_killed_under_load("postgres", Arc::new(store.clone()), || {
            let admin = admin.clone();
            let name = name.clone();
            async move { terminate_named(&admin, &name).await }
        })
        .await;
        admin.close().await;
        drop_table(&store).await;
        Ok(())
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use session_db::sqlx::{self, MySqlPool};
    use session_db::{DbOptions, MySqlStore};

    use super::*;

    /// The mysql tests, under the `mysql::` names libtest gave them, so filters still
    /// select them.
    pub(super) fn trials() -> Vec<Trial> {
        vec![
            Trial::tokio(
                "mysql::corrupt_rows_are_no_session_never_a_panic",
                corrupt_rows_are_no_session_never_a_panic,
            )
            .multi_thread(2),
            Trial::tokio(
                "mysql::pool_recovers_after_its_connections_are_killed",
                pool_recovers_after_its_connections_are_killed,
            )
            .multi_thread(2),
            Trial::tokio(
                "mysql::connections_killed_under_load_fail_requests_then_recover",
                connections_killed_under_load_fail_requests_then_recover,
            )
            .multi_thread(2),
        ]
    }

    fn url() -> String {
        common::env_url("SESSION_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
    }

    /// The server, as a skip names it.
    fn server() -> String {
        format!(
            "MariaDB at {} (SESSION_TEST_MYSQL_URL)",
            common::redacted(&url())
        )
    }

    async fn store(migrate: bool, max_connections: u32) -> Result<MySqlStore, TestError> {
        let mut options = DbOptions::new(url());
        options.prefix = common::random_prefix();
        options.migrate = migrate;
        options.max_connections = max_connections;
        MySqlStore::connect(&options)
            .await
            .map_err(|err| common::unreachable(&server(), &err))
    }

    async fn drop_table(store: &MySqlStore) {
        let sql = format!(
            "DROP TABLE IF EXISTS {}, {}",
            store.table(),
            store.lock_table()
        );
        sqlx::query(&sql).execute(store.pool()).await.expect("drop");
        store.pool().close().await;
    }

    async fn corrupt_rows_are_no_session_never_a_panic() -> TestResult {
        let store = store(false, 5).await?;
        let table = store.table().to_owned();
        sqlx::query(&format!(
            "CREATE TABLE {table} (`id` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, \
             `cookie` VARCHAR(255) NOT NULL UNIQUE, `data` LONGBLOB, `expire` BIGINT, \
             `version` BIGINT NOT NULL DEFAULT 0, KEY (`expire`)) ENGINE=InnoDB"
        ))
        .execute(store.pool())
        .await
        .expect("create table");
        // The store adds the owner columns it reads, as to any table it did not create.
        store.migrate().await.expect("migrate the hand-made table");
        let rows = corrupt_rows(false);
        for row in &rows {
            let expire = match row.expire {
                Expire::Millis(ms) => Some(ms),
                Expire::Null | Expire::Text(_) => None,
            };
            sqlx::query(&format!(
                "INSERT INTO {table} (cookie, data, expire) VALUES (?, ?, ?)"
            ))
            .bind(row.id.store_key().as_str())
            .bind(row.data.clone())
            .bind(expire)
            .execute(store.pool())
            .await
            .expect("insert");
        }
        check_corrupt_rows("mysql", Arc::new(store.clone()), &rows).await;
        drop_table(&store).await;
        Ok(())
    }

    /// The user whose connections the kill test may end: only that test connects as it.
    const KILL_USER: &str = "session_kill_test";

    /// A store connected as [`KILL_USER`], created here if it does not exist yet.
    async fn killable_store(max_connections: u32) -> Result<MySqlStore, TestError> {
        let admin = MySqlPool::connect(&url())
            .await
            .map_err(|err| common::unreachable(&server(), &err))?;
        let url = url();
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let host = rest.split_once('@').map_or(rest, |(_, host)| host);
        let database = host
            .split_once('/')
            .map_or("test", |(_, path)| path.split('?').next().unwrap_or("test"));
        for statement in [
            format!("CREATE USER IF NOT EXISTS '{KILL_USER}'@'%'"),
            format!("GRANT ALL PRIVILEGES ON `{database}`.* TO '{KILL_USER}'@'%'"),
        ] {
            if let Err(err) = sqlx::raw_sql(&statement).execute(&admin).await {
                return Err(common::unreachable(
                    &format!(
                        "{} as a user that may create users (the kill test needs one)",
                        server()
                    ),
                    &err,
                ));
            }
        }
        admin.close().await;
        // The same server and database, as the other user.
        let mut options = DbOptions::new(format!("{scheme}://{KILL_USER}@{host}"));
        options.prefix = common::random_prefix();
        options.max_connections = max_connections;
        Ok(MySqlStore::connect(&options).await.expect("connect"))
    }

    /// Kills every connection of [`KILL_USER`]; says how many.
    async fn kill_user_connections(admin: &MySqlPool) -> usize {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?")
                .bind(KILL_USER)
                .fetch_all(admin)
                .await
                .expect("processlist");
        for id in &ids {
            // KILL cannot be prepared; the id is a number the server gave us.
            sqlx::raw_sql(&format!("KILL {id}"))
                .execute(admin)
                .await
                .expect("kill");
        }
        ids.len()
    }

    async fn pool_recovers_after_its_connections_are_killed() -> TestResult {
        let store = killable_store(3).await?;
        let (key, record) = logged_in(&store).await;

        // Only this store's connections are killed: other tests share the server.
        let admin = MySqlPool::connect(&url()).await.expect("admin pool");
        let killed = kill_user_connections(&admin).await;
        assert!(killed > 0, "no connection of the store was found to kill");
        admin.close().await;

        let failures = until_ok(Duration::from_secs(5), || async {
            let loaded = store.load(&key).await?;
            assert_eq!(loaded.map(|r| r.data), Some(record.data.clone()));
            Ok(())
        })
        .await;
        println!(
            "figure: mysql | connections killed (KILL) | recovered without restart after {failures} failed call(s)"
        );
        let changes = ChangeSet {
            set: Data::from([("cart".to_owned(), b"1".to_vec())]),
            expires_at: Timestamp::now() + Duration::from_secs(600),
            ..ChangeSet::default()
        };
        assert!(
            store
                .update(&key, &changes)
                .await
                .expect("update after recovery")
        );
        drop_table(&store).await;
        Ok(())
    }

    async fn connections_killed_under_load_fail_requests_then_recover() -> TestResult {
        let mut options = DbOptions::new(url());
        options.prefix = common::random_prefix();
        options.max_connections = 8;
        options.acquire_timeout = Duration::from_secs(2);
        let store = match MySqlStore::connect(&options).await {
            Ok(store) => store,
            Err(err) => return Err(common::unreachable(&server(), &err)),
        };
        // MariaDB has no connection names: the store's connections are the ones running a
        // statement on its table (a random name), which is what "under load" means here.
        let pattern = format!("%{}%", store.table());
        let admin = MySqlPool::connect(&url()).await.expect("admin pool");
        connections_killed_under_load("mysql", Arc::new(store.clone()), || {
            let admin = admin.clone();
            let pattern = pattern.clone();
            async move {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT ID FROM information_schema.PROCESSLIST \
                     WHERE INFO LIKE ? AND ID <> CONNECTION_ID()",
                )
                .bind(pattern)
                .fetch_all(&admin)
                .await
                .expect("processlist");
                let mut killed = 0;
                for id in ids {
                    // KILL cannot be prepared; the id is a number the server gave us. The
                    // connection may have finished meanwhile ("unknown thread"): not killed.
                    if sqlx::raw_sql(&format!("KILL {id}"))
                        .execute(&admin)
                        .await
                        .is_ok()
                    {
                        killed += 1;
                    }
                }
                killed
            }
        })
        .await;
        admin.close().await;
        drop_table(&store).await;
        Ok(())
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use session_db::sqlx::{self, sqlite::SqliteConnectOptions};
    use session_db::{DbOptions, SqliteStore};

    use super::*;

    /// The sqlite tests, under the `sqlite::` names libtest gave them, so filters still
    /// select them.
    pub(super) fn trials() -> Vec<Trial> {
        vec![
            Trial::tokio(
                "sqlite::corrupt_rows_are_no_session_never_a_panic",
                corrupt_rows_are_no_session_never_a_panic,
            )
            .multi_thread(2),
            Trial::tokio(
                "sqlite::a_file_that_is_not_a_database_is_an_error",
                a_file_that_is_not_a_database_is_an_error,
            )
            .multi_thread(2),
        ]
    }

    async fn corrupt_rows_are_no_session_never_a_panic() -> TestResult {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut options = DbOptions::new("sqlite:");
        options.prefix = common::random_prefix();
        options.migrate = false;
        let connect = SqliteConnectOptions::new()
            .filename(dir.path().join("sessions.db"))
            .create_if_missing(true);
        let store = SqliteStore::connect_with(connect, &options)
            .await
            .expect("open");
        let table = store.table().to_owned();
        sqlx::query(&format!(
            "CREATE TABLE {table} (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             cookie TEXT NOT NULL UNIQUE, data BLOB, expire INTEGER, \
             version INTEGER NOT NULL DEFAULT 0)"
        ))
        .execute(store.pool())
        .await
        .expect("create table");
        // The store adds the owner columns it reads, as to any table it did not create.
        store.migrate().await.expect("migrate the hand-made table");
        let rows = corrupt_rows(true);
        for row in &rows {
            let query = format!("INSERT INTO {table} (cookie, data, expire) VALUES (?1, ?2, ?3)");
            let key = row.id.store_key();
            let query = sqlx::query(&query)
                .bind(key.as_str())
                .bind(row.data.clone());
            let query = match row.expire {
                Expire::Millis(ms) => query.bind(Some(ms)),
                Expire::Null => query.bind(None::<i64>),
                Expire::Text(text) => query.bind(text),
            };
            query.execute(store.pool()).await.expect("insert");
        }
        check_corrupt_rows("sqlite", Arc::new(store.clone()), &rows).await;
        store.pool().close().await;
        Ok(())
    }

    async fn a_file_that_is_not_a_database_is_an_error() -> TestResult {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sessions.db");
        std::fs::write(
            &path,
            b"not a database, just some bytes that are long enough to fail",
        )
        .expect("write");
        let err = SqliteStore::open(&path).await.expect_err("garbage file");
        assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
        Ok(())
    }
}
