//! Store-level cases: session locks (`lock`, `renew_lock`, `unlock`) called directly.
//! Skipped for stores without `Capabilities::lock`.

use crate::cases::helpers::*;

/// A lease long enough that no case outlives it by accident.
const LONG: Duration = Duration::from_secs(60);

/// One token at a time holds a key's lock: another is refused until the holder unlocks,
/// the holder asking again is told it holds it, and after the unlock the next token gets it.
pub(crate) async fn lock_is_exclusive(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let (key, first, second) = (key()?, token()?, token()?);
    ensure!(
        ctx.store.lock(&key, &first, LONG).await?,
        "a free lock was refused"
    );
    ensure!(
        !ctx.store.lock(&key, &second, LONG).await?,
        "a held lock was granted to another token"
    );
    ensure!(
        ctx.store.lock(&key, &first, LONG).await?,
        "the holder asking again was refused"
    );
    ensure!(
        ctx.store.unlock(&key, &first).await?,
        "the holder's unlock said it held nothing"
    );
    ensure!(
        ctx.store.lock(&key, &second, LONG).await?,
        "the lock was refused after the holder released it"
    );
    ensure!(
        !ctx.store.lock(&key, &first, LONG).await?,
        "the former holder got the lock back while the next one held it"
    );
    Ok(())
}

/// Of 20 tokens asking for one free lock at once, exactly one gets it.
pub(crate) async fn lock_concurrent_attempts_admit_one(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let key = key()?;
    let mut set = JoinSet::new();
    for _ in 0..20 {
        let (store, key, token) = (Arc::clone(&ctx.store), key.clone(), token()?);
        set.spawn(async move { Ok(store.lock(&key, &token, LONG).await?) });
    }
    let granted = join_all(set).await?.into_iter().filter(|g| *g).count();
    ensure_eq!(granted, 1, "tokens granted one free lock at once");
    Ok(())
}

