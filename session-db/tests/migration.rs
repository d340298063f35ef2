//! Tables made by an earlier version of this crate, without the owner columns and without
//! the lease table of the session locks: `migrate` adds the columns and the `user_id`
//! index in place and creates the lease table, keeps the sessions already stored, and
//! changes nothing the second time, nor when several stores open the table at once.
//! The listing of a user then goes through the index (checked with the dialect's EXPLAIN).
//!
//! Each old table is made with the DDL this crate ran before the user index (as in its
//! history), and holds a session in the first wire layout, which that version wrote. Each
//! server test skips loudly when its server is unreachable, and fails instead under
//! `SESSION_REQUIRE_SERVICES=1`.

#![allow(unreachable_pub)]
// Which helpers a build uses depends on the features it has.
#![cfg_attr(
    not(all(feature = "postgres", feature = "mysql", feature = "sqlite")),
    allow(dead_code, unused_imports, unused_mut)
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use session_core::wire::encode_record;
use session_core::{
    ChangeSet, Data, LockToken, Owner, Record, SessionId, SessionStore, StoreKey, Timestamp, UserId,
};
use session_testkit::{TestResult, Tests, Trial};

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

/// How many stores open one old table at the same moment.
const CONCURRENT_OPENS: usize = 4;

/// A session as the earlier version stored it: its key, the blob in the first wire layout
/// (no owner part), and its expiry in milliseconds.
struct OldSession {
    key: StoreKey,
    blob: Vec<u8>,
    expire: i64,
    data: Data,
}

fn old_session() -> OldSession {
    let data = Data::from([("userInfo".to_owned(), b"\"Ada\"".to_vec())]);
    let expires_at = Timestamp::now() + Duration::from_secs(3600);
    let record = Record::new(data.clone(), expires_at, Timestamp::now());
    // An unbound record is written in layout 1, as the earlier version wrote it.
    let blob = encode_record(&record);
    assert_eq!(blob[4], 1, "an unbound record keeps layout 1");
    OldSession {
        key: SessionId::generate(32).expect("id").store_key(),
        blob,
        expire: expires_at.as_millis(),
        data,
    }
}

fn ada() -> Owner {
    Owner::new(UserId::new(format!("ada-{}", common::random_prefix())).expect("user"))
        .with_label("laptop")
        .expect("label")
}

/// What must hold once `first` has migrated a table holding `old`, checked through `first`
/// and through `again`, a store that opened (and so migrated) the table a second time:
/// the old session loads as it was, unbound; binding it and creating a bound session list
/// both under the user, through either store.
async fn check_migrated(
    backend: &str,
    first: Arc<dyn SessionStore>,
    again: Arc<dyn SessionStore>,
    old: &OldSession,
) {
    let loaded = first
        .load(&old.key)
        .await
        .expect("load the old session")
        .expect("the old session survives the migration");
    assert_eq!(loaded.data, old.data, "{backend}: the old session's data");
    assert_eq!(loaded.owner, None, "{backend}: the old session is unbound");

    let owner = ada();
    let bind = ChangeSet {
        expires_at: Timestamp::now() + Duration::from_secs(3600),
        owner: Some(owner.clone()),
        ..ChangeSet::default()
    };
    assert!(
        first.update(&old.key, &bind).await.expect("bind"),
        "{backend}: binding the old session"
    );
    let fresh = SessionId::generate(32).expect("id").store_key();
    let record = Record::new(
        Data::new(),
        Timestamp::now() + Duration::from_secs(3600),
        Timestamp::now(),
    )
    .with_owner(Some(owner.clone()));
    assert!(first.create(&fresh, &record).await.expect("create"));

    let mut listed: Vec<StoreKey> = again
        .sessions_of(&owner.user)
        .await
        .expect("list")
        .into_iter()
        .map(|session| session.key)
        .collect();
    listed.sort_unstable();
    let mut expected = vec![old.key.clone(), fresh.clone()];
    expected.sort_unstable();
    assert_eq!(
        listed, expected,
        "{backend}: the user's sessions after migrating"
    );
    let reloaded = again.load(&old.key).await.expect("load").expect("live");
    assert_eq!(reloaded.owner, Some(owner.clone()), "{backend}: the owner");
    assert_eq!(reloaded.data, old.data, "{backend}: the data after binding");
    assert_eq!(
        again.delete_many(&expected).await.expect("delete_many"),
        2,
        "{backend}: delete_many on the migrated table"
    );
    assert_eq!(again.user_index_len(&owner.user).await.expect("len"), 0);

    // The lease table, which the earlier version did not have, was created on open: a
    // lock taken through one store holds for the other.
    assert!(
        first.capabilities().lock,
        "{backend}: the migrated store keeps locks"
    );
    let (holder, other) = (
        LockToken::generate().expect("token"),
        LockToken::generate().expect("token"),
    );
    let ttl = Duration::from_secs(60);
    assert!(
        first.lock(&old.key, &holder, ttl).await.expect("lock"),
        "{backend}: locking a session of the migrated table"
    );
    assert!(
        !again.lock(&old.key, &other, ttl).await.expect("lock"),
        "{backend}: the other store was granted a held lock"
    );
    assert!(
        again.unlock(&old.key, &holder).await.expect("unlock"),
        "{backend}: the holder's unlock through the other store"
    );
}

