//! What the three SQL stores share: the row shape, the statements each dialect writes,
//! the primitive operations on a table ([`Driver`]), and the store logic on top
//! (decoding, corruption, the update strategy, gc in batches, the user index).

use std::time::Duration;

use session_core::wire::{decode_expiry, decode_record, encode_record};
use session_core::{
    ChangeSet, Error, ErrorKind, IndexedSession, LockToken, Owner, Record, Result, Revision,
    StoreKey, Timestamp, UserId, async_trait, check_label,
};

use crate::Concurrency;

/// Rows gc deletes per statement: small enough that no statement holds its locks for
/// long, large enough that a backlog of expired sessions drains quickly.
pub(crate) const GC_BATCH: i64 = 1000;

/// One row of `<prefix>session`, as read. A column that is NULL or of an unexpected type
/// (a hand-made table, a foreign writer) reads as `None`, which makes the row corrupt.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) id: i64,
    pub(crate) data: Option<Vec<u8>>,
    pub(crate) expire: Option<i64>,
    pub(crate) version: Option<i64>,
    /// The `user_id` column: who the session is bound to, NULL for nobody.
    pub(crate) user: Option<String>,
    /// The `label` column.
    pub(crate) label: Option<String>,
}

/// What a write stores in a row, all taken from one record, so that the blob and the
/// columns beside it always agree: the encoded record (owner included, in layout 2, when
/// bound), and the expiry and owner columns that the statements filter on.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) data: Vec<u8>,
    pub(crate) expire: i64,
    owner: Option<Owner>,
}

impl Written {
    /// The row of `record`.
    pub(crate) fn of(record: &Record) -> Self {
        Self {
            data: encode_record(record),
            expire: record.expires_at.as_millis(),
            owner: record.owner.clone(),
        }
    }

    /// The `user_id` column: NULL for an unbound session.
    pub(crate) fn user(&self) -> Option<&str> {
        self.owner.as_ref().map(|owner| owner.user.as_str())
    }

    /// The `label` column: NULL for an unbound session, the label (maybe empty) otherwise.
    pub(crate) fn label(&self) -> Option<&str> {
        self.owner.as_ref().map(|owner| owner.label.as_str())
    }
}

/// One row of a user's listing, as read: the key, the start of the blob (enough for the
/// creation time), the expiry and the label. Columns that are NULL or of a foreign type
/// read as `None`, and the entry is then skipped.
#[derive(Debug)]
pub(crate) struct Listed {
    pub(crate) cookie: Option<String>,
    pub(crate) head: Option<Vec<u8>>,
    pub(crate) expire: Option<i64>,
    pub(crate) label: Option<String>,
}

/// Bytes of the blob a listing reads: the wire header up to the creation time (magic 4,
/// version 1, expiry 8, creation 8), so a listing never carries the sessions' data.
pub(crate) const HEAD_LEN: usize = 21;

/// Where the creation time sits in the wire header.
const CREATED_AT: std::ops::Range<usize> = 13..HEAD_LEN;

/// Which state of which row a conditional write expects.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowVersion<'a> {
    pub(crate) cookie: &'a str,
    pub(crate) id: i64,
    pub(crate) version: i64,
    pub(crate) now: i64,
}

/// A row's identity and version as the store's [`Revision`]: row ids are never reused, and
/// every write bumps the version, so the pair never repeats.
fn revision(id: i64, version: i64) -> Revision {
    // The casts keep the bits; `split_revision` undoes them exactly.
    Revision::new((u128::from(id as u64) << 64) | u128::from(version as u64))
}

/// The row id and version inside a [`Revision`] made by [`revision`].
fn split_revision(revision: Revision) -> (i64, i64) {
    let value = revision.get();
    ((value >> 64) as u64 as i64, value as u64 as i64)
}

