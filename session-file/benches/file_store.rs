//! File store benchmarks: load, save of a change set, a whole request, and gc of 10,000
//! expired sessions among 100,000 live ones.
//!
//! `cargo bench -p session-file` (add `-- --quick` for a short run). Writes are measured
//! with fsync on (the default) and off.

use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use session_core::{
    ChangeSet, Record, SessionConfig, SessionId, SessionManager, SessionStore, StoreKey, Timestamp,
};
use session_file::{FileStore, FileStoreOptions};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
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

fn operations(c: &mut Criterion) {
    let rt = runtime();
    for fsync in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::open(FileStoreOptions::new(dir.path()).fsync(fsync)).expect("open");
        let existing = key();
        rt.block_on(store.create(&existing, &record(Duration::from_secs(3600))))
            .expect("create");
        let label = if fsync { "fsync" } else { "no-fsync" };

        c.bench_function(&format!("file/{label}/load"), |b| {
            b.to_async(&rt)
                .iter(|| async { store.load(&existing).await.expect("load") });
        });
        c.bench_function(&format!("file/{label}/save_change_set"), |b| {
            let changes = ChangeSet {
                set: [("visits".to_owned(), vec![43])].into(),
                expires_at: Timestamp::now() + Duration::from_secs(3600),
                ..ChangeSet::default()
            };
            b.to_async(&rt)
                .iter(|| async { store.update(&existing, &changes).await.expect("update") });
        });

        let manager = SessionManager::new(Arc::new(store.clone()), SessionConfig::default())
            .expect("manager");
        let cookie = rt.block_on(async {
            let session = manager.session_from_cookie_header(None);
            session.set("visits", &0u64).await.expect("set");
            let cookie = session.flush().await.expect("flush").expect("cookie");
            format!("{}={}", cookie.name(), cookie.value())
        });
        c.bench_function(&format!("file/{label}/request_incr"), |b| {
            b.to_async(&rt).iter(|| async {
                let session = manager.session_from_cookie_header(Some(&cookie));
                let visits: u64 = session.get("visits").await.expect("get").unwrap_or(0);
                session.set("visits", &(visits + 1)).await.expect("set");
                session.flush().await.expect("flush")
            });
        });
    }
}

fn gc(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileStore::open(FileStoreOptions::new(dir.path()).fsync(false)).expect("open");
    rt.block_on(async {
        for _ in 0..100_000 {
            store
                .create(&key(), &record(Duration::from_secs(3600)))
                .await
                .expect("create");
        }
    });
    let mut group = c.benchmark_group("file/gc");
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

criterion_group!(benches, operations, gc);
criterion_main!(benches);
