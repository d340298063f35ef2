//! The MySQL / MariaDB store: `<prefix>session` through a sqlx `MySqlPool`.

use session_core::{Hint, MAX_LABEL_LEN, MAX_USER_ID_LEN, SetupProblem};
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlDatabaseError, MySqlPool, MySqlQueryResult};

use crate::dialect::{
    CreateAndDelete, Dialect, LockStatements, Statements, Unlock, Upgrade, sql_store,
};
use crate::hints;
use crate::sql::HEAD_LEN;

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
    migrate: "Safe to run concurrently from several processes: a change another process \
              made meanwhile is taken as made."
}

/// The insert id the `lock` statement reports when it took over the row at the key.
const GRANTED: u64 = 2;
/// The insert id the `lock` statement reports when it kept another token's lease.
const REFUSED: u64 = 1;

impl Dialect for MySql {
    const BACKEND: &'static str = "mysql";

    const SERVER: &'static str = "MySQL/MariaDB";

    const ROWS_AFFECTED: fn(&MySqlQueryResult) -> u64 = MySqlQueryResult::rows_affected;

    // DDL commits implicitly in MySQL: no transaction around it.
    const TRANSACTIONAL_DDL: bool = false;

    // A prepared statement counts its placeholders in 16 bits.
    const MAX_PARAMS: usize = u16::MAX as usize;

    /// The `lock` statement inserted the lease (insert id 0, one row) or took over the
    /// row (insert id [`GRANTED`]); [`REFUSED`] means the row was kept.
    fn lock_granted(done: &MySqlQueryResult) -> bool {
        match done.last_insert_id() {
            GRANTED => true,
            0 => done.rows_affected() == 1,
            _ => false,
        }
    }

    fn already_applied(err: &sqlx::Error) -> bool {
        // ER_DUP_FIELDNAME, ER_DUP_KEYNAME: the column or index exists.
        err.as_database_error()
            .and_then(|db| db.try_downcast_ref::<MySqlDatabaseError>())
            .is_some_and(|db| matches!(db.number(), 1060 | 1061))
    }

    fn setup_hint(err: &sqlx::Error, connect: &MySqlConnectOptions) -> Option<Hint> {
        let address = Self::address(connect);
        let user = connect.get_username();
        let db = match err {
            sqlx::Error::Io(io) => return hints::io_hint(io, Self::SERVER, &address),
            sqlx::Error::Database(db) => db.try_downcast_ref::<MySqlDatabaseError>()?,
            _ => return None,
        };
        let database = connect.get_database().unwrap_or("<database>");
        let grant = format!(
            "`GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX ON {database}.* TO \
             '{user}'@'%'`"
        );
        Some(match db.number() {
            // ER_ACCESS_DENIED_ERROR: wrong password, or no such user for this host.
            1045 => hints::authentication(Self::SERVER, user, &address),
            // ER_DBACCESS_DENIED_ERROR: the login worked, the database is not the user's.
            1044 => Hint::new(
                SetupProblem::Privilege,
                format!(
                    "the user `{user}` may not use database `{database}`: grant it with {grant}"
                ),
            ),
            // ER_TABLEACCESS_DENIED_ERROR, ER_COLUMNACCESS_DENIED_ERROR.
            1142 | 1143 => Hint::new(
                SetupProblem::Privilege,
                format!(
                    "the user `{user}` lacks a privilege on the store's tables: grant it with \
                     {grant}, or create the tables as another user from the DDL in \
                     session-db's docs and set `adapter.db.migrate = false` (the store then \
                     needs SELECT, INSERT, UPDATE and DELETE only)"
                ),
            ),
            // ER_BAD_DB_ERROR.
            1049 => hints::missing_database(database),
            // ER_CON_COUNT_ERROR.
            1040 => Hint::new(
                SetupProblem::Other,
                format!(
                    "{} at {address} has no connection slot left: lower \
                     `adapter.db.max_connections`, or raise the server's `max_connections`",
                    Self::SERVER
                ),
            ),
            _ => return None,
        })
    }