/// Computes what a row becomes (its blob and the columns beside it) from the row as read
/// (under a lock).
pub(crate) type Merge<'a> = dyn for<'r> Fn(&'r Row) -> Result<Written> + Send + Sync + 'a;

/// The primitive operations on one table; [`SqlCore`] builds the store contracts from
/// them, and [`Table`](crate::dialect::Table) runs them for every dialect. Every method is
/// one statement or one short transaction.
#[async_trait]
pub(crate) trait Driver: Send + Sync + 'static {
    /// The backend's name, for messages.
    const NAME: &'static str;

    /// Most keys one `delete_batch` takes: the dialect's limit on bind parameters.
    const DELETE_BATCH: usize;

    /// The quoted table name, for messages.
    fn table(&self) -> &str;

    /// The row at `cookie` unless it has expired.
    async fn fetch(&self, cookie: &str, now: i64) -> Result<Option<Row>>;

    /// Stores a new row unless a live one holds the cookie; whether it stored it.
    async fn insert(&self, cookie: &str, row: &Written, now: i64) -> Result<bool>;

    /// Runs [`Statements::compare_and_set`](crate::dialect::Statements::compare_and_set):
    /// whether the row was still as read.
    async fn compare_and_set(&self, expected: RowVersion<'_>, row: &Written) -> Result<bool>;

    /// Runs [`Statements::compare_and_set_and_unlock`](crate::dialect::Statements) (or the
    /// write then the unlock): whether the row was still as read; the lease of `token` at
    /// the same key is deleted only if it was.
    async fn compare_and_set_and_unlock(
        &self,
        expected: RowVersion<'_>,
        row: &Written,
        token: &str,
    ) -> Result<bool>;

    /// Locks the live row at `cookie`, computes its new data and expiry with `merge`,
    /// writes them and commits; `false` if there is no live row.
    async fn update_locked(&self, cookie: &str, now: i64, merge: &Merge<'_>) -> Result<bool>;

    /// Moves the expiry of the live row at `cookie`; whether there was one.
    async fn touch(&self, cookie: &str, expire: i64, now: i64) -> Result<bool>;

    /// Deletes the row at `cookie`; whether it was alive.
    async fn delete(&self, cookie: &str, now: i64) -> Result<bool>;

    /// Deletes up to `limit` expired rows; how many it deleted.
    async fn gc_batch(&self, now: i64, limit: i64) -> Result<u64>;

    /// Deletes the live rows at `cookies` (at most [`Self::DELETE_BATCH`]) in one
    /// statement; how many it deleted.
    async fn delete_batch(&self, cookies: &[&str], now: i64) -> Result<u64>;

    /// The live rows bound to `user`, in one statement through the `user_id` index.
    async fn list(&self, user: &str, now: i64) -> Result<Vec<Listed>>;

    /// How many rows are bound to `user`, expired ones included.
    async fn count_bound(&self, user: &str) -> Result<u64>;

    /// Creates the table and its indexes if missing, and adds what a table made by an
    /// earlier version lacks.
    async fn migrate(&self) -> Result<()>;

    /// Grants the lease at `key` to `token` until `until` unless another token's lease is
    /// unexpired at `now`; whether `token` holds it now.
    async fn lock(&self, key: &str, token: &str, until: i64, now: i64) -> Result<bool>;

    /// Moves `token`'s lease at `key` to expire at `until` if it is unexpired at `now`;
    /// whether it did.
    async fn renew_lock(&self, key: &str, token: &str, until: i64, now: i64) -> Result<bool>;

    /// Deletes `token`'s lease at `key`; whether it was unexpired at `now`.
    async fn unlock(&self, key: &str, token: &str, now: i64) -> Result<bool>;

    /// Deletes the leases that lapsed by `now`; how many.
    async fn gc_locks(&self, now: i64) -> Result<u64>;
}

/// The store logic shared by the SQL dialects.
#[derive(Debug, Clone)]
pub(crate) struct SqlCore<D> {
    pub(crate) driver: D,
    pub(crate) concurrency: Concurrency,
}

impl<D: Driver> SqlCore<D> {
    pub(crate) fn new(driver: D) -> Self {
        Self {
            driver,
            concurrency: Concurrency::default(),
        }
    }

    /// Decodes a row into a record, warning (with the short key only) when it is corrupt.
    fn decode(&self, key: &StoreKey, row: &Row) -> Result<Record> {
        let decoded = decode_row(row);
        if let Err(err) = &decoded {
            tracing::warn!(
                session = key.short(),
                backend = D::NAME,
                table = self.driver.table(),
                error = %format_args!("{err:#}"),
                "corrupt session row; treated as no session"
            );
        }
        decoded
    }

    pub(crate) async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        let now = Timestamp::now().as_millis();
        let Some(row) = self.driver.fetch(key.as_str(), now).await? else {
            return Ok(None);
        };
        let mut record = self.decode(key, &row)?;
        record.revision = row.version.map(|version| revision(row.id, version));
        Ok(Some(record))
    }

    pub(crate) async fn update_if_unchanged(
        &self,
        key: &StoreKey,
        loaded: Revision,
        record: &Record,
    ) -> Result<Option<Revision>> {
        let (id, version) = split_revision(loaded);
        let expected = RowVersion {
            cookie: key.as_str(),
            id,
            version,
            now: Timestamp::now().as_millis(),
        };
        let written = self
            .driver
            .compare_and_set(expected, &Written::of(record))
            .await?;
        Ok(written.then(|| revision(id, version.wrapping_add(1))))
    }

    pub(crate) async fn update_if_unchanged_and_unlock(
        &self,
        key: &StoreKey,
        loaded: Revision,
        record: &Record,
        token: &LockToken,
    ) -> Result<Option<Revision>> {
        let (id, version) = split_revision(loaded);
        let expected = RowVersion {
            cookie: key.as_str(),
            id,
            version,
            now: Timestamp::now().as_millis(),
        };
        let written = self
            .driver
            .compare_and_set_and_unlock(expected, &Written::of(record), token.as_str())
            .await?;
        Ok(written.then(|| revision(id, version.wrapping_add(1))))
    }

    pub(crate) async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        self.retrying(key.short(), "the create", || self.create_once(key, record))
            .await
    }

    /// Runs `attempt` until it succeeds, fails for good, or has been retried [`RETRIES`]
    /// times after the database aborted it as a deadlock victim or a serialization failure.
    /// `session` is what the log shows of the session concerned: a short key prefix, never
    /// the key.
    async fn retrying<T, F>(
        &self,
        session: &str,
        what: &str,
        mut attempt: impl FnMut() -> F,
    ) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        let mut retries = 0;
        loop {
            match attempt().await {
                Err(err) if is_retryable(&err) && retries < RETRIES => {
                    retries += 1;
                    tracing::debug!(
                        session,
                        backend = D::NAME,
                        attempt = retries,
                        "deadlock or serialization failure; retrying {what}"
                    );
                    tokio::time::sleep(backoff(retries)).await;
                }
                outcome => return outcome,
            }
        }
    }

    async fn create_once(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        let row = Written::of(record);
        let now = Timestamp::now().as_millis();
        if self.driver.insert(key.as_str(), &row, now).await? {
            return Ok(true);
        }
        // A row that has not expired holds the key. It is kept unless it is corrupt: a
        // corrupt record counts as absent and is replaced, but only if nobody changed it
        // meanwhile (its version), so concurrent creates still admit exactly one.
        let now = Timestamp::now().as_millis();
        let Some(found) = self.driver.fetch(key.as_str(), now).await? else {
            // It expired or was deleted in between: try once more.
            return self.driver.insert(key.as_str(), &row, now).await;
        };
        if decode_row(&found).is_ok() {
            return Ok(false);
        }
        let Some(version) = found.version else {
            return Ok(false);
        };
        let expected = RowVersion {
            cookie: key.as_str(),
            id: found.id,
            version,
            now,
        };
        tracing::warn!(
            session = key.short(),
            backend = D::NAME,
            table = self.driver.table(),
            "replacing a corrupt session row"
        );
        self.driver.compare_and_set(expected, &row).await
    }

    pub(crate) async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        self.retrying(key.short(), "the change set", || {
            self.update_once(key, changes)
        })
        .await
    }

    async fn update_once(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        // The record as the row has it, owner included (from its columns), with the change
        // set applied: a change set without an owner writes the owner back unchanged.
        let merge = |row: &Row| -> Result<Written> {
            let mut record = self.decode(key, row)?;
            changes.apply_to_record(&mut record);
            Ok(Written::of(&record))
        };
        if self.concurrency == Concurrency::Optimistic {
            let now = Timestamp::now().as_millis();
            let Some(row) = self.driver.fetch(key.as_str(), now).await? else {
                return Ok(false);
            };
            let written = merge(&row)?;
            if let Some(version) = row.version {
                let expected = RowVersion {
                    cookie: key.as_str(),
                    id: row.id,
                    version,
                    now: Timestamp::now().as_millis(),
                };
                if self.driver.compare_and_set(expected, &written).await? {
                    return Ok(true);
                }
            }
            tracing::debug!(
                session = key.short(),
                backend = D::NAME,
                "concurrent change to the session; applying the change set under a row lock"
            );
        }
        let now = Timestamp::now().as_millis();
        self.driver.update_locked(key.as_str(), now, &merge).await
    }

    pub(crate) async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
        let now = Timestamp::now().as_millis();
        self.driver
            .touch(key.as_str(), expires_at.as_millis(), now)
            .await
    }

    pub(crate) async fn delete(&self, key: &StoreKey) -> Result<bool> {
        let now = Timestamp::now().as_millis();
        self.driver.delete(key.as_str(), now).await
    }

    pub(crate) async fn gc(&self) -> Result<u64> {
        let now = Timestamp::now().as_millis();
        let mut total = 0u64;
        loop {
            // A batch deletes a range of the expiry index while requests lock single rows
            // and then move their index entries, so MySQL can pick the batch as a deadlock
            // victim; it was rolled back whole and deleting expired rows again is harmless.
            let removed = self
                .retrying("(gc)", "a gc batch", || self.driver.gc_batch(now, GC_BATCH))
                .await?;
            total += removed;
            if removed < GC_BATCH.unsigned_abs() {
                break;
            }
            // Let requests waiting for a connection or a lock go first.
            tokio::task::yield_now().await;
        }
        if total > 0 {
            tracing::debug!(
                backend = D::NAME,
                table = self.driver.table(),
                removed = total,
                "gc removed expired sessions"
            );
        }
        // Lapsed leases (of holders that stopped without unlocking) are swept too; they are
        // no sessions, so they are not counted. `lock` replaces a lapsed lease anyway, so
        // this only keeps the table from growing with keys nobody locks again.
        let now = Timestamp::now().as_millis();
        let lapsed = self
            .retrying("(gc)", "the lease sweep", || self.driver.gc_locks(now))
            .await?;
        if lapsed > 0 {
            tracing::debug!(
                backend = D::NAME,
                table = self.driver.table(),
                removed = lapsed,
                "gc removed lapsed session locks"
            );
        }
        Ok(total)
    }

    /// Grants the lock of `key` to `token` for `ttl`: one statement, retried if the
    /// database picks it as a deadlock victim (it was rolled back whole).
    pub(crate) async fn lock(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<bool> {
        self.retrying(key.short(), "a lock", || {
            let now = Timestamp::now();
            let until = (now + ttl).as_millis();
            self.driver
                .lock(key.as_str(), token.as_str(), until, now.as_millis())
        })
        .await
    }

    /// Extends `token`'s unexpired lease on `key` to `ttl` from now.
    pub(crate) async fn renew_lock(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<bool> {
        self.retrying(key.short(), "a lock renewal", || {
            let now = Timestamp::now();
            let until = (now + ttl).as_millis();
            self.driver
                .renew_lock(key.as_str(), token.as_str(), until, now.as_millis())
        })
        .await
    }

    /// Releases `token`'s lease on `key`; whether it was unexpired.
    pub(crate) async fn unlock(&self, key: &StoreKey, token: &LockToken) -> Result<bool> {
        self.retrying(key.short(), "an unlock", || {
            let now = Timestamp::now().as_millis();
            self.driver.unlock(key.as_str(), token.as_str(), now)
        })
        .await
    }

    pub(crate) async fn migrate(&self) -> Result<()> {
        self.driver.migrate().await
    }

    /// Deletes the live records at `keys` in batches of [`Driver::DELETE_BATCH`] (one
    /// statement for any list below that), each retried alone if the database picks it as
    /// a deadlock victim: it was rolled back whole, so counting it again is exact.
    pub(crate) async fn delete_many(&self, keys: &[StoreKey]) -> Result<u64> {
        let now = Timestamp::now().as_millis();
        let cookies: Vec<&str> = keys.iter().map(StoreKey::as_str).collect();
        let mut removed = 0;
        for batch in cookies.chunks(D::DELETE_BATCH.max(1)) {
            removed += self
                .retrying("(delete_many)", "a delete_many batch", || {
                    self.driver.delete_batch(batch, now)
                })
                .await?;
        }
        Ok(removed)
    }

    /// The user's live sessions, in one statement. An entry whose key or blob header is
    /// unreadable (a foreign writer's row) is left out with a warning, not an error: one
    /// bad row must not hide a user's other sessions.
    pub(crate) async fn sessions_of(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
        let now = Timestamp::now().as_millis();
        let rows = self.driver.list(user.as_str(), now).await?;
        let mut sessions = Vec::with_capacity(rows.len());
        for row in rows {
            match indexed_session(row) {
                Ok(session) => sessions.push(session),
                Err(err) => tracing::warn!(
                    backend = D::NAME,
                    table = self.driver.table(),
                    error = %format_args!("{err:#}"),
                    "unreadable session row in a user's listing; left out"
                ),
            }
        }
        Ok(sessions)
    }

    /// Rows bound to `user`, expired ones gc has not removed yet included.
    pub(crate) async fn user_index_len(&self, user: &UserId) -> Result<u64> {
        self.driver.count_bound(user.as_str()).await
    }
}

/// A listed row as an index entry: the `expire` column is the truth for the expiry, the
/// blob's header gives the creation time.
fn indexed_session(row: Listed) -> Result<IndexedSession> {
    let key = StoreKey::parse(row.cookie.as_deref().unwrap_or_default())?;
    let expire = row
        .expire
        .ok_or_else(|| Error::decode("the `expire` column is NULL or not an integer"))?;
    let head = row
        .head
        .ok_or_else(|| Error::decode("the `data` column is NULL or not binary"))?;
    Ok(IndexedSession {
        key,
        created_at: created_at(&head)?,
        expires_at: Timestamp::from_millis(expire),
        label: row.label.unwrap_or_default(),
    })
}

/// The creation time in the first [`HEAD_LEN`] bytes of a blob, checked (magic, version,
/// length) by the wire module's own header decoder first.
fn created_at(head: &[u8]) -> Result<Timestamp> {
    decode_expiry(head)?;
    let bytes = head
        .get(CREATED_AT)
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .ok_or_else(|| Error::decode("the session record header is truncated"))?;
    Ok(Timestamp::from_millis(i64::from_le_bytes(bytes)))
}

/// How often a write the database aborted as a deadlock victim (or a serialization
/// failure) is tried again. The database rolled it back whole, so trying again is safe.
const RETRIES: u32 = 8;

/// Whether the database asks for the transaction to be tried again: SQLSTATE 40001
/// (serialization failure; MySQL's deadlock 1213) or 40P01 (PostgreSQL's deadlock).
fn is_retryable(err: &Error) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<sqlx::Error>())
        .and_then(sqlx::Error::as_database_error)
        .and_then(|db| db.code())
        .is_some_and(|code| matches!(code.as_ref(), "40001" | "40P01"))
}

