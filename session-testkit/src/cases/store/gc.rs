//! Store-level cases: `gc`.

use crate::cases::helpers::*;

/// After their expiry, records are gone (removed by `gc`, or by the backend's own TTL),
/// and live records survive `gc`.
pub(crate) async fn gc_removes_expired_and_keeps_live(ctx: &Ctx) -> CaseResult {
    let mut expired = Vec::new();
    let mut live = Vec::new();
    for i in 0..5u8 {
        let k = key()?;
        ctx.store
            .create(&k, &record(&[("i", &[i])], in_millis(200)))
            .await?;
        expired.push(k);
        live.push(create_live(ctx, &[("i", &[i])]).await?);
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    ctx.store.gc().await?;
    for k in &expired {
        ensure!(
            ctx.store.load(k).await?.is_none(),
            "an expired record survived gc"
        );
    }
    for (i, k) in live.iter().enumerate() {
        let loaded = load_data(ctx.store(), k).await?;
        ensure_eq!(
            loaded,
            Some(data(&[("i", &[i as u8])])),
            "a live record after gc"
        );
    }
    Ok(())
}

/// `gc` returns exactly how many expired records it removed, and 0 when run again.
/// Skipped for stores with native TTL, whose gc may legitimately report 0.
pub(crate) async fn gc_reports_exact_count(ctx: &Ctx) -> CaseResult {
    if ctx.store.capabilities().native_ttl {
        return Err(CaseError::Skip(
            "native TTL: the backend expires records, gc may report 0".into(),
        ));
    }
    for _ in 0..7 {
        ctx.store
            .create(&key()?, &record(&[("a", b"1")], in_millis(100)))
            .await?;
    }
    for _ in 0..3 {
        create_live(ctx, &[("a", b"1")]).await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure_eq!(ctx.store.gc().await?, 7, "gc count");
    ensure_eq!(ctx.store.gc().await?, 0, "second gc count");
    Ok(())
}
