//! Session-level cases: a session from first write to `clear()` and `cycle_id()`.

use crate::cases::helpers::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
    roles: Vec<String>,
    address: Option<Address>,
    scores: BTreeMap<String, i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Address {
    city: String,
    zip: u32,
}

/// Typed values (strings, extreme numbers, nested structs, options, maps, unicode) written
/// through a session come back equal in the next request.
pub(crate) async fn session_round_trips_typed_values(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let profile = Profile {
        id: u64::MAX,
        name: "Zoë Ærø 🦀".into(),
        roles: vec!["admin".into(), "".into()],
        address: Some(Address {
            city: "Zürich".into(),
            zip: 8001,
        }),
        scores: BTreeMap::from([("a.b".into(), -1), ("$x".into(), i32::MIN)]),
    };
    let session = app.request(None);
    session.set("userInfo", &profile).await?;
    session.set("i64", &i64::MIN).await?;
    session.set("f64", &-1.5e300f64).await?;
    session.set("text", "ünïcödé ✓").await?;
    session.set("none", &Option::<u8>::None).await?;
    session.set("a.b$c/d e", &true).await?;
    session.set("list", &vec![1u8, 2, 3]).await?;
    let cookie = session
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no cookie".into()))?;
    let next = app.request(Some(&cookie_header(&cookie)));
    ensure_eq!(
        next.get::<Profile>("userInfo").await?,
        Some(profile),
        "struct"
    );
    ensure_eq!(next.get::<i64>("i64").await?, Some(i64::MIN), "i64");
    ensure_eq!(next.get::<f64>("f64").await?, Some(-1.5e300), "f64");
    expect_text(&next, "text", Some("ünïcödé ✓"), "string").await?;
    ensure_eq!(next.get::<Option<u8>>("none").await?, Some(None), "option");
    ensure_eq!(
        next.get::<bool>("a.b$c/d e").await?,
        Some(true),
        "special key"
    );
    ensure_eq!(
        next.get::<Vec<u8>>("list").await?,
        Some(vec![1, 2, 3]),
        "list"
    );
    ensure_eq!(next.get::<String>("missing").await?, None, "missing key");
    Ok(())
}

/// A new session that ends the request empty is not stored and gets no cookie.
pub(crate) async fn session_new_empty_session_is_not_stored(ctx: &Ctx) -> CaseResult {
    let app = App::plain(ctx)?;
    let session = app.request(None);
    expect_text(&session, "user", None, "value in a new session").await?;
    session.set("temp", &1).await?;
    session.remove("temp").await?;
    ensure!(
        session.flush().await?.is_none(),
        "an empty new session got a cookie"
    );
    ensure_eq!(
        app.counter.counts().writes(),
        0,
        "store writes for an empty new session"
    );
    Ok(())
}

/// A well-formed id the store does not know is never adopted: the data goes to a fresh id.
pub(crate) async fn session_unknown_id_is_not_adopted(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_IDS)?;
    let app = App::plain(ctx)?;
    let planted = SessionId::generate(32)?;
    let header = format!("thinkjs={}", planted.expose());
    let session = app.request(Some(&header));
    ensure!(
        !session.exists().await?,
        "an unknown id was reported as an existing session"
    );
    session.set("user", "mallory's victim").await?;
    let cookie = session
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no cookie".into()))?;
    ensure!(
        cookie.value() != planted.expose(),
        "the planted id was adopted"
    );
    ensure!(
        ctx.store.load(&planted.store_key()).await?.is_none(),
        "a record was created under the planted id"
    );
    Ok(())
}

/// `clear()` deletes the record and expires the cookie; replaying the old cookie finds
/// nothing.
pub(crate) async fn session_clear_deletes_and_expires_cookie(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_REVOCATION)?;
    let app = App::plain(ctx)?;
    let header = app.login(&[("user", "ada")]).await?;
    let session = app.request(Some(&header));
    session.clear().await;
    let removal = session
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no removal cookie".into()))?;
    ensure_eq!(removal.value(), "", "removal cookie value");
    ensure_eq!(
        removal.max_age().map(|d| d.whole_seconds()),
        Some(0),
        "removal cookie Max-Age"
    );
    ensure!(
        ctx.store.load(&key_of(&header)?).await?.is_none(),
        "the record survived clear()"
    );
    let replay = app.request(Some(&header));
    expect_text(&replay, "user", None, "user behind a replayed cookie").await?;
    ensure!(
        replay.flush().await?.is_none(),
        "a replayed cookie started a session"
    );
    Ok(())
}

/// After `clear()`, setting values starts a new session under a new id; the old id stays
/// dead.
pub(crate) async fn session_clear_then_set_starts_new_session(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_IDS)?;
    let app = App::plain(ctx)?;
    let header = app.login(&[("user", "ada"), ("role", "admin")]).await?;
    let session = app.request(Some(&header));
    session.clear().await;
    session.set("flash", "bye").await?;
    let cookie = session
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no cookie".into()))?;
    let fresh = cookie_header(&cookie);
    ensure!(fresh != header, "clear then set kept the old id");
    ensure!(
        ctx.store.load(&key_of(&header)?).await?.is_none(),
        "the old record survived"
    );
    let next = app.request(Some(&fresh));
    ensure_eq!(
        next.keys().await?,
        vec!["flash".to_owned()],
        "keys of the new session"
    );
    Ok(())
}

/// `cycle_id()` moves the data to a new id; the old id opens nothing.
pub(crate) async fn session_cycle_id_moves_data_to_new_id(ctx: &Ctx) -> CaseResult {
    require_server_side(ctx, NO_REVOCATION)?;
    let app = App::plain(ctx)?;
    let header = app.login(&[("cart", "3 items")]).await?;
    let session = app.request(Some(&header));
    session.set("user", "ada").await?;
    session.cycle_id().await?;
    let cookie = session
        .flush()
        .await?
        .ok_or_else(|| CaseError::Fail("no cookie after cycle_id".into()))?;
    let cycled = cookie_header(&cookie);
    ensure!(cycled != header, "cycle_id kept the id");
    let old = app.request(Some(&header));
    expect_text(&old, "cart", None, "data behind the old id").await?;
    let new = app.request(Some(&cycled));
    expect_text(&new, "cart", Some("3 items"), "cart behind the new id").await?;
    expect_text(&new, "user", Some("ada"), "user behind the new id").await?;
    Ok(())
}
