//! One SQL dialect's statements run over a store's connections: the [`Dialect`] trait a
//! backend implements (its SQL and the few things it does its own way), [`Table`], the one
//! [`Driver`] built on it, and [`sql_store!`], which declares a public store type.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use session_core::secrecy::ExposeSecret;
use session_core::{Error, ErrorKind, Hint, Result, async_trait};
use sqlx::pool::PoolOptions;
use sqlx::{
    ColumnIndex, Connection, Database, Decode, Encode, Executor, IntoArguments, Pool, Transaction,
    Type,
};
use tokio::sync::{Mutex, MutexGuard};

use crate::hints::{self, NoConnection};
use crate::lease::{Connections, Lease};
use crate::options::validate_prefix;
use crate::sql::{
    Driver, Listed, Merge, ReadRow, Row, RowVersion, SqlCore, Written, db_error, lenient,
};
use crate::{DEFAULT_PREFIX, DbOptions};

/// The statements of one dialect for one table: built once, when the store is created,
/// from the validated prefix; everything else is bound.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    /// The quoted table name, for messages.
    pub(crate) table: String,
    /// The DDL `migrate` runs, in order, to create the table and its `expire` index, and
    /// the lease table (which is how a database an earlier version made gets it: every
    /// statement is `CREATE ... IF NOT EXISTS`).
    pub(crate) migrate: Vec<String>,
    /// What `migrate` adds, after `migrate`, to a table an earlier version of this crate
    /// created: the owner columns and the `user_id` index, each only if it is missing.
    pub(crate) upgrades: Vec<Upgrade>,
    /// The names of the columns of `<prefix>session`, as `name`, one row each; no row when
    /// there is no such table. `migrate` checks them first, so that a table of another
    /// shape with the store's name is reported as such rather than by the first DDL or
    /// statement that trips over it.
    pub(crate) columns: String,
    /// `id, data, expire, version, user_id, label` of the row at `cookie` unless it has
    /// expired (a NULL expiry is returned, to be reported as corrupt). Binds: cookie, now.
    pub(crate) fetch: String,
    /// `fetch` that also locks the row until the transaction ends.
    pub(crate) fetch_locked: String,
    /// Writes data, expiry and owner if the row at the cookie still has the id and version
    /// read and has not expired (or has a NULL expiry, which only a corrupt row has). Every
    /// write bumps the version, so an unchanged version means an unchanged row. Binds:
    /// data, expire, user_id, label, id, version, cookie, now.
    pub(crate) compare_and_set: String,
    /// [`compare_and_set`](Self::compare_and_set) that also deletes the writer's lease,
    /// only if the row was written, in one statement, reporting `written` (0 or 1).
    /// Binds: those of `compare_and_set`, then the token. `None` where the dialect has no
    /// such statement: the write and the unlock are two.
    pub(crate) compare_and_set_and_unlock: Option<String>,
    /// Writes data, expiry and owner of a row locked by `fetch_locked`. Binds: data,
    /// expire, user_id, label, id.
    pub(crate) write_locked: String,
    /// Moves the expiry of a live row. Binds: expire, cookie, now.
    pub(crate) touch: String,
    /// Stores a row unless a live one holds the cookie (a dead one is replaced), and
    /// deletes the row at a cookie, telling whether it was alive.
    pub(crate) create_and_delete: CreateAndDelete,
    /// Deletes up to a batch of expired rows. Binds: now, limit.
    pub(crate) gc: String,
    /// `cookie`, the blob's first [`HEAD_LEN`](crate::sql::HEAD_LEN) bytes as `head`,
    /// `expire` and `label` of the live rows bound to a user, found through the `user_id`
    /// index. Binds: user_id, now.
    pub(crate) list: String,
    /// How many rows are bound to a user, as `entries`. Binds: user_id.
    pub(crate) count_bound: String,
    /// `DELETE` of live rows by cookie, up to and including `cookie IN (`: the store
    /// appends one placeholder per key and the closing parenthesis. Binds: now, then the
    /// cookies.
    pub(crate) delete_many: String,
    /// The statements on the lease table, `<prefix>session_locks`.
    pub(crate) locks: LockStatements,
}

/// The statements on the lease table `<prefix>session_locks`: one row per held (or lapsed,
/// not yet replaced or swept) session lock, `key` (the store key, primary key), `token`
/// and `expires_at` (milliseconds since the Unix epoch, by the application's clock, as for
/// the sessions' `expire`). Every call is one statement on the primary key, so the
/// database's own row lock makes it atomic; `unlock` on MySQL takes a second one only when
/// the first found no live lease.
#[derive(Debug, Clone)]
pub(crate) struct LockStatements {
    /// The quoted table name, for messages.
    pub(crate) table: String,
    /// Inserts the lease, or takes over the row at the key if its lease has lapsed or
    /// belongs to the same token; whether it did is [`Dialect::lock_granted`]. Binds: key,
    /// token, expires_at, now.
    pub(crate) lock: String,
    /// Moves the expiry of the token's unexpired lease. Binds: expires_at, key, token, now.
    pub(crate) renew: String,
    /// Deletes the token's lease, telling whether it was unexpired.
    pub(crate) unlock: Unlock,
    /// Deletes every lapsed lease. Binds: now.
    pub(crate) gc: String,
}

