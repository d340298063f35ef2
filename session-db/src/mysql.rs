//! The MySQL / MariaDB store: `<prefix>session` through a sqlx `MySqlPool`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use session_core::secrecy::ExposeSecret;
use session_core::{Error, Result, async_trait};
use sqlx::Connection;
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions};

use crate::lease::Connections;
use crate::options::validate_prefix;
use crate::sql::{
    Driver, Merge, Row, RowVersion, SqlCore, Statements, db_error, read_row, sql_session_store,
};
use crate::{Concurrency, DEFAULT_PREFIX, DbOptions};

const NAME: &str = "mysql";

/// Sessions in a MySQL or MariaDB table, `<prefix>session` (`think_session` by default).
///
/// Build it from an existing pool with [`MySqlStore::new`], or from [`DbOptions`] with
/// [`MySqlStore::connect`]. Cloning is cheap and shares the pool.
///
/// ```no_run
/// # async fn run() -> session_core::Result<()> {
/// use session_db::MySqlStore;
/// use session_db::sqlx::mysql::MySqlPoolOptions;
///
/// let pool = MySqlPoolOptions::new()
///     .max_connections(20)
///     .connect("mysql://app@127.0.0.1/app")
///     .await
///     .map_err(|err| session_core::Error::backend("connect", err))?;
/// let store = MySqlStore::new(pool).with_prefix("app_")?;
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub struct MySqlStore {
    core: SqlCore<MySqlDriver>,
}

#[derive(Clone)]
pub(crate) struct MySqlDriver {
    connections: Arc<Connections<MySql>>,
    table: String,
    sql: Statements,
    delete_dead: String,
}

impl MySqlStore {
    /// A store on `pool` with the default prefix (`think_session`). Call
    /// [`migrate`](Self::migrate) if the table may not exist yet.
    ///
    /// The pool may serve the application too, so the store borrows a connection for each
    /// statement and gives it back; sqlx then pings it before anyone reuses it, a second
    /// round trip per statement. A store from `connect` keeps its connections instead.
    pub fn new(pool: MySqlPool) -> Self {
        Self::on(Connections::shared(pool))
    }

    fn on(connections: Connections<MySql>) -> Self {
        let table = quote(DEFAULT_PREFIX);
        let sql = statements(&table, DEFAULT_PREFIX);
        Self {
            core: SqlCore::new(MySqlDriver {
                connections: Arc::new(connections),
                delete_dead: delete_dead_statement(&table),
                table,
                sql,
            }),
        }
    }

    /// Uses table `<prefix>session` instead.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](session_core::ErrorKind::Config) if `prefix` is not an
    /// identifier (see [`DbOptions::prefix`]).
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self> {
        validate_prefix(prefix)?;
        self.core.driver.table = quote(prefix);
        self.core.driver.sql = statements(&self.core.driver.table, prefix);
        self.core.driver.delete_dead = delete_dead_statement(&self.core.driver.table);
        Ok(self)
    }

    /// Sets how concurrent change sets to one session are kept apart.
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: Concurrency) -> Self {
        self.core.concurrency = concurrency;
        self
    }

    /// Connects a pool as `options` say, and creates the table if `options.migrate`.
    ///
    /// The store owns that pool and keeps the connections it used (up to
    /// `options.max_connections`) between statements, so a statement costs one round
    /// trip: sqlx would ping every connection handed back to its pool. A connection whose
    /// statement failed is closed, and the next statement opens a fresh one.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](session_core::ErrorKind::Config) for a bad URL or prefix;
    /// backend errors if the server cannot be reached or the DDL fails.
    pub async fn connect(options: &DbOptions) -> Result<Self> {
        validate_prefix(&options.prefix)?;
        let connect = MySqlConnectOptions::from_str(options.url.expose_secret())
            .map_err(|err| Error::config("adapter.db.url", err))?;
        let pool = MySqlPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(options.test_before_acquire)
            .connect_with(connect)
            .await
            .map_err(|err| db_error(NAME, "connect", err))?;
        let connections = Connections::kept(pool, options.min_connections)
            .await
            .map_err(|err| db_error(NAME, "connect", err))?;
        let store = Self::on(connections)
            .with_prefix(&options.prefix)?
            .with_concurrency(options.concurrency);
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Creates the table and its `expire` index if they are missing (the DDL in the crate
    /// docs).
    ///
    /// # Errors
    /// Backend errors, for example when the user may not create tables.
    pub async fn migrate(&self) -> Result<()> {
        self.core.migrate().await
    }

    /// The pool the store opens its connections from. A store from `connect` keeps the
    /// connections it used outside the pool: closing the pool makes the store fail with
    /// "pool closed" from its next call on, which also closes the connections it kept.
    pub fn pool(&self) -> &MySqlPool {
        self.core.driver.connections.pool()
    }

    /// The quoted table name.
    pub fn table(&self) -> &str {
        &self.core.driver.table
    }
}

impl fmt::Debug for MySqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlStore")
            .field("table", &self.core.driver.table)
            .field("concurrency", &self.core.concurrency)
            .finish_non_exhaustive()
    }
}

