//! The PostgreSQL store: `<prefix>session` through a sqlx `PgPool`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use session_core::secrecy::ExposeSecret;
use session_core::{Error, Result, async_trait};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, Postgres};

use crate::lease::Connections;
use crate::options::validate_prefix;
use crate::sql::{
    Driver, Merge, Row, RowVersion, SqlCore, Statements, db_error, lenient, read_row,
    sql_session_store,
};
use crate::{Concurrency, DEFAULT_PREFIX, DbOptions};

const NAME: &str = "postgres";

/// Sessions in a PostgreSQL table, `<prefix>session` (`think_session` by default).
///
/// Build it from an existing pool with [`PostgresStore::new`], or from [`DbOptions`] with
/// [`PostgresStore::connect`]. Cloning is cheap and shares the pool.
///
/// ```no_run
/// # async fn run() -> session_core::Result<()> {
/// use session_db::PostgresStore;
/// use session_db::sqlx::postgres::PgPoolOptions;
///
/// let pool = PgPoolOptions::new()
///     .max_connections(20)
///     .connect("postgres://app@127.0.0.1/app")
///     .await
///     .map_err(|err| session_core::Error::backend("connect", err))?;
/// let store = PostgresStore::new(pool).with_prefix("app_")?;
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub struct PostgresStore {
    core: SqlCore<PgDriver>,
}

#[derive(Clone)]
pub(crate) struct PgDriver {
    connections: Arc<Connections<Postgres>>,
    table: String,
    sql: Statements,
}

impl PostgresStore {
    /// A store on `pool` with the default prefix (`think_session`). Call
    /// [`migrate`](Self::migrate) if the table may not exist yet.
    ///
    /// The pool may serve the application too, so the store borrows a connection for each
    /// statement and gives it back; sqlx then pings it before anyone reuses it, a second
    /// round trip per statement. A store from `connect` keeps its connections instead.
    pub fn new(pool: PgPool) -> Self {
        Self::on(Connections::shared(pool))
    }

    fn on(connections: Connections<Postgres>) -> Self {
        let table = quote(DEFAULT_PREFIX);
        let sql = statements(&table, DEFAULT_PREFIX);
        Self {
            core: SqlCore::new(PgDriver {
                connections: Arc::new(connections),
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
        let connect = PgConnectOptions::from_str(options.url.expose_secret())
            .map_err(|err| Error::config("adapter.db.url", err))?;
        let pool = PgPoolOptions::new()
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
    /// docs). Safe to run concurrently from several processes.
    ///
    /// # Errors
    /// Backend errors, for example when the user may not create tables.
    pub async fn migrate(&self) -> Result<()> {
        self.core.migrate().await
    }

    /// The pool the store opens its connections from. A store from `connect` keeps the
    /// connections it used outside the pool: closing the pool makes the store fail with
    /// "pool closed" from its next call on, which also closes the connections it kept.
    pub fn pool(&self) -> &PgPool {
        self.core.driver.connections.pool()
    }

    /// The quoted table name.
    pub fn table(&self) -> &str {
        &self.core.driver.table
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("table", &self.core.driver.table)
            .field("concurrency", &self.core.concurrency)
            .finish_non_exhaustive()
    }
}

sql_session_store!(PostgresStore);

fn quote(prefix: &str) -> String {
    format!("\"{prefix}session\"")
}

fn statements(table: &str, prefix: &str) -> Statements {
    let index = format!("\"{prefix}session_expire\"");
    let live = "cookie = $1 AND (expire > $2 OR expire IS NULL)";
    Statements {
        fetch: format!("SELECT id, data, expire, version FROM {table} WHERE {live}"),
        fetch_locked: format!(
            "SELECT id, data, expire, version FROM {table} WHERE {live} FOR UPDATE"
        ),
        insert: format!(
            "INSERT INTO {table} (cookie, data, expire, version) VALUES ($1, $2, $3, 0) \
             ON CONFLICT (cookie) DO UPDATE \
             SET data = EXCLUDED.data, expire = EXCLUDED.expire, \
                 version = COALESCE({table}.version, 0) + 1 \
             WHERE {table}.expire <= $4 OR {table}.expire IS NULL"
        ),
        compare_and_set: format!(
            "UPDATE {table} SET data = $1, expire = $2, version = version + 1 \
             WHERE id = $3 AND version = $4 AND cookie = $5 \
               AND (expire > $6 OR expire IS NULL)"
        ),
        write_locked: format!(
            "UPDATE {table} SET data = $1, expire = $2, version = COALESCE(version, 0) + 1 \
             WHERE id = $3"
        ),
        touch: format!(
            "UPDATE {table} SET expire = $1, version = COALESCE(version, 0) + 1 \
             WHERE cookie = $2 AND expire > $3"
        ),
        delete: format!("DELETE FROM {table} WHERE cookie = $1 RETURNING expire"),
        // SKIP LOCKED: a row a request is updating right now is left for the next run
        // rather than making gc wait for it.
        gc: format!(
            "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} \
             WHERE expire <= $1 OR expire IS NULL LIMIT $2 FOR UPDATE SKIP LOCKED)"
        ),
        migrate: vec![
            // Concurrent CREATE TABLE IF NOT EXISTS can fail in PostgreSQL; a transaction
            // advisory lock on the table name makes concurrent migrations take turns.
            format!("SELECT pg_advisory_xact_lock(hashtext('session-db:{prefix}session'))"),
            format!(
                "CREATE TABLE IF NOT EXISTS {table} (\
                 id BIGSERIAL PRIMARY KEY, \
                 cookie VARCHAR(64) NOT NULL UNIQUE, \
                 data BYTEA NOT NULL, \
                 expire BIGINT NOT NULL, \
                 version BIGINT NOT NULL DEFAULT 0)"
            ),
            format!("CREATE INDEX IF NOT EXISTS {index} ON {table} (expire)"),
        ],
    }
}

#[async_trait]
impl Driver for PgDriver {
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
        let fail = |err| db_error(NAME, "create", err);
        let mut lease = self.connections.lease().await.map_err(fail)?;
        let done = sqlx::query(&self.sql.insert)
            .bind(cookie)
            .bind(data)
            .bind(expire)
            .bind(now)
            .execute(lease.connection())
            .await
            .map_err(fail)?;
        lease.done();
        Ok(done.rows_affected() == 1)
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
        let row = sqlx::query(&self.sql.delete)
            .bind(cookie)
            .fetch_optional(lease.connection())
            .await
            .map_err(fail)?;
        lease.done();
        let expire = row.and_then(|row| lenient::<_, i64>(&row, "expire"));
        Ok(expire.is_some_and(|expire| expire > now))
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
        let mut tx = lease.connection().begin().await.map_err(fail)?;
        for statement in &self.sql.migrate {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
        lease.done();
        Ok(())
    }
}