/// How `unlock` deletes the token's lease and tells whether it had not lapsed, which
/// depends on whether the dialect has `DELETE ... RETURNING`.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(all(feature = "mysql", any(feature = "postgres", feature = "sqlite"))),
    allow(dead_code, reason = "each variant serves only some dialects")
)]
pub(crate) enum Unlock {
    /// One `DELETE ... WHERE key = ? AND token = ? RETURNING expires_at` (PostgreSQL,
    /// SQLite); the store compares the expiry with now. Binds: key, token.
    Returning(String),
    /// MySQL: a `DELETE` of the unexpired lease (the answer, and the whole call when the
    /// token held the lock), then, only if that deleted nothing, one of the token's lapsed
    /// lease, so that none is left behind.
    LiveThenLapsed {
        /// Binds: key, token, now.
        delete_live: String,
        /// Binds: key, token.
        delete_any: String,
    },
}

/// One change `migrate` makes to a table an earlier version created.
#[derive(Debug, Clone)]
pub(crate) struct Upgrade {
    /// Returns a row when the change is there already (a query of the catalog).
    pub(crate) present: String,
    /// Makes the change.
    pub(crate) apply: String,
}

/// How `create` and `delete` deal with a dead row at the cookie, which depends on whether
/// the dialect has `INSERT ... ON CONFLICT ... WHERE` and `DELETE ... RETURNING`.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(all(feature = "mysql", any(feature = "postgres", feature = "sqlite"))),
    allow(dead_code, reason = "each variant serves only some dialects")
)]
pub(crate) enum CreateAndDelete {
    /// Both (PostgreSQL, SQLite): the statements deal with a dead row themselves.
    Upsert {
        /// Inserts the row, or replaces a dead one (`ON CONFLICT (cookie) DO UPDATE ...
        /// WHERE` the old row is dead). Binds: cookie, data, expire, now. Affects one row
        /// when it stored the record.
        upsert: String,
        /// Deletes the row at the cookie, returning its expiry to tell whether it was
        /// alive. Binds: cookie.
        delete_returning: String,
    },
    /// Neither (MySQL, whose `ON DUPLICATE KEY UPDATE` cannot tell "kept" from
    /// "replaced"): a dead row is deleted by a statement of its own.
    DeadRowApart {
        /// Deletes the row at the cookie if it is dead: before `insert`, and after
        /// `delete_live` found nothing, so the key is really gone. Binds: cookie, now.
        delete_dead: String,
        /// A plain `INSERT`; a duplicate key means a live row holds the cookie. Binds:
        /// cookie, data, expire.
        insert: String,
        /// Deletes the row at the cookie if it is alive. Binds: cookie, now.
        delete_live: String,
    },
}

/// The options a dialect's connections are opened with (`PgConnectOptions`, ...).
pub(crate) type ConnectOptionsOf<D> = <<D as Database>::Connection as Connection>::Options;

/// What one SQL backend brings to the shared store, implemented on its sqlx database type:
/// its SQL, and the few places where it runs differently. Everything else (connections,
/// leases, the order of statements) is [`Table`]'s.
pub(crate) trait Dialect: Database {
    /// The backend's name in messages and logs (`postgres`, `mysql`, `sqlite`).
    const BACKEND: &'static str;

    /// The server's name in hints (`PostgreSQL`, ...).
    const SERVER: &'static str;

    /// How many rows a statement changed (each driver has its own result type).
    const ROWS_AFFECTED: fn(&Self::QueryResult) -> u64;

    /// The statement that opens a write transaction, where the driver's `BEGIN` would not
    /// take the lock the transaction needs.
    const BEGIN: Option<&'static str> = None;

    /// Whether `migrate` runs its DDL in a transaction.
    const TRANSACTIONAL_DDL: bool = true;

    /// Whether the store's own writers take turns in process instead of waiting for the
    /// database's lock.
    const ONE_WRITER: bool = false;

    /// Most bind parameters one statement may have.
    const MAX_PARAMS: usize;

    /// Appends bind parameter `n` (counted from 1) as the dialect writes it.
    fn push_param(sql: &mut String, n: usize) {
        let _ = n;
        sql.push('?');
    }

    /// Whether `err` says that an upgrade is there already: the dialect has no
    /// transactional DDL, and a concurrent `migrate` applied it between the check and the
    /// change.
    fn already_applied(err: &sqlx::Error) -> bool {
        let _ = err;
        false
    }

    /// Whether the `lock` statement of [`LockStatements`] granted the lease: by default,
    /// whether it inserted or updated the row (`ON CONFLICT ... DO UPDATE ... WHERE`
    /// affects no row when the `WHERE` refuses).
    fn lock_granted(done: &Self::QueryResult) -> bool {
        Self::ROWS_AFFECTED(done) == 1
    }

    /// The statements for table `<prefix>session` and its lease table
    /// `<prefix>session_locks`; `prefix` has been validated.
    fn statements(prefix: &str) -> Statements;

