//! Torture cases: hostile input and races in bulk. Quick counts in the test suite, the full
//! counts with `SESSION_TORTURE=long`; each records its figures with `Ctx::note`.

use crate::cases::helpers::*;

/// A small deterministic generator (xorshift): reproducible mutations without a dependency.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn decoded(raw: &[u8]) -> Vec<u8> {
    percent_encoding::percent_decode(raw).collect()
}

/// Tampered cookies (bit flips, truncation, appended bytes, a foreign key, the bare id, an
/// empty signature, 64 KiB, bytes that are not UTF-8) are all "no session", and none causes
/// a store lookup. 2,000 cookies (10,000 long).
pub(crate) async fn torture_tampered_cookies_are_rejected_without_lookups(ctx: &Ctx) -> CaseResult {
    let count = trials(2_000, 10_000);
    let app = App::new(ctx, r#"{"secret": "torture secret"}"#)?;
    let foreign = App::new(ctx, r#"{"secret": "another secret"}"#)?;
    let good = app.login(&[("user", "ada")]).await?;
    let foreign_cookie = foreign.login(&[("user", "eve")]).await?;
    let (name, value) = good.split_once('=').unwrap_or_default();
    let id = value.split('.').next().unwrap_or_default().to_owned();
    let original = decoded(value.as_bytes());
    let mut rng = Mutator(0x5eed_1234_abcd_ef01);
    let loads_before = app.counter.counts().loads;
    let mut tried = 0usize;
    let mut accepted = 0usize;
    // The kind of damage moves on with every attempt, not every counted one: a kind that
    // gives back the genuine cookie (the id part of a token that has no separate
    // signature) must not be tried forever.
    let mut attempt = 0usize;
    while tried < count {
        let mut bytes = value.as_bytes().to_vec();
        attempt += 1;
        match attempt % 8 {
            0 => {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            1 => bytes.truncate(rng.below(bytes.len())),
            2 => bytes.extend((0..1 + rng.below(8)).map(|_| b"AZaz09+/=%._-"[rng.below(13)])),
            3 => {
                bytes = foreign_cookie
                    .split_once('=')
                    .unwrap_or_default()
                    .1
                    .as_bytes()
                    .to_vec()
            }
            4 => bytes = id.as_bytes().to_vec(),
            5 => bytes = format!("{id}.").into_bytes(),
            6 => bytes = vec![b'A' + rng.below(26) as u8; 64 * 1024],
            _ => {
                let at = rng.below(bytes.len());
                bytes.insert(at, 0x80 | rng.below(0x7f) as u8);
            }
        }
        if decoded(&bytes) == original {
            // A flip inside a percent-escape's letter case decodes to the same value: that
            // is the same cookie, not a tampered one.
            continue;
        }
        tried += 1;
        let mut header = format!("{name}=").into_bytes();
        header.extend_from_slice(&bytes);
        let session = app.manager.session([header.as_slice()]);
        if session.get::<String>("user").await?.is_some() {
            accepted += 1;
        }
    }
    let lookups = app.counter.counts().loads - loads_before;
    ctx.note(format!(
        "{count} tampered cookies: {accepted} accepted, {lookups} store lookups"
    ));
    ensure_eq!(accepted, 0, "tampered cookies accepted");
    ensure_eq!(lookups, 0, "store lookups caused by tampered cookies");
    Ok(())
}

/// Well-formed ids that were never issued are never adopted, and no record is created
/// under them. 2,000 ids (10,000 long).
pub(crate) async fn torture_never_issued_ids_are_never_adopted(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_IDS)?;
    let count = trials(2_000, 10_000);
    let app = App::plain(ctx)?;
    let mut adopted = 0usize;
    let mut created_under_planted = 0usize;
    let mut set = JoinSet::new();
    for _ in 0..count {
        let planted = SessionId::generate(32)?;
        let manager = app.manager.clone();
        let store = Arc::clone(&ctx.store);
        set.spawn(async move {
            let session =
                manager.session_from_cookie_header(Some(&format!("thinkjs={}", planted.expose())));
            let existed = session.exists().await?;
            session.set("n", &1u8).await?;
            let cookie = session.flush().await?;
            let reused = existed
                || cookie
                    .as_ref()
                    .is_some_and(|c| c.value() == planted.expose());
            let created = store.load(&planted.store_key()).await?.is_some();
            Ok((reused, created))
        });
        if set.len() >= 64
            && let Some(done) = set.join_next().await
        {
            let (reused, created) = done.map_err(|e| CaseError::Fail(e.to_string()))??;
            adopted += usize::from(reused);
            created_under_planted += usize::from(created);
        }
    }
    for (reused, created) in join_all(set).await? {
        adopted += usize::from(reused);
        created_under_planted += usize::from(created);
    }
    ctx.note(format!("{count} never-issued ids: {adopted} adopted, {created_under_planted} records created under them"));
    ensure_eq!(adopted, 0, "planted ids adopted");
    ensure_eq!(
        created_under_planted,
        0,
        "records created under planted ids"
    );
    Ok(())
}

/// A 16 MiB value is refused with a clear `TooLarge` error before anything is written.
pub(crate) async fn torture_oversize_values_are_refused(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let session = app.request(None);
    let big = vec![7u8; 16 * 1024 * 1024];
    match session.set("blob", &big).await {
        Err(err) if err.kind() == session_core::ErrorKind::TooLarge => {}
        Err(err) => {
            return Err(CaseError::Fail(format!(
                "16 MiB value: wrong error kind: {err}"
            )));
        }
        Ok(()) => return Err(CaseError::Fail("a 16 MiB value was accepted".into())),
    }
    ensure!(
        session.flush().await?.is_none(),
        "a refused value produced a cookie"
    );
    ensure_eq!(
        app.counter.counts().writes(),
        0,
        "writes after a refused value"
    );
    ctx.note("16 MiB value: TooLarge error, 0 writes");
    Ok(())
}

/// 50 concurrent requests on one session, each setting a different key, lose nothing;
/// 10 trials (100 long).
pub(crate) async fn torture_concurrent_requests_lose_no_keys(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_MERGE)?;
    let rounds = trials(10, 100);
    let app = Arc::new(App::plain(ctx)?);
    let mut lost = 0usize;
    for _ in 0..rounds {
        let header = app.login(&[("user", "ada")]).await?;
        set_distinct_keys_concurrently(&app, &header, 50).await?;
        let data = load_data(ctx.store(), &key_of(&header)?)
            .await?
            .unwrap_or_default();
        lost += (0..50)
            .filter(|i| !data.contains_key(&format!("k{i}")))
            .count();
    }
    ctx.note(format!(
        "{rounds} trials × 50 concurrent requests: {lost} keys lost"
    ));
    ensure_eq!(lost, 0, "keys lost");
    Ok(())
}

/// A slow request (random 5–50 ms; 50–500 ms long) that loaded before a logout and writes
/// after it never brings the session back. 100 trials (1,000 long), run concurrently.
pub(crate) async fn torture_slow_requests_racing_logout_never_resurrect(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_REVOCATION)?;
    let count = trials(100, 1_000);
    let (min_ms, max_ms) = if long_torture() { (50, 500) } else { (5, 50) };
    let app = Arc::new(App::plain(ctx)?);
    let mut set = JoinSet::new();
    for trial in 0..count {
        let app = Arc::clone(&app);
        let store = Arc::clone(&ctx.store);
        let delay = min_ms + (trial as u64 * 7919) % (max_ms - min_ms + 1);
        set.spawn(async move {
            let header = app.login(&[("user", "ada")]).await?;
            let slow = app.request(Some(&header));
            slow.get::<String>("user").await?;
            let logout = app.request(Some(&header));
            let logout_done = tokio::spawn(async move {
                logout.clear().await;
                logout.flush().await.map(drop)
            });
            tokio::time::sleep(Duration::from_millis(delay)).await;
            slow.set("cart", "1 item").await?;
            slow.flush().await?;
            logout_done
                .await
                .map_err(|e| CaseError::Fail(e.to_string()))??;
            Ok(store.load(&key_of(&header)?).await?.is_some())
        });
    }
    let resurrected = join_all(set).await?.into_iter().filter(|r| *r).count();
    ctx.note(format!(
        "{count} slow requests ({min_ms}–{max_ms} ms) racing a logout: {resurrected} resurrections"
    ));
    ensure_eq!(resurrected, 0, "sessions resurrected");
    Ok(())
}

