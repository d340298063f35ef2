//! Store-level cases: `update` with a change set (merging, clearing, expiry, no resurrection).

use crate::cases::helpers::*;

/// `update` writes the keys it sets and removes the keys it removes.
pub(crate) async fn update_sets_and_removes_keys(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("a", b"1"), ("b", b"2")]).await?;
    let applied = ctx
        .store
        .update(
            &key,
            &changes(&[("a", b"10"), ("c", b"3")], &["b"], in_secs(3600)),
        )
        .await?;
    ensure!(applied, "update of a live record returned false");
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(data(&[("a", b"10"), ("c", b"3")])),
        "data after update"
    );
    Ok(())
}

/// A change set with `cleared` drops every stored key before setting its own.
pub(crate) async fn update_clear_then_set(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("a", b"1"), ("b", b"2")]).await?;
    let mut clear = changes(&[("c", b"3")], &[], in_secs(3600));
    clear.cleared = true;
    ensure!(
        ctx.store.update(&key, &clear).await?,
        "update returned false"
    );
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(data(&[("c", b"3")])),
        "data after clear"
    );
    Ok(())
}

/// Keys a change set does not name keep the store's values, including values written by
/// another request after this one loaded.
pub(crate) async fn update_keeps_keys_it_does_not_name(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("a", b"1")]).await?;
    ctx.store
        .update(&key, &changes(&[("b", b"2")], &[], in_secs(3600)))
        .await?;
    ctx.store
        .update(&key, &changes(&[("c", b"3")], &[], in_secs(3600)))
        .await?;
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(data(&[("a", b"1"), ("b", b"2"), ("c", b"3")])),
        "data after two partial updates"
    );
    Ok(())
}

/// `update` sets the record's expiry to the change set's, to the millisecond.
pub(crate) async fn update_sets_new_expiry(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("a", b"1")]).await?;
    let expires_at = Timestamp::from_millis(in_secs(7200).as_millis() + 7);
    ctx.store
        .update(&key, &changes(&[("b", b"2")], &[], expires_at))
        .await?;
    let loaded = ctx.store.load(&key).await?.map(|r| r.expires_at);
    ensure_eq!(loaded, Some(expires_at), "expiry after update");
    Ok(())
}

/// `update` of a key never created returns `false` and creates nothing.
pub(crate) async fn update_of_unknown_key_creates_nothing(ctx: &Ctx) -> CaseResult {
    let key = key()?;
    let applied = ctx
        .store
        .update(&key, &changes(&[("a", b"1")], &[], in_secs(3600)))
        .await?;
    ensure!(!applied, "update of an unknown key returned true");
    ensure!(
        ctx.store.load(&key).await?.is_none(),
        "update of an unknown key created a record"
    );
    Ok(())
}

/// A change set for a session deleted meanwhile (a logout racing a slow request) does not
/// bring it back.
pub(crate) async fn update_after_delete_does_not_resurrect(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("user", b"ada")]).await?;
    ensure!(
        ctx.store.delete(&key).await?,
        "delete of a live record returned false"
    );
    let applied = ctx
        .store
        .update(&key, &changes(&[("cart", b"1")], &[], in_secs(3600)))
        .await?;
    ensure!(!applied, "update after delete returned true");
    ensure!(
        ctx.store.load(&key).await?.is_none(),
        "update after delete resurrected the session"
    );
    Ok(())
}

/// A change set for an expired session does not revive it.
pub(crate) async fn update_after_expiry_does_not_resurrect(ctx: &Ctx) -> CaseResult {
    let key = key()?;
    ctx.store
        .create(&key, &record(&[("user", b"ada")], in_millis(200)))
        .await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let applied = ctx
        .store
        .update(&key, &changes(&[("cart", b"1")], &[], in_secs(3600)))
        .await?;
    ensure!(!applied, "update of an expired record returned true");
    ensure!(
        ctx.store.load(&key).await?.is_none(),
        "update revived an expired session"
    );
    Ok(())
}
