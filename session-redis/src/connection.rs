//! One handle over a single server's connection manager or a cluster connection, so the
//! store speaks to both the same way; and the store's set of them, one per
//! single-threaded runtime that calls it.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A cheaply cloneable connection that reconnects on its own.
#[derive(Clone)]
pub(crate) enum Connection {
    /// One server, through a multiplexed connection that the manager replaces when it
    /// breaks.
    Single(ConnectionManager),
    /// A Redis Cluster; the connection routes each command by its key.
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Connection {
    /// Whether this is a cluster connection, on which no script may reach keys of two
    /// slots.
    pub(crate) fn is_cluster(&self) -> bool {
        match self {
            Self::Single(_) => false,
            #[cfg(feature = "cluster")]
            Self::Cluster(_) => true,
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            #[cfg(feature = "cluster")]
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "cluster")]
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            #[cfg(feature = "cluster")]
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

/// The store's connections: the one it was opened with, and, on runtimes of one thread
/// each (actix-web's workers, `#[tokio::test]`), one of each thread's own.
///
/// A connection's I/O is driven by the runtime that made it. Used from a task of another
/// runtime, every command crosses threads twice (to that runtime's driver and back),
/// which costs more than the command itself on loopback. So a store called from a
/// single-threaded runtime other than its own makes a connection there, on first use,
/// with the same settings; one made on a multi-threaded runtime serves every thread of it.
/// A thread's connection lives as long as its runtime: a guard task spawned on that
/// runtime marks it dead when the runtime shuts down, and the next call makes a new one.
#[derive(Clone)]
pub(crate) struct Connections {
    shared: Connection,
    /// How to make a thread's own connection: only for a single server the store made
    /// the manager of (not for a manager or cluster connection handed to it).
    local: Option<Arc<Local>>,
}

/// What a thread's own connection is made from. Its address in memory identifies the
/// store (and its clones) in each thread's cache.
struct Local {
    client: redis::Client,
    config: ConnectionManagerConfig,
}

/// A thread's connection for one store, and whether the runtime that drives it still runs.
struct Cached {
    store: Weak<Local>,
    runtime: tokio::runtime::Id,
    connection: ConnectionManager,
    alive: Weak<()>,
}

thread_local! {
    /// Each thread's own connections, one per store.
    static CACHE: RefCell<Vec<Cached>> = const { RefCell::new(Vec::new()) };
}

impl Connections {
    /// The connections of a store opened with `shared`, and able to make more from
    /// `client` with `config` when `local` is given.
    pub(crate) fn new(
        shared: Connection,
        local: Option<(redis::Client, ConnectionManagerConfig)>,
    ) -> Self {
        let local = local.map(|(client, config)| Arc::new(Local { client, config }));
        let connections = Self { shared, local };
        // Opened on a single-threaded runtime: that runtime's tasks use the shared one.
        if let (Some(local), Connection::Single(manager)) =
            (&connections.local, &connections.shared)
            && let Some(handle) = single_threaded_runtime()
        {
            remember(local, manager.clone(), &handle);
        }
        connections
    }

    /// Whether this is a cluster connection, on which no script may reach keys of two
    /// slots.
    pub(crate) fn is_cluster(&self) -> bool {
        self.shared.is_cluster()
    }

    /// The connection for a call from the current task: the calling thread's own on a
    /// single-threaded runtime, made now if it has none (it connects on first use),
    /// otherwise the shared one.
    pub(crate) fn get(&self) -> Connection {
        let Some(local) = &self.local else {
            return self.shared.clone();
        };
        let Some(handle) = single_threaded_runtime() else {
            return self.shared.clone();
        };
        let runtime = handle.id();
        // Every call but a thread's first on a runtime ends here: a lookup, no purge.
        let cached = CACHE.with_borrow(|cache| {
            cache
                .iter()
                .find(|entry| {
                    entry.runtime == runtime
                        && std::ptr::eq(entry.store.as_ptr(), Arc::as_ptr(local))
                        && entry.store.strong_count() > 0
                })
                .map(|entry| entry.connection.clone())
        });
        if let Some(connection) = cached {
            return Connection::Single(connection);
        }
        match ConnectionManager::new_lazy_with_config(local.client.clone(), local.config.clone()) {
            Ok(connection) => {
                remember(local, connection.clone(), &handle);
                Connection::Single(connection)
            }
            // A lazy connection fails only on a client it cannot use, which the shared one
            // was made from too: that one gives the error, on use.
            Err(_) => self.shared.clone(),
        }
    }
}

/// The current runtime, if it runs on one thread.
fn single_threaded_runtime() -> Option<tokio::runtime::Handle> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    (handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread).then_some(handle)
}

/// A marker that lives as long as the runtime of `handle` does: held by a task spawned on
/// it, dropped when it shuts down. One per runtime and thread.
fn runtime_marker(handle: &tokio::runtime::Handle) -> Weak<()> {
    let id = handle.id();
    RUNTIME.with_borrow_mut(|marker| {
        if let Some((marked, alive)) = marker.as_ref()
            && *marked == id
        {
            return alive.clone();
        }
        let alive = Arc::new(());
        let weak = Arc::downgrade(&alive);
        drop(handle.spawn(async move {
            let _alive = alive;
            std::future::pending::<()>().await;
        }));
        *marker = Some((id, weak.clone()));
        weak
    })
}

thread_local! {
    /// The single-threaded runtime this thread last ran a store call on, and its marker.
    static RUNTIME: RefCell<Option<(tokio::runtime::Id, Weak<()>)>> = const { RefCell::new(None) };
}

/// Keeps `connection` as this thread's for the store of `local` on the runtime of
/// `handle`, after dropping the entries of stores dropped and runtimes shut down.
fn remember(local: &Arc<Local>, connection: ConnectionManager, handle: &tokio::runtime::Handle) {
    let alive = runtime_marker(handle);
    CACHE.with_borrow_mut(|cache| {
        cache.retain(|entry| entry.store.strong_count() > 0 && entry.alive.strong_count() > 0);
        cache.push(Cached {
            store: Arc::downgrade(local),
            runtime: handle.id(),
            connection,
            alive,
        });
    });
}
