//! Session-level cases: what a cookie must be before the store sees it.

use crate::cases::helpers::*;

/// With a secret set, a cookie with a bad, missing or foreign signature is a new session
/// and causes no store access at all.
pub(crate) async fn session_tampered_cookie_never_reaches_store(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_IDS)?;
    let app = App::new(ctx, r#"{"secret": "conformance secret"}"#)?;
    let other = App::new(ctx, r#"{"secret": "another secret"}"#)?;
    let good = app.login(&[("user", "ada")]).await?;
    let (name, value) = good.split_once('=').unwrap_or_default();
    let (id, _signature) = value.split_once('.').unwrap_or_default();
    let foreign = other.login(&[("user", "eve")]).await?;
    let loads_before = app.counter.counts().loads;
    let tampered = [
        format!("{name}={id}"),
        format!("{name}={id}."),
        format!("{name}={}", &value[..value.len() - 1]),
        format!("{name}={value}A"),
        format!(
            "{name}={}{id}{}",
            if id.starts_with('A') { "B" } else { "A" },
            &value[id.len()..]
        ),
        format!("{name}={}{}", &id[..id.len() - 1], &value[id.len()..]),
        foreign.clone(),
        format!("{name}={}", "A".repeat(64 * 1024)),
        format!("{name}=%FF%FE{value}"),
        format!("{name}=../../etc/passwd"),
    ];
    for header in &tampered {
        if header == &good {
            continue;
        }
        let session = app.request(Some(header));
        expect_text(&session, "user", None, "user behind a tampered cookie").await?;
    }
    ensure_eq!(
        app.counter.counts().loads,
        loads_before,
        "store loads caused by tampered cookies"
    );
    let genuine = app.request(Some(&good));
    expect_text(&genuine, "user", Some("ada"), "the genuine cookie").await?;
    Ok(())
}
