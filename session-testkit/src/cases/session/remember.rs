//! Session-level cases: remember-me, a session's own lifetime and cookie kind.

use crate::cases::helpers::*;

/// A configuration of browser-session cookies with a short idle timeout and a long
/// `remember_timeout`, both shorter than the absolute lifetime.
const REMEMBER_CONFIG: &str = r#"{
    "type": "conformance",
    "timeout": 600,
    "remember_timeout": 864000,
    "absolute_timeout": 1728000,
    "touch_after": "50ms",
    "cookie": { "persistent": false }
}"#;

/// [`REMEMBER_CONFIG`] with an absolute lifetime shorter than `remember_timeout`.
const SHORT_LIFETIME_CONFIG: &str = r#"{
    "type": "conformance",
    "timeout": 600,
    "remember_timeout": 864000,
    "absolute_timeout": 86400,
    "cookie": { "persistent": false }
}"#;

/// The `Max-Age` of `cookie` in seconds, if it has one and `Expires` beside it.
fn persistent_for(cookie: &Cookie<'_>) -> Option<i64> {
    cookie.expires()?;
    cookie.max_age().map(|d| d.whole_seconds())
}

/// `remember(true)` gives the session the long lifetime (bounded by `absolute_timeout`)
/// and a persistent cookie, kept by later requests; `remember(false)` the short idle
/// timeout and a cookie without `Max-Age` or `Expires`; a session that never chose gets
/// `cookie.persistent`'s browser-session cookie. The store (or the token) holds each
/// expiry.
pub(crate) async fn session_remember_me_sets_lifetime_and_cookie(ctx: &Ctx) -> CaseResult {
    let app = App::new(ctx, REMEMBER_CONFIG)?;

    // Without a choice: `cookie.persistent = false`.
    let plain = app.request(None);
    plain.set("user", "bob").await?;
    let cookie = plain
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no cookie".into()))?;
    ensure!(
        cookie.max_age().is_none() && cookie.expires().is_none(),
        "a session without a choice under cookie.persistent = false got a persistent \
         cookie: {cookie}"
    );
    expect_session_expiry_in(ctx, &app, &cookie_header(&cookie), 600, "no choice").await?;

    // Remembered: the long lifetime and a persistent cookie.
    let login = app.request(None);
    login.set("user", "ada").await?;
    login.remember(true).await?;
    let cookie = login
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no cookie".into()))?;
    let max_age = persistent_for(&cookie);
    ensure!(
        max_age.is_some_and(|seconds| (864_000 - 10..=864_000).contains(&seconds)),
        "a remembered session's cookie: Max-Age {max_age:?} with Expires, expected ~864000 \
         (remember_timeout): {cookie}"
    );
    let header = cookie_header(&cookie);
    expect_session_expiry_in(ctx, &app, &header, 864_000, "remembered").await?;

    // A later request keeps the choice: its refresh rolls the long lifetime forward, with
    // a persistent cookie again.
    tokio::time::sleep(Duration::from_millis(120)).await;
    let later = app.request(Some(&header));
    ensure_eq!(later.remembered().await?, Some(true), "the stored choice");
    later.set("visits", &1).await?;
    let cookie = later.flush().await?.ok_or_else(|| {
        CaseError::Fail(
            "a remembered session's rolling refresh sent no cookie: its expiry did not \
             move by the long lifetime"
                .into(),
        )
    })?;
    ensure!(
        persistent_for(&cookie).is_some_and(|seconds| seconds >= 864_000 - 10),
        "a remembered session's refreshed cookie: {cookie}"
    );
    // The refreshed cookie: the same id, or on a client-side type the new token.
    let header = cookie_header(&cookie);
    expect_session_expiry_in(ctx, &app, &header, 864_000, "remembered, a later request").await?;

    // The absolute lifetime bounds a remembered session too.
    let bounded = App::new(ctx, SHORT_LIFETIME_CONFIG)?;
    let short = bounded.request(None);
    short.remember(true).await?;
    let cookie = short
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no cookie".into()))?;
    let max_age = persistent_for(&cookie);
    ensure!(
        max_age.is_some_and(|seconds| (86_390..=86_400).contains(&seconds)),
        "a remembered session under a one-day absolute_timeout: Max-Age {max_age:?}, \
         expected ~86400: {cookie}"
    );
    expect_session_expiry_in(
        ctx,
        &bounded,
        &cookie_header(&cookie),
        86_400,
        "remembered, bounded by absolute_timeout",
    )
    .await?;

    // Forgotten: the short idle timeout now, and a browser-session cookie.
    let forget = app.request(Some(&header));
    forget.remember(false).await?;
    let cookie = forget
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("remember(false) sent no cookie".into()))?;
    ensure!(
        cookie.max_age().is_none() && cookie.expires().is_none(),
        "remember(false) gave a persistent cookie: {cookie}"
    );
    let header = cookie_header(&cookie);
    expect_session_expiry_in(ctx, &app, &header, 600, "after remember(false)").await?;
    let again = app.request(Some(&header));
    ensure_eq!(again.remembered().await?, Some(false), "the stored choice");

    // `clear` ends the choice with the session.
    again.clear().await;
    let removal = again.flush().await?;
    // A client-side session cannot be revoked (an old token still opens it): the client
    // sends what the response told it to, the removal.
    let header = match (ctx.client_side(), removal) {
        (Some(_), Some(removal)) => cookie_header(&removal),
        _ => header,
    };
    let fresh = app.request(Some(&header));
    ensure_eq!(
        fresh.remembered().await?,
        None,
        "a cleared session's choice"
    );
    Ok(())
}
