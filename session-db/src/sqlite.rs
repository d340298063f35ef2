//! The SQLite store: `<prefix>session` in a database file through a sqlx `SqlitePool`.

use std::path::Path;

use session_core::{Hint, Result, SetupProblem};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteQueryResult,
    SqliteSynchronous,
};

use crate::DbOptions;
use crate::dialect::{
    CreateAndDelete, Dialect, LockStatements, Statements, Unlock, Upgrade, sql_store,
};
use crate::sql::{HEAD_LEN, SqlCore};

/// SQLite's primary result codes the hints tell apart (the low byte of an extended code).
const SQLITE_READONLY: i64 = 8;
const SQLITE_CANTOPEN: i64 = 14;

sql_store! {
    /// Sessions in a SQLite table, `<prefix>session` (`think_session` by default).
    ///
    /// Build it from an existing pool with [`SqliteStore::new`], or from
    /// [`DbOptions`](crate::DbOptions) with [`SqliteStore::connect`]. Cloning is cheap and
    /// shares the pool.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use session_db::SqliteStore;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = SqliteStore::open(dir.path().join("sessions.db")).await?;
    /// assert_eq!(store.table(), "\"think_session\"");
    /// # Ok::<(), session_core::Error>(()) }).unwrap();
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub struct SqliteStore(Table<Sqlite>, SqlitePool);
    migrate: "Safe to run concurrently from several processes."
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file at `path`, with the defaults of
    /// [`DbOptions`], and creates the table.
    ///
    /// # Errors
    /// Backend errors if the file cannot be opened or created.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        Self::connect_with(connect, &DbOptions::new("sqlite:")).await
    }

    /// Connects as `options` say, with `connect` for the file, and creates the table if
    /// `options.migrate`. WAL journaling is switched on (readers never wait for writers),
    /// and `busy_timeout` is set to `options.acquire_timeout`, so concurrent writers wait
    /// for each other instead of failing with `SQLITE_BUSY`.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](session_core::ErrorKind::Config) for a bad prefix; backend
    /// errors if the file cannot be opened or the DDL fails.
    pub async fn connect_with(connect: SqliteConnectOptions, options: &DbOptions) -> Result<Self> {
        let core = SqlCore::connect_with(connect, options).await?;
        Ok(Self { core })
    }
}

impl Dialect for Sqlite {
    const BACKEND: &'static str = "sqlite";

    const SERVER: &'static str = "SQLite";

    const ROWS_AFFECTED: fn(&SqliteQueryResult) -> u64 = SqliteQueryResult::rows_affected;

    // A plain `BEGIN` takes the write lock only at the first write, and a transaction that
    // has read by then fails with `SQLITE_BUSY` instead of waiting when another writer got
    // there first; `BEGIN IMMEDIATE` takes the lock before the read.
    const BEGIN: Option<&'static str> = Some("BEGIN IMMEDIATE");

    // One writer at a time per database: the store's writers queue in process.
    const ONE_WRITER: bool = true;

    // SQLITE_MAX_VARIABLE_NUMBER's default since SQLite 3.32.
    const MAX_PARAMS: usize = 32_766;

    fn setup_hint(err: &sqlx::Error, connect: &SqliteConnectOptions) -> Option<Hint> {
        let sqlx::Error::Database(db) = err else {
            return None;
        };
        let code: i64 = db.code()?.parse().ok()?;
        let file = connect.get_filename();
        let shown = file.display();
        let folder = match file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let text = match code & 0xff {
            SQLITE_CANTOPEN if !folder.is_dir() => format!(
                "the database file {shown} cannot be created: its folder {} does not exist or \
                 is not a folder; create it, or fix the path in `adapter.db.url`",
                folder.display()
            ),
            SQLITE_CANTOPEN if !file.exists() => format!(
                "the database file {shown} does not exist: add `?mode=rwc` to `adapter.db.url` \
                 to have it created, or fix the path"
            ),
            SQLITE_CANTOPEN => format!(
                "the database file {shown} cannot be opened: check that it is a file this \
                 process may read and write, in a folder it may write (SQLite keeps its journal \
                 beside the file)"
            ),
            SQLITE_READONLY => format!(
                "the database file {shown} is read-only to this process: let it write the file \
                 and its folder, or open it with a read-write `mode` in `adapter.db.url`"
            ),
            _ => return None,
        };
        Some(Hint::new(SetupProblem::Storage, text))
    }

    fn address(connect: &SqliteConnectOptions) -> String {
        connect.get_filename().display().to_string()
    }