    /// What to do about `err`, met while opening the store on `connect` (connecting or
    /// migrating), where it is a set-up mistake the dialect recognises: the server
    /// unreachable, the login refused, a missing privilege or database, a table of
    /// another shape, a database file that cannot be opened.
    fn setup_hint(err: &sqlx::Error, connect: &ConnectOptionsOf<Self>) -> Option<Hint>;

    /// Where `connect` points, as hints name it (`127.0.0.1:5432`, a file).
    fn address(connect: &ConnectOptionsOf<Self>) -> String;

    /// The backend's own settings on top of the connect options the URL gave.
    fn configure(connect: ConnectOptionsOf<Self>, _options: &DbOptions) -> ConnectOptionsOf<Self> {
        connect
    }

    /// Whether opening the pool failed in a way that another attempt may not: another
    /// process held the database for a moment that the driver's own waiting does not
    /// cover. `false` unless a dialect says otherwise.
    fn busy_at_open(_err: &sqlx::Error) -> bool {
        false
    }
}

/// The session table of one dialect, reached through the store's connections.
pub(crate) struct Table<D: Dialect> {
    connections: Arc<Connections<D>>,
    sql: Statements,
    /// Where the dialect has one writer at a time (SQLite), the store's writers queue here
    /// instead of polling the database lock (SQLite's busy handler sleeps between tries,
    /// up to 100 ms at a time); other processes, and other stores on the file, still wait
    /// through `busy_timeout`.
    writer: Option<Arc<Mutex<()>>>,
}

impl<D: Dialect> Clone for Table<D> {
    fn clone(&self) -> Self {
        Self {
            connections: Arc::clone(&self.connections),
            sql: self.sql.clone(),
            writer: self.writer.clone(),
        }
    }
}

/// A write's turn (where the dialect has one writer at a time) and its connection.
type WriteLease<'a, D> = (Option<MutexGuard<'a, ()>>, Lease<'a, D>);

impl<D: Dialect> Table<D> {
    /// The table with the default prefix (`think_session`).
    pub(crate) fn new(connections: Connections<D>) -> Self {
        Self {
            connections: Arc::new(connections),
            sql: D::statements(DEFAULT_PREFIX),
            writer: D::ONE_WRITER.then(|| Arc::new(Mutex::new(()))),
        }
    }

    /// Uses table `<prefix>session` instead.
    pub(crate) fn set_prefix(&mut self, prefix: &str) -> Result<()> {
        validate_prefix(prefix)?;
        self.sql = D::statements(prefix);
        Ok(())
    }

    /// The quoted name of the lease table.
    pub(crate) fn lock_table(&self) -> &str {
        &self.sql.locks.table
    }

    /// The pool the connections come from.
    pub(crate) fn pool(&self) -> &Pool<D> {
        self.connections.pool()
    }

