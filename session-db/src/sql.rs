//! What the three SQL stores share: the row shape, the statements each dialect writes,
//! the primitive operations on a table ([`Driver`]), and the store logic on top
//! (decoding, corruption, the update strategy, gc in batches).

use session_core::wire::{decode_record, encode_record};
use session_core::{
    ChangeSet, Error, ErrorKind, Record, Result, Revision, StoreKey, Timestamp, async_trait,
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
}

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

/// Computes a row's new blob, and the expiry to store with it, from the row as read
/// (under a lock).
pub(crate) type Merge<'a> = dyn for<'r> Fn(&'r Row) -> Result<(Vec<u8>, i64)> + Send + Sync + 'a;

/// The primitive operations on one table; [`SqlCore`] builds the store contracts from
/// them, and [`Table`](crate::dialect::Table) runs them for every dialect. Every method is
/// one statement or one short transaction.
#[async_trait]
pub(crate) trait Driver: Send + Sync + 'static {
    /// The backend's name, for messages.
    const NAME: &'static str;

    /// The quoted table name, for messages.
    fn table(&self) -> &str;

    /// The row at `cookie` unless it has expired.
    async fn fetch(&self, cookie: &str, now: i64) -> Result<Option<Row>>;

    /// Stores a new row unless a live one holds the cookie; whether it stored it.
    async fn insert(&self, cookie: &str, data: &[u8], expire: i64, now: i64) -> Result<bool>;

    /// Runs [`Statements::compare_and_set`](crate::dialect::Statements::compare_and_set):
    /// whether the row was still as read.
    async fn compare_and_set(&self, row: RowVersion<'_>, data: &[u8], expire: i64) -> Result<bool>;

    /// Locks the live row at `cookie`, computes its new data and expiry with `merge`,
    /// writes them and commits; `false` if there is no live row.
    async fn update_locked(&self, cookie: &str, now: i64, merge: &Merge<'_>) -> Result<bool>;

    /// Moves the expiry of the live row at `cookie`; whether there was one.
    async fn touch(&self, cookie: &str, expire: i64, now: i64) -> Result<bool>;

    /// Deletes the row at `cookie`; whether it was alive.
    async fn delete(&self, cookie: &str, now: i64) -> Result<bool>;

    /// Deletes up to `limit` expired rows; how many it deleted.
    async fn gc_batch(&self, now: i64, limit: i64) -> Result<u64>;

    /// Creates the table and index if missing.
    async fn migrate(&self) -> Result<()>;
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
                error = %err,
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
        let data = encode_record(record);
        let written = self
            .driver
            .compare_and_set(expected, &data, record.expires_at.as_millis())
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
        let data = encode_record(record);
        let expire = record.expires_at.as_millis();
        let now = Timestamp::now().as_millis();
        if self.driver.insert(key.as_str(), &data, expire, now).await? {
            return Ok(true);
        }
        // A row that has not expired holds the key. It is kept unless it is corrupt: a
        // corrupt record counts as absent and is replaced, but only if nobody changed it
        // meanwhile (its version), so concurrent creates still admit exactly one.
        let now = Timestamp::now().as_millis();
        let Some(row) = self.driver.fetch(key.as_str(), now).await? else {
            // It expired or was deleted in between: try once more.
            return self.driver.insert(key.as_str(), &data, expire, now).await;
        };
        if decode_row(&row).is_ok() {
            return Ok(false);
        }
        let Some(version) = row.version else {
            return Ok(false);
        };
        let expected = RowVersion {
            cookie: key.as_str(),
            id: row.id,
            version,
            now,
        };
        tracing::warn!(
            session = key.short(),
            backend = D::NAME,
            table = self.driver.table(),
            "replacing a corrupt session row"
        );
        self.driver.compare_and_set(expected, &data, expire).await
    }

    pub(crate) async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        self.retrying(key.short(), "the change set", || {
            self.update_once(key, changes)
        })
        .await
    }

    async fn update_once(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        let merge = |row: &Row| -> Result<(Vec<u8>, i64)> {
            let mut record = self.decode(key, row)?;
            changes.apply_to(&mut record.data);
            record.expires_at = changes.expires_at;
            Ok((encode_record(&record), changes.expires_at.as_millis()))
        };
        if self.concurrency == Concurrency::Optimistic {
            let now = Timestamp::now().as_millis();
            let Some(row) = self.driver.fetch(key.as_str(), now).await? else {
                return Ok(false);
            };
            let (data, expire) = merge(&row)?;
            if let Some(version) = row.version {
                let expected = RowVersion {
                    cookie: key.as_str(),
                    id: row.id,
                    version,
                    now: Timestamp::now().as_millis(),
                };
                if self.driver.compare_and_set(expected, &data, expire).await? {
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
        Ok(total)
    }

    pub(crate) async fn migrate(&self) -> Result<()> {
        self.driver.migrate().await
    }
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

/// A row as a record: the blob decoded with [`session_core::wire`], the expiry taken from
/// the `expire` column, which is the truth.
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
    Ok(record)
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

/// Reads a row of `fetch` / `fetch_locked`.
pub(crate) fn read_row<R>(row: &R) -> Result<Row>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let id = lenient::<R, i64>(row, "id")
        .ok_or_else(|| Error::decode("the `id` column is NULL or not an integer"))?;
    Ok(Row {
        id,
        data: lenient(row, "data"),
        expire: lenient(row, "expire"),
        version: lenient(row, "version"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_with_null_or_garbage_are_decode_errors() {
        let good = encode_record(&Record::default());
        for row in [
            Row {
                id: 1,
                data: None,
                expire: Some(1),
                version: Some(0),
            },
            Row {
                id: 1,
                data: Some(good.clone()),
                expire: None,
                version: Some(0),
            },
            Row {
                id: 1,
                data: Some(b"garbage".to_vec()),
                expire: Some(1),
                version: Some(0),
            },
        ] {
            let err = decode_row(&row).expect_err("corrupt");
            assert_eq!(err.kind(), ErrorKind::Decode);
        }
        let row = Row {
            id: 1,
            data: Some(good),
            expire: Some(42),
            version: None,
        };
        assert_eq!(
            decode_row(&row).expect("valid").expires_at,
            Timestamp::from_millis(42),
            "the column is the truth for expiry"
        );
    }
}
