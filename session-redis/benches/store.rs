//! Criterion benchmarks of the Redis store against the real Redis at
//! `SESSION_TEST_REDIS_URL` (`redis://127.0.0.1:6379` by default): a load, the save of a
//! change set, and a whole request (load, change, flush) through a `SessionManager`.
//!
//! When Redis is unreachable the benchmarks say so and exit successfully. Keys live under a
//! random prefix and are removed at the end.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use session_core::{
    ChangeSet, Data, Record, SessionConfig, SessionId, SessionManager, SessionStore, StoreKey,
    Timestamp,
};

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start a tokio runtime: {err}");
            return;
        }
    };
    let url = support::redis_url();
    let prefix = support::random_prefix("bench");
    let store = match runtime.block_on(support::open_store(&url, &prefix, Duration::from_secs(5))) {
        Ok(store) => Arc::new(store),
        Err(reason) => {
            println!("session-redis benchmarks skipped: {reason}");
            return;
        }
    };
    let mut criterion = Criterion::default().configure_from_args();
    match runtime.block_on(prepare_record(&store)) {
        Ok(key) => {
            criterion.bench_function("redis/load", |b| {
                b.to_async(&runtime)
                    .iter(|| async { store.load(&key).await.expect("load").expect("live") });
            });
            let changes = ChangeSet {
                set: Data::from([("key1".to_owned(), vec![7; 64])]),
                expires_at: Timestamp::now() + Duration::from_secs(3600),
                ..ChangeSet::default()
            };
            criterion.bench_function("redis/save_change_set", |b| {
                b.to_async(&runtime).iter(|| async {
                    assert!(store.update(&key, &changes).await.expect("update"))
                });
            });
        }
        Err(err) => eprintln!("cannot prepare the load and save benchmarks: {err}"),
    }

    match runtime.block_on(prepare_request(&store)) {
        Ok((manager, header)) => {
            criterion.bench_function("redis/request_incr", |b| {
                b.to_async(&runtime).iter(|| async {
                    let session = manager.session_from_cookie_header(Some(&header));
                    let counter: u64 = session.get("counter").await.expect("get").unwrap_or(0);
                    session.set("counter", &(counter + 1)).await.expect("set");
                    session.flush().await.expect("flush");
                });
            });
        }
        Err(err) => eprintln!("cannot prepare the request benchmark: {err}"),
    }

    criterion.final_summary();
    runtime.block_on(support::delete_prefix(&url, &prefix));
}

/// A stored session of five 64-byte values.
async fn prepare_record(store: &session_redis::RedisStore) -> session_core::Result<StoreKey> {
    let key = SessionId::generate(32)?.store_key();
    let record = Record {
        data: (0..5u8).map(|i| (format!("key{i}"), vec![i; 64])).collect(),
        expires_at: Timestamp::now() + Duration::from_secs(3600),
        created_at: Timestamp::now(),
        revision: None,
        owner: None,
    };
    store.create(&key, &record).await?;
    Ok(key)
}

/// A manager over the store and the cookie of a logged-in session.
async fn prepare_request(
    store: &Arc<session_redis::RedisStore>,
) -> session_core::Result<(SessionManager, String)> {
    let manager = SessionManager::new(
        Arc::clone(store) as Arc<dyn SessionStore>,
        SessionConfig::from_json_str(r#"{"type": "redis"}"#)?,
    )?;
    let session = manager.session_from_cookie_header(None);
    session.set("user", "ada").await?;
    let cookie = session.flush().await?.ok_or_else(|| {
        session_core::Error::new(
            session_core::ErrorKind::Backend,
            "no cookie for a new session",
        )
    })?;
    let header = format!("{}={}", cookie.name(), cookie.value());
    Ok((manager, header))
}
