//! Connections a SQL store keeps between its statements.
//!
//! sqlx's pool tests every connection it gets back with a ping, from a task it spawns for
//! the purpose, before anyone may use that connection again (`PoolConnection`'s `Drop` in
//! sqlx-core 0.8). A statement run on `&Pool` therefore costs two round trips and a task.
//! A store that opened its pool itself ([`Connections::kept`]) takes connections out of
//! the pool for good instead (`PoolConnection::detach`), keeps them in a stack of its own
//! and hands them straight to its next statement: one round trip per statement.
//!
//! Only a connection whose statement succeeded goes back on the stack. One whose statement
//! failed, or whose future was dropped mid-call, is dropped (its socket closes) and the
//! next statement opens a fresh one through the pool. At most `max_connections` are out
//! at a time, leased or idle. Once the pool is closed, the store closes the connections
//! it kept and fails like any store on a closed pool.
//!
//! A pool the application passes in may serve the application too, so a store on such a
//! pool ([`Connections::shared`]) keeps nothing and returns each connection after use.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::{Connection, Database, Executor, IntoArguments, Pool};
use tokio::sync::{Semaphore, SemaphorePermit};

/// The connections of one store.
pub(crate) struct Connections<DB: Database> {
    pool: Pool<DB>,
    kept: Option<Kept<DB>>,
}

/// What a store that keeps its connections needs.
struct Kept<DB: Database> {
    idle: Mutex<Vec<DB::Connection>>,
    /// One per connection the store may have out, leased or idle.
    permits: Semaphore,
    acquire_timeout: Duration,
    test_before_use: bool,
}

impl<DB: Database> Connections<DB> {
    /// Every statement borrows a connection from `pool` and returns it after.
    pub(crate) fn shared(pool: Pool<DB>) -> Self {
        Self { pool, kept: None }
    }

    /// The store owns `pool` and keeps up to the pool's `max_connections` between
    /// statements, `min_connections` of them opened now. With the pool's
    /// `test_before_acquire`, a kept connection is pinged before each statement, as sqlx
    /// does for the connections in its pool. Build the pool with no `min_connections` of
    /// its own: it would replace every connection the store takes out.
    ///
    /// # Errors
    /// The pool's error when a connection cannot be opened.
    pub(crate) async fn kept(pool: Pool<DB>, min_connections: u32) -> Result<Self, sqlx::Error> {
        let connections = Self::keeping(pool);
        connections.open(min_connections).await?;
        Ok(connections)
    }

    fn keeping(pool: Pool<DB>) -> Self {
        let options = pool.options();
        let kept = Kept {
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(options.get_max_connections() as usize),
            acquire_timeout: options.get_acquire_timeout(),
            test_before_use: options.get_test_before_acquire(),
        };
        Self {
            pool,
            kept: Some(kept),
        }
    }

    /// Opens `count` connections (at most the pool's size) and keeps them, so the first
    /// requests find them ready. Does nothing for a shared pool.
    async fn open(&self, count: u32) -> Result<(), sqlx::Error> {
        if self.kept.is_none() {
            return Ok(());
        }
        let mut leases = Vec::new();
        for _ in 0..count.min(self.pool.options().get_max_connections()) {
            leases.push(self.lease().await?);
        }
        leases.into_iter().for_each(Lease::done);
        Ok(())
    }