/// A short, randomised wait before retry `attempt`, so the transactions that collided do
/// not collide again in lockstep.
fn backoff(attempt: u32) -> std::time::Duration {
    use std::hash::BuildHasher;
    let spread = 2 * u64::from(attempt);
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    std::time::Duration::from_millis(1 + random % spread.max(1))
}

/// A row as a record: the blob decoded with [`session_core::wire`], the expiry and the owner
/// taken from the `expire`, `user_id` and `label` columns, which are the truth (they are
/// what the statements filter on, and every write sets them from the same record as the
/// blob).
pub(crate) fn decode_row(row: &Row) -> Result<Record> {
    let expire = row
        .expire
        .ok_or_else(|| Error::decode("the `expire` column is NULL or not an integer"))?;
    let data = row
        .data
        .as_deref()
        .ok_or_else(|| Error::decode("the `data` column is NULL or not binary"))?;
    let mut record = decode_record(data)?;
    record.expires_at = Timestamp::from_millis(expire);
    record.owner = row_owner(row)?;
    Ok(record)
}

/// The owner the `user_id` and `label` columns name; a NULL `user_id` is an unbound session
/// (every row an earlier version of this crate wrote), a NULL `label` an empty one.
fn row_owner(row: &Row) -> Result<Option<Owner>> {
    let Some(user) = &row.user else {
        return Ok(None);
    };
    let user = UserId::new(user.as_str()).map_err(|err| {
        Error::decode("the `user_id` column is not a valid user id").with_source(err)
    })?;
    let label = row.label.clone().unwrap_or_default();
    check_label(&label)
        .map_err(|err| Error::decode("the `label` column is not a valid label").with_source(err))?;
    Ok(Some(Owner { user, label }))
}

