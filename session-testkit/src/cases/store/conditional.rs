//! Store-level cases: `update_if_unchanged`, the revision-checked fast path.

use crate::cases::helpers::*;

/// The revision `load` reports for `key`; a skip for stores that keep none.
async fn loaded_revision(ctx: &Ctx, key: &StoreKey) -> Result<Revision, CaseError> {
    let record = ctx
        .store
        .load(key)
        .await?
        .ok_or_else(|| CaseError::Fail("a live record did not load".into()))?;
    record.revision.ok_or_else(|| {
        CaseError::Skip("the store reports no revisions (update_if_unchanged unused)".into())
    })
}

/// `update_if_unchanged` with the revision `load` gave writes the whole record (keys it
/// lacks are gone, its expiry is set) and returns a new revision, which `load` reports
/// from then on and which a second conditional write accepts.
pub(crate) async fn update_if_unchanged_writes_the_loaded_record(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("a", b"1"), ("b", b"2")]).await?;
    let loaded = loaded_revision(ctx, &key).await?;
    let expires_at = Timestamp::from_millis(in_secs(7200).as_millis() + 5);
    let written = ctx
        .store
        .update_if_unchanged(
            &key,
            loaded,
            &record(&[("a", b"9"), ("c", b"3")], expires_at),
        )
        .await?
        .ok_or_else(|| CaseError::Fail("the unchanged record was not written".into()))?;
    ensure!(written != loaded, "the write kept the revision {loaded:?}");
    let now = ctx
        .store
        .load(&key)
        .await?
        .ok_or_else(|| CaseError::Fail("the record is gone after the write".into()))?;
    ensure_eq!(
        now.data,
        data(&[("a", b"9"), ("c", b"3")]),
        "data after the write"
    );
    ensure_eq!(now.expires_at, expires_at, "expiry after the write");
    ensure_eq!(
        now.revision,
        Some(written),
        "revision load reports after the write"
    );
    let again = ctx
        .store
        .update_if_unchanged(&key, written, &record(&[("a", b"10")], expires_at))
        .await?;
    ensure!(again.is_some(), "the returned revision was refused");
    expect_data(ctx, &key, &[("a", b"10")], "data after the second write").await?;
    Ok(())
}

/// After any other write (an update, a touch, another conditional write) the old revision
/// is refused and the record is left as the other write made it.
pub(crate) async fn update_if_unchanged_refuses_a_changed_record(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("user", b"ada")]).await?;
    let stale = loaded_revision(ctx, &key).await?;
    ensure!(
        ctx.store
            .update(&key, &changes(&[("cart", b"1")], &[], in_secs(3600)))
            .await?,
        "update of a live record returned false"
    );
    let written = ctx
        .store
        .update_if_unchanged(&key, stale, &record(&[("user", b"eve")], in_secs(3600)))
        .await?;
    ensure!(
        written.is_none(),
        "a revision from before an update was accepted"
    );
    expect_data(
        ctx,
        &key,
        &[("user", b"ada"), ("cart", b"1")],
        "data after a refused write",
    )
    .await?;

    let stale = loaded_revision(ctx, &key).await?;
    ensure!(
        ctx.store.touch(&key, in_secs(7200)).await?,
        "touch of a live record returned false"
    );
    let written = ctx
        .store
        .update_if_unchanged(&key, stale, &record(&[("user", b"eve")], in_secs(60)))
        .await?;
    ensure!(
        written.is_none(),
        "a revision from before a touch was accepted"
    );

    // Two requests that loaded the same revision: exactly one conditional write wins.
    let loaded = loaded_revision(ctx, &key).await?;
    let first = ctx
        .store
        .update_if_unchanged(&key, loaded, &record(&[("n", b"1")], in_secs(3600)))
        .await?;
    let second = ctx
        .store
        .update_if_unchanged(&key, loaded, &record(&[("n", b"2")], in_secs(3600)))
        .await?;
    ensure!(
        first.is_some() && second.is_none(),
        "two writes from one revision: first {first:?}, second {second:?}"
    );
    expect_data(
        ctx,
        &key,
        &[("n", b"1")],
        "data after two writes from one revision",
    )
    .await?;
    Ok(())
}

/// A conditional write for a record deleted or expired since it was loaded writes nothing:
/// no resurrection through the fast path either.
pub(crate) async fn update_if_unchanged_never_resurrects(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("user", b"ada")]).await?;
    let loaded = loaded_revision(ctx, &key).await?;
    ensure!(
        ctx.store.delete(&key).await?,
        "delete of a live record returned false"
    );
    let written = ctx
        .store
        .update_if_unchanged(&key, loaded, &record(&[("user", b"ada")], in_secs(3600)))
        .await?;
    ensure!(written.is_none(), "a deleted record was written");
    ensure!(
        absent(ctx, &key).await?,
        "a conditional write resurrected a deleted session"
    );

    let key = self::key()?;
    ctx.store
        .create(&key, &record(&[("user", b"ada")], in_millis(300)))
        .await?;
    let loaded = loaded_revision(ctx, &key).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let written = ctx
        .store
        .update_if_unchanged(&key, loaded, &record(&[("user", b"ada")], in_secs(3600)))
        .await?;
    ensure!(written.is_none(), "an expired record was written");
    ensure!(
        absent(ctx, &key).await?,
        "a conditional write revived an expired session"
    );
    Ok(())
}
