//! The peer application: the example's `/incr` and `/read` routes on tower-sessions, with
//! the same backends, for `cargo xtask bench`. `--store none` serves `/incr` without any
//! session: the ceiling of the HTTP stack on the machine.
//!
//! ```text
//! session-bench-peer --addr 127.0.0.1:3001 --store memory|sqlite|postgres|mysql|redis|none [--url URL]
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

async fn app(store: &str, url: &str) -> Result<Router, Box<dyn std::error::Error>> {
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
            let store = PostgresStore::new(sqlx::PgPool::connect(url).await?);
            store.migrate().await?;
            routes(store)
        }
        "mysql" => {
            let store = MySqlStore::new(sqlx::MySqlPool::connect(url).await?);
            store.migrate().await?;
            routes(store)
        }
        "sqlite" => {
            let store = SqliteStore::new(sqlx::SqlitePool::connect(url).await?);
            store.migrate().await?;
            routes(store)
        }
        other => return Err(format!("unknown store {other}").into()),
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut addr: SocketAddr = ([127, 0, 0, 1], 3001).into();
    let mut store = "memory".to_owned();
    let mut url = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--addr" => match value.parse() {
                Ok(parsed) => addr = parsed,
                Err(err) => {
                    eprintln!("--addr {value}: {err}");
                    return ExitCode::FAILURE;
                }
            },
            "--store" => store = value,
            "--url" => url = value,
            other => {
                eprintln!("unknown argument {other}");
                return ExitCode::FAILURE;
            }
        }
    }
    let result = async {
        let router = app(&store, &url).await?;
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
