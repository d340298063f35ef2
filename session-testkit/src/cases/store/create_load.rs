//! Store-level cases: `create` and `load` (round trips, no overwrite of a live record, expiry without gc).

use crate::cases::helpers::*;

/// `load` of a key that was never written is `None`, not an error.
pub(crate) async fn load_unknown_key_is_none(ctx: &Ctx) -> CaseResult {
    ensure!(
        ctx.store.load(&key()?).await?.is_none(),
        "load of an unknown key returned a record"
    );
    Ok(())
}

/// What `create` stores, `load` returns byte for byte: every byte value, empty values,
/// and `expires_at` / `created_at` to the millisecond.
pub(crate) async fn create_then_load_round_trips_bytes(ctx: &Ctx) -> CaseResult {
    let all_bytes: Vec<u8> = (0..=255).collect();
    let key = key()?;
    let original = Record {
        data: data(&[
            ("bytes", &all_bytes),
            ("empty", b""),
            ("nul", b"\0\0"),
            ("text", b"hello"),
        ]),
        expires_at: Timestamp::from_millis(Timestamp::now().as_millis() + 3_600_123),
        created_at: Timestamp::from_millis(Timestamp::now().as_millis() - 5_321),
        revision: None,
        owner: None,
    };
    ensure!(
        ctx.store.create(&key, &original).await?,
        "create of a fresh key returned false"
    );
    // The revision is the store's own; everything else comes back as written.
    let loaded = ctx.store.load(&key).await?.map(|record| Record {
        revision: None,
        owner: None,
        ..record
    });
    ensure_eq!(loaded, Some(original), "loaded record");
    Ok(())
}

/// Keys with `.`, `$`, `/`, spaces, unicode, the empty string and 1,000 characters are
/// stored and updated as given (a store that maps keys to fields must escape them).
pub(crate) async fn round_trips_special_keys(ctx: &Ctx) -> CaseResult {
    let long = "k".repeat(1000);
    let keys = [
        "a.b.c",
        "$where",
        "$",
        "a/b",
        "../x",
        "with space",
        " ",
        "ключ",
        "キー",
        "😀",
        "",
        "__proto__",
        "a\"b",
        "a'b",
        "a\\b",
        "%2e",
        "\u{0}",
        "\n",
        long.as_str(),
    ];
    let pairs: Vec<(&str, &[u8])> = keys.iter().map(|k| (*k, k.as_bytes())).collect();
    let key = key()?;
    ensure!(
        ctx.store
            .create(&key, &record(&pairs, in_secs(3600)))
            .await?,
        "create returned false"
    );
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(data(&pairs)),
        "data after create"
    );
    let updated = changes(
        &[("a.b.c", b"new"), ("$where", b"new")],
        &["a/b", "😀"],
        in_secs(3600),
    );
    ensure!(
        ctx.store.update(&key, &updated).await?,
        "update returned false"
    );
    let mut expected = data(&pairs);
    updated.apply_to(&mut expected);
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(expected),
        "data after update"
    );
    Ok(())
}

/// A record without any data is a valid record.
pub(crate) async fn round_trips_empty_record(ctx: &Ctx) -> CaseResult {
    let key = key()?;
    ensure!(
        ctx.store.create(&key, &record(&[], in_secs(3600))).await?,
        "create returned false"
    );
    ensure_eq!(
        load_data(ctx.store(), &key).await?,
        Some(Data::new()),
        "data"
    );
    Ok(())
}

/// A 1 MiB value survives create, load and update intact.
pub(crate) async fn round_trips_one_mebibyte_value(ctx: &Ctx) -> CaseResult {
    let big: Vec<u8> = (0..1024 * 1024)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let key = key()?;
    ensure!(
        ctx.store
            .create(&key, &record(&[("big", &big)], in_secs(3600)))
            .await?,
        "create returned false"
    );
    let loaded = load_data(ctx.store(), &key).await?.unwrap_or_default();
    ensure!(
        loaded.get("big") == Some(&big),
        "the 1 MiB value came back different"
    );
    let mut reversed = big.clone();
    reversed.reverse();
    ensure!(
        ctx.store
            .update(&key, &changes(&[("big", &reversed)], &[], in_secs(3600)))
            .await?,
        "update returned false"
    );
    let loaded = load_data(ctx.store(), &key).await?.unwrap_or_default();
    ensure!(
        loaded.get("big") == Some(&reversed),
        "the updated 1 MiB value came back different"
    );
    Ok(())
}