/// A lease not renewed within its ttl lapses: the next token gets the lock, and the old
/// holder can neither renew nor release the new holder's lease.
pub(crate) async fn lock_lapses_after_ttl(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let (key, stalled, next, third) = (key()?, token()?, token()?, token()?);
    ensure!(
        ctx.store
            .lock(&key, &stalled, Duration::from_millis(200))
            .await?,
        "a free lock was refused"
    );
    ensure!(
        !ctx.store.lock(&key, &next, LONG).await?,
        "a fresh lease was granted to another token"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(
        ctx.store.lock(&key, &next, LONG).await?,
        "the lock was still refused 300 ms after its lease lapsed"
    );
    ensure!(
        !ctx.store.renew_lock(&key, &stalled, LONG).await?,
        "the lapsed holder renewed the next holder's lease"
    );
    ensure!(
        !ctx.store.unlock(&key, &stalled).await?,
        "the lapsed holder's unlock said it held the lock"
    );
    ensure!(
        !ctx.store.lock(&key, &third, LONG).await?,
        "the lapsed holder's late unlock released the next holder's lease"
    );
    Ok(())
}

/// A renewal by the holder keeps the lease past its first ttl; a renewal by another token
/// is refused and changes nothing.
pub(crate) async fn lock_renew_extends_the_lease(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let (key, holder, other) = (key()?, token()?, token()?);
    ensure!(
        ctx.store
            .lock(&key, &holder, Duration::from_millis(300))
            .await?,
        "a free lock was refused"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    ensure!(
        ctx.store.renew_lock(&key, &holder, LONG).await?,
        "the holder's renewal of its unexpired lease was refused"
    );
    ensure!(
        !ctx.store.renew_lock(&key, &other, LONG).await?,
        "another token renewed the holder's lease"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    ensure!(
        !ctx.store.lock(&key, &other, LONG).await?,
        "the lease lapsed at its first ttl although it was renewed"
    );
    let unknown = key_for_nothing()?;
    ensure!(
        !ctx.store.renew_lock(&unknown, &holder, LONG).await?,
        "renewing a lock nobody holds said it held it"
    );
    ensure!(
        ctx.store.lock(&unknown, &other, LONG).await?,
        "a renewal of a free lock took it"
    );
    Ok(())
}

/// Only the holder's token releases a lease: another token's unlock says false and leaves
/// it held, and a second unlock by the holder says false.
pub(crate) async fn unlock_needs_the_holders_token(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let (key, holder, other) = (key()?, token()?, token()?);
    ensure!(
        ctx.store.lock(&key, &holder, LONG).await?,
        "a free lock was refused"
    );
    ensure!(
        !ctx.store.unlock(&key, &other).await?,
        "another token's unlock said it held the lock"
    );
    ensure!(
        !ctx.store.lock(&key, &other, LONG).await?,
        "another token's unlock released the holder's lease"
    );
    ensure!(
        ctx.store.unlock(&key, &holder).await?,
        "the holder's unlock said it held nothing"
    );
    ensure!(
        !ctx.store.unlock(&key, &holder).await?,
        "a second unlock said the lock was still held"
    );
    ensure!(
        !ctx.store.unlock(&key_for_nothing()?, &holder).await?,
        "unlocking a key never locked said it was held"
    );
    Ok(())
}

/// Leases are apart from records: locking neither creates nor changes a record, a locked
/// record can still be written and deleted, deleting it keeps the lease, and the locks of
/// different keys are independent.
pub(crate) async fn lock_leaves_records_and_other_keys_alone(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let key = create_live(ctx, &[("a", b"1")]).await?;
    let before = ctx.store.load(&key).await?;
    let (holder, other) = (token()?, token()?);
    ensure!(
        ctx.store.lock(&key, &holder, LONG).await?,
        "a free lock was refused"
    );
    let after = ctx.store.load(&key).await?;
    ensure_eq!(
        after
            .as_ref()
            .map(|r| (&r.data, r.expires_at, r.created_at)),
        before
            .as_ref()
            .map(|r| (&r.data, r.expires_at, r.created_at)),
        "the record after locking its key"
    );
    let empty = key_for_nothing()?;
    ensure!(
        ctx.store.lock(&empty, &other, LONG).await?,
        "the lock of another key was refused while one key was locked"
    );
    ensure!(
        ctx.store.load(&empty).await?.is_none(),
        "locking a key without a record created one"
    );
    ensure!(
        ctx.store
            .update(&key, &changes(&[("b", b"2")], &[], in_secs(3600)))
            .await?,
        "an update of a locked record was refused"
    );
    ensure!(
        ctx.store.delete(&key).await?,
        "a delete of a locked record was refused"
    );
    ensure!(
        !ctx.store.lock(&key, &other, LONG).await?,
        "deleting the record released its lease"
    );
    ensure!(
        ctx.store.unlock(&key, &holder).await? && ctx.store.unlock(&empty, &other).await?,
        "a holder's unlock said it held nothing"
    );
    Ok(())
}

/// On a shared store, a lease taken through one handle holds for another handle on the same
/// backend (as for two processes), and its release is seen there.
pub(crate) async fn lock_shared_between_handles(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let second = second_handle(ctx)?;
    let (key, first_holder, second_holder) = (key()?, token()?, token()?);
    ensure!(
        ctx.store.lock(&key, &first_holder, LONG).await?,
        "a free lock was refused"
    );
    ensure!(
        !second.lock(&key, &second_holder, LONG).await?,
        "the second handle was granted a lock the first holds"
    );
    ensure!(
        ctx.store.unlock(&key, &first_holder).await?,
        "the holder's unlock said it held nothing"
    );
    ensure!(
        second.lock(&key, &second_holder, LONG).await?,
        "the second handle was refused a lock the first released"
    );
    ensure!(
        !ctx.store.lock(&key, &first_holder, LONG).await?,
        "the first handle was granted a lock the second holds"
    );
    Ok(())
}

/// `lock_and_load` is `lock` then `load` in one step: granted, it returns the record (or
/// `None` for a key without one); refused, it loads nothing; the lease it takes is the
/// lease `lock` takes.
pub(crate) async fn lock_and_load_loads_only_when_granted(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let key = create_live(ctx, &[("a", b"1")]).await?;
    let (holder, other) = (token()?, token()?);
    let granted = ctx.store.lock_and_load(&key, &holder, LONG).await?;
    ensure_eq!(
        granted.map(|record| record.map(|r| r.data)),
        Some(Some(data(&[("a", b"1")]))),
        "a free lock with its record"
    );
    ensure_eq!(
        ctx.store
            .lock_and_load(&key, &holder, LONG)
            .await?
            .map(|record| record.map(|r| r.data)),
        Some(Some(data(&[("a", b"1")]))),
        "the holder asking again (it holds the lock, as `lock` tells it)"
    );
    ensure_eq!(
        ctx.store.lock_and_load(&key, &other, LONG).await?,
        None,
        "a lock another token holds"
    );
    ensure!(
        !ctx.store.lock(&key, &other, LONG).await?,
        "the lease lock_and_load took does not hold for lock"
    );
    ensure!(
        ctx.store.unlock(&key, &holder).await?,
        "the lease lock_and_load took is not the holder's to release"
    );
    let empty = key_for_nothing()?;
    ensure_eq!(
        ctx.store.lock_and_load(&empty, &other, LONG).await?,
        Some(None),
        "a free lock on a key without a record"
    );
    ensure!(
        ctx.store.unlock(&empty, &other).await?,
        "the lease on a key without a record"
    );
    Ok(())
}

/// `update_and_unlock` and `update_if_unchanged_and_unlock` write, then release the
/// writer's lease: after a write that happened the lock is free; after one that did not
/// (no record, a stale revision) the lease is still held; another token's lease is never
/// released.
pub(crate) async fn write_and_unlock_releases_only_after_writing(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let (holder, other) = (token()?, token()?);
    let key = create_live(ctx, &[("a", b"1")]).await?;
    ensure!(
        ctx.store.lock(&key, &holder, LONG).await?,
        "a free lock was refused"
    );
    let set_b = changes(&[("b", b"2")], &[], in_secs(3600));
    ensure!(
        ctx.store.update_and_unlock(&key, &set_b, &other).await?,
        "an update of a live record was refused"
    );
    ensure!(
        !ctx.store.lock(&key, &other, LONG).await?,
        "a write with another token's name released the holder's lease"
    );
    expect_data(
        ctx,
        &key,
        &[("a", b"1"), ("b", b"2")],
        "after the other token's write",
    )
    .await?;
    ensure!(
        ctx.store.update_and_unlock(&key, &set_b, &holder).await?,
        "the holder's update of a live record was refused"
    );
    ensure!(
        ctx.store.lock(&key, &other, LONG).await?,
        "the lock was still held after the holder's update_and_unlock"
    );
    ensure!(
        ctx.store.unlock(&key, &other).await?,
        "the next holder's lease"
    );

    let missing = key_for_nothing()?;
    ensure!(
        ctx.store.lock(&missing, &holder, LONG).await?,
        "a free lock was refused"
    );
    ensure!(
        !ctx.store
            .update_and_unlock(&missing, &set_b, &holder)
            .await?,
        "update_and_unlock of a missing record said it applied"
    );
    ensure!(
        !ctx.store.lock(&missing, &other, LONG).await?,
        "an update that applied nothing released the lease"
    );

    let Some(loaded) = ctx.store.load(&key).await? else {
        return Err(CaseError::Fail("the record vanished".into()));
    };
    let Some(revision) = loaded.revision else {
        return Ok(());
    };
    ensure!(
        ctx.store.lock(&key, &holder, LONG).await?,
        "a free lock was refused"
    );
    let mut next = loaded.clone();
    next.data.insert("c".into(), b"3".to_vec());
    let stale = Revision::new(revision.get().wrapping_add(1_000_003));
    ensure!(
        ctx.store
            .update_if_unchanged_and_unlock(&key, stale, &next, &holder)
            .await?
            .is_none(),
        "a conditional write at a stale revision wrote"
    );
    ensure!(
        !ctx.store.lock(&key, &other, LONG).await?,
        "a refused conditional write released the lease"
    );
    ensure!(
        ctx.store
            .update_if_unchanged_and_unlock(&key, revision, &next, &holder)
            .await?
            .is_some(),
        "a conditional write at the loaded revision was refused"
    );
    ensure!(
        ctx.store.lock(&key, &other, LONG).await?,
        "the lock was still held after the holder's conditional write"
    );
    Ok(())
}

/// A key no record and no lease was ever made for.
fn key_for_nothing() -> Result<StoreKey, CaseError> {
    key()
}

/// `gc` removes expired records, never a live lease: a lock taken before a gc still
/// belongs to its holder afterwards, and another token is still refused.
pub(crate) async fn gc_keeps_live_leases(ctx: &Ctx) -> CaseResult {
    require_lock(ctx)?;
    let key = create_live(ctx, &[("a", b"1")]).await?;
    let bare = key_for_nothing()?;
    let (holder, other) = (token()?, token()?);
    for key in [&key, &bare] {
        ensure!(ctx.store.lock(key, &holder, LONG).await?, "a free lock");
    }
    ctx.store.gc().await?;
    for key in [&key, &bare] {
        ensure!(
            !ctx.store.lock(key, &other, LONG).await?,
            "gc released a live lease: another token got the lock"
        );
        ensure!(
            ctx.store.renew_lock(key, &holder, LONG).await?,
            "gc took a live lease from its holder"
        );
        ensure!(
            ctx.store.unlock(key, &holder).await?,
            "the holder's release"
        );
    }
    Ok(())
}
