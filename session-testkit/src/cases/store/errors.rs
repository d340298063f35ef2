//! Store-level cases: a backend that is down.

use crate::cases::helpers::*;

/// Against a backend that is down, every method returns an error: no panic, no hang past
/// 30 s, no pretend success. Every async method is called (the user-index ones on stores
/// that declare [`Capabilities::user_index`](session_core::Capabilities::user_index), the
/// lock ones on stores that declare [`Capabilities::lock`](session_core::Capabilities::lock)).
/// Two answers without the
/// backend are honest and accepted: `update_if_unchanged` may say it wrote nothing
/// (`Ok(None)`, the default of a store that keeps no revisions), and a store with native TTL
/// may answer `gc` with `Ok(0)`, since its gc does nothing. Needs the fixture's unreachable
/// store.
pub(crate) async fn unreachable_backend_returns_errors(ctx: &Ctx) -> CaseResult {
    let Some(down) = ctx.unreachable.as_ref() else {
        return Err(CaseError::Skip(
            "the fixture offers no unreachable backend (an in-process store has none)".into(),
        ));
    };
    let other = key()?;
    let key = key()?;
    let limit = Duration::from_secs(30);
    // The answer of one call, or the reason it broke the contract.
    async fn answer<T>(
        name: &str,
        limit: Duration,
        call: impl Future<Output = session_core::Result<T>>,
    ) -> Result<Option<T>, CaseError> {
        match tokio::time::timeout(limit, call).await {
            Err(_) => Err(CaseError::Fail(format!("{name} hung past {limit:?}"))),
            Ok(Ok(value)) => Ok(Some(value)),
            Ok(Err(_)) => Ok(None),
        }
    }
    let mut succeeded = Vec::new();
    if let Some(found) = answer("load", limit, down.load(&key)).await? {
        succeeded.push(format!("load ({found:?})"));
    }
    let record = record(&[("a", b"1")], in_secs(60));
    if let Some(created) = answer("create", limit, down.create(&key, &record)).await? {
        succeeded.push(format!("create ({created})"));
    }
    let changes = changes(&[("a", b"1")], &[], in_secs(60));
    if let Some(updated) = answer("update", limit, down.update(&key, &changes)).await? {
        succeeded.push(format!("update ({updated})"));
    }
    let revision = Revision::new(1);
    let conditional = down.update_if_unchanged(&key, revision, &record);
    if let Some(Some(written)) = answer("update_if_unchanged", limit, conditional).await? {
        succeeded.push(format!("update_if_unchanged (wrote revision {written:?})"));
    }
    if let Some(touched) = answer("touch", limit, down.touch(&key, in_secs(60))).await? {
        succeeded.push(format!("touch ({touched})"));
    }
    if let Some(deleted) = answer("delete", limit, down.delete(&key)).await? {
        succeeded.push(format!("delete ({deleted})"));
    }
    let many = [key.clone(), other];
    if let Some(deleted) = answer("delete_many", limit, down.delete_many(&many)).await? {
        succeeded.push(format!("delete_many ({deleted})"));
    }
    if down.capabilities().user_index {
        let user = fresh_user("down")?;
        if let Some(found) = answer("sessions_of", limit, down.sessions_of(&user)).await? {
            succeeded.push(format!("sessions_of ({} listed)", found.len()));
        }
        if let Some(len) = answer("user_index_len", limit, down.user_index_len(&user)).await? {
            succeeded.push(format!("user_index_len ({len})"));
        }
    }
    if down.capabilities().lock {
        let (token, ttl) = (token()?, Duration::from_secs(60));
        if let Some(granted) = answer("lock", limit, down.lock(&key, &token, ttl)).await? {
            succeeded.push(format!("lock ({granted})"));
        }
        let both = down.lock_and_load(&key, &token, ttl);
        if let Some(granted) = answer("lock_and_load", limit, both).await? {
            succeeded.push(format!("lock_and_load (granted: {})", granted.is_some()));
        }
        let merged = down.update_and_unlock(&key, &changes, &token);
        if let Some(updated) = answer("update_and_unlock", limit, merged).await? {
            succeeded.push(format!("update_and_unlock ({updated})"));
        }
        let written = down.update_if_unchanged_and_unlock(&key, revision, &record, &token);
        if let Some(Some(written)) =
            answer("update_if_unchanged_and_unlock", limit, written).await?
        {
            succeeded.push(format!(
                "update_if_unchanged_and_unlock (wrote revision {written:?})"
            ));
        }
        let renewal = down.renew_lock(&key, &token, ttl);
        if let Some(renewed) = answer("renew_lock", limit, renewal).await? {
            succeeded.push(format!("renew_lock ({renewed})"));
        }
        if let Some(released) = answer("unlock", limit, down.unlock(&key, &token)).await? {
            succeeded.push(format!("unlock ({released})"));
        }
    }
    let native_ttl = down.capabilities().native_ttl;
    match answer("gc", limit, down.gc()).await? {
        Some(0) if native_ttl => {}
        Some(removed) => succeeded.push(format!("gc ({removed} removed)")),
        None => {}
    }
    ensure!(
        succeeded.is_empty(),
        "against a down backend these succeeded: {}",
        succeeded.join(", ")
    );
    Ok(())
}
