//! Session-level cases: sessions that belong to users, driven the way an application does
//! (log in with `set_user`, list, end one, end the others, end all, cap the count).
//! Skipped for stores without `Capabilities::user_index`.

use crate::cases::helpers::*;

/// A log-in binds the session: later requests see the user, the listing has the session
/// with its label, marked current for its own request and for no other, and the cookie
/// never appears in it.
pub(crate) async fn session_set_user_binds_and_lists(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    let app = App::plain(ctx)?;
    let ada = fresh_user("ada")?;
    let header = app.login_as(&ada, "Firefox on Linux").await?;
    ensure_eq!(
        app.user_of(&header).await?,
        Some(ada.clone()),
        "the user after log-in"
    );

    let session = app.request(Some(&header));
    let listing = session.user_sessions().await?;
    ensure_eq!(listing.len(), 1, "sessions listed after one log-in");
    let entry = &listing[0];
    ensure!(
        entry.current,
        "the request's own session is not marked current"
    );
    ensure_eq!(entry.label.as_str(), "Firefox on Linux", "the label listed");
    ensure_eq!(
        Some(entry.handle.clone()),
        session.handle().await?,
        "the handle listed is the session's own"
    );
    let id = header.split_once('=').map_or("", |(_, id)| id);
    ensure!(
        !entry.handle.as_str().contains(id) && !id.contains(entry.handle.as_str()),
        "the handle reveals the session id"
    );
    ensure!(
        entry.created_at <= entry.last_active && entry.last_active <= Timestamp::now(),
        "last active {} outside created {}..now",
        entry.last_active,
        entry.created_at
    );
    let from_manager = app.manager.sessions_of(&ada).await?;
    ensure_eq!(from_manager.len(), 1, "sessions the manager lists");
    ensure!(
        !from_manager[0].current,
        "the manager's listing marks a session current"
    );
    Ok(())
}

/// `cycle_id` keeps the binding: the session is listed under its new handle only, the old
/// cookie opens nothing, the new one is still the user's. A binding made in one request
/// and cycled in a later one behaves the same.
pub(crate) async fn session_cycle_id_keeps_the_binding(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    let app = App::plain(ctx)?;
    let ada = fresh_user("ada")?;
    let anonymous = app.login(&[("cart", "book")]).await?;
    let session = app.request(Some(&anonymous));
    session.set_user(ada.clone()).await?;
    session.flush().await?;
    let before = app.manager.sessions_of(&ada).await?;
    ensure_eq!(before.len(), 1, "listed after binding without a new id");

    let session = app.request(Some(&anonymous));
    session.cycle_id().await?;
    let cookie = session
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("cycle_id sent no cookie".into()))?;
    let cycled = cookie_header(&cookie);
    let after = app.manager.sessions_of(&ada).await?;
    ensure_eq!(after.len(), 1, "sessions listed after cycle_id");
    ensure!(
        after[0].handle != before[0].handle,
        "the old handle is still listed"
    );
    ensure_eq!(
        Some(after[0].handle.clone()),
        app.request(Some(&cycled)).handle().await?,
        "the listed handle is the cycled session's"
    );
    ensure_eq!(
        app.user_of(&cycled).await?,
        Some(ada),
        "the user after cycle_id"
    );
    ensure_eq!(
        app.user_of(&anonymous).await?,
        None,
        "the old cookie's user"
    );
    Ok(())
}

/// `clear` (log-out) unbinds: the session leaves the listing, and a session bound to
/// nobody lists nothing and ends nothing.
pub(crate) async fn session_clear_unbinds(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    let app = App::plain(ctx)?;
    let ada = fresh_user("ada")?;
    let header = app.login_as(&ada, "laptop").await?;
    let session = app.request(Some(&header));
    session.clear().await;
    session.flush().await?;
    ensure!(
        app.manager.sessions_of(&ada).await?.is_empty(),
        "listed after clear"
    );
    let anonymous = app.login(&[("cart", "book")]).await?;
    let session = app.request(Some(&anonymous));
    ensure!(
        session.user_sessions().await?.is_empty(),
        "an unbound session lists sessions"
    );
    ensure_eq!(
        session.revoke_others().await?,
        0,
        "an unbound session ended sessions"
    );
    Ok(())
}