sql_session_store!(MySqlStore);

fn quote(prefix: &str) -> String {
    format!("`{prefix}session`")
}

fn statements(table: &str, prefix: &str) -> Statements {
    // `expire + 0` in statements that find their row by cookie: on small tables the
    // optimizer otherwise range-scans the `expire` index, locking a range of it, which
    // makes concurrent writers to unrelated rows deadlock. The unique cookie finds the row.
    let live = "cookie = ? AND (expire > ? OR expire IS NULL)";
    Statements {
        fetch: format!("SELECT id, data, expire, version FROM {table} WHERE {live}"),
        fetch_locked: format!(
            "SELECT id, data, expire, version FROM {table} WHERE {live} FOR UPDATE"
        ),
        // A dead row at the cookie is deleted first (`delete_dead`); a live one makes this
        // fail with a duplicate key, which means "taken". (`ON DUPLICATE KEY UPDATE` cannot
        // tell "kept" from "inserted": sqlx sets CLIENT_FOUND_ROWS, which counts both as 1.)
        insert: format!("INSERT INTO {table} (cookie, data, expire, version) VALUES (?, ?, ?, 0)"),
        compare_and_set: format!(
            "UPDATE {table} SET data = ?, expire = ?, version = version + 1 \
             WHERE id = ? AND version = ? AND cookie = ? \
               AND (expire + 0 > ? OR expire IS NULL)"
        ),
        write_locked: format!(
            "UPDATE {table} SET data = ?, expire = ?, version = COALESCE(version, 0) + 1 \
             WHERE id = ?"
        ),
        touch: format!(
            "UPDATE {table} SET expire = ?, version = COALESCE(version, 0) + 1 \
             WHERE cookie = ? AND expire + 0 > ?"
        ),
        delete: format!("DELETE FROM {table} WHERE cookie = ? AND expire + 0 > ?"),
        gc: format!("DELETE FROM {table} WHERE expire <= ? OR expire IS NULL LIMIT ?"),
        migrate: vec![format!(
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
        )],
    }
}

/// MySQL has neither `ON CONFLICT ... WHERE` nor `RETURNING`: `create` and `delete`
/// remove a dead row at the cookie with this. Binds: cookie, now.
fn delete_dead_statement(table: &str) -> String {
    format!("DELETE FROM {table} WHERE cookie = ? AND (expire + 0 <= ? OR expire IS NULL)")
}

/// Whether `err` is a unique-key violation (a concurrent create won).
fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

impl MySqlDriver {
    /// Deletes the row at `cookie` if it is dead.
    async fn delete_dead(
        &self,
        connection: &mut MySqlConnection,
        cookie: &str,
        now: i64,
        operation: &'static str,
    ) -> Result<()> {
        sqlx::query(&self.delete_dead)
            .bind(cookie)
            .bind(now)
            .execute(connection)
            .await
            .map_err(|err| db_error(NAME, operation, err))?;
        Ok(())
    }
}

#[async_trait]
impl Driver for MySqlDriver {
    const NAME: &'static str = NAME;

    fn table(&self) -> &str {
        &self.table
    }

    async fn fetch(&self, cookie: &str, now: i64) -> Result<Option<Row>> {
        let fail = |err| db_error(NAME, "load", err);
        let mut lease = self.connections.lease().await.map_err(fail)?;
        let row = sqlx::query(&self.sql.fetch)
            .bind(cookie)
            .bind(now)
            .fetch_optional(lease.connection())
            .await
            .map_err(fail)?;
        lease.done();
        row.as_ref().map(read_row).transpose()
    }

