//! Redis paused, killed and restarted under a live store: calls fail within the response
//! timeout (never hang, never panic), or within the manager's `store_timeout` when that
//! is shorter, and the store recovers on its own once Redis is back,
//! both around single calls and for five seconds under a load of concurrent requests; a
//! lock holder whose Redis is paused past `lock_ttl` loses its lease and its flush; a
//! Redis with an append-only file killed under load keeps its sessions across the restart.
//!
//! Each test starts its own `redis-server` on a spare loopback port, so stopping it
//! disturbs nobody; the server is killed when the test ends, pass or fail.

mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{
    ChangeSet, Data, ErrorKind, LockToken, Record, SessionConfig, SessionId, SessionManager,
    SessionStore, StoreKey, Timestamp,
};
use session_redis::{RedisConfig, RedisStore, redis};
use session_testkit::{Load, LoadReport, TestResult, Tests, Trial};
use support::RedisServer;

fn main() -> std::process::ExitCode {
    Tests::new([
        Trial::tokio(
            "paused_redis_fails_calls_within_the_timeout_and_recovers",
            paused_redis_fails_calls_within_the_timeout_and_recovers,
        )
        .multi_thread(2),
        Trial::tokio(
            "paused_redis_is_cut_by_the_managers_store_timeout",
            paused_redis_is_cut_by_the_managers_store_timeout,
        )
        .multi_thread(2),
        Trial::tokio(
            "killed_redis_fails_calls_fast_and_a_restart_is_found_without_a_new_store",
            killed_redis_fails_calls_fast_and_a_restart_is_found_without_a_new_store,
        )
        .multi_thread(2),
        Trial::tokio(
            "lazy_store_opened_while_redis_is_down_works_once_it_starts",
            lazy_store_opened_while_redis_is_down_works_once_it_starts,
        )
        .multi_thread(2),
        Trial::tokio(
            "lock_holder_paused_past_lock_ttl_loses_the_lease_and_its_flush",
            lock_holder_paused_past_lock_ttl_loses_the_lease_and_its_flush,
        )
        .multi_thread(2),
        Trial::tokio(
            "redis_paused_for_five_seconds_under_load_recovers_without_losing_a_write",
            redis_paused_for_five_seconds_under_load_recovers_without_losing_a_write,
        )
        .multi_thread(2),
        Trial::tokio(
            "redis_killed_for_five_seconds_under_load_recovers_after_a_restart",
            redis_killed_for_five_seconds_under_load_recovers_after_a_restart,
        )
        .multi_thread(2),
        Trial::tokio(
            "redis_with_an_append_only_file_killed_under_load_keeps_its_sessions",
            redis_with_an_append_only_file_killed_under_load_keeps_its_sessions,
        )
        .multi_thread(2),
    ])
    .main()
}

/// The store's response timeout in these tests.
const TIMEOUT: Duration = Duration::from_millis(500);
/// Scheduling slack on a busy machine on top of the timeout.
const MARGIN: Duration = Duration::from_millis(750);
/// How long a store may take to find a restarted server.
const RECOVERY: Duration = Duration::from_secs(3);
/// How long Redis stays paused or dead under load.
const OUTAGE: Duration = Duration::from_secs(5);
/// Concurrent requests during the outage tests.
const WORKERS: usize = 16;
/// The first successful request must come within this long of Redis returning.
const BACK_WITHIN: Duration = Duration::from_secs(2);

fn key() -> StoreKey {
    SessionId::generate(32).expect("id").store_key()
}

fn record(pairs: &[(&str, &[u8])]) -> Record {
    Record {
        data: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect(),
        expires_at: Timestamp::now() + Duration::from_secs(3600),
        created_at: Timestamp::now(),
        revision: None,
        owner: None,
    }
}

fn changes(key: &str, value: &[u8]) -> ChangeSet {
    ChangeSet {
        set: Data::from([(key.to_owned(), value.to_vec())]),
        expires_at: Timestamp::now() + Duration::from_secs(3600),
        ..ChangeSet::default()
    }
}

async fn store_for(server: &RedisServer) -> RedisStore {
    let config = RedisConfig::new(server.url())
        .with_prefix("faults:")
        .with_connect_timeout(TIMEOUT)
        .with_response_timeout(TIMEOUT);
    RedisStore::connect(&config).await.expect("connect")
}