/// Ending one device's session from another: the ended one is logged out on its next
/// request, the other stays in, and neither a handle of another user's session nor a
/// made-up handle ends anything.
pub(crate) async fn session_revoke_ends_only_that_session(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    let app = App::plain(ctx)?;
    let (ada, bob) = (fresh_user("ada")?, fresh_user("bob")?);
    let laptop = app.login_as(&ada, "laptop").await?;
    let phone = app.login_as(&ada, "phone").await?;
    let bobs = app.login_as(&bob, "bob's").await?;

    let session = app.request(Some(&laptop));
    let listing = session.user_sessions().await?;
    ensure_eq!(listing.len(), 2, "ada's sessions");
    let Some(other) = listing.iter().find(|s| !s.current) else {
        return Err(CaseError::Fail(
            "no session other than the current one".into(),
        ));
    };
    let bobs_handle = app.manager.sessions_of(&bob).await?[0].handle.clone();
    ensure!(
        !session.revoke(&bobs_handle).await?,
        "ada ended bob's session"
    );
    ensure!(
        !session
            .revoke(&SessionHandle::parse(&"0".repeat(32))?)
            .await?,
        "a made-up handle ended a session"
    );
    ensure!(
        session.revoke(&other.handle).await?,
        "ending the phone's session"
    );
    ensure!(!session.revoke(&other.handle).await?, "ending it twice");
    session.flush().await?;

    ensure_eq!(app.user_of(&phone).await?, None, "the ended session's user");
    ensure_eq!(
        app.user_of(&laptop).await?,
        Some(ada.clone()),
        "the laptop's user"
    );
    ensure_eq!(app.user_of(&bobs).await?, Some(bob), "bob's user");
    ensure_eq!(
        app.manager.sessions_of(&ada).await?.len(),
        1,
        "ada's sessions after"
    );
    Ok(())
}

/// "Log out my other devices" ends every other session of the user and keeps the
/// current one.
pub(crate) async fn session_revoke_others_keeps_current(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    let app = App::plain(ctx)?;
    let ada = fresh_user("ada")?;
    let mut devices = Vec::new();
    for i in 0..5 {
        devices.push(app.login_as(&ada, &format!("device {i}")).await?);
    }
    let session = app.request(Some(&devices[2]));
    ensure_eq!(session.revoke_others().await?, 4, "sessions ended");
    session.flush().await?;
    for (i, device) in devices.iter().enumerate() {
        let expected = (i == 2).then(|| ada.clone());
        ensure_eq!(app.user_of(device).await?, expected, "device {i}'s user");
    }
    let listing = app.request(Some(&devices[2])).user_sessions().await?;
    ensure!(
        listing.len() == 1 && listing[0].current,
        "listing after: {listing:?}"
    );
    Ok(())
}

/// Ending every session of one user (after a password change) counts exactly and leaves
/// every other user's sessions untouched.
pub(crate) async fn session_revoke_user_leaves_other_users(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    let app = App::plain(ctx)?;
    let (ada, bob) = (fresh_user("ada")?, fresh_user("bob")?);
    let mut adas = Vec::new();
    for i in 0..10 {
        adas.push(app.login_as(&ada, &format!("ada {i}")).await?);
    }
    let mut bobs = Vec::new();
    for i in 0..3 {
        bobs.push(app.login_as(&bob, &format!("bob {i}")).await?);
    }
    ensure_eq!(
        app.manager.revoke_user(&ada, None).await?,
        10,
        "sessions ended"
    );
    ensure_eq!(app.manager.revoke_user(&ada, None).await?, 0, "ended again");
    for header in &adas {
        ensure_eq!(app.user_of(header).await?, None, "a revoked session's user");
    }
    for header in &bobs {
        ensure_eq!(
            app.user_of(header).await?,
            Some(bob.clone()),
            "bob's session"
        );
    }
    ensure_eq!(
        app.manager.sessions_of(&bob).await?.len(),
        3,
        "bob's listing"
    );
    Ok(())
}

