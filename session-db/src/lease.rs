//! Connections a SQL store keeps between its statements.
//!
//! sqlx's pool tests every connection it gets back with a ping, from a task it spawns for
//! the purpose, before anyone may use that connection again (`PoolConnection`'s `Drop` in
//! sqlx-core 0.8). A statement run on `&Pool` therefore costs two round trips and a task.
//! A store whose pool it opened itself ([`Connections::kept`]) keeps the connections it
//! used checked out instead, in a stack, and hands them straight to its next statement:
//! one round trip per statement.
//!
//! Only a connection whose statement succeeded is kept. One whose statement failed, or
//! whose future was dropped mid-call, goes back to sqlx when its [`Lease`] drops, and
//! sqlx tests it and closes it if it is broken: the next statement gets a sound one.
//!
//! A pool the application passes in may serve the application too, so a store on such a
//! pool ([`Connections::shared`]) keeps nothing and returns each connection after use.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Database, Pool};
use tokio::sync::{Semaphore, SemaphorePermit};

/// The connections of one store.
pub(crate) struct Connections<DB: Database> {
    pool: Pool<DB>,
    kept: Option<Kept<DB>>,
}

/// What a store that keeps its connections needs.
struct Kept<DB: Database> {
    idle: Mutex<Vec<PoolConnection<DB>>>,
    /// One per connection of the pool: while the store holds every connection (leased or
    /// idle), a statement waits here for one to come back, not in the pool.
    permits: Semaphore,
    acquire_timeout: Duration,
    test_before_use: bool,
}

impl<DB: Database> Connections<DB> {
    /// Every statement borrows a connection from `pool` and returns it after.
    pub(crate) fn shared(pool: Pool<DB>) -> Self {
        Self { pool, kept: None }
    }

    /// The store owns `pool` and keeps the connections it used, up to the pool's size.
    /// With `test_before_use`, a kept connection is pinged before each statement, as sqlx
    /// does with `test_before_acquire`.
    pub(crate) fn kept(pool: Pool<DB>) -> Self {
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

    /// The pool underneath.
    pub(crate) fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// A connection for one statement or transaction.
    ///
    /// # Errors
    /// [`sqlx::Error::PoolTimedOut`] when none is free within the pool's acquire timeout;
    /// the pool's error when a new connection cannot be opened.
    pub(crate) async fn lease(&self) -> Result<Lease<'_, DB>, sqlx::Error> {
        let Some(kept) = &self.kept else {
            return Ok(Lease {
                connection: self.pool.acquire().await?,
                kept: None,
                _permit: None,
            });
        };
        let permit = tokio::time::timeout(kept.acquire_timeout, kept.permits.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let connection = loop {
            match kept.pop() {
                Some(mut connection) => {
                    if !kept.test_before_use || connection.ping().await.is_ok() {
                        break connection;
                    }
                    // Dropped here: sqlx closes it.
                }
                // With a permit and no idle connection, the pool has one free or room to
                // open one.
                None => break self.pool.acquire().await?,
            }
        };
        Ok(Lease {
            connection,
            kept: Some(kept),
            _permit: Some(permit),
        })
    }
}

impl<DB: Database> Kept<DB> {
    fn pop(&self) -> Option<PoolConnection<DB>> {
        // A panic while holding this lock cannot leave the stack half-changed.
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn push(&self, connection: PoolConnection<DB>) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(connection);
    }
}

/// One connection, lent for one statement or transaction. Call [`Lease::done`] after it
/// succeeded; dropped without it, the connection goes back to sqlx to be tested.
pub(crate) struct Lease<'a, DB: Database> {
    connection: PoolConnection<DB>,
    kept: Option<&'a Kept<DB>>,
    // Declared after `connection`, so it is released after the connection went back.
    _permit: Option<SemaphorePermit<'a>>,
}

impl<DB: Database> Lease<'_, DB> {
    /// The connection, to run statements on.
    pub(crate) fn connection(&mut self) -> &mut DB::Connection {
        &mut self.connection
    }

    /// The statement succeeded: keep the connection for the next one (or return it to a
    /// shared pool).
    pub(crate) fn done(self) {
        let Self {
            connection,
            kept,
            _permit,
        } = self;
        if let Some(kept) = kept {
            kept.push(connection);
        }
        // `_permit` is released here, once the connection is back on the stack.
    }
}
