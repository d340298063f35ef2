//! Session-level cases: requests that race each other, a logout, or their own cancellation.

use crate::cases::helpers::*;

/// Polls `future` once and drops it if it is still waiting, as a server drops a request
/// whose client went away. Whether it had completed.
async fn poll_once<F: Future>(future: F) -> bool {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| std::task::Poll::Ready(future.as_mut().poll(cx).is_ready())).await
}

/// A flush dropped at its first wait (the client went away mid-request) leaves the session
/// holding all of its data, and the next flush stores it: for a new session and for a
/// stored one. The store is reached through a wrapper whose every call waits once first, so
/// both flushes are cancelled in the middle of a store call on every store, in-process ones
/// included.
pub(crate) async fn session_cancelled_flush_keeps_its_data(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_STORE_CALL)?;
    let app = App::yielding(ctx, r#"{"type": "conformance"}"#)?;
    let fresh = app.request(None);
    fresh.set("user", "ada").await?;
    let mut cancelled = 0;
    if !poll_once(fresh.flush()).await {
        cancelled += 1;
    }
    expect_text(
        &fresh,
        "user",
        Some("ada"),
        "a new session's data after a cancelled flush",
    )
    .await?;
    let cookie = fresh
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no cookie after the second flush".into()))?;
    let header = cookie_header(&cookie);

    let stored = app.request(Some(&header));
    stored.set("cart", "3 items").await?;
    if !poll_once(stored.flush()).await {
        cancelled += 1;
    }
    for (key, value) in [("user", "ada"), ("cart", "3 items")] {
        ensure_eq!(
            stored.get::<String>(key).await?,
            Some(value.to_owned()),
            "{key} of a stored session after a cancelled flush"
        );
    }
    stored.flush().await?;
    let later = app.request(Some(&header));
    for (key, value) in [("user", "ada"), ("cart", "3 items")] {
        ensure_eq!(
            later.get::<String>(key).await?,
            Some(value.to_owned()),
            "{key} in the store after the next flush"
        );
    }
    ctx.note(format!("{cancelled} of 2 flushes cancelled mid-call"));
    ensure_eq!(cancelled, 2, "flushes cancelled at their first wait");
    Ok(())
}

/// A slow request that loaded before a logout and writes after it does not bring the
/// session back.
pub(crate) async fn session_logout_racing_slow_request_does_not_resurrect(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_REVOCATION)?;
    let app = App::plain(ctx)?;
    let header = app.login(&[("user", "ada")]).await?;
    let slow = app.request(Some(&header));
    expect_text(&slow, "user", Some("ada"), "user before logout").await?;
    let logout = app.request(Some(&header));
    logout.clear().await;
    logout.flush().await?;
    slow.set("cart", "1 item").await?;
    let cookie = slow.flush().await?;
    ensure!(
        cookie.is_none(),
        "the slow request issued a cookie for a deleted session"
    );
    ensure!(
        ctx.store.load(&key_of(&header)?).await?.is_none(),
        "the session was resurrected"
    );
    let replay = app.request(Some(&header));
    ensure!(
        !replay.exists().await?,
        "the old cookie opens a session after logout"
    );
    Ok(())
}

/// `cycle_id()` in a request that races a logout neither fails nor brings the session
/// back under a new id.
pub(crate) async fn session_cycle_id_racing_delete_does_not_resurrect(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_REVOCATION)?;
    let app = App::plain(ctx)?;
    let header = app.login(&[("user", "ada")]).await?;
    let login = app.request(Some(&header));
    login.cycle_id().await?;
    let logout = app.request(Some(&header));
    logout.clear().await;
    logout.flush().await?;
    let cookie = login.flush().await?;
    if let Some(cookie) = cookie {
        ensure_eq!(
            cookie.value(),
            "",
            "a cycle after logout issued a live cookie"
        );
    }
    ensure!(
        ctx.store.load(&key_of(&header)?).await?.is_none(),
        "the old id loads a session"
    );
    Ok(())
}

/// 50 concurrent requests on one session, each setting its own key, all survive.
pub(crate) async fn session_concurrent_requests_merge_distinct_keys(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_MERGE)?;
    let app = Arc::new(App::plain(ctx)?);
    let header = app.login(&[("user", "ada")]).await?;
    set_distinct_keys_concurrently(&app, &header, 50).await?;
    let session = app.request(Some(&header));
    let mut missing = Vec::new();
    for i in 0..50u32 {
        if session.get::<u32>(&format!("k{i}")).await? != Some(i) {
            missing.push(i);
        }
    }
    ensure!(
        missing.is_empty(),
        "keys lost by concurrent requests: {missing:?}"
    );
    expect_text(&session, "user", Some("ada"), "the original key").await?;
    let keys: HashMap<String, ()> = session.keys().await?.into_iter().map(|k| (k, ())).collect();
    ensure_eq!(keys.len(), 51, "number of keys");
    Ok(())
}
