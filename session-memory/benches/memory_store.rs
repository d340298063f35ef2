//! Memory store benchmarks: load, save of a change set, whole requests through the session
//! manager (on one core, and on two at once over shared sessions), and gc of 10,000
//! expired sessions among 100,000 live ones.
//!
//! `cargo bench -p session-memory --bench memory_store` (add `-- --quick` for a short run).
//! `--bench allocations` counts the heap allocations of the same whole requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use session_core::{
    ChangeSet, Record, SessionConfig, SessionId, SessionManager, SessionStore, StoreKey, Timestamp,
};
use session_memory::MemoryStore;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn key() -> StoreKey {
    SessionId::generate(32).expect("id").store_key()
}

fn record(expires_in: Duration) -> Record {
    Record {
        data: [
            ("user".to_owned(), b"ada lovelace".to_vec()),
            ("visits".to_owned(), vec![42]),
        ]
        .into(),
        expires_at: Timestamp::now() + expires_in,
        created_at: Timestamp::now(),
        revision: None,
        owner: None,
    }
}

/// `GET /incr` of the example app: read a counter, add one, write it, flush. Returns the
/// `Set-Cookie` value, if the response gets one.
async fn incr(manager: &SessionManager, cookie: Option<&str>) -> Option<String> {
    let session = manager.session_from_cookie_header(cookie);
    let n: u64 = session.get("n").await.expect("get").unwrap_or(0);
    session.set("n", &(n + 1)).await.expect("set");
    let set_cookie = session.flush().await.expect("flush")?;
    Some(format!("{}={}", set_cookie.name(), set_cookie.value()))
}

fn operations(c: &mut Criterion) {
    let rt = runtime();
    let store = Arc::new(MemoryStore::new());
    let existing = key();
    rt.block_on(store.create(&existing, &record(Duration::from_secs(3600))))
        .expect("create");

    c.bench_function("memory/load", |b| {
        b.to_async(&rt)
            .iter(|| async { store.load(&existing).await.expect("load") });
    });
    c.bench_function("memory/save_change_set", |b| {
        let changes = ChangeSet {
            set: [("visits".to_owned(), vec![43])].into(),
            expires_at: Timestamp::now() + Duration::from_secs(3600),
            ..ChangeSet::default()
        };
        b.to_async(&rt)
            .iter(|| async { store.update(&existing, &changes).await.expect("update") });
    });

    let manager = SessionManager::new(store.clone(), SessionConfig::default()).expect("manager");
    let cookie = rt
        .block_on(incr(&manager, None))
        .expect("a new session gets a cookie");
    c.bench_function("memory/request_incr_existing", |b| {
        b.to_async(&rt)
            .iter(|| async { incr(&manager, Some(&cookie)).await });
    });
    c.bench_function("memory/request_incr_new", |b| {
        b.to_async(&rt)
            .iter(|| async { incr(&manager, None).await });
    });
}

/// Whole requests on two threads at once, over the same 1,000 sessions: what sharing the
/// manager and the store between cores costs. The time reported is the machine time per
/// request (both cores' time), comparable with `request_incr_existing` on one core.
fn two_cores(c: &mut Criterion) {
    let rt = runtime();
    let manager = SessionManager::new(Arc::new(MemoryStore::new()), SessionConfig::default())
        .expect("manager");
    let cookies: Vec<String> = (0..1000)
        .map(|_| rt.block_on(incr(&manager, None)).expect("cookie"))
        .collect();
    c.bench_function("memory/request_incr_existing_two_threads", |b| {
        b.iter_custom(|iterations| {
            let per_thread = iterations.div_ceil(2);
            let started = Instant::now();
            std::thread::scope(|scope| {
                for thread in 0..2 {
                    let (manager, cookies) = (&manager, &cookies);
                    scope.spawn(move || {
                        let rt = runtime();
                        rt.block_on(async {
                            for i in 0..per_thread {
                                let cookie = &cookies[(i as usize * 2 + thread) % cookies.len()];
                                incr(manager, Some(cookie)).await;
                            }
                        });
                    });
                }
            });
            // Both cores were busy all along.
            started.elapsed() * 2
        });
    });
}

fn gc(c: &mut Criterion) {
    let rt = runtime();
    let store = MemoryStore::new();
    rt.block_on(async {
        for _ in 0..100_000 {
            store
                .create(&key(), &record(Duration::from_secs(3600)))
                .await
                .expect("create");
        }
    });
    let mut group = c.benchmark_group("memory/gc");
    group.sample_size(10);
    group.bench_function("10k_expired_among_100k_live", |b| {
        b.iter_batched(
            || {
                rt.block_on(async {
                    for _ in 0..10_000 {
                        store
                            .create(&key(), &record(Duration::ZERO))
                            .await
                            .expect("create");
                    }
                });
            },
            |()| {
                let removed = rt.block_on(store.gc()).expect("gc");
                assert_eq!(removed, 10_000);
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, operations, two_cores, gc);
criterion_main!(benches);
