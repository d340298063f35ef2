//! The PostgreSQL store: `<prefix>session` through a sqlx `PgPool`.

use sqlx::postgres::{PgPool, PgQueryResult, Postgres};

use crate::dialect::{CreateAndDelete, Dialect, Statements, sql_store};

sql_store! {
    /// Sessions in a PostgreSQL table, `<prefix>session` (`think_session` by default).
    ///
    /// Build it from an existing pool with [`PostgresStore::new`], or from
    /// [`DbOptions`](crate::DbOptions) with [`PostgresStore::connect`]. Cloning is cheap and
    /// shares the pool.
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
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub struct PostgresStore(Table<Postgres>, PgPool);
    migrate: "Safe to run concurrently from several processes."
}

impl Dialect for Postgres {
    const BACKEND: &'static str = "postgres";

    const ROWS_AFFECTED: fn(&PgQueryResult) -> u64 = PgQueryResult::rows_affected;

    fn statements(prefix: &str) -> Statements {
        let table = format!("\"{prefix}session\"");
        let index = format!("\"{prefix}session_expire\"");
        let live = "cookie = $1 AND (expire > $2 OR expire IS NULL)";
        Statements {
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
            fetch: format!("SELECT id, data, expire, version FROM {table} WHERE {live}"),
            fetch_locked: format!(
                "SELECT id, data, expire, version FROM {table} WHERE {live} FOR UPDATE"
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
            create_and_delete: CreateAndDelete::Upsert {
                upsert: format!(
                    "INSERT INTO {table} (cookie, data, expire, version) VALUES ($1, $2, $3, 0) \
                 ON CONFLICT (cookie) DO UPDATE \
                 SET data = EXCLUDED.data, expire = EXCLUDED.expire, \
                     version = COALESCE({table}.version, 0) + 1 \
                 WHERE {table}.expire <= $4 OR {table}.expire IS NULL"
                ),
                delete_returning: format!("DELETE FROM {table} WHERE cookie = $1 RETURNING expire"),
            },
            // SKIP LOCKED: a row a request is updating right now is left for the next run
            // rather than making gc wait for it.
            gc: format!(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} \
                 WHERE expire <= $1 OR expire IS NULL LIMIT $2 FOR UPDATE SKIP LOCKED)"
            ),
            table,
        }
    }
}