    async fn insert(&self, cookie: &str, data: &[u8], expire: i64, now: i64) -> Result<bool> {
        let mut lease = self
            .connections
            .lease()
            .await
            .map_err(|err| db_error(NAME, "create", err))?;
        self.delete_dead(lease.connection(), cookie, now, "create")
            .await?;
        let inserted = sqlx::query(&self.sql.insert)
            .bind(cookie)
            .bind(data)
            .bind(expire)
            .execute(lease.connection())
            .await;
        match inserted {
            Ok(done) => {
                lease.done();
                Ok(done.rows_affected() == 1)
            }
            Err(err) if is_unique_violation(&err) => {
                lease.done();
                Ok(false)
            }
            Err(err) => Err(db_error(NAME, "create", err)),
        }
    }

    async fn compare_and_set(&self, row: RowVersion<'_>, data: &[u8], expire: i64) -> Result<bool> {
        let fail = |err| db_error(NAME, "update", err);
        let mut lease = self.connections.lease().await.map_err(fail)?;
        let done = sqlx::query(&self.sql.compare_and_set)
            .bind(data)
            .bind(expire)
            .bind(row.id)
            .bind(row.version)
            .bind(row.cookie)
            .bind(row.now)
            .execute(lease.connection())
            .await
            .map_err(fail)?;
        lease.done();
        Ok(done.rows_affected() == 1)
    }

    async fn update_locked(
        &self,
        cookie: &str,
        now: i64,
        expire: i64,
        merge: &Merge<'_>,
    ) -> Result<bool> {
        let fail = |err| db_error(NAME, "update", err);
        let mut lease = self.connections.lease().await.map_err(fail)?;
        let mut tx = lease.connection().begin().await.map_err(fail)?;
        let row = sqlx::query(&self.sql.fetch_locked)
            .bind(cookie)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(fail)?;
        // On an error below, the transaction and the lease drop: sqlx rolls back and tests
        // the connection before anyone uses it again.
        let Some(row) = row.as_ref().map(read_row).transpose()? else {
            tx.rollback().await.map_err(fail)?;
            lease.done();
            return Ok(false);
        };
        let data = merge(&row)?;
        sqlx::query(&self.sql.write_locked)
            .bind(data)
            .bind(expire)
            .bind(row.id)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        lease.done();
        Ok(true)
    }

    async fn touch(&self, cookie: &str, expire: i64, now: i64) -> Result<bool> {
        let fail = |err| db_error(NAME, "touch", err);
        let mut lease = self.connections.lease().await.map_err(fail)?;
        let done = sqlx::query(&self.sql.touch)
            .bind(expire)
            .bind(cookie)
            .bind(now)
            .execute(lease.connection())
            .await
            .map_err(fail)?;
        lease.done();
        Ok(done.rows_affected() > 0)
    }

    async fn delete(&self, cookie: &str, now: i64) -> Result<bool> {
        let fail = |err| db_error(NAME, "delete", err);
        let mut lease = self.connections.lease().await.map_err(fail)?;
        let done = sqlx::query(&self.sql.delete)
            .bind(cookie)
            .bind(now)
            .execute(lease.connection())
            .await
            .map_err(fail)?;
        if done.rows_affected() == 0 {
            // Nothing live was there; remove a dead remnant so the key is really gone.
            self.delete_dead(lease.connection(), cookie, now, "delete")
                .await?;
        }
        lease.done();
        Ok(done.rows_affected() > 0)
    }

    async fn gc_batch(&self, now: i64, limit: i64) -> Result<u64> {
        let fail = |err| db_error(NAME, "gc", err);
        let mut lease = self.connections.lease().await.map_err(fail)?;
        let done = sqlx::query(&self.sql.gc)
            .bind(now)
            .bind(limit)
            .execute(lease.connection())
            .await
            .map_err(fail)?;
        lease.done();
        Ok(done.rows_affected())
    }

    async fn migrate(&self) -> Result<()> {
        let fail = |err| db_error(NAME, "migrate", err);
        let mut lease = self.connections.lease().await.map_err(fail)?;
        // DDL commits implicitly in MySQL: no transaction around it.
        for statement in &self.sql.migrate {
            sqlx::query(statement)
                .execute(lease.connection())
                .await
                .map_err(fail)?;
        }
        lease.done();
        Ok(())
    }
}