/// `cycle_id()` racing a logout: no error, and the old id never loads a session again.
/// 100 trials (1,000 long), run concurrently.
pub(crate) async fn torture_cycle_id_racing_delete_never_resurrects(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_REVOCATION)?;
    let count = trials(100, 1_000);
    let app = Arc::new(App::plain(ctx)?);
    let mut set = JoinSet::new();
    for trial in 0..count {
        let app = Arc::clone(&app);
        let store = Arc::clone(&ctx.store);
        set.spawn(async move {
            let header = app.login(&[("user", "ada")]).await?;
            let login = app.request(Some(&header));
            login.cycle_id().await?;
            let logout = app.request(Some(&header));
            let logout_done = tokio::spawn(async move {
                logout.clear().await;
                logout.flush().await.map(drop)
            });
            if trial % 2 == 0 {
                tokio::task::yield_now().await;
            }
            let errors = usize::from(login.flush().await.is_err());
            logout_done
                .await
                .map_err(|e| CaseError::Fail(e.to_string()))??;
            let old_alive = store.load(&key_of(&header)?).await?.is_some();
            Ok((errors, old_alive))
        });
    }
    let results = join_all(set).await?;
    let errors: usize = results.iter().map(|(e, _)| e).sum();
    let alive = results.iter().filter(|(_, a)| *a).count();
    ctx.note(format!("{count} cycle_id calls racing a logout: {errors} errors, old id loads a session {alive} times"));
    ensure_eq!(errors, 0, "flush errors");
    ensure_eq!(alive, 0, "old ids still loading a session");
    Ok(())
}

