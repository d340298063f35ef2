//! Session-level cases: many concurrent requests of one session, with the session lock
//! and with `Session::update`, driven the way a web framework drives them. The lock cases
//! skip for stores without `Capabilities::lock`; the `update` cases run on every store.

use std::time::Instant;

use crate::cases::helpers::*;

/// Concurrent requests of one session in the cases below.
const REQUESTS: u64 = 50;

/// A configuration with the lock on, waiting at most `timeout` and leasing for `ttl`.
fn locked(timeout: &str, ttl: &str) -> String {
    format!(
        r#"{{"type": "conformance", "lock": true, "lock_timeout": "{timeout}", "lock_ttl": "{ttl}"}}"#
    )
}

/// One request that reads the counter `n`, lets other tasks run (as a handler awaiting a
/// database would), and writes it back plus one: the read-modify-write that loses
/// increments without the lock.
async fn increment(app: &App, header: &str) -> CaseResult {
    let session = app.request(Some(header));
    let n: u64 = session.get("n").await?.unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(1)).await;
    session.set("n", &(n + 1)).await?;
    session.flush().await?;
    Ok(())
}

/// The counter `n` of the session of `header`, as a new request reads it.
async fn counter(app: &App, header: &str) -> Result<u64, CaseError> {
    Ok(app.request(Some(header)).get("n").await?.unwrap_or(0))
}

/// Runs [`REQUESTS`] concurrent [`increment`]s of the session of `header`, alternating
/// between `apps` (one per store handle), and checks that none was lost.
async fn increments_lose_nothing(apps: &[Arc<App>], header: &str) -> CaseResult {
    let mut set = JoinSet::new();
    for i in 0..REQUESTS {
        let app = Arc::clone(&apps[usize::try_from(i).unwrap_or(0) % apps.len()]);
        let header = header.to_owned();
        set.spawn(async move { increment(&app, &header).await });
    }
    join_all(set).await?;
    let n = counter(&apps[0], header).await?;
    ensure_eq!(
        n,
        REQUESTS,
        "the counter after {REQUESTS} acknowledged increments under the lock"
    );
    Ok(())
}

/// With `lock = true`, 50 concurrent read-modify-write increments of one key of one
/// session all land: requests of one session run one at a time. They alternate between two
/// managers on the store (two application instances on one store handle), so that the
/// store's lease serializes them, not only the manager's in-process queue.
pub(crate) async fn session_lock_serializes_read_modify_writes(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let config = locked("20s", "10s");
    let app = Arc::new(App::new(ctx, &config)?);
    let twin = Arc::new(App::new(ctx, &config)?);
    let header = app.login(&[("user", "ada")]).await?;
    let started = Instant::now();
    increments_lose_nothing(&[Arc::clone(&app), twin], &header).await?;
    ctx.note(format!(
        "{REQUESTS} locked increments of one session: 0 lost, {} ms",
        started.elapsed().as_millis()
    ));
    Ok(())
}

/// The same through two managers on two handles of one shared backend (two processes, as
/// far as the lock can tell): the lease in the store serializes them.
pub(crate) async fn session_lock_serializes_across_handles(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let second = second_handle(ctx)?;
    let config = locked("20s", "10s");
    let first = Arc::new(App::new(ctx, &config)?);
    let other = Arc::new(App::on(second, &config)?);
    let header = first.login(&[("user", "ada")]).await?;
    increments_lose_nothing(&[first, other], &header).await
}

/// Runs [`REQUESTS`] concurrent requests of the session of `header` without the lock,
/// each setting a key of its own and then counting with `update`, alternating between
/// `apps`; checks that every update returned a distinct count, none was lost, and every
/// request's own key was kept.
async fn updates_lose_nothing(apps: &[Arc<App>], header: &str) -> CaseResult {
    require_update(&apps[0], header).await?;
    let mut set = JoinSet::new();
    for i in 0..REQUESTS {
        let app = Arc::clone(&apps[usize::try_from(i).unwrap_or(0) % apps.len()]);
        let header = header.to_owned();
        set.spawn(async move {
            let session = app.request(Some(&header));
            session.set(&format!("k{i}"), &i).await?;
            let n = session
                .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
                .await?;
            session.flush().await?;
            Ok(n)
        });
    }
    let mut counts = join_all(set).await?;
    counts.sort_unstable();
    // The probe of `require_update` counted once before these.
    let expected: Vec<u64> = (2..=REQUESTS + 1).collect();
    ensure_eq!(
        counts,
        expected,
        "the counts the {REQUESTS} updates returned"
    );
    let session = apps[0].request(Some(header));
    ensure_eq!(
        session.get::<u64>("n").await?,
        Some(REQUESTS + 1),
        "the counter after one update and {REQUESTS} concurrent ones"
    );
    for i in 0..REQUESTS {
        ensure_eq!(
            session.get::<u64>(&format!("k{i}")).await?,
            Some(i),
            "request {i}'s own key next to its update"
        );
    }
    Ok(())
}