/// Runs `call`, which must fail, and returns how long it took to fail.
async fn time_failure<T: std::fmt::Debug>(
    name: &str,
    call: impl Future<Output = session_core::Result<T>>,
) -> Duration {
    let started = Instant::now();
    // The outer limit only turns a hang into a readable failure.
    let outcome = tokio::time::timeout(Duration::from_secs(30), call).await;
    let elapsed = started.elapsed();
    match outcome {
        Err(_) => panic!("{name} hung for 30 s"),
        Ok(Ok(value)) => panic!("{name} succeeded ({value:?}) against a stopped server"),
        Ok(Err(err)) => {
            assert!(
                elapsed <= TIMEOUT + MARGIN,
                "{name} failed only after {elapsed:?} (timeout {TIMEOUT:?}): {err}"
            );
            elapsed
        }
    }
}

/// Fails every store operation and a whole request; returns the slowest failure.
async fn every_call_fails(store: &Arc<RedisStore>, live: &StoreKey) -> Duration {
    let other = key();
    let manager = SessionManager::new(
        Arc::clone(store) as Arc<dyn SessionStore>,
        SessionConfig::default(),
    )
    .expect("manager");
    let header = format!("thinkjs={}", SessionId::generate(32).expect("id").expose());
    let times = [
        time_failure("load", store.load(live)).await,
        time_failure("create", store.create(&other, &record(&[("a", b"1")]))).await,
        time_failure("update", store.update(live, &changes("during", b"outage"))).await,
        time_failure(
            "touch",
            store.touch(live, Timestamp::now() + Duration::from_secs(7200)),
        )
        .await,
        time_failure("delete", store.delete(&other)).await,
        time_failure("request", async {
            let session = manager.session_from_cookie_header(Some(&header));
            session.get::<String>("user").await
        })
        .await,
    ];
    times.into_iter().max().unwrap_or_default()
}