/// `create` on a key holding a live record returns `false` and leaves the record exactly as
/// it was: data, expiry, creation time and revision.
pub(crate) async fn create_does_not_overwrite_live_record(ctx: &Ctx) -> CaseResult {
    let key = create_live(ctx, &[("owner", b"first")]).await?;
    let before = ctx
        .store
        .load(&key)
        .await?
        .ok_or_else(|| CaseError::Fail("a record just created is missing".into()))?;
    let mut loser = record(&[("owner", b"second")], in_secs(7200));
    loser.created_at = Timestamp::now() - Duration::from_secs(60);
    let second = ctx.store.create(&key, &loser).await?;
    ensure!(!second, "create over a live record returned true");
    let after =
        ctx.store.load(&key).await?.ok_or_else(|| {
            CaseError::Fail("the live record is gone after a losing create".into())
        })?;
    // The loser must leave no trace at all: not its data, nor its expiry, nor a new revision.
    ensure_eq!(after.data, before.data, "data after a losing create");
    ensure_eq!(
        after.expires_at,
        before.expires_at,
        "expiry after a losing create"
    );
    ensure_eq!(
        after.created_at,
        before.created_at,
        "created_at after a losing create"
    );
    ensure_eq!(
        after.revision,
        before.revision,
        "revision after a losing create"
    );
    Ok(())
}

/// `create` on a key whose record has expired replaces it (an expired record is absent).
pub(crate) async fn create_replaces_expired_record(ctx: &Ctx) -> CaseResult {
    let key = create_expiring(ctx, &[("old", b"1")], in_millis(200)).await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let created = ctx
        .store
        .create(&key, &record(&[("new", b"2")], in_secs(3600)))
        .await?;
    ensure!(created, "create over an expired record returned false");
    expect_data(ctx, &key, &[("new", b"2")], "data").await?;
    Ok(())
}

/// Of 16 concurrent `create`s of one key, exactly one succeeds and its data is stored.
pub(crate) async fn concurrent_creates_of_one_key_admit_one(ctx: &Ctx) -> CaseResult {
    let key = key()?;
    let mut set = JoinSet::new();
    for i in 0..16u8 {
        let store = Arc::clone(&ctx.store);
        let key = key.clone();
        set.spawn(async move {
            let won = store
                .create(&key, &record(&[("writer", &[i])], in_secs(3600)))
                .await?;
            Ok((i, won))
        });
    }
    let results = join_all(set).await?;
    let winners: Vec<u8> = results
        .iter()
        .filter(|(_, won)| *won)
        .map(|(i, _)| *i)
        .collect();
    ensure_eq!(winners.len(), 1, "creates that returned true");
    let stored = load_data(ctx.store(), &key).await?;
    ensure_eq!(
        stored,
        Some(data(&[("writer", &[winners[0]])])),
        "the winner's data"
    );
    Ok(())
}

/// A record is not returned once its expiry has passed, although gc has not run.
pub(crate) async fn expired_record_is_not_returned_without_gc(ctx: &Ctx) -> CaseResult {
    let key = create_expiring(ctx, &[("a", b"1")], in_millis(300)).await?;
    ensure!(
        ctx.store.load(&key).await?.is_some(),
        "a record not yet expired was not returned"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(absent(ctx, &key).await?, "an expired record was returned");
    Ok(())
}

/// A record created with an expiry in the past is absent at once.
pub(crate) async fn record_created_already_expired_is_absent(ctx: &Ctx) -> CaseResult {
    let key = create_expiring(ctx, &[("a", b"1")], ago_secs(10)).await?;
    ensure!(
        absent(ctx, &key).await?,
        "a record created expired was returned"
    );
    Ok(())
}