/// Skips the case if `Session::update` is unsupported on the store (one that reports no
/// revisions from `load` and keeps no locks); otherwise counts once, alone.
async fn require_update(app: &App, header: &str) -> CaseResult {
    let session = app.request(Some(header));
    match session
        .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await
    {
        Ok(1) => {}
        Ok(n) => {
            return Err(CaseError::Fail(format!(
                "a first update counted {n}, not 1"
            )));
        }
        // A store that keeps session locks serves `update` under its lease.
        Err(err) if err.kind() == ErrorKind::Unsupported && app.counter.capabilities().lock => {
            return Err(CaseError::Fail(format!(
                "Session::update refused on a store that keeps session locks: {err}"
            )));
        }
        Err(err) if err.kind() == ErrorKind::Unsupported => {
            return Err(CaseError::Skip(format!(
                "Session::update is unsupported on this store: {err}"
            )));
        }
        Err(err) => return Err(err.into()),
    }
    session.flush().await?;
    Ok(())
}

/// Without the lock, 50 concurrent `Session::update` increments of one key all land, each
/// returns a distinct count, and each request's other change survives.
pub(crate) async fn session_update_is_atomic_without_the_lock(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_MERGE)?;
    let app = Arc::new(App::plain(ctx)?);
    let header = app.login(&[("user", "ada")]).await?;
    let started = Instant::now();
    updates_lose_nothing(&[Arc::clone(&app)], &header).await?;
    ctx.note(format!(
        "{REQUESTS} concurrent updates of one session: 0 lost, {} ms, {} store calls",
        started.elapsed().as_millis(),
        app.counter.counts().total()
    ));
    Ok(())
}

/// `update` starts from the request's own earlier `set` or `remove` of the key, writes at
/// once (another request sees the new value before this one flushes, and this one reads
/// it), updates a new session in place, and keeps the request's other changes for its
/// flush.
pub(crate) async fn session_update_sees_the_requests_own_changes(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_MERGE)?;
    let app = App::plain(ctx)?;
    let header = app.login(&[("user", "ada")]).await?;
    require_update(&app, &header).await?;

    let session = app.request(Some(&header));
    session.set("n", &5u64).await?;
    session.set("cart", "book").await?;
    let n = session
        .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    ensure_eq!(n, 6, "an update after this request's own set");
    ensure_eq!(
        session.get::<u64>("n").await?,
        Some(6),
        "what this request reads after its update"
    );
    ensure_eq!(
        counter(&app, &header).await?,
        6,
        "the value another request sees before the flush"
    );
    session.remove("n").await?;
    let n = session
        .update("n", |n: Option<u64>| n.unwrap_or(40) + 2)
        .await?;
    ensure_eq!(n, 42, "an update after this request's own remove");
    ensure_eq!(
        session.get::<u64>("n").await?,
        Some(42),
        "what this request reads after its second update"
    );
    session.flush().await?;
    let after = app.request(Some(&header));
    ensure_eq!(
        after.get::<u64>("n").await?,
        Some(42),
        "the counter after the flush"
    );
    expect_text(&after, "cart", Some("book"), "the request's other change").await?;

    let fresh = app.request(None);
    let n = fresh
        .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    ensure_eq!(n, 1, "an update of a new session");
    let cookie = fresh
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("a new session updated got no cookie".into()))?;
    ensure_eq!(
        counter(&app, &cookie_header(&cookie)).await?,
        1,
        "the new session's counter"
    );
    Ok(())
}

/// The same through two managers on two handles of one shared backend.
pub(crate) async fn session_update_is_atomic_across_handles(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_MERGE)?;
    let second = second_handle(ctx)?;
    let config = r#"{"type": "conformance"}"#;
    let first = Arc::new(App::new(ctx, config)?);
    let other = Arc::new(App::on(second, config)?);
    let header = first.login(&[("user", "ada")]).await?;
    updates_lose_nothing(&[first, other], &header).await
}

