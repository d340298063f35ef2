//! The PostgreSQL store: `<prefix>session` through a sqlx `PgPool`.

use session_core::{Hint, MAX_LABEL_LEN, MAX_USER_ID_LEN, SetupProblem};
use sqlx::postgres::{PgConnectOptions, PgPool, PgQueryResult, Postgres};

use crate::dialect::{
    CreateAndDelete, Dialect, LockStatements, Statements, Unlock, Upgrade, sql_store,
};
use crate::hints;
use crate::sql::HEAD_LEN;

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

    const SERVER: &'static str = "PostgreSQL";

    const ROWS_AFFECTED: fn(&PgQueryResult) -> u64 = PgQueryResult::rows_affected;

    // The protocol counts bind parameters in 16 bits.
    const MAX_PARAMS: usize = u16::MAX as usize;

    fn push_param(sql: &mut String, n: usize) {
        sql.push('$');
        sql.push_str(&n.to_string());
    }

    fn setup_hint(err: &sqlx::Error, connect: &PgConnectOptions) -> Option<Hint> {
        let address = Self::address(connect);
        let user = connect.get_username();
        let db = match err {
            sqlx::Error::Io(io) => return hints::io_hint(io, Self::SERVER, &address),
            sqlx::Error::Database(db) => db,
            _ => return None,
        };
        let database = connect.get_database().unwrap_or(user);
        Some(match db.code().as_deref()? {
            // invalid_password, invalid_authorization_specification (no such role, no
            // pg_hba.conf entry).
            "28P01" | "28000" => hints::authentication(Self::SERVER, user, &address),
            "3D000" => hints::missing_database(database),
            // insufficient_privilege: PostgreSQL 15 and later grant CREATE on `public`
            // to the database owner only, so a new role meets this at the first DDL.
            "42501" => Hint::new(
                SetupProblem::Privilege,
                format!(
                    "the role `{user}` may not create or change the store's tables in \
                     database `{database}`: grant it the privilege (for the schema `public`: \
                     `GRANT CREATE ON SCHEMA public TO \"{user}\"`, which PostgreSQL 15 and \
                     later no longer give every role), or create the tables as their owner \
                     from the DDL in session-db's docs and set `adapter.db.migrate = false`"
                ),
            ),
            // too_many_connections.
            "53300" => Hint::new(
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

    fn address(connect: &PgConnectOptions) -> String {
        hints::address(
            connect.get_host(),
            connect.get_port(),
            connect.get_socket().map(|socket| socket.as_path()),
        )
    }

    fn statements(prefix: &str) -> Statements {
        let table = format!("\"{prefix}session\"");
        let index = format!("\"{prefix}session_expire\"");
        let user_index = format!("\"{prefix}session_user\"");
        let locks = format!("\"{prefix}session_locks\"");
        let live = "cookie = $1 AND (expire > $2 OR expire IS NULL)";
        let columns = "id, data, expire, version, user_id, label";
        // The catalog row of a column of the table, where it has one.
        let column = |name: &str| {
            format!(
                "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('{table}') \
                 AND attname = '{name}' AND NOT attisdropped"
            )
        };
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
                     version BIGINT NOT NULL DEFAULT 0, \
                     user_id VARCHAR({MAX_USER_ID_LEN}), \
                     label VARCHAR({MAX_LABEL_LEN}))"
                ),
                format!("CREATE INDEX IF NOT EXISTS {index} ON {table} (expire)"),
                // Unlogged: a lease is written and deleted by every locked request, and is
                // worth nothing after a crash or on a promoted standby (where the table is
                // empty). Skipping the WAL keeps the lock off the commit's fsync; a holder
                // whose lease vanished that way is still fenced by the record's revision.
                format!(
                    "CREATE UNLOGGED TABLE IF NOT EXISTS {locks} (\
                     \"key\" VARCHAR(64) PRIMARY KEY, \
                     token TEXT NOT NULL, \
                     expires_at BIGINT NOT NULL)"
                ),
            ],
            // Each checked first: `ALTER TABLE` takes the table's exclusive lock even when
            // IF NOT EXISTS makes it a no-op, and every process start runs this. Adding a
            // nullable column without a default rewrites nothing. The index is partial:
            // unbound sessions, most of them, have no entry, so writing one costs what it
            // did before the index existed.
            upgrades: vec![
                Upgrade {
                    present: column("user_id"),
                    apply: format!(
                        "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS user_id \
                         VARCHAR({MAX_USER_ID_LEN})"
                    ),
                },
                Upgrade {
                    present: column("label"),
                    apply: format!(
                        "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS label \
                         VARCHAR({MAX_LABEL_LEN})"
                    ),
                },
                Upgrade {
                    present: format!("SELECT 1 WHERE to_regclass('{user_index}') IS NOT NULL"),
                    apply: format!(
                        "CREATE INDEX IF NOT EXISTS {user_index} ON {table} (user_id) \
                         WHERE user_id IS NOT NULL"
                    ),
                },
            ],
            columns: format!(
                "SELECT attname::text AS name FROM pg_attribute \
                 WHERE attrelid = to_regclass('{table}') AND attnum > 0 AND NOT attisdropped"
            ),
            fetch: format!("SELECT {columns} FROM {table} WHERE {live}"),
            fetch_locked: format!("SELECT {columns} FROM {table} WHERE {live} FOR UPDATE"),
            compare_and_set: format!(
                "UPDATE {table} SET data = $1, expire = $2, user_id = $3, label = $4, \
                     version = version + 1 \
                 WHERE id = $5 AND version = $6 AND cookie = $7 \
                   AND (expire > $8 OR expire IS NULL)"
            ),
            // The lease goes with the write only if the write happened: a refused write
            // leaves the request holding its lock, to merge or to fail as it must.
            compare_and_set_and_unlock: Some(format!(
                "WITH written AS (\
                   UPDATE {table} SET data = $1, expire = $2, user_id = $3, label = $4, \
                       version = version + 1 \
                   WHERE id = $5 AND version = $6 AND cookie = $7 \
                     AND (expire > $8 OR expire IS NULL) \
                   RETURNING 1), \
                 released AS (\
                   DELETE FROM {locks} WHERE \"key\" = $7 AND token = $9 \
                     AND EXISTS (SELECT 1 FROM written)) \
                 SELECT COUNT(*) AS written FROM written"
            )),
            write_locked: format!(
                "UPDATE {table} SET data = $1, expire = $2, user_id = $3, label = $4, \
                     version = COALESCE(version, 0) + 1 \
                 WHERE id = $5"
            ),
            touch: format!(
                "UPDATE {table} SET expire = $1, version = COALESCE(version, 0) + 1 \
                 WHERE cookie = $2 AND expire > $3"
            ),
            create_and_delete: CreateAndDelete::Upsert {
                upsert: format!(
                    "INSERT INTO {table} (cookie, data, expire, user_id, label, version) \
                 VALUES ($1, $2, $3, $4, $5, 0) \
                 ON CONFLICT (cookie) DO UPDATE \
                 SET data = EXCLUDED.data, expire = EXCLUDED.expire, \
                     user_id = EXCLUDED.user_id, label = EXCLUDED.label, \
                     version = COALESCE({table}.version, 0) + 1 \
                 WHERE {table}.expire <= $6 OR {table}.expire IS NULL"
                ),
                delete_returning: format!("DELETE FROM {table} WHERE cookie = $1 RETURNING expire"),
            },
            // SKIP LOCKED: a row a request is updating right now is left for the next run
            // rather than making gc wait for it.
            gc: format!(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} \
                 WHERE expire <= $1 OR expire IS NULL LIMIT $2 FOR UPDATE SKIP LOCKED)"
            ),
            list: format!(
                "SELECT cookie, substr(data, 1, {HEAD_LEN}) AS head, expire, label \
                 FROM {table} WHERE user_id = $1 AND expire > $2"
            ),
            count_bound: format!("SELECT COUNT(*) AS entries FROM {table} WHERE user_id = $1"),
            delete_many: format!("DELETE FROM {table} WHERE expire > $1 AND cookie IN ("),
            // The conflict makes the statement wait for a concurrent `lock` of the key and
            // then judge the row that one left: of concurrent attempts, one wins.
            locks: LockStatements {
                lock: format!(
                    "INSERT INTO {locks} (\"key\", token, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (\"key\") DO UPDATE \
                     SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at \
                     WHERE {locks}.expires_at <= $4 OR {locks}.token = EXCLUDED.token"
                ),
                renew: format!(
                    "UPDATE {locks} SET expires_at = $1 \
                     WHERE \"key\" = $2 AND token = $3 AND expires_at > $4"
                ),
                unlock: Unlock::Returning(format!(
                    "DELETE FROM {locks} WHERE \"key\" = $1 AND token = $2 RETURNING expires_at"
                )),
                gc: format!("DELETE FROM {locks} WHERE expires_at <= $1"),
                table: locks,
            },
            table,
        }
    }
}