    /// A connection for `operation`.
    async fn lease(&self, operation: &'static str) -> Result<Lease<'_, D>> {
        self.connections
            .lease()
            .await
            .map_err(failed::<D>(operation))
    }

    /// Turns a driver error met while opening the store (connecting, migrating) into the
    /// store error of `operation`, with a hint where it is a known set-up mistake.
    fn failed_to_open(&self, operation: &'static str) -> impl Fn(sqlx::Error) -> Error + '_ {
        move |err| {
            let hint = D::setup_hint(&err, &self.pool().connect_options());
            with_hint(db_error(D::BACKEND, operation, err), hint)
        }
    }

    /// A connection for the write `operation`, taken in this store's turn where the dialect
    /// has one writer at a time; the turn lasts as long as the guard returned with it.
    async fn lease_to_write(&self, operation: &'static str) -> Result<WriteLease<'_, D>> {
        let turn = match &self.writer {
            Some(writer) => Some(writer.lock().await),
            None => None,
        };
        Ok((turn, self.lease(operation).await?))
    }
}

impl<D: Dialect> Table<D>
where
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> i64: Encode<'q, D> + Type<D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
{
    /// The rows the query `sql` returns for the read `operation`, with `key` (a cookie or
    /// a user id) bound, and `now` after it where the statement takes the time.
    async fn read(
        &self,
        operation: &'static str,
        sql: &str,
        key: &str,
        now: Option<i64>,
    ) -> Result<Vec<D::Row>> {
        let mut lease = self.lease(operation).await?;
        let mut query = sqlx::query(sql).bind(key);
        if let Some(now) = now {
            query = query.bind(now);
        }
        let rows = query.fetch_all(lease.connection()).await;
        lease.finish(rows).map_err(failed::<D>(operation))
    }
}

/// Turns a driver error into the store error of `operation`.
fn failed<D: Dialect>(operation: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |err| db_error(D::BACKEND, operation, err)
}

/// `err` with `hint`, where there is one.
fn with_hint(err: Error, hint: Option<Hint>) -> Error {
    match hint {
        Some(hint) => err.with_hint(hint),
        None => err,
    }
}

/// Opens a write transaction as the dialect needs it.
async fn begin<D: Dialect>(
    connection: &mut D::Connection,
) -> Result<Transaction<'_, D>, sqlx::Error> {
    match D::BEGIN {
        Some(statement) => connection.begin_with(statement).await,
        None => connection.begin().await,
    }
}

/// Whether `err` is a unique-key violation (a concurrent create won).
fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

#[async_trait]
impl<D: Dialect> Driver for Table<D>
where
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> D::Arguments<'q>: IntoArguments<'q, D>,
    for<'q> i64: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'q> Option<&'q str>: Encode<'q, D>,
    for<'q> &'q [u8]: Encode<'q, D> + Type<D>,
    for<'r> Vec<u8>: Decode<'r, D> + Type<D>,
    for<'r> String: Decode<'r, D> + Type<D>,
    for<'c> &'c str: ColumnIndex<D::Row>,
{
    const NAME: &'static str = D::BACKEND;

    const DELETE_BATCH: usize = delete_batch_len(D::MAX_PARAMS);

    fn table(&self) -> &str {
        &self.sql.table
    }

    async fn fetch(&self, cookie: &str, now: i64) -> Result<Option<Row>> {
        let rows = self
            .read("load", &self.sql.fetch, cookie, Some(now))
            .await?;
        rows.first().map(ReadRow::session_row).transpose()
    }

    async fn insert(&self, cookie: &str, row: &Written, now: i64) -> Result<bool> {
        let (_turn, mut lease) = self.lease_to_write("create").await?;
        let connection = lease.connection();
        let outcome = match &self.sql.create_and_delete {
            CreateAndDelete::Upsert { upsert, .. } => sqlx::query(upsert)
                .bind(cookie)
                .bind(row.data.as_slice())
                .bind(row.expire)
                .bind(row.user())
                .bind(row.label())
                .bind(now)
                .execute(connection)
                .await
                .map(|done| D::ROWS_AFFECTED(&done) == 1),
            CreateAndDelete::DeadRowApart {
                delete_dead,
                insert,
                ..
            } => {
                async {
                    let dead = sqlx::query(delete_dead).bind(cookie).bind(now);
                    dead.execute(&mut *connection).await?;
                    let insert = sqlx::query(insert)
                        .bind(cookie)
                        .bind(row.data.as_slice())
                        .bind(row.expire)
                        .bind(row.user())
                        .bind(row.label());
                    match insert.execute(connection).await {
                        Err(err) if is_unique_violation(&err) => Ok(false),
                        inserted => inserted.map(|done| D::ROWS_AFFECTED(&done) == 1),
                    }
                }
                .await
            }
        };
        lease.finish(outcome).map_err(failed::<D>("create"))
    }

    async fn compare_and_set(&self, expected: RowVersion<'_>, row: &Written) -> Result<bool> {
        let (_turn, lease) = self.lease_to_write("update").await?;
        let query = sqlx::query(&self.sql.compare_and_set)
            .bind(row.data.as_slice())
            .bind(row.expire)
            .bind(row.user())
            .bind(row.label())
            .bind(expected.id)
            .bind(expected.version)
            .bind(expected.cookie)
            .bind(expected.now);
        let done = lease.execute(query).await.map_err(failed::<D>("update"))?;
        Ok(D::ROWS_AFFECTED(&done) == 1)
    }

    async fn compare_and_set_and_unlock(
        &self,
        expected: RowVersion<'_>,
        row: &Written,
        token: &str,
    ) -> Result<bool> {
        let Some(statement) = &self.sql.compare_and_set_and_unlock else {
            let (cookie, now) = (expected.cookie, expected.now);
            let written = self.compare_and_set(expected, row).await?;
            if written {
                self.unlock(cookie, token, now).await?;
            }
            return Ok(written);
        };
        let (_turn, mut lease) = self.lease_to_write("update").await?;
        let query = sqlx::query(statement)
            .bind(row.data.as_slice())
            .bind(row.expire)
            .bind(row.user())
            .bind(row.label())
            .bind(expected.id)
            .bind(expected.version)
            .bind(expected.cookie)
            .bind(expected.now)
            .bind(token);
        let outcome = query
            .fetch_one(lease.connection())
            .await
            .map(|row| lenient::<_, i64>(&row, "written").is_some_and(|written| written > 0));
        lease.finish(outcome).map_err(failed::<D>("update"))
    }

    async fn update_locked(&self, cookie: &str, now: i64, merge: &Merge<'_>) -> Result<bool> {
        let fail = failed::<D>("update");
        let (_turn, mut lease) = self.lease_to_write("update").await?;
        let connection = lease.connection();
        // An error below returns with the transaction unfinished, and the lease is finished
        // with that error. A connection of the store's own is then closed, never reused,
        // and the database rolls the transaction back as the connection ends; one borrowed
        // from a shared pool goes back to sqlx, which runs the rollback and pings it before
        // anyone uses it again.
        let outcome = async {
            let mut tx = begin::<D>(connection).await.map_err(&fail)?;
            let row = sqlx::query(&self.sql.fetch_locked)
                .bind(cookie)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(&fail)?;
            let Some(row) = row.as_ref().map(ReadRow::session_row).transpose()? else {
                tx.rollback().await.map_err(&fail)?;
                return Ok(false);
            };
            let written = merge(&row)?;
            sqlx::query(&self.sql.write_locked)
                .bind(written.data.as_slice())
                .bind(written.expire)
                .bind(written.user())
                .bind(written.label())
                .bind(row.id)
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
            tx.commit().await.map_err(&fail)?;
            Ok(true)
        }
        .await;
        lease.finish(outcome)
    }

    async fn touch(&self, cookie: &str, expire: i64, now: i64) -> Result<bool> {
        let (_turn, lease) = self.lease_to_write("touch").await?;
        let query = sqlx::query(&self.sql.touch)
            .bind(expire)
            .bind(cookie)
            .bind(now);
        let done = lease.execute(query).await.map_err(failed::<D>("touch"))?;
        Ok(D::ROWS_AFFECTED(&done) > 0)
    }

    async fn delete(&self, cookie: &str, now: i64) -> Result<bool> {
        let (_turn, mut lease) = self.lease_to_write("delete").await?;
        let connection = lease.connection();
        let outcome = match &self.sql.create_and_delete {
            CreateAndDelete::Upsert {
                delete_returning, ..
            } => {
                let row = sqlx::query(delete_returning)
                    .bind(cookie)
                    .fetch_optional(connection);
                row.await.map(|row| {
                    let expire = row.and_then(|row| lenient::<_, i64>(&row, "expire"));
                    expire.is_some_and(|expire| expire > now)
                })
            }
            CreateAndDelete::DeadRowApart {
                delete_dead,
                delete_live,
                ..
            } => {
                let live = sqlx::query(delete_live).bind(cookie).bind(now);
                match live.execute(&mut *connection).await {
                    Ok(done) if D::ROWS_AFFECTED(&done) > 0 => Ok(true),
                    // Nothing live was there: remove a dead remnant so the key is gone.
                    Ok(_) => {
                        let dead = sqlx::query(delete_dead).bind(cookie).bind(now);
                        dead.execute(connection).await.map(|_| false)
                    }
                    Err(err) => Err(err),
                }
            }
        };
        lease.finish(outcome).map_err(failed::<D>("delete"))
    }

    async fn gc_batch(&self, now: i64, limit: i64) -> Result<u64> {
        let (_turn, lease) = self.lease_to_write("gc").await?;
        let query = sqlx::query(&self.sql.gc).bind(now).bind(limit);
        let done = lease.execute(query).await.map_err(failed::<D>("gc"))?;
        Ok(D::ROWS_AFFECTED(&done))
    }

    async fn delete_batch(&self, cookies: &[&str], now: i64) -> Result<u64> {
        let Some(last) = cookies.last() else {
            return Ok(0);
        };
        // The list is padded to a power of two with its last key (a key named twice is
        // deleted once), so a store prepares at most a handful of these statements rather
        // than one per list length, which would push the hot statements out of sqlx's
        // per-connection statement cache.
        let width = cookies.len().next_power_of_two();
        let mut sql = String::with_capacity(self.sql.delete_many.len() + 6 * width);
        sql.push_str(&self.sql.delete_many);
        for n in 0..width {
            if n > 0 {
                sql.push_str(", ");
            }
            D::push_param(&mut sql, n + 2);
        }
        sql.push(')');
        let mut query = sqlx::query(&sql).bind(now);
        for cookie in cookies.iter().chain(std::iter::repeat(last)).take(width) {
            query = query.bind(*cookie);
        }
        let (_turn, lease) = self.lease_to_write("delete_many").await?;
        let done = lease
            .execute(query)
            .await
            .map_err(failed::<D>("delete_many"))?;
        Ok(D::ROWS_AFFECTED(&done))
    }

    async fn list(&self, user: &str, now: i64) -> Result<Vec<Listed>> {
        let rows = self.read("sessions_of", &self.sql.list, user, Some(now));
        Ok(rows.await?.iter().map(ReadRow::listed).collect())
    }

    async fn count_bound(&self, user: &str) -> Result<u64> {
        let rows = self.read("user_index_len", &self.sql.count_bound, user, None);
        let entries = rows
            .await?
            .first()
            .and_then(|row| lenient::<_, i64>(row, "entries"));
        let entries = entries.ok_or_else(|| Error::decode("the row count is not an integer"))?;
        Ok(entries.unsigned_abs())
    }

    async fn migrate(&self) -> Result<()> {
        let fail = self.failed_to_open("migrate");
        let turn = match &self.writer {
            Some(writer) => Some(writer.lock().await),
            None => None,
        };
        let mut lease = self.connections.lease().await.map_err(&fail)?;
        // A table of another shape first: the DDL below would skip it (`IF NOT EXISTS`),
        // and the first statement that needs a missing column would fail with a message
        // that does not say why.
        let columns = sqlx::query(&self.sql.columns)
            .fetch_all(lease.connection())
            .await;
        let columns: Vec<String> = match columns {
            Ok(rows) => rows
                .iter()
                .filter_map(|row| lenient::<_, String>(row, "name"))
                .collect(),
            Err(err) => return Err(fail(err)),
        };
        let missing = hints::missing_columns(&columns);
        if !columns.is_empty() && !missing.is_empty() {
            lease.done();
            return Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "{}: migrate failed: the table {} is not a session table (it has no {})",
                    D::BACKEND,
                    self.sql.table,
                    missing.join(", ")
                ),
            )
            .with_hint(hints::table_shape(&self.sql.table, &missing)));
        }
        let connection = lease.connection();
        let outcome = async {
            // Where DDL is transactional, the whole migration is one transaction (which
            // PostgreSQL's first statement serialises with an advisory lock and SQLite's
            // `BEGIN IMMEDIATE` with the write lock), so each check below sees the last
            // migration's changes and no concurrent one can slip in between.
            let mut tx: Option<Transaction<'_, D>> = None;
            let executor: &mut D::Connection = if D::TRANSACTIONAL_DDL {
                &mut *tx.insert(begin::<D>(connection).await?)
            } else {
                connection
            };
            for statement in &self.sql.migrate {
                sqlx::query(statement).execute(&mut *executor).await?;
            }
            for upgrade in &self.sql.upgrades {
                let present = sqlx::query(&upgrade.present).fetch_optional(&mut *executor);
                if present.await?.is_some() {
                    continue;
                }
                match sqlx::query(&upgrade.apply).execute(&mut *executor).await {
                    Err(err) if D::already_applied(&err) => {}
                    applied => {
                        applied?;
                    }
                }
            }
            match tx {
                Some(tx) => tx.commit().await,
                None => Ok(()),
            }
        }
        .await;
        let migrated = lease.finish(outcome).map_err(fail);
        drop(turn);
        migrated
    }

    async fn lock(&self, key: &str, token: &str, until: i64, now: i64) -> Result<bool> {
        let (_turn, lease) = self.lease_to_write("lock").await?;
        let query = sqlx::query(&self.sql.locks.lock)
            .bind(key)
            .bind(token)
            .bind(until)
            .bind(now);
        let done = lease.execute(query).await.map_err(failed::<D>("lock"))?;
        Ok(D::lock_granted(&done))
    }

    async fn renew_lock(&self, key: &str, token: &str, until: i64, now: i64) -> Result<bool> {
        let (_turn, lease) = self.lease_to_write("renew_lock").await?;
        let query = sqlx::query(&self.sql.locks.renew)
            .bind(until)
            .bind(key)
            .bind(token)
            .bind(now);
        let done = lease
            .execute(query)
            .await
            .map_err(failed::<D>("renew_lock"))?;
        Ok(D::ROWS_AFFECTED(&done) > 0)
    }

    async fn unlock(&self, key: &str, token: &str, now: i64) -> Result<bool> {
        let (_turn, mut lease) = self.lease_to_write("unlock").await?;
        let connection = lease.connection();
        let outcome = match &self.sql.locks.unlock {
            Unlock::Returning(delete) => {
                let row = sqlx::query(delete)
                    .bind(key)
                    .bind(token)
                    .fetch_optional(connection);
                row.await.map(|row| {
                    let until = row.and_then(|row| lenient::<_, i64>(&row, "expires_at"));
                    until.is_some_and(|until| until > now)
                })
            }
            Unlock::LiveThenLapsed {
                delete_live,
                delete_any,
            } => {
                let live = sqlx::query(delete_live).bind(key).bind(token).bind(now);
                match live.execute(&mut *connection).await {
                    Ok(done) if D::ROWS_AFFECTED(&done) > 0 => Ok(true),
                    // The token held no live lease: remove a lapsed one it left, if any.
                    Ok(_) => {
                        let lapsed = sqlx::query(delete_any).bind(key).bind(token);
                        lapsed.execute(connection).await.map(|_| false)
                    }
                    Err(err) => Err(err),
                }
            }
        };
        lease.finish(outcome).map_err(failed::<D>("unlock"))
    }

    async fn gc_locks(&self, now: i64) -> Result<u64> {
        let (_turn, lease) = self.lease_to_write("gc").await?;
        let query = sqlx::query(&self.sql.locks.gc).bind(now);
        let done = lease.execute(query).await.map_err(failed::<D>("gc"))?;
        Ok(D::ROWS_AFFECTED(&done))
    }
}