/// A request dropped while it holds the lock (a client that disconnected) releases it: the
/// next request of the session gets it at once, long before the lease's ttl. So does a
/// request dropped while it waits.
pub(crate) async fn session_lock_released_when_request_dropped(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let app = Arc::new(App::new(ctx, &locked("5s", "60s"))?);
    let header = app.login(&[("n", "x")]).await?;

    let holder = app.request(Some(&header));
    holder.get::<String>("n").await?;
    ensure!(holder.holds_lock().await, "a locked request holds no lock");
    // Another request queues behind it, and is dropped while it waits.
    let waiter = tokio::spawn({
        let (app, header) = (Arc::clone(&app), header.clone());
        async move { app.request(Some(&header)).get::<String>("n").await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    ensure!(!waiter.is_finished(), "a request did not wait for the lock");
    waiter.abort();
    drop(holder);

    let started = Instant::now();
    let next = app.request(Some(&header));
    next.get::<String>("n").await?;
    let waited = started.elapsed();
    ensure!(next.holds_lock().await, "the next request holds no lock");
    ensure!(
        waited < Duration::from_secs(2),
        "the next request waited {waited:?} for a lock whose holder was dropped"
    );
    next.flush().await?;
    ensure!(
        !next.holds_lock().await,
        "the lock is still held after the flush"
    );
    Ok(())
}

/// Requests dropped in the middle of their lock call (clients that hung up while the store
/// was granting the lock) leave no lease behind: 20 requests, each dropped a moment into
/// its call (after 0 to 9 turns of the scheduler, or 0.3 to 3 ms), and after each the
/// next request gets the lock at once, long before the lease's ttl. Every store call
/// waits once before it reaches the store, so that in-process stores are dropped
/// mid-call too. A store whose grant lands after its caller left (a statement still
/// running on the server) must not keep the lease: the release comes after the call.
pub(crate) async fn session_lock_released_when_request_dropped_mid_call(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let app = Arc::new(App::yielding(ctx, &locked("5s", "60s"))?);
    let header = app.login(&[("n", "x")]).await?;
    let mut dropped = 0;
    for i in 0..20u64 {
        let request = tokio::spawn({
            let (app, header) = (Arc::clone(&app), header.clone());
            async move { app.request(Some(&header)).get::<String>("n").await }
        });
        if i < 10 {
            for _ in 0..i {
                tokio::task::yield_now().await;
            }
        } else {
            tokio::time::sleep(Duration::from_micros((i - 9) * 300)).await;
        }
        if !request.is_finished() {
            dropped += 1;
        }
        request.abort();
        let _ = request.await;
        let started = Instant::now();
        let next = app.request(Some(&header));
        next.get::<String>("n").await?;
        let waited = started.elapsed();
        ensure!(
            waited < Duration::from_secs(2),
            "after request {i} was dropped, the next request waited {waited:?} for the lock"
        );
        next.flush().await?;
    }
    ctx.note(format!(
        "{dropped} of 20 requests dropped before their answer"
    ));
    Ok(())
}

/// A holder that stops renewing (a stalled process) loses the lock after `lock_ttl`: the
/// next request gets it and writes, and the stalled holder's late flush is refused with
/// `LockLost`, leaving the next holder's write in place.
pub(crate) async fn session_lock_lapsed_holder_cannot_write(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let config = locked("5s", "200ms");
    let stalled = App::stalling_renewals(ctx, &config)?;
    let next = App::new(ctx, &config)?;
    let header = next.login(&[("user", "ada")]).await?;

    let slow = stalled.request(Some(&header));
    ensure_eq!(slow.get::<u64>("n").await?, None, "the counter at first");
    ensure!(slow.holds_lock().await, "a locked request holds no lock");
    tokio::time::sleep(Duration::from_millis(450)).await;

    let started = Instant::now();
    let fresh = next.request(Some(&header));
    fresh.set("n", &100u64).await?;
    fresh.flush().await?;
    ensure!(
        started.elapsed() < Duration::from_secs(3),
        "the next request waited {:?} for a lease that lapsed",
        started.elapsed()
    );

    slow.set("n", &1u64).await?;
    match slow.flush().await {
        Err(err) if err.kind() == ErrorKind::LockLost => {}
        Err(err) => return Err(CaseError::Fail(format!("the late flush failed with {err}"))),
        Ok(_) => {
            return Err(CaseError::Fail(
                "the lapsed holder's late flush succeeded".into(),
            ));
        }
    }
    ensure_eq!(
        counter(&next, &header).await?,
        100,
        "the counter after the late flush"
    );
    Ok(())
}

/// A request that cannot get the lock within `lock_timeout` gets an `ErrorKind::Locked`
/// error after about that long (and the framework sees it), and the lock is granted again
/// once its holder releases it.
pub(crate) async fn session_lock_timeout_is_a_typed_error(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let app = App::new(ctx, &locked("300ms", "10s"))?;
    let header = app.login(&[("n", "x")]).await?;
    let (key, other) = (key_of(&header)?, token()?);
    ensure!(
        ctx.store
            .lock(&key, &other, Duration::from_secs(60))
            .await?,
        "the case could not take the lock itself"
    );
    let started = Instant::now();
    let session = app.request(Some(&header));
    let result = session.get::<String>("n").await;
    let waited = started.elapsed();
    match result {
        Err(err) if err.kind() == ErrorKind::Locked => {}
        Err(err) => return Err(CaseError::Fail(format!("the wait failed with {err}"))),
        Ok(_) => return Err(CaseError::Fail("a request got a lock another holds".into())),
    }
    ensure!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "a request gave up after {waited:?} with lock_timeout = 300 ms"
    );
    ensure_eq!(
        session.store_error().await.map(|err| err.kind()),
        Some(ErrorKind::Locked),
        "the error the framework sees"
    );
    ensure!(
        ctx.store.unlock(&key, &other).await?,
        "the case's own lease was gone"
    );
    let after = app.request(Some(&header));
    after.get::<String>("n").await?;
    ensure!(
        after.holds_lock().await,
        "the lock was not granted after its release"
    );
    after.flush().await?;
    Ok(())
}

/// The locks of different sessions never wait on each other: with one session's lock
/// held, another session's request gets its own at once, and 20 sessions counting
/// concurrently under the lock all finish.
pub(crate) async fn session_locks_of_different_sessions_never_wait(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let app = Arc::new(App::new(ctx, &locked("300ms", "10s"))?);
    let busy = app.login(&[("n", "x")]).await?;
    let holder = app.request(Some(&busy));
    holder.get::<String>("n").await?;

    let mut set = JoinSet::new();
    for _ in 0..20 {
        let app = Arc::clone(&app);
        set.spawn(async move {
            let header = app.login(&[("user", "ada")]).await?;
            for _ in 0..3 {
                increment(&app, &header).await?;
            }
            counter(&app, &header).await
        });
    }
    let counts = join_all(set).await?;
    ensure!(
        counts.iter().all(|n| *n == 3),
        "counts of 20 sessions after 3 locked increments each: {counts:?}"
    );
    ensure!(holder.holds_lock().await, "the first session lost its lock");
    holder.flush().await?;
    Ok(())
}

/// A read-only request (`LockMode::ReadOnly`) neither takes nor waits for the lock: it reads
/// while another request holds it, and its writes are refused with `ErrorKind::ReadOnly`.
/// Its refresh of the rolling expiry, written while the holder holds the lock, does not
/// make the holder's write fail.
pub(crate) async fn session_read_only_request_does_not_wait(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let app = App::new(
        ctx,
        r#"{"type": "conformance", "lock": true, "lock_timeout": "5s", "touch_after": "300ms"}"#,
    )?;
    let header = app.login(&[("user", "ada")]).await?;
    // Old enough that the read-only request below refreshes the expiry.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let holder = app.request(Some(&header));
    holder.get::<String>("user").await?;

    let started = Instant::now();
    let reader = app.request(Some(&header));
    reader.set_lock_mode(LockMode::ReadOnly).await?;
    expect_text(&reader, "user", Some("ada"), "a read-only read").await?;
    ensure!(
        started.elapsed() < Duration::from_secs(2),
        "a read-only request waited {:?}",
        started.elapsed()
    );
    ensure!(
        !reader.holds_lock().await,
        "a read-only request holds the lock"
    );
    let refused = [
        reader.set("user", "eve").await.err().map(|err| err.kind()),
        reader
            .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
            .await
            .err()
            .map(|err| err.kind()),
        reader.remove("user").await.err().map(|err| err.kind()),
    ];
    ensure_eq!(
        refused,
        [Some(ErrorKind::ReadOnly); 3],
        "set, update and remove in a read-only request"
    );
    ensure!(
        reader.flush().await?.is_some(),
        "the read-only request did not refresh the expiry"
    );
    holder.set("user", "grace").await?;
    holder.flush().await?;
    expect_text(
        &app.request(Some(&header)),
        "user",
        Some("grace"),
        "the holder's write after a read-only refresh",
    )
    .await
}
