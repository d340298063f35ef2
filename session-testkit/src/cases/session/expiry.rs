//! Session-level cases: idle, rolling, per-call and absolute timeouts as requests see them.

use crate::cases::helpers::*;

/// A request that only reads costs one load and no write, and sends no cookie (on a
/// client-side type: no store call at all).
pub(crate) async fn session_read_only_request_does_not_write(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let header = app.login(&[("user", "ada")]).await?;
    let before = app.counter.counts();
    let session = app.request(Some(&header));
    expect_text(&session, "user", Some("ada"), "value").await?;
    expect_text(&session, "user", Some("ada"), "value again").await?;
    ensure!(session.contains_key("user").await?, "contains_key");
    ensure!(
        session.flush().await?.is_none(),
        "a read-only request got a cookie"
    );
    let after = app.counter.counts();
    ensure_eq!(
        after.loads - before.loads,
        u64::from(ctx.client_side().is_none()),
        "loads in a read-only request"
    );
    ensure_eq!(
        after.writes() - before.writes(),
        0,
        "writes in a read-only request"
    );
    Ok(())
}

/// With a rolling timeout, a read-only request refreshes the expiry (one `touch` and a
/// fresh cookie) only once the last refresh is `touch_after` old.
pub(crate) async fn session_rolling_expiry_refreshes_after_threshold(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_STORE_TO_READ)?;
    let app = App::new(ctx, r#"{"timeout": 3600, "touch_after": 60}"#)?;
    let header = app.login(&[("user", "ada")]).await?;
    let key = key_of(&header)?;
    let session = app.request(Some(&header));
    session.get::<String>("user").await?;
    ensure!(
        session.flush().await?.is_none(),
        "a fresh session was refreshed at once"
    );
    ensure_eq!(
        app.counter.counts().touches,
        0,
        "touches before the threshold"
    );

    // Pretend two minutes have passed since the last refresh.
    ensure!(
        ctx.store.touch(&key, in_secs(3600 - 120)).await?,
        "moving the expiry back"
    );
    let session = app.request(Some(&header));
    session.get::<String>("user").await?;
    let cookie = session
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no refreshed cookie".into()))?;
    ensure_eq!(
        app.counter.counts().touches,
        1,
        "touches after the threshold"
    );
    let max_age = cookie
        .max_age()
        .map(|d| d.whole_seconds())
        .unwrap_or_default();
    ensure!(
        (3590..=3600).contains(&max_age),
        "refreshed cookie Max-Age {max_age}, expected ~3600"
    );
    expect_expiry_in(ctx, &key, 3600, "after the refresh").await
}

/// `set_with_timeout` (ThinkJS `session(name, value, timeout)`) sets the session's expiry
/// and the cookie's lifetime to that timeout.
pub(crate) async fn session_per_call_timeout_sets_expiry(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let session = app.request(None);
    session
        .set_with_timeout("remember", &true, Duration::from_secs(120))
        .await?;
    let cookie = session
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no cookie".into()))?;
    let max_age = cookie
        .max_age()
        .map(|d| d.whole_seconds())
        .unwrap_or_default();
    ensure!(
        (110..=120).contains(&max_age),
        "cookie Max-Age {max_age}, expected ~120"
    );
    // `Expires` says the same as `Max-Age`, for clients that know only the former.
    let expires = cookie
        .expires_datetime()
        .map(|at| at.unix_timestamp())
        .unwrap_or_default();
    let latest = Timestamp::now().as_millis() / 1000 + max_age;
    ensure!(
        (latest - 2..=latest).contains(&expires),
        "cookie Expires {expires} (Unix seconds), expected now + Max-Age, {latest}"
    );
    expect_session_expiry_in(
        ctx,
        &app,
        &cookie_header(&cookie),
        120,
        "after set_with_timeout",
    )
    .await
}

/// A session older than `absolute_timeout` is gone, however active it has been.
pub(crate) async fn session_absolute_timeout_is_enforced(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_STORE_TO_READ)?;
    let app = App::new(ctx, r#"{"absolute_timeout": 3600}"#)?;
    let header = app.login(&[("user", "ada")]).await?;
    let key = key_of(&header)?;
    let mut stored = ctx
        .store
        .load(&key)
        .await?
        .ok_or_else(|| CaseError::Fail("session not stored".into()))?;
    ensure!(
        stored.expires_at <= stored.created_at + Duration::from_secs(3600),
        "expiry beyond the absolute lifetime"
    );
    // Pretend the session was created two hours ago and kept alive since.
    stored.created_at = ago_secs(7200);
    stored.expires_at = in_secs(3600);
    ctx.store.delete(&key).await?;
    ctx.store.create(&key, &stored).await?;
    let session = app.request(Some(&header));
    expect_text(
        &session,
        "user",
        None,
        "user in a session past its lifetime",
    )
    .await?;
    Ok(())
}
