//! Store-level cases: concurrent writers, many sessions, and two handles on one backend.

use crate::cases::helpers::*;

/// 200 concurrent change sets, each setting a different key of one session, all survive.
pub(crate) async fn concurrent_change_sets_to_distinct_keys_lose_nothing(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("base", b"0")]).await?;
    let mut set = JoinSet::new();
    for i in 0..200u32 {
        let store = Arc::clone(&ctx.store);
        let key = key.clone();
        set.spawn(async move {
            let name = format!("key{i}");
            let applied = store
                .update(
                    &key,
                    &changes(&[(&name, &i.to_le_bytes())], &[], in_secs(3600)),
                )
                .await?;
            ensure!(applied, "a concurrent update returned false");
            Ok(())
        });
    }
    join_all(set).await?;
    let stored = load_data(ctx.store(), &key).await?.unwrap_or_default();
    let mut expected: Data = (0..200u32)
        .map(|i| (format!("key{i}"), i.to_le_bytes().to_vec()))
        .collect();
    expected.insert("base".into(), b"0".to_vec());
    let lost: Vec<&String> = expected
        .keys()
        .filter(|k| stored.get(*k) != expected.get(*k))
        .collect();
    ensure!(
        lost.is_empty(),
        "{} of 201 keys lost or wrong after concurrent updates",
        lost.len()
    );
    ensure_eq!(stored.len(), expected.len(), "number of keys");
    Ok(())
}

/// 50 concurrent change sets to the same key leave exactly one of the written values, and
/// the other keys intact.
pub(crate) async fn concurrent_writes_to_one_key_leave_one_written_value(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("other", b"keep")]).await?;
    let mut set = JoinSet::new();
    for i in 0..50u32 {
        let store = Arc::clone(&ctx.store);
        let key = key.clone();
        set.spawn(async move {
            store
                .update(
                    &key,
                    &changes(&[("same", &i.to_le_bytes())], &[], in_secs(3600)),
                )
                .await?;
            Ok(())
        });
    }
    join_all(set).await?;
    let stored = load_data(ctx.store(), &key).await?.unwrap_or_default();
    ensure_eq!(
        stored.get("other").map(Vec::as_slice),
        Some(&b"keep"[..]),
        "untouched key"
    );
    let written: HashSet<Vec<u8>> = (0..50u32).map(|i| i.to_le_bytes().to_vec()).collect();
    ensure!(
        stored.get("same").is_some_and(|v| written.contains(v)),
        "the contested key holds {:?}, which no writer wrote",
        stored.get("same")
    );
    Ok(())
}

/// 10,000 sessions written concurrently each read back their own data.
pub(crate) async fn ten_thousand_sessions_without_cross_talk(ctx: &Ctx) -> CaseResult {
    const SESSIONS: u32 = 10_000;
    const WORKERS: u32 = 32;
    let mut set = JoinSet::new();
    for worker in 0..WORKERS {
        let store = Arc::clone(&ctx.store);
        set.spawn(async move {
            let mut mine = Vec::new();
            for i in (worker..SESSIONS).step_by(WORKERS as usize) {
                let k = key()?;
                let created = store
                    .create(&k, &record(&[("n", &i.to_le_bytes())], in_secs(3600)))
                    .await?;
                ensure!(created, "create of a fresh key returned false");
                mine.push((k, i));
            }
            for (k, i) in &mine {
                let loaded = store.load(k).await?.map(|r| r.data);
                ensure_eq!(
                    loaded,
                    Some(data(&[("n", &i.to_le_bytes())])),
                    "session {i}"
                );
            }
            Ok(mine.len())
        });
    }
    let counts = join_all(set).await?;
    ensure_eq!(
        counts.iter().sum::<usize>(),
        SESSIONS as usize,
        "sessions checked"
    );
    Ok(())
}

/// Two store instances on the same backend (as two processes would open it) see each
/// other's creates, updates and deletes. Needs the `shared` capability and a second handle.
pub(crate) async fn shared_handles_see_each_other(ctx: &Ctx) -> CaseResult {
    if !ctx.store.capabilities().shared {
        return Err(CaseError::Skip(
            "not shared: the store lives in one process".into(),
        ));
    }
    let Some(second) = ctx.second.as_ref() else {
        return Err(CaseError::Skip(
            "the fixture offers no second handle on the same namespace".into(),
        ));
    };
    let key = create_live(ctx, &[("a", b"1")]).await?;
    ensure_eq!(
        load_data(second.as_ref(), &key).await?,
        Some(data(&[("a", b"1")])),
        "seen by the second handle"
    );
    ensure!(
        second
            .update(&key, &changes(&[("b", b"2")], &[], in_secs(3600)))
            .await?,
        "update through the second handle"
    );
    expect_data(
        ctx,
        &key,
        &[("a", b"1"), ("b", b"2")],
        "the second handle's update seen by the first",
    )
    .await?;
    ensure!(
        ctx.store.delete(&key).await?,
        "delete through the first handle"
    );
    ensure!(
        second.load(&key).await?.is_none(),
        "the second handle still sees a deleted record"
    );
    Ok(())
}
