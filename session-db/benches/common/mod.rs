//! The benchmarks every backend runs: load, save (one change set), a whole request through
//! `SessionManager`, and the two update strategies alone and under contention.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use session_core::{
    ChangeSet, Data, Record, SessionConfig, SessionId, SessionManager, SessionStore, StoreKey,
    Timestamp,
};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

/// Concurrent change sets to one session in the contended benchmarks.
pub const CONTENDERS: usize = 16;

/// The stores under test: the same table through row locks (the default strategy, used
/// by the load and request benchmarks) and through the optimistic strategy.
pub struct Stores {
    pub optimistic: Arc<dyn SessionStore>,
    pub row_lock: Arc<dyn SessionStore>,
}

/// A criterion set up for servers: fewer samples than the default, and whatever the
/// command line says on top.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

/// A random prefix, so a benchmark run never touches another run's table.
pub fn random_prefix() -> String {
    let key = SessionId::generate(32).expect("id").store_key();
    format!("b{}_", &key.as_str()[..12])
}

pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A typical logged-in session: a user record, a role, a CSRF token and a counter.
fn sample_record() -> Record {
    Record {
        data: Data::from([
            ("userInfo".to_owned(), vec![7u8; 120]),
            ("role".to_owned(), b"admin".to_vec()),
            ("csrf".to_owned(), vec![1u8; 32]),
            ("visits".to_owned(), 1u64.to_le_bytes().to_vec()),
        ]),
        expires_at: Timestamp::now() + Duration::from_secs(86_400),
        created_at: Timestamp::now(),
        revision: None,
        owner: None,
    }
}

fn change(i: u64) -> ChangeSet {
    ChangeSet {
        set: Data::from([("visits".to_owned(), i.to_le_bytes().to_vec())]),
        expires_at: Timestamp::now() + Duration::from_secs(86_400),
        ..ChangeSet::default()
    }
}

async fn created(store: &dyn SessionStore) -> StoreKey {
    let key = SessionId::generate(32).expect("id").store_key();
    assert!(store.create(&key, &sample_record()).await.expect("create"));
    key
}

/// Runs every benchmark against `stores`, named `<backend>/<benchmark>`.
pub fn bench_backend(c: &mut Criterion, runtime: &Runtime, backend: &str, stores: &Stores) {
    let key = runtime.block_on(created(stores.row_lock.as_ref()));
    let mut group = c.benchmark_group(backend);

    group.bench_function("load", |b| {
        b.to_async(runtime).iter(|| async {
            let record = stores.row_lock.load(&key).await.expect("load");
            assert!(record.is_some());
        });
    });

    for (strategy, store) in [
        ("optimistic", &stores.optimistic),
        ("row_lock", &stores.row_lock),
    ] {
        let mut i = 0u64;
        group.bench_with_input(BenchmarkId::new("save", strategy), store, |b, store| {
            b.to_async(runtime).iter(|| {
                i += 1;
                let changes = change(i);
                let key = key.clone();
                async move { assert!(store.update(&key, &changes).await.expect("update")) }
            });
        });
    }

    for (strategy, store) in [
        ("optimistic", &stores.optimistic),
        ("row_lock", &stores.row_lock),
    ] {
        let contended = runtime.block_on(created(store.as_ref()));
        group.bench_with_input(
            BenchmarkId::new(format!("save_{CONTENDERS}_concurrent"), strategy),
            store,
            |b, store| {
                b.to_async(runtime).iter(|| async {
                    let mut set = JoinSet::new();
                    for i in 0..CONTENDERS as u64 {
                        let store = Arc::clone(store);
                        let key = contended.clone();
                        set.spawn(async move { store.update(&key, &change(i)).await });
                    }
                    while let Some(done) = set.join_next().await {
                        assert!(done.expect("join").expect("update"));
                    }
                });
            },
        );
    }

    let manager = SessionManager::new(Arc::clone(&stores.row_lock), SessionConfig::default())
        .expect("manager");
    let cookie = runtime.block_on(async {
        let session = manager.session_from_cookie_header(None);
        session.set("visits", &0u64).await.expect("set");
        session.set("userInfo", "Ada Lovelace").await.expect("set");
        let cookie = session.flush().await.expect("flush").expect("cookie");
        format!("{}={}", cookie.name(), cookie.value())
    });
    group.bench_function("request", |b| {
        b.to_async(runtime).iter(|| async {
            let session = manager.session_from_cookie_header(Some(&cookie));
            let visits: u64 = session
                .get("visits")
                .await
                .expect("get")
                .unwrap_or_default();
            session.set("visits", &(visits + 1)).await.expect("set");
            session.flush().await.expect("flush");
        });
    });
    group.finish();
}

/// The two update strategies measured side by side: rounds alternate between them, so
/// the noise of a shared machine (other builds, the database's own background work) hits
/// both alike. Prints the median and 90th percentile of each.
pub fn compare_strategies(runtime: &Runtime, backend: &str, stores: &Stores) {
    const ROUNDS: usize = 400;
    const CONTENDED_ROUNDS: usize = 60;
    let strategies = [
        ("optimistic", &stores.optimistic),
        ("row_lock", &stores.row_lock),
    ];
    runtime.block_on(async {
        let mut single = [Vec::new(), Vec::new()];
        let keys = [
            created(stores.optimistic.as_ref()).await,
            created(stores.row_lock.as_ref()).await,
        ];
        for round in 0..ROUNDS {
            for (slot, (_, store)) in strategies.iter().enumerate() {
                let started = Instant::now();
                assert!(
                    store
                        .update(&keys[slot], &change(round as u64))
                        .await
                        .expect("update")
                );
                single[slot].push(started.elapsed());
            }
        }
        let mut contended = [Vec::new(), Vec::new()];
        for _ in 0..CONTENDED_ROUNDS {
            for (slot, (_, store)) in strategies.iter().enumerate() {
                let started = Instant::now();
                let mut set = JoinSet::new();
                for i in 0..CONTENDERS as u64 {
                    let store = Arc::clone(store);
                    let key = keys[slot].clone();
                    set.spawn(async move { store.update(&key, &change(i)).await });
                }
                while let Some(done) = set.join_next().await {
                    assert!(done.expect("join").expect("update"));
                }
                contended[slot].push(started.elapsed());
            }
        }
        println!("\n{backend}: update strategies, interleaved");
        for (slot, (name, _)) in strategies.iter().enumerate() {
            println!(
                "  {name:<10}  one change set: median {:>8.3?}  p90 {:>8.3?}   \
                 {CONTENDERS} concurrent on one session: median {:>8.3?}  p90 {:>8.3?}",
                percentile(&mut single[slot], 50),
                percentile(&mut single[slot], 90),
                percentile(&mut contended[slot], 50),
                percentile(&mut contended[slot], 90),
            );
        }
    });
}

fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort_unstable();
    let index = (samples.len().saturating_sub(1) * p) / 100;
    samples.get(index).copied().unwrap_or_default()
}
