//! The `metrics` feature's counters and timings, exactly, after a scripted sequence of
//! requests on the memory store, read from a debugging recorder that the manager was
//! built under (a local recorder: nothing global, so the tests of this binary never see
//! each other's counts).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use session_core::{
    Capabilities, ChangeSet, Data, ErrorKind, IndexedSession, LockToken, Record, Result, Revision,
    SessionConfig, SessionManager, SessionStore, StoreKey, Timestamp, UserId, async_trait,
};
use session_memory::MemoryStore;

/// The memory store, whose `load` never answers while `stalled` is set: a store that hangs
/// (the manager's `store_timeout` then ends the call).
#[derive(Debug, Default)]
struct Stalling {
    inner: MemoryStore,
    stalled: AtomicBool,
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl SessionStore for Stalling {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        if self.stalled.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.load(key).await
    }
    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        self.inner.create(key, record).await
    }
    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<bool> {
        self.inner.update(key, changes).await
    }
    async fn update_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
        record: &Record,
    ) -> Result<Option<Revision>> {
        self.inner.update_if_unchanged(key, revision, record).await
    }
    async fn touch(&self, key: &StoreKey, expires_at: Timestamp) -> Result<bool> {
        self.inner.touch(key, expires_at).await
    }
    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        self.inner.delete(key).await
    }
    async fn gc(&self) -> Result<u64> {
        self.inner.gc().await
    }
    async fn delete_many(&self, keys: &[StoreKey]) -> Result<u64> {
        self.inner.delete_many(keys).await
    }
    async fn sessions_of(&self, user: &UserId) -> Result<Vec<IndexedSession>> {
        self.inner.sessions_of(user).await
    }
    async fn user_index_len(&self, user: &UserId) -> Result<u64> {
        self.inner.user_index_len(user).await
    }
    async fn lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        self.inner.lock(key, token, ttl).await
    }
    async fn lock_and_load(
        &self,
        key: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<Option<Option<Record>>> {
        self.inner.lock_and_load(key, token, ttl).await
    }
    async fn update_and_unlock(
        &self,
        key: &StoreKey,
        changes: &ChangeSet,
        token: &LockToken,
    ) -> Result<bool> {
        self.inner.update_and_unlock(key, changes, token).await
    }
    async fn update_if_unchanged_and_unlock(
        &self,
        key: &StoreKey,
        revision: Revision,
        record: &Record,
        token: &LockToken,
    ) -> Result<Option<Revision>> {
        self.inner
            .update_if_unchanged_and_unlock(key, revision, record, token)
            .await
    }
    async fn renew_lock(&self, key: &StoreKey, token: &LockToken, ttl: Duration) -> Result<bool> {
        self.inner.renew_lock(key, token, ttl).await
    }
    async fn unlock(&self, key: &StoreKey, token: &LockToken) -> Result<bool> {
        self.inner.unlock(key, token).await
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}

/// What changed since the last look: each counter that moved, as `name{labels}` → how
/// much, and for the call timings `session_store_call_seconds{...}` → how many calls.
fn moved(snapshotter: &Snapshotter) -> BTreeMap<String, u64> {
    let mut moved = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Vec<String> = key
            .labels()
            .map(|label| format!("{}={}", label.key(), label.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let amount = match value {
            DebugValue::Counter(n) => n,
            DebugValue::Histogram(samples) => {
                for sample in &samples {
                    assert!(
                        sample.0 >= 0.0 && sample.0 < 5.0,
                        "{name}: a call time of {} s",
                        sample.0
                    );
                }
                samples.len() as u64
            }
            DebugValue::Gauge(_) => panic!("{name}: no gauge is expected"),
        };
        if amount > 0 {
            moved.insert(name, amount);
        }
    }
    moved
}

/// `name{store=memory}` → `n`, and each `op` → its number of calls.
fn expect(counters: &[(&str, u64)], calls: &[(&str, u64)]) -> BTreeMap<String, u64> {
    let mut expected: BTreeMap<String, u64> = counters
        .iter()
        .map(|(name, n)| {
            let name = match name.strip_prefix("errors:") {
                Some(kind) => format!("session_store_errors_total{{store=memory,kind={kind}}}"),
                None => format!("{name}{{store=memory}}"),
            };
            (name, *n)
        })
        .collect();
    for (op, n) in calls {
        expected.insert(
            format!("session_store_call_seconds{{store=memory,op={op}}}"),
            *n,
        );
    }
    expected
}

fn cookie_header(cookie: &session_core::cookie::Cookie<'_>) -> String {
    format!("{}={}", cookie.name(), cookie.value())
}

#[tokio::test]
async fn each_counter_counts_exactly_what_happened() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let store = Arc::new(Stalling::default());
    let config = SessionConfig::from_json_str(
        r#"{"type": "memory", "touch_after": "10ms", "store_timeout": "200ms"}"#,
    )
    .expect("config");
    // The manager registers its metrics with the recorder in force when it is built.
    let manager = metrics::with_local_recorder(&recorder, || {
        SessionManager::new(store.clone(), config).expect("manager")
    });
    assert!(moved(&snapshotter).is_empty(), "nothing before a request");

    // A new session: one create.
    let login = manager.session_from_cookie_header(None);
    login.set("user", "ada").await.expect("set");
    let cookie = cookie_header(&login.flush().await.expect("flush").expect("cookie"));
    assert_eq!(
        moved(&snapshotter),
        expect(&[("session_created_total", 1)], &[("create", 1)])
    );

    // A change to it: one load, one conditional write.
    let visit = manager.session_from_cookie_header(Some(&cookie));
    visit.set("visits", &1u32).await.expect("set");
    visit.flush().await.expect("flush");
    assert_eq!(
        moved(&snapshotter),
        expect(
            &[("session_loaded_total", 1), ("session_updated_total", 1)],
            &[("load", 1), ("update", 1)]
        )
    );

    // A read-only request once `touch_after` has passed: one load, one touch.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let read = manager.session_from_cookie_header(Some(&cookie));
    assert_eq!(read.get::<u32>("visits").await.expect("get"), Some(1));
    read.flush().await.expect("flush");
    assert_eq!(
        moved(&snapshotter),
        expect(
            &[("session_loaded_total", 1), ("session_touched_total", 1)],
            &[("load", 1), ("touch", 1)]
        )
    );

    // Two requests of the session change it at once: both change sets are applied (the
    // memory store reports no revisions, so no conditional write is tried).
    let first = manager.session_from_cookie_header(Some(&cookie));
    let second = manager.session_from_cookie_header(Some(&cookie));
    first.set("a", "1").await.expect("set");
    second.set("b", "2").await.expect("set");
    first.flush().await.expect("flush");
    second.flush().await.expect("flush");
    assert_eq!(
        moved(&snapshotter),
        expect(
            &[("session_loaded_total", 2), ("session_updated_total", 2)],
            &[("load", 2), ("update", 2)]
        )
    );

    // Log-in on the session: its id cycles (delete, then create under the fresh id).
    let cycle = manager.session_from_cookie_header(Some(&cookie));
    cycle.cycle_id().await.expect("cycle");
    let cookie = cookie_header(&cycle.flush().await.expect("flush").expect("a new cookie"));
    assert_eq!(
        moved(&snapshotter),
        expect(
            &[
                ("session_loaded_total", 1),
                ("session_cycled_total", 1),
                ("session_created_total", 1),
            ],
            &[("load", 1), ("delete", 1), ("create", 1)]
        )
    );

    // Log-out: one delete, no load; a second log-out with the same cookie removes nothing.
    for _ in 0..2 {
        let logout = manager.session_from_cookie_header(Some(&cookie));
        logout.clear().await;
        logout.flush().await.expect("flush");
    }
    assert_eq!(
        moved(&snapshotter),
        expect(&[("session_cleared_total", 1)], &[("delete", 2)])
    );

    // A create over a live record is refused, and so is a conditional write the store
    // cannot make (it keeps no revisions): two conflicts.
    let key = session_core::SessionId::generate(32)
        .expect("id")
        .store_key();
    let record = |expires_in: Duration| {
        Record::new(
            Data::from([("k".to_owned(), b"v".to_vec())]),
            Timestamp::now() + expires_in,
            Timestamp::now(),
        )
    };
    let guarded = manager.store();
    assert!(
        guarded
            .create(&key, &record(Duration::from_secs(60)))
            .await
            .expect("create")
    );
    assert!(
        !guarded
            .create(&key, &record(Duration::from_secs(60)))
            .await
            .expect("create")
    );
    let refused = guarded
        .update_if_unchanged(&key, Revision::new(1), &record(Duration::from_secs(60)))
        .await
        .expect("conditional write");
    assert_eq!(refused, None);
    assert_eq!(
        moved(&snapshotter),
        expect(
            &[("session_created_total", 1), ("session_conflicts_total", 2)],
            &[("create", 2), ("update_if_unchanged", 1)]
        )
    );

    // Three sessions expire; gc removes them.
    for _ in 0..3 {
        let key = session_core::SessionId::generate(32)
            .expect("id")
            .store_key();
        assert!(
            guarded
                .create(&key, &record(Duration::from_millis(20)))
                .await
                .expect("create")
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(guarded.gc().await.expect("gc"), 3);
    assert_eq!(
        moved(&snapshotter),
        expect(
            &[
                ("session_created_total", 3),
                ("session_gc_removed_total", 3)
            ],
            &[("create", 3), ("gc", 1)]
        )
    );

    // The store hangs: the load ends at `store_timeout`, counted by kind.
    store.stalled.store(true, Ordering::SeqCst);
    let hung = manager.session_from_cookie_header(Some(&cookie));
    let err = hung.get::<String>("user").await.expect_err("a hung load");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(
        moved(&snapshotter),
        expect(&[("errors:timeout", 1)], &[("load", 1)])
    );
}

#[tokio::test]
async fn the_gc_task_counts_what_it_removes() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let config = SessionConfig::from_json_str(r#"{"type": "memory", "gc": {"interval": "50ms"}}"#)
        .expect("config");
    let manager = metrics::with_local_recorder(&recorder, || {
        SessionManager::new(Arc::new(MemoryStore::new()), config).expect("manager")
    });
    for _ in 0..2 {
        let key = session_core::SessionId::generate(32)
            .expect("id")
            .store_key();
        let record = Record::new(
            Data::from([("k".to_owned(), b"v".to_vec())]),
            Timestamp::now() + Duration::from_millis(10),
            Timestamp::now(),
        );
        assert!(manager.store().create(&key, &record).await.expect("create"));
    }
    let gc = manager.spawn_gc().expect("runtime").expect("gc is on");
    let mut removed = 0;
    let mut runs = 0;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = moved(&snapshotter);
        removed += now
            .get("session_gc_removed_total{store=memory}")
            .copied()
            .unwrap_or(0);
        runs += now
            .get("session_store_call_seconds{store=memory,op=gc}")
            .copied()
            .unwrap_or(0);
        if removed >= 2 && runs >= 2 {
            break;
        }
    }
    gc.stop().await;
    assert_eq!(removed, 2, "the two expired sessions, once each");
    assert!(
        runs >= 2,
        "the task kept running and timing its runs: {runs}"
    );
}