/// Calls `load` until it succeeds; returns how long that took.
async fn time_recovery(store: &RedisStore, key: &StoreKey) -> (Duration, Option<Record>) {
    let started = Instant::now();
    loop {
        if let Ok(loaded) = store.load(key).await {
            return (started.elapsed(), loaded);
        }
        assert!(
            started.elapsed() < RECOVERY,
            "no successful call within {RECOVERY:?} of Redis coming back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn paused_redis_fails_calls_within_the_timeout_and_recovers() -> TestResult {
    let server = RedisServer::start().ok_or_else(support::no_redis_server)?;
    let store = Arc::new(store_for(&server).await);
    let live = key();
    assert!(
        store
            .create(&live, &record(&[("user", b"ada")]))
            .await
            .expect("create")
    );

    server.signal("STOP");
    let slowest = every_call_fails(&store, &live).await;
    server.signal("CONT");
    let (recovery, loaded) = time_recovery(&store, &live).await;

    // The update sent during the pause may have reached Redis and been applied after it
    // resumed (the caller was told it failed): the record is either as it was or fully
    // updated, never damaged.
    let loaded = loaded.expect("the session survived the pause");
    assert_eq!(
        loaded.data.get("user").map(Vec::as_slice),
        Some(&b"ada"[..])
    );
    assert!(matches!(
        loaded.data.get("during").map(Vec::as_slice),
        None | Some(b"outage")
    ));
    println!(
        "figure: redis | paused (SIGSTOP) | slowest failure {slowest:?} (timeout {TIMEOUT:?}); first success {recovery:?} after SIGCONT"
    );
    Ok(())
}

/// The manager's `store_timeout` in the next test: far shorter than the store's own
/// response timeout, so that it is the manager's bound that ends each call.
const STORE_TIMEOUT: Duration = Duration::from_millis(300);
/// What the issue allows on top of `store_timeout`.
const STORE_TIMEOUT_SLACK: Duration = Duration::from_millis(50);

/// Runs `call`, which must fail with a timeout at the manager's bound; how long it took.
async fn time_cut<T: std::fmt::Debug>(
    name: &str,
    call: impl Future<Output = session_core::Result<T>>,
) -> Duration {
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(30), call).await;
    let elapsed = started.elapsed();
    match outcome {
        Err(_) => panic!("{name} hung for 30 s"),
        Ok(Ok(value)) => panic!("{name} succeeded ({value:?}) against a paused server"),
        Ok(Err(err)) => {
            assert_eq!(err.kind(), ErrorKind::Timeout, "{name}: {err}");
            assert!(
                err.message()
                    .contains(&format!("`{name}` within 300ms (`store_timeout`)"))
                    || name == "request",
                "{name}: {err}"
            );
            assert!(
                elapsed >= STORE_TIMEOUT && elapsed <= STORE_TIMEOUT + STORE_TIMEOUT_SLACK,
                "{name} failed after {elapsed:?} (store_timeout {STORE_TIMEOUT:?}): {err}"
            );
            elapsed
        }
    }
}

/// Redis paused under a store whose own response timeout is 10 s: every call through the
/// manager, and a whole request, fails with `ErrorKind::Timeout` within `store_timeout`
/// plus 50 ms; once Redis resumes, the same manager serves again.
async fn paused_redis_is_cut_by_the_managers_store_timeout() -> TestResult {
    let server = RedisServer::start().ok_or_else(support::no_redis_server)?;
    let config = RedisConfig::new(server.url())
        .with_prefix("faults:")
        .with_connect_timeout(Duration::from_secs(10))
        .with_response_timeout(Duration::from_secs(10));
    let redis = RedisStore::connect(&config).await.expect("connect");
    let session_config =
        SessionConfig::from_json_str(r#"{"type": "redis", "store_timeout": "300ms"}"#)
            .expect("config");
    let manager = SessionManager::new(Arc::new(redis), session_config).expect("manager");
    let store = manager.store();
    let live = key();
    assert!(
        store
            .create(&live, &record(&[("user", b"ada")]))
            .await
            .expect("create")
    );
    let header = format!("thinkjs={}", SessionId::generate(32).expect("id").expose());

    server.signal("STOP");
    let other = key();
    let times = [
        time_cut("load", store.load(&live)).await,
        time_cut("create", store.create(&other, &record(&[("a", b"1")]))).await,
        time_cut("update", store.update(&live, &changes("during", b"outage"))).await,
        time_cut(
            "touch",
            store.touch(&live, Timestamp::now() + Duration::from_secs(7200)),
        )
        .await,
        time_cut("delete", store.delete(&other)).await,
        time_cut("request", async {
            let session = manager.session_from_cookie_header(Some(&header));
            session.get::<String>("user").await
        })
        .await,
    ];
    server.signal("CONT");
    let worst = times.into_iter().max().unwrap_or_default();
    let started = Instant::now();
    let loaded = loop {
        if let Ok(loaded) = store.load(&live).await {
            break loaded;
        }
        assert!(started.elapsed() < RECOVERY, "no answer after SIGCONT");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(loaded.is_some(), "the session survived the pause");
    println!(
        "figure: redis | paused (SIGSTOP), response_timeout 10s | worst wait {worst:?} with store_timeout {STORE_TIMEOUT:?} (allowed {:?})",
        STORE_TIMEOUT + STORE_TIMEOUT_SLACK
    );
    Ok(())
}

async fn killed_redis_fails_calls_fast_and_a_restart_is_found_without_a_new_store() -> TestResult {
    let mut server = RedisServer::start().ok_or_else(support::no_redis_server)?;
    let store = Arc::new(store_for(&server).await);
    let live = key();
    assert!(
        store
            .create(&live, &record(&[("user", b"ada")]))
            .await
            .expect("create")
    );

    server.kill();
    let slowest = every_call_fails(&store, &live).await;
    // Still down a while later: calls keep failing in time rather than piling up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = every_call_fails(&store, &live).await;

    server.restart();
    let (recovery, loaded) = time_recovery(&store, &live).await;
    // The restarted server has no persistence: the session is gone, and says so.
    assert!(loaded.is_none());
    let fresh = key();
    assert!(
        store
            .create(&fresh, &record(&[("again", b"1")]))
            .await
            .expect("create")
    );
    assert!(store.load(&fresh).await.expect("load").is_some());
    println!(
        "figure: redis | killed (SIGKILL) | slowest failure {slowest:?}, {later:?} later (timeout {TIMEOUT:?}); \
         first success {recovery:?} after the restart"
    );
    Ok(())
}

async fn lazy_store_opened_while_redis_is_down_works_once_it_starts() -> TestResult {
    let mut server = RedisServer::start().ok_or_else(support::no_redis_server)?;
    server.kill();
    let config = RedisConfig::new(server.url())
        .with_prefix("faults:")
        .with_connect_timeout(TIMEOUT)
        .with_response_timeout(TIMEOUT);
    let store = Arc::new(RedisStore::connect_lazy(&config).expect("lazy store"));
    let down = RedisStore::connect(&config)
        .await
        .expect_err("eager connect to a dead server");
    assert!(down.to_string().contains(&server.url()), "{down}");
    let live = key();
    every_call_fails(&store, &live).await;

    server.restart();
    let (recovery, loaded) = time_recovery(&store, &live).await;
    assert!(loaded.is_none());
    println!(
        "figure: redis | started after the app | first success {recovery:?} after the server started"
    );
    Ok(())
}

/// A request holds its session's lock while its Redis is paused for twice `lock_ttl`:
/// every lock call fails within the timeout meanwhile, Redis lets the lease lapse, the
/// holder's flush is refused with `LockLost` (its change is not written), and the next
/// request gets the lock at once and sees the data as it was.
async fn lock_holder_paused_past_lock_ttl_loses_the_lease_and_its_flush() -> TestResult {
    const LOCK_TTL: Duration = Duration::from_millis(900);
    let server = RedisServer::start().ok_or_else(support::no_redis_server)?;
    let store = Arc::new(store_for(&server).await);
    let mut config = SessionConfig::default();
    config.lock = true;
    config.lock_ttl = LOCK_TTL;
    config.lock_timeout = Duration::from_secs(5);
    let manager =
        SessionManager::new(Arc::clone(&store) as Arc<dyn SessionStore>, config).expect("manager");
    let first = manager.session_from_cookie_header(None);
    first.set("n", &1u64).await.expect("set");
    let cookie = first.flush().await.expect("flush").expect("a cookie");
    let header = format!("thinkjs={}", cookie.value());
    let key = SessionId::parse(cookie.value()).expect("id").store_key();

    let holder = manager.session_from_cookie_header(Some(&header));
    assert_eq!(holder.get::<u64>("n").await.expect("get"), Some(1));
    assert!(holder.holds_lock().await, "the request holds the lock");
    let lease = store.lock_key(&key);
    let client = redis::Client::open(server.url()).expect("client");
    let mut direct = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    assert_eq!(
        key_exists(&mut direct, &lease).await,
        1,
        "the lease key while held"
    );

    server.signal("STOP");
    let paused = Instant::now();
    // On another session: a call that timed out still reaches Redis when it resumes, and
    // a `lock` of this session's key would then take the lapsed lease.
    let (elsewhere, other) = (self::key(), LockToken::generate().expect("token"));
    let slowest = [
        time_failure("lock", store.lock(&elsewhere, &other, LOCK_TTL)).await,
        time_failure("renew_lock", store.renew_lock(&elsewhere, &other, LOCK_TTL)).await,
        time_failure("unlock", store.unlock(&elsewhere, &other)).await,
    ]
    .into_iter()
    .max()
    .unwrap_or_default();
    holder.set("n", &2u64).await.expect("set while paused");
    tokio::time::sleep((2 * LOCK_TTL).saturating_sub(paused.elapsed())).await;
    server.signal("CONT");

    assert_eq!(
        key_exists(&mut direct, &lease).await,
        0,
        "Redis let the lease lapse during the pause"
    );
    let err = holder.flush().await.expect_err("the lapsed holder's flush");
    assert_eq!(err.kind(), ErrorKind::LockLost, "{err}");
    let started = Instant::now();
    let next = manager.session_from_cookie_header(Some(&header));
    assert_eq!(
        next.get::<u64>("n").await.expect("get"),
        Some(1),
        "the refused flush wrote nothing"
    );
    let waited = started.elapsed();
    assert!(next.holds_lock().await, "the next request holds the lock");
    assert!(
        waited < Duration::from_secs(1),
        "the next request waited {waited:?} for a lapsed lease"
    );
    next.set("n", &3u64).await.expect("set");
    next.flush().await.expect("the next holder's flush");
    println!(
        "figure: redis | lock holder paused 2 x lock_ttl ({LOCK_TTL:?}) | lock calls failed within {slowest:?} \
         (timeout {TIMEOUT:?}); holder's flush LockLost; next request locked in {waited:?}"
    );
    Ok(())
}

/// Whether `key` exists, asked on a connection of the test's own.
async fn key_exists(connection: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("EXISTS")
        .arg(key)
        .query_async(connection)
        .await
        .expect("EXISTS")
}

/// Runs the load for a second, breaks Redis with `fault` for [`OUTAGE`], repairs it with
/// `repair`, runs three more seconds; returns the report and when the outage began and
/// ended.
async fn outage_under_load(
    server: &mut RedisServer,
    fault: impl FnOnce(&mut RedisServer),
    repair: impl FnOnce(&mut RedisServer),
) -> (LoadReport, Duration, Duration) {
    let store = Arc::new(store_for(server).await);
    let manager = SessionManager::new(store as Arc<dyn SessionStore>, SessionConfig::default())
        .expect("manager");
    let load = Load::start(manager, WORKERS);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down = load.elapsed();
    fault(server);
    tokio::time::sleep(OUTAGE).await;
    // Restarting waits for the port to accept; the load keeps running on the other thread.
    tokio::task::block_in_place(|| repair(server));
    let back = load.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    (load.stop().await, down, back)
}

/// What every outage under load must show, whatever the fault: no acknowledged write lost.
fn assert_outage_handled(what: &str, report: &LoadReport, down: Duration, back: Duration) {
    assert_outage_handled_losing_at_most(what, report, down, back, 0);
}

/// [`assert_outage_handled`] for a server that may lose up to `allowed` acknowledged
/// writes by design.
fn assert_outage_handled_losing_at_most(
    what: &str,
    report: &LoadReport,
    down: Duration,
    back: Duration,
    allowed: u64,
) {
    report.assert_recovered_losing_at_most(
        what,
        down,
        down + TIMEOUT + MARGIN,
        back,
        BACK_WITHIN,
        allowed,
    );
    // A request makes at most two store calls (load, then the write), each bounded by the
    // response timeout.
    assert!(
        report.slowest() <= 2 * TIMEOUT + MARGIN,
        "{what}: a request took {:?} (timeout {TIMEOUT:?} per call)",
        report.slowest()
    );
}

async fn redis_paused_for_five_seconds_under_load_recovers_without_losing_a_write() -> TestResult {
    let mut server = RedisServer::start().ok_or_else(support::no_redis_server)?;
    let (report, down, back) = outage_under_load(
        &mut server,
        |server| server.signal("STOP"),
        |server| server.signal("CONT"),
    )
    .await;
    assert_outage_handled("paused", &report, down, back);
    // A paused server keeps its data: no session may be lost.
    assert_eq!(report.sessions_lost, 0, "sessions lost across a pause");
    println!(
        "figure: redis | paused 5 s (SIGSTOP) under load, {WORKERS} concurrent requests | \
         {} ok, {} failed, 0 panics, 0 lost increments, slowest request {:?} (timeout {TIMEOUT:?} per call), \
         first success {:?} after SIGCONT",
        report.succeeded(),
        report.failed(),
        report.slowest(),
        report.first_success_after(back).unwrap_or_default()
    );
    Ok(())
}

async fn redis_killed_for_five_seconds_under_load_recovers_after_a_restart() -> TestResult {
    let mut server = RedisServer::start().ok_or_else(support::no_redis_server)?;
    let (report, down, back) =
        outage_under_load(&mut server, RedisServer::kill, RedisServer::restart).await;
    assert_outage_handled("killed", &report, down, back);
    // The restarted server has no persistence: the workers' sessions are gone and each
    // starts a new one, which the report counts apart from lost increments.
    println!(
        "figure: redis | killed 5 s (SIGKILL) under load, {WORKERS} concurrent requests | \
         {} ok, {} failed, 0 panics, 0 lost increments, {} sessions gone with the server, \
         slowest request {:?} (timeout {TIMEOUT:?} per call), first success {:?} after the restart",
        report.succeeded(),
        report.failed(),
        report.sessions_lost,
        report.slowest(),
        report.first_success_after(back).unwrap_or_default()
    );
    Ok(())
}

/// Redis with an append-only file flushed once a second (`appendfsync everysec`), killed
/// under load and restarted on the same folder: it loads its file, and the sessions are
/// there. Redis bounds the loss of `everysec` by the writes of the last second before a
/// crash of the machine; a killed process leaves what it wrote to the file in the page
/// cache, so it may lose none. The figure is what it lost, against that bound.
async fn redis_with_an_append_only_file_killed_under_load_keeps_its_sessions() -> TestResult {
    let persistent = ["--appendonly", "yes", "--appendfsync", "everysec"];
    let mut server = RedisServer::start_with(persistent.map(str::to_owned).to_vec())
        .ok_or_else(support::no_redis_server)?;
    let (report, down, back) =
        outage_under_load(&mut server, RedisServer::kill, RedisServer::restart).await;
    // The writes acknowledged in the second before the kill: at most these may be lost.
    let last_second = report.succeeded_between(down.saturating_sub(Duration::from_secs(1)), down);
    let bound = u64::try_from(last_second).unwrap_or(u64::MAX);
    assert_outage_handled_losing_at_most("killed with AOF", &report, down, back, bound);
    assert_eq!(
        report.sessions_lost, 0,
        "sessions lost across a restart from the append-only file"
    );
    println!(
        "figure: redis | AOF everysec, killed 5 s (SIGKILL) under load and restarted, \
         {WORKERS} concurrent requests | {} ok, {} failed, 0 panics, {} acknowledged increments \
         lost (bound: the {bound} acknowledged in the last second), 0 sessions lost, slowest \
         request {:?}, first success {:?} after the restart",
        report.succeeded(),
        report.failed(),
        report.lost_increments,
        report.slowest(),
        report.first_success_after(back).unwrap_or_default()
    );
    Ok(())
}