/// Opens `CONCURRENT_OPENS` stores on one old table at once; all must succeed and see the
/// old session.
async fn check_concurrent_opens<S, F, Fut>(backend: &str, open: F, old: &OldSession) -> Vec<S>
where
    S: SessionStore,
    F: Fn() -> Fut,
    Fut: Future<Output = session_core::Result<S>>,
{
    let opens = (0..CONCURRENT_OPENS).map(|_| open());
    let mut stores = Vec::new();
    for opened in futures_util::future::join_all(opens).await {
        let store = opened.unwrap_or_else(|err| panic!("{backend}: concurrent open: {err:?}"));
        let loaded = store.load(&old.key).await.expect("load");
        assert_eq!(
            loaded.map(|record| record.data),
            Some(old.data.clone()),
            "{backend}: the old session after concurrent migrations"
        );
        stores.push(store);
    }
    println!(
        "figure: {backend} | old table, {CONCURRENT_OPENS} stores opening it at once | \
         every migration succeeded, the old session loads through each"
    );
    stores
}

#[cfg(feature = "postgres")]
mod postgres {
    use session_db::sqlx::{self, PgPool};
    use session_db::{DbOptions, PostgresStore};

    use super::*;

    pub(super) fn trials() -> Vec<Trial> {
        vec![
            Trial::tokio(
                "postgres::old_table_is_migrated_in_place",
                old_table_is_migrated_in_place,
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

    /// The table as the crate created it before the user index, holding `old`.
    async fn old_table(admin: &PgPool, prefix: &str, old: &OldSession) {
        let table = format!("\"{prefix}session\"");
        for ddl in [
            format!(
                "CREATE TABLE IF NOT EXISTS {table} (\
                 id BIGSERIAL PRIMARY KEY, \
                 cookie VARCHAR(64) NOT NULL UNIQUE, \
                 data BYTEA NOT NULL, \
                 expire BIGINT NOT NULL, \
                 version BIGINT NOT NULL DEFAULT 0)"
            ),
            format!("CREATE INDEX IF NOT EXISTS \"{prefix}session_expire\" ON {table} (expire)"),
        ] {
            sqlx::query(&ddl).execute(admin).await.expect("old DDL");
        }
        sqlx::query(&format!(
            "INSERT INTO {table} (cookie, data, expire, version) VALUES ($1, $2, $3, 0)"
        ))
        .bind(old.key.as_str())
        .bind(old.blob.as_slice())
        .bind(old.expire)
        .execute(admin)
        .await
        .expect("old session");
    }

    fn open(prefix: &str) -> impl Future<Output = session_core::Result<PostgresStore>> {
        let mut options = DbOptions::new(url());
        options.prefix = prefix.to_owned();
        options.max_connections = 2;
        async move { PostgresStore::connect(&options).await }
    }

    async fn old_table_is_migrated_in_place() -> TestResult {
        let admin = PgPool::connect(&url()).await.map_err(|err| {
            common::unreachable(&format!("PostgreSQL at {}", common::redacted(&url())), &err)
        })?;
        let (prefix, old) = (common::random_prefix(), old_session());
        old_table(&admin, &prefix, &old).await;
        let first = open(&prefix).await.expect("first open migrates");
        let again = open(&prefix).await.expect("second open changes nothing");
        check_migrated("postgres", Arc::new(first.clone()), Arc::new(again), &old).await;

        // The listing's statement goes through the partial index (sequential scans off, so
        // a table this small cannot hide whether the index is usable at all).
        let mut connection = admin.acquire().await.expect("connection");
        sqlx::query("SET enable_seqscan = off")
            .execute(&mut *connection)
            .await
            .expect("set");
        let plan: Vec<String> = sqlx::query_scalar(&format!(
            "EXPLAIN SELECT cookie FROM {} WHERE user_id = 'ada' AND expire > 0",
            first.table()
        ))
        .fetch_all(&mut *connection)
        .await
        .expect("explain");
        let plan = plan.join("\n");
        assert!(
            plan.contains(&format!("{prefix}session_user")),
            "postgres: the listing does not use the user index:\n{plan}"
        );
        drop(connection);

        let (racing, racing_old) = (common::random_prefix(), old_session());
        old_table(&admin, &racing, &racing_old).await;
        let stores = check_concurrent_opens("postgres", || open(&racing), &racing_old).await;
        for store in stores {
            store.pool().close().await;
        }
        for prefix in [&prefix, &racing] {
            let drop =
                format!("DROP TABLE IF EXISTS \"{prefix}session\", \"{prefix}session_locks\"");
            sqlx::query(&drop).execute(&admin).await.expect("drop");
        }
        first.pool().close().await;
        admin.close().await;
        Ok(())
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use session_db::sqlx::{self, MySqlPool, Row};
    use session_db::{DbOptions, MySqlStore};

    use super::*;

    pub(super) fn trials() -> Vec<Trial> {
        vec![
            Trial::tokio(
                "mysql::old_table_is_migrated_in_place",
                old_table_is_migrated_in_place,
            )
            .multi_thread(2),
        ]
    }

    fn url() -> String {
        common::env_url("SESSION_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
    }

    /// The table as the crate created it before the user index, holding `old`.
    async fn old_table(admin: &MySqlPool, prefix: &str, old: &OldSession) {
        let table = format!("`{prefix}session`");
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (\
             `id` BIGINT NOT NULL AUTO_INCREMENT, \
             `cookie` VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, \
             `data` LONGBLOB NOT NULL, \
             `expire` BIGINT NOT NULL, \
             `version` BIGINT NOT NULL DEFAULT 0, \
             PRIMARY KEY (`id`), \
             UNIQUE KEY `{prefix}session_cookie` (`cookie`), \
             KEY `{prefix}session_expire` (`expire`)\
             ) ENGINE=InnoDB"
        ))
        .execute(admin)
        .await
        .expect("old DDL");
        sqlx::query(&format!(
            "INSERT INTO {table} (cookie, data, expire, version) VALUES (?, ?, ?, 0)"
        ))
        .bind(old.key.as_str())
        .bind(old.blob.as_slice())
        .bind(old.expire)
        .execute(admin)
        .await
        .expect("old session");
    }

    fn open(prefix: &str) -> impl Future<Output = session_core::Result<MySqlStore>> {
        let mut options = DbOptions::new(url());
        options.prefix = prefix.to_owned();
        options.max_connections = 2;
        async move { MySqlStore::connect(&options).await }
    }

    async fn old_table_is_migrated_in_place() -> TestResult {
        let admin = MySqlPool::connect(&url()).await.map_err(|err| {
            common::unreachable(&format!("MariaDB at {}", common::redacted(&url())), &err)
        })?;
        let (prefix, old) = (common::random_prefix(), old_session());
        old_table(&admin, &prefix, &old).await;
        let first = open(&prefix).await.expect("first open migrates");
        let again = open(&prefix).await.expect("second open changes nothing");
        check_migrated("mysql", Arc::new(first.clone()), Arc::new(again), &old).await;

        let explain = sqlx::query(&format!(
            "EXPLAIN SELECT cookie FROM {} WHERE user_id = 'ada' AND expire + 0 > 0",
            first.table()
        ))
        .fetch_one(&admin)
        .await
        .expect("explain");
        let key = explain
            .try_get::<Option<Vec<u8>>, _>("key")
            .expect("the key EXPLAIN names")
            .map(|key| String::from_utf8_lossy(&key).into_owned());
        assert_eq!(
            key,
            Some(format!("{prefix}session_user")),
            "mysql: the index the listing uses"
        );

        let (racing, racing_old) = (common::random_prefix(), old_session());
        old_table(&admin, &racing, &racing_old).await;
        let stores = check_concurrent_opens("mysql", || open(&racing), &racing_old).await;
        for store in stores {
            store.pool().close().await;
        }
        for prefix in [&prefix, &racing] {
            let drop = format!("DROP TABLE IF EXISTS `{prefix}session`, `{prefix}session_locks`");
            sqlx::query(&drop).execute(&admin).await.expect("drop");
        }
        first.pool().close().await;
        admin.close().await;
        Ok(())
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::path::Path;

    use session_db::sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
    use session_db::sqlx::{self, Row};
    use session_db::{DbOptions, SqliteStore};

    use super::*;

    pub(super) fn trials() -> Vec<Trial> {
        vec![
            Trial::tokio(
                "sqlite::old_table_is_migrated_in_place",
                old_table_is_migrated_in_place,
            )
            .multi_thread(2),
        ]
    }

    /// The table as the crate created it before the user index, holding `old`, in a new
    /// database file at `file`.
    async fn old_table(file: &Path, prefix: &str, old: &OldSession) {
        let connect = SqliteConnectOptions::new()
            .filename(file)
            .create_if_missing(true);
        let admin = SqlitePool::connect_with(connect).await.expect("open");
        let table = format!("\"{prefix}session\"");
        for ddl in [
            format!(
                "CREATE TABLE IF NOT EXISTS {table} (\
                 id INTEGER PRIMARY KEY AUTOINCREMENT, \
                 cookie TEXT NOT NULL UNIQUE, \
                 data BLOB NOT NULL, \
                 expire INTEGER NOT NULL, \
                 version INTEGER NOT NULL DEFAULT 0)"
            ),
            format!("CREATE INDEX IF NOT EXISTS \"{prefix}session_expire\" ON {table} (expire)"),
        ] {
            sqlx::query(&ddl).execute(&admin).await.expect("old DDL");
        }
        sqlx::query(&format!(
            "INSERT INTO {table} (cookie, data, expire, version) VALUES (?1, ?2, ?3, 0)"
        ))
        .bind(old.key.as_str())
        .bind(old.blob.as_slice())
        .bind(old.expire)
        .execute(&admin)
        .await
        .expect("old session");
        admin.close().await;
    }

    fn open(file: &Path, prefix: &str) -> impl Future<Output = session_core::Result<SqliteStore>> {
        let mut options = DbOptions::new("sqlite:");
        options.prefix = prefix.to_owned();
        options.acquire_timeout = Duration::from_secs(30);
        let connect = SqliteConnectOptions::new().filename(file);
        async move { SqliteStore::connect_with(connect, &options).await }
    }

    async fn old_table_is_migrated_in_place() -> TestResult {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("sessions.db");
        let (prefix, old) = (common::random_prefix(), old_session());
        old_table(&file, &prefix, &old).await;
        let first = open(&file, &prefix).await.expect("first open migrates");
        let again = open(&file, &prefix)
            .await
            .expect("second open changes nothing");
        check_migrated("sqlite", Arc::new(first.clone()), Arc::new(again), &old).await;

        let plan = sqlx::query(&format!(
            "EXPLAIN QUERY PLAN SELECT cookie FROM {} WHERE user_id = ?1 AND expire > ?2",
            first.table()
        ))
        .bind("ada")
        .bind(0_i64)
        .fetch_all(first.pool())
        .await
        .expect("explain");
        let plan: Vec<String> = plan
            .iter()
            .map(|row| row.try_get::<String, _>("detail").expect("detail"))
            .collect();
        assert!(
            plan.iter()
                .any(|step| step.contains(&format!("INDEX {prefix}session_user"))),
            "sqlite: the listing does not use the user index: {plan:?}"
        );

        // Other processes on the same file: separate pools opening it at once.
        let racing_file = dir.path().join("racing.db");
        let (racing, racing_old) = (common::random_prefix(), old_session());
        old_table(&racing_file, &racing, &racing_old).await;
        let stores =
            check_concurrent_opens("sqlite", || open(&racing_file, &racing), &racing_old).await;
        for store in stores {
            store.pool().close().await;
        }
        first.pool().close().await;
        Ok(())
    }
}
