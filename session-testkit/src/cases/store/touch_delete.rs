//! Store-level cases: `touch` and `delete`.

use crate::cases::helpers::*;

/// `touch` moves the expiry and leaves the data as it was.
pub(crate) async fn touch_extends_expiry_without_changing_data(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("a", b"1"), ("b", b"2")]).await?;
    let later = Timestamp::from_millis(in_secs(10_000).as_millis() + 3);
    ensure!(
        ctx.store.touch(&key, later).await?,
        "touch of a live record returned false"
    );
    let loaded = ctx.store.load(&key).await?;
    ensure_eq!(
        loaded.as_ref().map(|r| r.expires_at),
        Some(later),
        "expiry after touch"
    );
    ensure_eq!(
        loaded.map(|r| r.data),
        Some(data(&[("a", b"1"), ("b", b"2")])),
        "data after touch"
    );
    Ok(())
}

/// `touch` of an unknown key returns `false` and creates nothing.
pub(crate) async fn touch_of_unknown_key_is_false(ctx: &Ctx) -> CaseResult {
    expect_touch_refused(ctx, &key()?, "of an unknown key").await
}

/// `touch` of an expired record does not revive it.
pub(crate) async fn touch_does_not_revive_expired_record(ctx: &Ctx) -> CaseResult {
    let key = create_expiring(ctx, &[("a", b"1")], in_millis(200)).await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    expect_touch_refused(ctx, &key, "of an expired record").await
}

/// `delete` removes a live record and says so.
pub(crate) async fn delete_removes_record(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("a", b"1")]).await?;
    let other = create_live(ctx, &[("b", b"2")]).await?;
    ensure!(
        ctx.store.delete(&key).await?,
        "delete of a live record returned false"
    );
    ensure!(
        absent(ctx, &key).await?,
        "the deleted record is still there"
    );
    ensure!(
        ctx.store.load(&other).await?.is_some(),
        "delete removed another record"
    );
    Ok(())
}

/// `delete` of an unknown key is not an error and returns `false`.
pub(crate) async fn delete_of_unknown_key_is_false(ctx: &Ctx) -> CaseResult {
    ensure!(
        !ctx.store.delete(&key()?).await?,
        "delete of an unknown key returned true"
    );
    Ok(())
}

/// After `delete`, `create` on the same key starts from nothing.
pub(crate) async fn create_after_delete_starts_fresh(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("a", b"1")]).await?;
    ctx.store.delete(&key).await?;
    ensure!(
        ctx.store
            .create(&key, &record(&[("b", b"2")], in_secs(3600)))
            .await?,
        "create after delete returned false"
    );
    expect_data(ctx, &key, &[("b", b"2")], "data").await?;
    Ok(())
}