    fn address(connect: &MySqlConnectOptions) -> String {
        hints::address(
            connect.get_host(),
            connect.get_port(),
            connect.get_socket().map(|socket| socket.as_path()),
        )
    }

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
        // `user_id` is binary, so it compares byte for byte: a `_bin` collation would pad,
        // and find the sessions of "ada " for "ada". Columns of a binary type or collation
        // reach sqlx flagged binary, which it will not decode as text: the SELECTs convert
        // them.
        let user_column = format!("VARBINARY({MAX_USER_ID_LEN}) NULL");
        let label_column = format!("VARCHAR({MAX_LABEL_LEN}) CHARACTER SET utf8mb4 NULL");
        let columns = "id, data, expire, version, CONVERT(user_id USING utf8mb4) AS user_id, label";
        let user_index = format!("{prefix}session_user");
        let locks = format!("`{prefix}session_locks`");
        // The catalog row of a column or an index of the table, where it has one.
        let catalog = |view: &str, field: &str, name: &str| {
            format!(
                "SELECT 1 FROM information_schema.{view} WHERE TABLE_SCHEMA = DATABASE() \
                 AND TABLE_NAME = '{prefix}session' AND {field} = '{name}' LIMIT 1"
            )
        };
        Statements {
            migrate: vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {table} (\
                     `id` BIGINT NOT NULL AUTO_INCREMENT, \
                     `cookie` VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, \
                     `data` LONGBLOB NOT NULL, \
                     `expire` BIGINT NOT NULL, \
                     `version` BIGINT NOT NULL DEFAULT 0, \
                     `user_id` {user_column}, \
                     `label` {label_column}, \
                     PRIMARY KEY (`id`), \
                     UNIQUE KEY `{prefix}session_cookie` (`cookie`), \
                     KEY `{prefix}session_expire` (`expire`), \
                     KEY `{user_index}` (`user_id`)\
                     ) ENGINE=InnoDB"
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS {locks} (\
                     `key` VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, \
                     `token` VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, \
                     `expires_at` BIGINT NOT NULL, \
                     PRIMARY KEY (`key`)\
                     ) ENGINE=InnoDB"
                ),
            ],
            // Checked first, since MySQL has no ADD COLUMN IF NOT EXISTS (MariaDB has); a
            // concurrent migration that wins the race makes the change fail as a duplicate,
            // which `already_applied` accepts.
            upgrades: vec![
                Upgrade {
                    present: catalog("COLUMNS", "COLUMN_NAME", "user_id"),
                    apply: format!("ALTER TABLE {table} ADD COLUMN `user_id` {user_column}"),
                },
                Upgrade {
                    present: catalog("COLUMNS", "COLUMN_NAME", "label"),
                    apply: format!("ALTER TABLE {table} ADD COLUMN `label` {label_column}"),
                },
                Upgrade {
                    present: catalog("STATISTICS", "INDEX_NAME", &user_index),
                    apply: format!("ALTER TABLE {table} ADD KEY `{user_index}` (`user_id`)"),
                },
            ],
            columns: format!(
                "SELECT CONVERT(COLUMN_NAME USING utf8mb4) AS name FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{prefix}session'"
            ),
            fetch: format!("SELECT {columns} FROM {table} WHERE {live}"),
            fetch_locked: format!("SELECT {columns} FROM {table} WHERE {live} FOR UPDATE"),
            compare_and_set_and_unlock: None,
            compare_and_set: format!(
                "UPDATE {table} SET data = ?, expire = ?, user_id = ?, label = ?, \
                     version = version + 1 \
                 WHERE id = ? AND version = ? AND cookie = ? \
                   AND (expire + 0 > ? OR expire IS NULL)"
            ),
            write_locked: format!(
                "UPDATE {table} SET data = ?, expire = ?, user_id = ?, label = ?, \
                     version = COALESCE(version, 0) + 1 \
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
                    "INSERT INTO {table} (cookie, data, expire, user_id, label, version) \
                     VALUES (?, ?, ?, ?, ?, 0)"
                ),
                delete_live: format!("DELETE FROM {table} WHERE cookie = ? AND expire + 0 > ?"),
            },
            gc: format!("DELETE FROM {table} WHERE expire <= ? OR expire IS NULL LIMIT ?"),
            // `expire + 0` here too: the `user_id` index is the narrow one (a user's
            // sessions, against every live session for `expire`), and the hint keeps the
            // optimizer from weighing the other.
            list: format!(
                "SELECT CONVERT(cookie USING utf8mb4) AS cookie, SUBSTRING(data, 1, {HEAD_LEN}) \
                 AS head, expire, label FROM {table} WHERE user_id = ? AND expire + 0 > ?"
            ),
            count_bound: format!("SELECT COUNT(*) AS entries FROM {table} WHERE user_id = ?"),
            delete_many: format!("DELETE FROM {table} WHERE expire + 0 > ? AND cookie IN ("),
            locks: LockStatements {
                // `ON DUPLICATE KEY UPDATE` applies its assignments left to right, each
                // seeing the ones before. `token` goes first, judged on the row as it was
                // (lapsed, or this token's); `expires_at` then follows it: the token is
                // this one's exactly when the lease was granted (a refusal means it was
                // another's, and kept). Whether it was granted is not in the affected
                // rows: sqlx connects with CLIENT_FOUND_ROWS, which counts an insert and
                // an unchanged row (a refusal) both as 1. So the grant is passed back in
                // the OK packet's insert id: `LAST_INSERT_ID(n)` sets it to n (the table
                // has no AUTO_INCREMENT, so an insert reports 0); see `lock_granted`.
                // Checked against MariaDB 10.11 statement by statement: insert 0, refusal
                // 1, take-over 2, also for a take-over that leaves the row as it was (the
                // holder asking again within the millisecond), which reports 1 affected
                // row like a refusal. The connection's `LAST_INSERT_ID()` is left at 1 or
                // 2; nothing else of the store reads it.
                lock: format!(
                    "INSERT INTO {locks} (`key`, `token`, `expires_at`) VALUES (?, ?, ?) \
                     ON DUPLICATE KEY UPDATE \
                     `token` = IF(LAST_INSERT_ID(IF(`expires_at` <= ? \
                         OR `token` = VALUES(`token`), {GRANTED}, {REFUSED})) = {GRANTED}, \
                         VALUES(`token`), `token`), \
                     `expires_at` = IF(`token` = VALUES(`token`), \
                         VALUES(`expires_at`), `expires_at`)"
                ),
                renew: format!(
                    "UPDATE {locks} SET `expires_at` = ? \
                     WHERE `key` = ? AND `token` = ? AND `expires_at` > ?"
                ),
                unlock: Unlock::LiveThenLapsed {
                    delete_live: format!(
                        "DELETE FROM {locks} WHERE `key` = ? AND `token` = ? AND `expires_at` > ?"
                    ),
                    delete_any: format!("DELETE FROM {locks} WHERE `key` = ? AND `token` = ?"),
                },
                gc: format!("DELETE FROM {locks} WHERE `expires_at` <= ?"),
                table: locks,
            },
            table,
        }
    }
}