    fn statements(prefix: &str) -> Statements {
        let table = format!("\"{prefix}session\"");
        let index = format!("\"{prefix}session_expire\"");
        let user_index = format!("{prefix}session_user");
        let locks = format!("\"{prefix}session_locks\"");
        let fetch = format!(
            "SELECT id, data, expire, version, user_id, label FROM {table} \
             WHERE cookie = ?1 AND (expire > ?2 OR expire IS NULL)"
        );
        // The catalog row of a column of the table, where it has one.
        let column = |name: &str| {
            format!("SELECT 1 FROM pragma_table_info('{prefix}session') WHERE name = '{name}'")
        };
        Statements {
            migrate: vec![
                // AUTOINCREMENT: ids are never reused, so (id, version) never repeats.
                format!(
                    "CREATE TABLE IF NOT EXISTS {table} (\
                     id INTEGER PRIMARY KEY AUTOINCREMENT, \
                     cookie TEXT NOT NULL UNIQUE, \
                     data BLOB NOT NULL, \
                     expire INTEGER NOT NULL, \
                     version INTEGER NOT NULL DEFAULT 0, \
                     user_id TEXT, \
                     label TEXT)"
                ),
                format!("CREATE INDEX IF NOT EXISTS {index} ON {table} (expire)"),
                // WITHOUT ROWID: the rows are looked up by key only, so the key is the
                // table's B-tree and no second index is kept.
                format!(
                    "CREATE TABLE IF NOT EXISTS {locks} (\
                     \"key\" TEXT PRIMARY KEY NOT NULL, \
                     token TEXT NOT NULL, \
                     expires_at INTEGER NOT NULL) WITHOUT ROWID"
                ),
            ],
            // SQLite has no ADD COLUMN IF NOT EXISTS: each column is checked first, inside
            // the migration's `BEGIN IMMEDIATE`, so no other process adds it in between.
            // The index is partial: unbound sessions have no entry.
            upgrades: vec![
                Upgrade {
                    present: column("user_id"),
                    apply: format!("ALTER TABLE {table} ADD COLUMN user_id TEXT"),
                },
                Upgrade {
                    present: column("label"),
                    apply: format!("ALTER TABLE {table} ADD COLUMN label TEXT"),
                },
                Upgrade {
                    present: format!(
                        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = '{user_index}'"
                    ),
                    apply: format!(
                        "CREATE INDEX IF NOT EXISTS \"{user_index}\" ON {table} (user_id) \
                         WHERE user_id IS NOT NULL"
                    ),
                },
            ],
            columns: format!("SELECT name FROM pragma_table_info('{prefix}session')"),
            // SQLite has no row locks: `update_locked` takes the database's write lock with
            // `BEGIN IMMEDIATE` before reading.
            fetch_locked: fetch.clone(),
            fetch,
            compare_and_set_and_unlock: None,
            compare_and_set: format!(
                "UPDATE {table} SET data = ?1, expire = ?2, user_id = ?3, label = ?4, \
                     version = version + 1 \
                 WHERE id = ?5 AND version = ?6 AND cookie = ?7 \
                   AND (expire > ?8 OR expire IS NULL)"
            ),
            write_locked: format!(
                "UPDATE {table} SET data = ?1, expire = ?2, user_id = ?3, label = ?4, \
                     version = COALESCE(version, 0) + 1 \
                 WHERE id = ?5"
            ),
            touch: format!(
                "UPDATE {table} SET expire = ?1, version = COALESCE(version, 0) + 1 \
                 WHERE cookie = ?2 AND expire > ?3"
            ),
            create_and_delete: CreateAndDelete::Upsert {
                upsert: format!(
                    "INSERT INTO {table} (cookie, data, expire, user_id, label, version) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 0) \
                 ON CONFLICT (cookie) DO UPDATE \
                 SET data = excluded.data, expire = excluded.expire, \
                     user_id = excluded.user_id, label = excluded.label, \
                     version = COALESCE({table}.version, 0) + 1 \
                 WHERE {table}.expire <= ?6 OR {table}.expire IS NULL"
                ),
                delete_returning: format!("DELETE FROM {table} WHERE cookie = ?1 RETURNING expire"),
            },
            gc: format!(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} \
                 WHERE expire <= ?1 OR expire IS NULL LIMIT ?2)"
            ),
            list: format!(
                "SELECT cookie, substr(data, 1, {HEAD_LEN}) AS head, expire, label \
                 FROM {table} WHERE user_id = ?1 AND expire > ?2"
            ),
            count_bound: format!("SELECT COUNT(*) AS entries FROM {table} WHERE user_id = ?1"),
            delete_many: format!("DELETE FROM {table} WHERE expire > ? AND cookie IN ("),
            locks: LockStatements {
                lock: format!(
                    "INSERT INTO {locks} (\"key\", token, expires_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (\"key\") DO UPDATE \
                     SET token = excluded.token, expires_at = excluded.expires_at \
                     WHERE {locks}.expires_at <= ?4 OR {locks}.token = excluded.token"
                ),
                renew: format!(
                    "UPDATE {locks} SET expires_at = ?1 \
                     WHERE \"key\" = ?2 AND token = ?3 AND expires_at > ?4"
                ),
                unlock: Unlock::Returning(format!(
                    "DELETE FROM {locks} WHERE \"key\" = ?1 AND token = ?2 RETURNING expires_at"
                )),
                gc: format!("DELETE FROM {locks} WHERE expires_at <= ?1"),
                table: locks,
            },
            table,
        }
    }

    // Switching a database into WAL mode takes an exclusive lock that `busy_timeout` does
    // not wait for: stores of several processes opening one file at once (an old file, or
    // one another program made) can see `SQLITE_BUSY` there, and the next attempt finds
    // the file in WAL mode already.
    fn busy_at_open(err: &sqlx::Error) -> bool {
        err.as_database_error()
            .and_then(|err| err.code())
            .is_some_and(|code| code.parse::<i32>().is_ok_and(|code| code & 0xff == 5))
    }

    fn configure(connect: SqliteConnectOptions, options: &DbOptions) -> SqliteConnectOptions {
        connect
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(options.acquire_timeout)
    }
}