/// Keys per `delete_many` statement: the largest power of two that leaves one parameter
/// (the time) free under the dialect's limit.
/// The first wait before another attempt to open a busy database, doubled after each.
const OPEN_BACKOFF: Duration = Duration::from_millis(10);

/// The longest wait between two attempts to open a busy database.
const OPEN_MAX_BACKOFF: Duration = Duration::from_millis(200);

const fn delete_batch_len(max_params: usize) -> usize {
    let keys = max_params.saturating_sub(1);
    if keys == 0 {
        return 1;
    }
    1 << (usize::BITS - 1 - keys.leading_zeros())
}

impl<D: Dialect> SqlCore<Table<D>>
where
    Table<D>: Driver,
{
    /// A store on its own pool, connected as `options` say (the URL's scheme has picked
    /// the dialect already).
    pub(crate) async fn connect(options: &DbOptions) -> Result<Self> {
        validate_prefix(&options.prefix)?;
        let connect = ConnectOptionsOf::<D>::from_str(options.url.expose_secret())
            .map_err(|err| Error::config("adapter.db.url", err))?;
        Self::connect_with(connect, options).await
    }

    /// A store on its own pool, opened with `connect` and sized, timed and migrated as
    /// `options` say. The store keeps the connections it used (see [`Connections::kept`]).
    pub(crate) async fn connect_with(
        connect: ConnectOptionsOf<D>,
        options: &DbOptions,
    ) -> Result<Self> {
        validate_prefix(&options.prefix)?;
        let connect = D::configure(connect, options);
        let deadline = tokio::time::Instant::now() + options.acquire_timeout;
        let mut backoff = OPEN_BACKOFF;
        let connections = loop {
            let opened = async {
                let pool = PoolOptions::<D>::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .test_before_acquire(options.test_before_acquire)
                    .connect_with(connect.clone())
                    .await?;
                Connections::kept(pool, options.min_connections).await
            }
            .await;
            match opened {
                Ok(connections) => break connections,
                Err(err) if D::busy_at_open(&err) && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(
                        backend = D::BACKEND,
                        "database busy while opening; retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(OPEN_MAX_BACKOFF);
                }
                Err(err) => return Err(connect_failed::<D>(err, &connect, options).await),
            }
        };
        let mut core = Self::new(Table::new(connections));
        core.driver.set_prefix(&options.prefix)?;
        core.concurrency = options.concurrency;
        if options.migrate {
            core.migrate().await?;
        }
        Ok(core)
    }
}

