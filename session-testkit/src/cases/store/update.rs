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
    expect_data(ctx, &key, &[("a", b"10"), ("c", b"3")], "data after update").await?;
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
    expect_data(ctx, &key, &[("c", b"3")], "data after clear").await?;
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
    expect_data(
        ctx,
        &key,
        &[("a", b"1"), ("b", b"2"), ("c", b"3")],
        "data after two partial updates",
    )
    .await?;
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
    expect_update_refused(ctx, &key()?, "of an unknown key").await
}

/// A change set for a session deleted meanwhile (a logout racing a slow request) does not
/// bring it back.
pub(crate) async fn update_after_delete_does_not_resurrect(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("user", b"ada")]).await?;
    ensure!(
        ctx.store.delete(&key).await?,
        "delete of a live record returned false"
    );
    expect_update_refused(ctx, &key, "after delete").await
}

/// A change set for an expired session does not revive it.
pub(crate) async fn update_after_expiry_does_not_resurrect(ctx: &Ctx) -> CaseResult {
    let key = create_expiring(ctx, &[("user", b"ada")], in_millis(200)).await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    expect_update_refused(ctx, &key, "of an expired record").await
}