/// A request of a revoked session that loaded it before the revoke and writes after it
/// (new data, a new label, a new id) never brings it back, listed or loadable.
pub(crate) async fn session_revoke_racing_slow_request_does_not_resurrect(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    let app = App::plain(ctx)?;
    let ada = fresh_user("ada")?;
    for cycle in [false, true] {
        let header = app.login_as(&ada, "laptop").await?;
        let slow = app.request(Some(&header));
        ensure_eq!(
            slow.user().await?,
            Some(ada.clone()),
            "the slow request's user"
        );
        ensure_eq!(app.manager.revoke_user(&ada, None).await?, 1, "revoked");
        slow.set("cart", "late").await?;
        slow.set_label("renamed").await?;
        if cycle {
            slow.cycle_id().await?;
        }
        slow.flush().await?;
        ensure!(
            app.manager.sessions_of(&ada).await?.is_empty(),
            "a revoked session is listed again after a slow request (cycle_id: {cycle})"
        );
        ensure_eq!(
            app.user_of(&header).await?,
            None,
            "the revoked cookie's user"
        );
    }
    Ok(())
}

/// With `max_sessions_per_user = 3`, a fourth and fifth log-in end the least recently
/// active sessions; the newest three stay, the current one always among them.
pub(crate) async fn session_max_sessions_per_user_ends_the_oldest(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    let app = App::new(
        ctx,
        r#"{"type": "conformance", "max_sessions_per_user": 3}"#,
    )?;
    let ada = fresh_user("ada")?;
    let mut devices = Vec::new();
    for i in 0..5 {
        devices.push(app.login_as(&ada, &format!("device {i}")).await?);
        // Distinct expiries, so "least recently active" is one order.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for (i, device) in devices.iter().enumerate() {
        let expected = (i >= 2).then(|| ada.clone());
        ensure_eq!(app.user_of(device).await?, expected, "device {i}'s user");
    }
    ensure_eq!(
        app.manager.sessions_of(&ada).await?.len(),
        3,
        "sessions listed"
    );
    Ok(())
}

/// With `max_sessions_per_user = 5`, 50 concurrent log-ins of one user leave at most 5
/// live sessions, and at least one; 100 concurrent log-ins of a user without a limit are
/// all listed.
pub(crate) async fn session_concurrent_logins_are_listed_and_capped(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    for (limit, logins) in [(Some(5), 50), (None, 100)] {
        let config = match limit {
            Some(limit) => {
                format!(r#"{{"type": "conformance", "max_sessions_per_user": {limit}}}"#)
            }
            None => r#"{"type": "conformance"}"#.to_owned(),
        };
        let app = Arc::new(App::new(ctx, &config)?);
        let ada = fresh_user("ada")?;
        let mut set = JoinSet::new();
        for i in 0..logins {
            let (app, ada) = (Arc::clone(&app), ada.clone());
            set.spawn(async move { app.login_as(&ada, &format!("login {i}")).await });
        }
        let headers = join_all(set).await?;
        let mut live = 0;
        for header in &headers {
            live += usize::from(app.user_of(header).await?.is_some());
        }
        let listed = app.manager.sessions_of(&ada).await?.len();
        ensure_eq!(
            listed,
            live,
            "listed against live sessions ({logins} log-ins)"
        );
        match limit {
            Some(limit) => ensure!(
                (1..=limit).contains(&live),
                "{logins} concurrent log-ins with max_sessions_per_user = {limit} left {live}"
            ),
            None => ensure_eq!(live, logins, "live sessions after concurrent log-ins"),
        }
        ctx.note(format!(
            "{logins} concurrent log-ins, limit {limit:?}: {live} live"
        ));
    }
    Ok(())
}

/// Binding costs nothing beyond the write a log-in makes anyway: one `create` for a log-in
/// with `set_user`, one load and one write for a later request that changes data, and no
/// user-index call on either.
pub(crate) async fn session_binding_costs_no_extra_round_trip(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    let app = App::plain(ctx)?;
    let ada = fresh_user("ada")?;
    let before = app.counter.counts().total();
    let header = app.login_as(&ada, "laptop").await?;
    ensure_eq!(
        app.counter.counts().total() - before,
        1,
        "store calls of a log-in with set_user"
    );
    let before = app.counter.counts().total();
    let session = app.request(Some(&header));
    session.set("cart", "book").await?;
    session.set_user(ada.clone()).await?;
    session.flush().await?;
    ensure_eq!(
        app.counter.counts().total() - before,
        2,
        "store calls of a request that changes data and binds the same user again"
    );
    Ok(())
}