/// gc running every 10 ms while sessions close to their expiry are touched deletes no live
/// session (a session is only allowed to be missing if its last touch had expired), and
/// every gc run succeeds. 2 s with 40 sessions (10 s with 200 long).
pub(crate) async fn torture_gc_while_touching_keeps_live_sessions(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_STORE_TO_READ)?;
    let (sessions, seconds) = if long_torture() { (200, 10) } else { (40, 2) };
    let margin = Duration::from_millis(800);
    let mut keys = Vec::new();
    for _ in 0..sessions {
        let key = create_expiring(ctx, &[("a", b"1")], Timestamp::now() + margin).await?;
        keys.push(key);
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gc_runs = {
        let (store, stop) = (Arc::clone(&ctx.store), Arc::clone(&stop));
        tokio::spawn(async move {
            let (mut runs, mut errors, mut first_error) = (0u64, 0u64, None);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if let Err(err) = store.gc().await {
                    errors += 1;
                    first_error.get_or_insert_with(|| crate::harness::unexpected(&err));
                }
                runs += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (runs, errors, first_error)
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    let mut last_expiry: HashMap<StoreKey, Timestamp> = HashMap::new();
    let mut lost = 0usize;
    while std::time::Instant::now() < deadline {
        for key in &keys {
            let expires_at = Timestamp::now() + margin;
            let touched = ctx.store.touch(key, expires_at).await?;
            let previous = last_expiry.get(key).copied();
            if touched {
                last_expiry.insert(key.clone(), expires_at);
            } else if previous.is_none_or(|p| !p.is_reached(Timestamp::now())) {
                // Its last touch had not expired, yet it is gone: gc deleted a live session.
                lost += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (runs, errors, first_error) = gc_runs.await.map_err(|e| CaseError::Fail(e.to_string()))?;
    ctx.note(format!("{sessions} sessions touched for {seconds} s under {runs} gc runs ({errors} failed): {lost} live sessions deleted"));
    ensure_eq!(lost, 0, "live sessions deleted by gc");
    ensure!(
        errors == 0,
        "{errors} of {runs} gc runs failed, the first with: {}",
        first_error.unwrap_or_default()
    );
    Ok(())
}