/// A driver error as a store error, keeping the driver's error as the source.
pub(crate) fn db_error(backend: &'static str, operation: &'static str, err: sqlx::Error) -> Error {
    let kind = match &err {
        sqlx::Error::PoolTimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Backend,
    };
    Error::new(kind, format!("{backend}: {operation} failed")).with_source(err)
}

/// Reads a column that may be NULL or of a foreign type as `None`.
pub(crate) fn lenient<'r, R, T>(row: &'r R, column: &str) -> Option<T>
where
    R: sqlx::Row,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
{
    row.try_get::<Option<T>, _>(column).ok().flatten()
}

/// Reads the result rows of the statements, for any driver's row type. A column that is
/// NULL or of a foreign type reads as `None`.
pub(crate) trait ReadRow {
    /// A row of `fetch` / `fetch_locked`.
    fn session_row(&self) -> Result<Row>;

    /// A row of `list`.
    fn listed(&self) -> Listed;
}

impl<R> ReadRow for R
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn session_row(&self) -> Result<Row> {
        let id = lenient::<R, i64>(self, "id")
            .ok_or_else(|| Error::decode("the `id` column is NULL or not an integer"))?;
        Ok(Row {
            id,
            data: lenient(self, "data"),
            expire: lenient(self, "expire"),
            version: lenient(self, "version"),
            user: lenient(self, "user_id"),
            label: lenient(self, "label"),
        })
    }

    fn listed(&self) -> Listed {
        Listed {
            cookie: lenient(self, "cookie"),
            head: lenient(self, "head"),
            expire: lenient(self, "expire"),
            label: lenient(self, "label"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row with `data` and `expire`, version 0, bound to nobody.
    fn row(data: Option<Vec<u8>>, expire: Option<i64>) -> Row {
        Row {
            id: 1,
            data,
            expire,
            version: Some(0),
            user: None,
            label: None,
        }
    }

    fn ada() -> Owner {
        Owner::new(UserId::new("ada").expect("valid"))
            .with_label("laptop")
            .expect("valid")
    }

    #[test]
    fn rows_with_null_or_garbage_are_decode_errors() {
        let good = encode_record(&Record::default());
        let bad_user = Row {
            user: Some("a\nb".to_owned()),
            ..row(Some(good.clone()), Some(1))
        };
        let bad_label = Row {
            user: Some("ada".to_owned()),
            label: Some("x".repeat(session_core::MAX_LABEL_LEN + 1)),
            ..row(Some(good.clone()), Some(1))
        };
        for row in [
            row(None, Some(1)),
            row(Some(good.clone()), None),
            row(Some(b"garbage".to_vec()), Some(1)),
            bad_user,
            bad_label,
        ] {
            let err = decode_row(&row).expect_err("corrupt");
            assert_eq!(err.kind(), ErrorKind::Decode);
        }
        let row = Row {
            version: None,
            ..row(Some(good), Some(42))
        };
        assert_eq!(
            decode_row(&row).expect("valid").expires_at,
            Timestamp::from_millis(42),
            "the column is the truth for expiry"
        );
    }

    #[test]
    fn the_columns_are_the_truth_for_the_owner() {
        let bound = Record::default().with_owner(Some(ada()));
        let written = Written::of(&bound);
        assert_eq!(
            (written.user(), written.label()),
            (Some("ada"), Some("laptop"))
        );
        let unbound = Written::of(&Record::default());
        assert_eq!((unbound.user(), unbound.label()), (None, None));

        // A blob that names an owner, in a row whose columns name none (say, unbound by
        // hand in SQL): the row is unbound, as its listing says.
        let columns_unbound = row(Some(written.data.clone()), Some(1));
        assert_eq!(decode_row(&columns_unbound).expect("valid").owner, None);
        // A blob without an owner (an earlier version's row) in a bound row.
        let columns_bound = Row {
            user: Some("ada".to_owned()),
            label: None,
            ..row(Some(unbound.data), Some(1))
        };
        assert_eq!(
            decode_row(&columns_bound).expect("valid").owner,
            Some(Owner::new(UserId::new("ada").expect("valid"))),
            "a NULL label is an empty one"
        );
    }

    #[test]
    fn listings_take_the_creation_time_from_the_header() {
        let record = Record::new(
            Default::default(),
            Timestamp::from_millis(9_000),
            Timestamp::from_millis(1_234),
        )
        .with_owner(Some(ada()));
        let blob = encode_record(&record);
        let key = session_core::SessionId::generate(32)
            .expect("id")
            .store_key();
        let listed = |head: &[u8]| Listed {
            cookie: Some(key.as_str().to_owned()),
            head: Some(head.to_vec()),
            expire: Some(10_000),
            label: Some("laptop".to_owned()),
        };
        let session = indexed_session(listed(&blob[..HEAD_LEN])).expect("valid");
        assert_eq!(session.key, key);
        assert_eq!(session.created_at, Timestamp::from_millis(1_234));
        assert_eq!(
            session.expires_at,
            Timestamp::from_millis(10_000),
            "the column, not the blob"
        );
        assert_eq!(session.label, "laptop");
        for bad in [
            &blob[..HEAD_LEN - 1],
            b"garbage that is long enough".as_slice(),
        ] {
            let err = indexed_session(listed(bad)).expect_err("bad header");
            assert_eq!(err.kind(), ErrorKind::Decode);
        }
        let no_key = Listed {
            cookie: Some("not a key".to_owned()),
            ..listed(&blob[..HEAD_LEN])
        };
        assert!(indexed_session(no_key).is_err());
    }
}