    /// The pool underneath.
    pub(crate) fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// A connection for one statement or transaction.
    ///
    /// # Errors
    /// [`sqlx::Error::PoolTimedOut`] when none is free within the pool's acquire timeout,
    /// [`sqlx::Error::PoolClosed`] once the pool is closed, and the pool's error when a
    /// new connection cannot be opened.
    pub(crate) async fn lease(&self) -> Result<Lease<'_, DB>, sqlx::Error> {
        let Some(kept) = &self.kept else {
            return Ok(Lease {
                connection: Held::Pooled(self.pool.acquire().await?),
                kept: None,
                _permit: None,
            });
        };
        if self.pool.is_closed() {
            kept.close_idle().await;
            return Err(sqlx::Error::PoolClosed);
        }
        // One deadline for the whole lease: the wait for a permit and the pool's own
        // acquire (connecting included) share the acquire timeout, so a call waits at
        // most that long however the time splits between them.
        let deadline = tokio::time::Instant::now() + kept.acquire_timeout;
        let permit = tokio::time::timeout_at(deadline, kept.permits.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let connection = loop {
            match kept.pop() {
                Some(mut connection) => {
                    if !kept.test_before_use
                        || matches!(
                            tokio::time::timeout_at(deadline, connection.ping()).await,
                            Ok(Ok(()))
                        )
                    {
                        break connection;
                    }
                    // Dropped here, which closes its socket.
                }
                // The permit leaves room for one more connection of this store.
                None => {
                    break tokio::time::timeout_at(deadline, self.pool.acquire())
                        .await
                        .map_err(|_| sqlx::Error::PoolTimedOut)??
                        .detach();
                }
            }
        };
        Ok(Lease {
            connection: Held::Own(connection),
            kept: Some(kept),
            _permit: Some(permit),
        })
    }
}

impl<DB: Database> Kept<DB> {
    fn pop(&self) -> Option<DB::Connection> {
        // A panic while holding this lock cannot leave the stack half-changed.
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn push(&self, connection: DB::Connection) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(connection);
    }

    /// Closes the idle connections gracefully (the server sees a goodbye, not a reset).
    async fn close_idle(&self) {
        while let Some(connection) = self.pop() {
            let _ = connection.close().await;
        }
    }
}

/// A connection as a lease holds it.
enum Held<DB: Database> {
    /// Borrowed from a shared pool, returned to it on drop.
    Pooled(PoolConnection<DB>),
    /// Taken out of the store's own pool.
    Own(DB::Connection),
}

/// One connection, lent for one statement or transaction. Finish it with the outcome
/// ([`Lease::finish`]), or call [`Lease::done`] after it succeeded; dropped without either,
/// a connection of the store's own is closed, never reused.
pub(crate) struct Lease<'a, DB: Database> {
    connection: Held<DB>,
    kept: Option<&'a Kept<DB>>,
    // Declared after `connection`, so it is released after the connection is gone or back.
    _permit: Option<SemaphorePermit<'a>>,
}

impl<DB: Database> Lease<'_, DB> {
    /// The connection, to run statements on.
    pub(crate) fn connection(&mut self) -> &mut DB::Connection {
        match &mut self.connection {
            Held::Pooled(connection) => connection,
            Held::Own(connection) => connection,
        }
    }

    /// Finishes the lease with the outcome of what ran on it: on success the connection is
    /// kept for the next statement (see [`Lease::done`]); on an error the lease is dropped,
    /// so a connection of the store's own is closed, and one borrowed from a shared pool
    /// goes back to sqlx, which pings it before anyone uses it again.
    pub(crate) fn finish<T, E>(self, outcome: Result<T, E>) -> Result<T, E> {
        if outcome.is_ok() {
            self.done();
        }
        outcome
    }

    /// Runs one statement on the connection and finishes the lease with its outcome.
    pub(crate) async fn execute<'q>(
        mut self,
        query: Query<'q, DB, DB::Arguments<'q>>,
    ) -> Result<DB::QueryResult, sqlx::Error>
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        DB::Arguments<'q>: IntoArguments<'q, DB>,
    {
        let outcome = query.execute(self.connection()).await;
        self.finish(outcome)
    }

    /// The statement succeeded: keep the connection for the next one (or return it to a
    /// shared pool).
    pub(crate) fn done(self) {
        let Self {
            connection,
            kept,
            _permit,
        } = self;
        if let (Held::Own(connection), Some(kept)) = (connection, kept) {
            kept.push(connection);
        }
        // `_permit` is released here, once the connection is back on the stack.
    }
}
