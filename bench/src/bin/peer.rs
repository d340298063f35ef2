//! The peer application: the example's `/incr` and `/read` routes on tower-sessions, with
//! the same backends, for `cargo xtask bench`. `--store none` serves `/incr` without any
//! session: the ceiling of the HTTP stack on the machine.
//!
//! ```text
//! session-bench-peer --addr 127.0.0.1:3001 --store memory|sqlite|postgres|mysql|redis|none [--url URL]
//!                    [--pool N] [--ping on|off]
//! session-bench-peer --help
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::get;
use peer_app::routes;
use tower_sessions::MemoryStore;
use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};
use tower_sessions_sqlx_store::{MySqlStore, PostgresStore, SqliteStore, sqlx};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// How the peer's sqlx pool is set up: its size and whether it pings a connection before
/// handing it out (sqlx's `test_before_acquire`, on by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PoolSettings {
    max_connections: u32,
    ping: bool,
}

impl Default for PoolSettings {
    /// sqlx's own defaults: 10 connections, a ping before each use.
    fn default() -> Self {
        Self {
            max_connections: 10,
            ping: true,
        }
    }
}

impl PoolSettings {
    fn options<DB: sqlx::Database>(self) -> sqlx::pool::PoolOptions<DB> {
        sqlx::pool::PoolOptions::new()
            .max_connections(self.max_connections)
            .test_before_acquire(self.ping)
    }
}

async fn app(
    store: &str,
    url: &str,
    pool: PoolSettings,
) -> Result<Router, Box<dyn std::error::Error>> {
    Ok(match store {
        "none" => Router::new()
            .route(
                "/incr",
                get(|| async { (COUNTER.fetch_add(1, Ordering::Relaxed) + 1).to_string() }),
            )
            .route("/healthz", get(|| async { "ok" })),
        "memory" => routes(MemoryStore::default()),
        "redis" => {
            let pool = Pool::new(Config::from_url(url)?, None, None, None, 6)?;
            pool.init().await?;
            routes(RedisStore::new(pool))
        }
        "postgres" => {
            let store = PostgresStore::new(pool.options().connect(url).await?);
            store.migrate().await?;
            routes(store)
        }
        "mysql" => {
            let store = MySqlStore::new(pool.options().connect(url).await?);
            store.migrate().await?;
            routes(store)
        }
        "sqlite" => {
            let store = SqliteStore::new(pool.options().connect(url).await?);
            store.migrate().await?;
            routes(store)
        }
        other => return Err(format!("unknown store {other}").into()),
    })
}

/// The usage, printed on standard output for `--help` and on standard error after a wrong
/// argument.
const USAGE: &str = "\
usage: session-bench-peer [--addr ADDR] [--store STORE] [--url URL] [--pool N] [--ping on|off]

  --addr ADDR      the address to listen on (default 127.0.0.1:3001)
  --store STORE    memory (default), sqlite, postgres, mysql, redis, or none (no session)
  --url URL        the store's server or file (sqlx or Redis URL)
  --pool N         the sqlx pool's most connections (default 10, sqlx's default)
  --ping on|off    whether sqlx pings a connection before handing it out (default on,
                   sqlx's default `test_before_acquire`)
  -h, --help       print this help
";

/// The stores `--store` accepts.
const STORES: [&str; 6] = ["memory", "sqlite", "postgres", "mysql", "redis", "none"];

/// The status of a run whose arguments were wrong, apart from 1 (a server that failed).
const USAGE_ERROR: u8 = 2;

struct Args {
    addr: SocketAddr,
    store: String,
    url: String,
    pool: PoolSettings,
}

/// Reads the command line; `Ok(None)` asks for the usage.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        addr: ([127, 0, 0, 1], 3001).into(),
        store: "memory".to_owned(),
        url: String::new(),
        pool: PoolSettings::default(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--addr" => {
                let addr = value("--addr")?;
                parsed.addr = addr
                    .parse()
                    .map_err(|err| format!("--addr {addr}: {err}"))?;
            }
            "--store" => {
                let store = value("--store")?;
                if !STORES.contains(&store.as_str()) {
                    return Err(format!("unknown store {store}"));
                }
                parsed.store = store;
            }
            "--url" => parsed.url = value("--url")?,
            "--pool" => {
                let size = value("--pool")?;
                parsed.pool.max_connections = match size.parse() {
                    Ok(size) if size > 0 => size,
                    _ => return Err(format!("--pool {size}: not a positive number")),
                };
            }
            "--ping" => {
                parsed.pool.ping = match value("--ping")?.as_str() {
                    "on" => true,
                    "off" => false,
                    other => return Err(format!("--ping {other}: on or off")),
                };
            }
            "--help" | "-h" => return Ok(None),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Some(parsed))
}

#[tokio::main]
async fn main() -> ExitCode {
    let Args {
        addr,
        store,
        url,
        pool,
    } = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprint!("session-bench-peer: {message}\n\n{USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let result = async {
        let router = app(&store, &url, pool).await?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        axum::serve(listener, router).await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("session-bench-peer ({store}): {err}");
            ExitCode::FAILURE
        }
    }
}
