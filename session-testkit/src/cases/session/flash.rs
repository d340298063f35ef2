//! Session-level cases: flash messages, queued for a later request and shown once.

use session_core::flash::{FLASH_KEY, Flash, Level};

use crate::cases::helpers::*;

/// Messages flashed before a redirect (in a new session, across `cycle_id` as a log-in
/// does) arrive in the next request in order, each once: the request that takes them
/// leaves none for the one after, and the stored record (or the token it sends) no longer
/// holds them.
pub(crate) async fn session_flash_is_shown_once_and_survives_cycle_id(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    // A first request flashes into a new session: the message alone makes it stored.
    let first = app.request(None);
    first.flash(Level::Info, "Please log in").await?;
    let cookie = first
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("a session holding a flash got no cookie".into()))?;
    let header = cookie_header(&cookie);

    // The log-in reads it, cycles the id, and flashes two more.
    let login = app.request(Some(&header));
    ensure_eq!(
        login.take_flashes().await?,
        vec![Flash::new(Level::Info, "Please log in")],
        "the flash after the redirect"
    );
    login.set("user", "ada").await?;
    login.cycle_id().await?;
    login.flash(Level::Success, "Welcome back").await?;
    login
        .flash(Level::Warning, "Your password expires soon")
        .await?;
    let cookie = login
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("a cycled session got no cookie".into()))?;
    let header = cookie_header(&cookie);

    let page = app.request(Some(&header));
    ensure_eq!(
        page.peek_flashes().await?.len(),
        2,
        "peeking leaves the messages queued"
    );
    ensure_eq!(
        page.take_flashes().await?,
        vec![
            Flash::new(Level::Success, "Welcome back"),
            Flash::new(Level::Warning, "Your password expires soon"),
        ],
        "the flashes after the cycled log-in, in order"
    );
    ensure_eq!(
        page.take_flashes().await?,
        Vec::new(),
        "a second take in the same request"
    );
    let taken = page.flush().await?;
    // A session kept in its token is as the latest token says: the next request sends the
    // one this flush issued.
    let header = match (ctx.client_side(), taken) {
        (None, _) => header,
        (Some(_), Some(cookie)) => cookie_header(&cookie),
        (Some(store_type), None) => {
            return Err(CaseError::Fail(format!(
                "taking the flashes of a {store_type} session issued no new token"
            )));
        }
    };
    if ctx.client_side().is_none() {
        let key = key_of(&header)?;
        let stored = load_data(ctx.store(), &key).await?;
        ensure!(
            stored
                .as_ref()
                .is_some_and(|data| !data.contains_key(FLASH_KEY)),
            "the record still holds flash messages after they were taken: {stored:?}"
        );
    }
    let reload = app.request(Some(&header));
    ensure_eq!(
        reload.take_flashes().await?,
        Vec::new(),
        "a reload after the messages were shown"
    );
    expect_text(&reload, "user", Some("ada"), "the data beside the flashes").await
}