/// The longest a direct connection attempt after a pool timeout at open may take: it only
/// finds out why the pool's attempts failed, and a server that never answers has already
/// cost the whole acquire timeout.
const DIAGNOSIS_TIMEOUT: Duration = Duration::from_secs(2);

/// The store error for a connection that could not be opened while the store was opening,
/// with a hint where the cause is a set-up mistake.
///
/// sqlx retries a refused connection until the acquire timeout and then reports only
/// `PoolTimedOut`, which hides the cause (nothing listening, say). After such a timeout
/// one more attempt is made directly, and its error, the real cause, becomes the source.
async fn connect_failed<D: Dialect>(
    err: sqlx::Error,
    connect: &ConnectOptionsOf<D>,
    options: &DbOptions,
) -> Error {
    if !matches!(err, sqlx::Error::PoolTimedOut) {
        let hint = D::setup_hint(&err, connect);
        return with_hint(db_error(D::BACKEND, "connect", err), hint);
    }
    let waited = options.acquire_timeout;
    let attempt = tokio::time::timeout(
        waited.min(DIAGNOSIS_TIMEOUT),
        <D::Connection as Connection>::connect_with(connect),
    )
    .await;
    let address = D::address(connect);
    match attempt {
        Ok(Err(last)) => {
            let hint = D::setup_hint(&last, connect);
            let err = Error::backend(
                format!("{}: connect failed", D::BACKEND),
                NoConnection { waited, last },
            );
            with_hint(err, hint)
        }
        Ok(Ok(connection)) => {
            // Closed at once: it only tells that the server answers by now.
            let _ = connection.close().await;
            db_error(D::BACKEND, "connect", err).with_hint(hints::slow_start(D::SERVER, waited))
        }
        Err(_) => db_error(D::BACKEND, "connect", err).with_hint(hints::no_answer(
            D::SERVER,
            &address,
            waited,
        )),
    }
}

