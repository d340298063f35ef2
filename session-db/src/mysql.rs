//! The MySQL / MariaDB store: `<prefix>session` through a sqlx `MySqlPool`.

use sqlx::mysql::{MySql, MySqlPool, MySqlQueryResult};

use crate::dialect::{CreateAndDelete, Dialect, Statements, sql_store};

sql_store! {
    /// Sessions in a MySQL or MariaDB table, `<prefix>session` (`think_session` by default).
    ///
    /// Build it from an existing pool with [`MySqlStore::new`], or from
    /// [`DbOptions`](crate::DbOptions) with [`MySqlStore::connect`]. Cloning is cheap and
    /// shares the pool.
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
    #[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
    pub struct MySqlStore(Table<MySql>, MySqlPool);
}

impl Dialect for MySql {
    const BACKEND: &'static str = "mysql";

    const ROWS_AFFECTED: fn(&MySqlQueryResult) -> u64 = MySqlQueryResult::rows_affected;

    // DDL commits implicitly in MySQL: no transaction around it.
    const TRANSACTIONAL_DDL: bool = false;

    fn statements(prefix: &str) -> Statements {
        let table = format!("`{prefix}session`");
        // `expire + 0` in the UPDATE and DELETE statements that find their row by cookie.
        // A single-table UPDATE or DELETE picks its index by estimated cost, and EXPLAIN
        // shows it range-scanning the `expire` index instead of the cookie's whenever that
        // range looks as small as one row: for `expire > ?` when at most one row is live,
        // for `expire <= ?` (`delete_dead`) when no row is dead, at any table size. The
        // scan's next-key locks then cover other sessions' rows and the gap where each new
        // session's expiry goes, so concurrent writers to unrelated rows deadlock (the
        // conformance case `torture_cycle_id_racing_delete_never_resurrects` fails without
        // it). `expire + 0` cannot use the index, so the unique cookie finds the row. The
        // SELECTs need no such hint: an equality on the unique `cookie` makes them a
        // constant lookup (EXPLAIN: `const`) whatever the expiry condition.
        let live = "cookie = ? AND (expire > ? OR expire IS NULL)";
        Statements {
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
            fetch: format!("SELECT id, data, expire, version FROM {table} WHERE {live}"),
            fetch_locked: format!(
                "SELECT id, data, expire, version FROM {table} WHERE {live} FOR UPDATE"
            ),
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
            create_and_delete: CreateAndDelete::DeadRowApart {
                delete_dead: format!(
                    "DELETE FROM {table} WHERE cookie = ? AND (expire + 0 <= ? OR expire IS NULL)"
                ),
                insert: format!(
                    "INSERT INTO {table} (cookie, data, expire, version) VALUES (?, ?, ?, 0)"
                ),
                delete_live: format!("DELETE FROM {table} WHERE cookie = ? AND expire + 0 > ?"),
            },
            gc: format!("DELETE FROM {table} WHERE expire <= ? OR expire IS NULL LIMIT ?"),
            table,
        }
    }
}