/// Declares a public SQL store type: a [`SqlCore`] over one dialect's [`Table`], with the
/// constructors, builder methods and accessors every SQL store has (and their docs),
/// `Debug`, and [`SessionStore`](session_core::SessionStore). A dialect's own extras go
/// in an `impl` block of its own.
///
/// `migrate`, where given, is a sentence added to the docs of the store's `migrate`.
macro_rules! sql_store {
    (
        $(#[$attr:meta])*
        pub struct $store:ident(Table<$dialect:ty>, $pool:ty);
        $(migrate: $migrate:literal)?
    ) => {
        $(#[$attr])*
        #[derive(Clone)]
        pub struct $store {
            core: $crate::sql::SqlCore<$crate::dialect::Table<$dialect>>,
        }

        const _: () = {
            use std::fmt;
            use std::time::Duration;

            use session_core::{
                Capabilities, ChangeSet, IndexedSession, LockToken, Record, Result, Revision,
                SessionStore, StoreKey, Timestamp, UserId, async_trait,
            };

            use $crate::dialect::Table;
            use $crate::lease::Connections;
            use $crate::sql::SqlCore;
            use $crate::{Concurrency, DbOptions};

            impl $store {
                /// A store on `pool` with the default prefix (`think_session`). Call
                /// [`migrate`](Self::migrate) if the table may not exist yet.
                ///
                /// The pool may serve the application too, so the store borrows a
                /// connection for each statement and gives it back; sqlx then pings it
                /// before anyone reuses it, a second round trip per statement. A store
                /// from `connect` keeps its connections instead.
                pub fn new(pool: $pool) -> Self {
                    let table = Table::new(Connections::shared(pool));
                    Self { core: SqlCore::new(table) }
                }

                /// Uses table `<prefix>session` instead.
                ///
                /// # Errors
                /// [`ErrorKind::Config`](session_core::ErrorKind::Config) if `prefix` is not
                /// an identifier (see [`DbOptions::prefix`](crate::DbOptions::prefix)).
                pub fn with_prefix(mut self, prefix: &str) -> Result<Self> {
                    self.core.driver.set_prefix(prefix)?;
                    Ok(self)
                }

                /// Sets how concurrent change sets to one session are kept apart.
                #[must_use]
                pub fn with_concurrency(mut self, concurrency: Concurrency) -> Self {
                    self.core.concurrency = concurrency;
                    self
                }

                /// Connects a pool as `options` say, and creates the table if
                /// `options.migrate`.
                ///
                /// The store owns that pool and keeps the connections it used (up to
                /// `options.max_connections`) between statements, so a statement costs one
                /// round trip: sqlx would ping every connection handed back to its pool. A
                /// connection whose statement failed is closed, and the next statement
                /// opens a fresh one.
                ///
                /// # Errors
                /// [`ErrorKind::Config`](session_core::ErrorKind::Config) for a bad URL or
                /// prefix; backend errors if the server cannot be reached or the DDL fails.
                pub async fn connect(options: &DbOptions) -> Result<Self> {
                    let core = SqlCore::connect(options).await?;
                    Ok(Self { core })
                }

                /// Creates the table and its indexes, and the lease table of the session
                /// locks, if they are missing, and adds the `user_id` and `label` columns
                /// and the `user_id` index to a table an earlier version of this crate
                /// created, keeping its sessions (the DDL is in the crate docs). Each
                /// change is made only if it is missing, so running it again changes
                /// nothing.
                $(#[doc = $migrate])?
                ///
                /// # Errors
                /// Backend errors, for example when the user may not create tables.
                pub async fn migrate(&self) -> Result<()> {
                    self.core.migrate().await
                }

                /// The pool the store opens its connections from. A store from `connect`
                /// keeps the connections it used outside the pool: closing the pool makes
                /// the store fail with "pool closed" from its next call on, which also
                /// closes the connections it kept.
                pub fn pool(&self) -> &$pool {
                    self.core.driver.pool()
                }

                /// The quoted table name.
                pub fn table(&self) -> &str {
                    $crate::sql::Driver::table(&self.core.driver)
                }

                /// The quoted name of the lease table that holds the session locks,
                /// `<prefix>session_locks`.
                pub fn lock_table(&self) -> &str {
                    self.core.driver.lock_table()
                }
            }

            impl fmt::Debug for $store {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.debug_struct(stringify!($store))
                        .field("table", &self.table())
                        .field("concurrency", &self.core.concurrency)
                        .finish_non_exhaustive()
                }
            }

            #[async_trait]
            impl SessionStore for $store {
                async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
                    self.core.load(key).await
                }

                async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
                    self.core.create(key, record).await
                }

                async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
                    self.core.update(key, changes).await
                }

                async fn update_if_unchanged(
                    &self,
                    key: &StoreKey,
                    revision: Revision,
                    record: &Record,
                ) -> Result<Option<Revision>> {
                    self.core.update_if_unchanged(key, revision, record).await
                }

                async fn update_if_unchanged_and_unlock(
                    &self,
                    key: &StoreKey,
                    revision: Revision,
                    record: &Record,
                    token: &LockToken,
                ) -> Result<Option<Revision>> {
                    self.core
                        .update_if_unchanged_and_unlock(key, revision, record, token)
                        .await
                }

                async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
                    self.core.touch(key, expires_at).await
                }

                async fn delete(&self, key: &StoreKey) -> Result<bool> {
                    self.core.delete(key).await
                }

                async fn gc(&self) -> Result<u64> {
                    self.core.gc().await
                }

                async fn delete_many(&self, keys: &[StoreKey]) -> Result<u64> {
                    self.core.delete_many(keys).await
                }

                async fn sessions_of(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
                    self.core.sessions_of(user).await
                }

                async fn user_index_len(&self, user: &UserId) -> Result<u64> {
                    self.core.user_index_len(user).await
                }

                async fn lock(
                    &self,
                    key: &StoreKey,
                    token: &LockToken,
                    ttl: Duration,
                ) -> Result<bool> {
                    self.core.lock(key, token, ttl).await
                }

                async fn renew_lock(
                    &self,
                    key: &StoreKey,
                    token: &LockToken,
                    ttl: Duration,
                ) -> Result<bool> {
                    self.core.renew_lock(key, token, ttl).await
                }

                async fn unlock(&self, key: &StoreKey, token: &LockToken) -> Result<bool> {
                    self.core.unlock(key, token).await
                }

                fn capabilities(&self) -> Capabilities {
                    Capabilities::new()
                        .with_shared(true)
                        .with_persistent(true)
                        .with_user_index(true)
                        .with_lock(true)
                }
            }
        };
    };
}
pub(crate) use sql_store;
