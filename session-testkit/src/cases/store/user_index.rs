//! Store-level cases: the user index (`Record::owner`, `ChangeSet::owner`, `sessions_of`,
//! `user_index_len`) and `delete_many`. Skipped for stores without
//! `Capabilities::user_index`, except `delete_many`, which every store has.

use crate::cases::helpers::*;

/// `create` binds: a user's sessions are listed with their creation time, expiry (to the
/// millisecond) and label, `load` returns the owner, and no other user's or unbound
/// session is listed.
pub(crate) async fn user_index_lists_bound_sessions(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    let (ada, bob, nobody) = (
        fresh_user("ada")?,
        fresh_user("bob")?,
        fresh_user("nobody")?,
    );
    let mut expected = Vec::new();
    for i in 0..3u8 {
        let owner = owner(&ada, &format!("device {i}"))?;
        let expires_at = in_secs(3600 + u64::from(i));
        let key = create_bound(ctx, &owner, &[("i", &[i])], expires_at).await?;
        let loaded = ctx.store.load(&key).await?;
        ensure_eq!(
            loaded.and_then(|r| r.owner),
            Some(owner.clone()),
            "the owner load returns"
        );
        expected.push((key, expires_at, owner.label));
    }
    let bobs = create_bound(ctx, &Owner::new(bob.clone()), &[], in_secs(3600)).await?;
    create_live(ctx, &[("unbound", b"1")]).await?;

    let mut listing = ctx.store.sessions_of(&ada).await?;
    listing.sort_unstable_by(|a, b| a.label.cmp(&b.label));
    ensure_eq!(listing.len(), 3, "sessions listed for a user with three");
    for (found, (key, expires_at, label)) in listing.iter().zip(&expected) {
        ensure_eq!(&found.key, key, "the key listed for {label}");
        ensure_eq!(
            found.expires_at,
            *expires_at,
            "the expiry listed for {label}"
        );
        ensure_eq!(&found.label, label, "the label listed");
        ensure!(
            within(found.created_at, Timestamp::now(), Duration::from_secs(60)),
            "creation time listed: {}",
            found.created_at
        );
    }
    ensure_eq!(
        listed(ctx.store(), &bob).await?,
        vec![bobs],
        "bob's one session"
    );
    ensure!(
        listed(ctx.store(), &nobody).await?.is_empty(),
        "a user with no sessions has an empty listing"
    );
    Ok(())
}

/// `update` with an owner binds an unbound session and moves a bound one to its new user
/// (listed under the new user only); an `update` without an owner keeps the binding, and
/// so does an `update_if_unchanged` that carries it.
pub(crate) async fn user_index_follows_rebinding(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    let (ada, bob) = (fresh_user("ada")?, fresh_user("bob")?);
    let key = create_live(ctx, &[("cart", b"1")]).await?;
    let mut bind = changes(&[], &[], in_secs(3600));
    bind.owner = Some(owner(&ada, "laptop")?);
    ensure!(
        ctx.store.update(&key, &bind).await?,
        "binding update applied"
    );
    ensure_eq!(
        listed(ctx.store(), &ada).await?,
        vec![key.clone()],
        "bound by update"
    );

    bind.owner = Some(owner(&bob, "phone")?);
    ensure!(
        ctx.store.update(&key, &bind).await?,
        "rebinding update applied"
    );
    ensure_eq!(
        listed(ctx.store(), &bob).await?,
        vec![key.clone()],
        "listed under the new user"
    );
    ensure!(
        listed(ctx.store(), &ada).await?.is_empty(),
        "a rebound session stays listed under its old user"
    );

    let plain = changes(&[("cart", b"2")], &[], in_secs(3600));
    ensure!(
        ctx.store.update(&key, &plain).await?,
        "plain update applied"
    );
    let record = ctx.store.load(&key).await?;
    ensure_eq!(
        record.as_ref().and_then(|r| r.owner.clone()),
        bind.owner.clone(),
        "an update without an owner keeps the binding"
    );
    if let Some(mut record) = record
        && let Some(revision) = record.revision
    {
        record.data = data(&[("cart", b"3")]);
        let written = ctx
            .store
            .update_if_unchanged(&key, revision, &record)
            .await?;
        ensure!(
            written.is_some(),
            "a conditional write at the loaded revision"
        );
        ensure_eq!(
            listed(ctx.store(), &bob).await?,
            vec![key.clone()],
            "listed after a conditional write that keeps the owner"
        );
        let reloaded = ctx.store.load(&key).await?;
        ensure_eq!(
            reloaded.and_then(|r| r.owner),
            bind.owner,
            "the owner after a conditional write"
        );
    }
    Ok(())
}

/// `delete` and `delete_many` take sessions out of the listing, and the index entries are
/// pruned: after a listing, nothing is kept for a user whose sessions are all gone.
pub(crate) async fn user_index_forgets_deleted_sessions(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    let ada = fresh_user("ada")?;
    let mut keys = Vec::new();
    for i in 0..4u8 {
        keys.push(create_bound(ctx, &owner(&ada, "")?, &[("i", &[i])], in_secs(3600)).await?);
    }
    ensure!(
        ctx.store.delete(&keys[0]).await?,
        "delete of a bound session"
    );
    ensure_eq!(
        listed(ctx.store(), &ada).await?,
        sorted(&keys[1..]),
        "after one delete"
    );
    let removed = ctx.store.delete_many(&keys[..3]).await?;
    ensure_eq!(
        removed,
        2,
        "delete_many of one deleted and two live sessions"
    );
    ensure_eq!(
        listed(ctx.store(), &ada).await?,
        vec![keys[3].clone()],
        "after delete_many"
    );
    ensure!(
        ctx.store.delete(&keys[3]).await?,
        "delete of the last session"
    );
    ensure!(
        listed(ctx.store(), &ada).await?.is_empty(),
        "listing after every delete"
    );
    ensure_eq!(
        ctx.store.user_index_len(&ada).await?,
        0,
        "index entries kept for a user whose sessions were all deleted, after a listing"
    );
    Ok(())
}

/// An expired session is never listed, gc or not, including one created already expired;
/// and a `create` over an expired record of the same key lists the new session under its
/// own owner only, whether that is the expired record's user or another.
pub(crate) async fn user_index_never_lists_expired_sessions(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    let (ada, bob) = (fresh_user("ada")?, fresh_user("bob")?);
    let owner = owner(&ada, "")?;
    let soon = create_bound(ctx, &owner, &[], in_millis(300)).await?;
    let (again, moved) = (
        create_bound(ctx, &owner, &[], in_millis(300)).await?,
        create_bound(ctx, &owner, &[], in_millis(300)).await?,
    );
    let live = create_bound(ctx, &owner, &[], in_secs(3600)).await?;
    let dead = key()?;
    ctx.store
        .create(
            &dead,
            &record(&[], ago_secs(5)).with_owner(Some(owner.clone())),
        )
        .await?;
    let before = sorted(&[soon, again.clone(), moved.clone(), live.clone()]);
    ensure_eq!(
        listed(ctx.store(), &ada).await?,
        before,
        "before the expiry"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure_eq!(
        listed(ctx.store(), &ada).await?,
        vec![live.clone()],
        "after the expiry, no gc"
    );

    let renewed = record(&[("round", b"2")], in_secs(3600)).with_owner(Some(owner.clone()));
    ensure!(
        ctx.store.create(&again, &renewed).await?,
        "a create over an expired record of the same user"
    );
    let to_bob =
        record(&[("round", b"2")], in_secs(3600)).with_owner(Some(Owner::new(bob.clone())));
    ensure!(
        ctx.store.create(&moved, &to_bob).await?,
        "a create over an expired record of another user"
    );
    ensure_eq!(
        listed(ctx.store(), &ada).await?,
        sorted(&[again, live]),
        "the first user's listing after creates over two of their expired sessions: the one \
         created again for them, not the one now bound to another user"
    );
    ensure_eq!(
        listed(ctx.store(), &bob).await?,
        vec![moved],
        "the other user's listing"
    );
    Ok(())
}

/// The listing follows the expiry a `touch` or an `update` gives a session: it carries
/// the new expiry, and a session extended past its first expiry is still listed after it.
pub(crate) async fn user_index_follows_expiry_moves(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    let ada = fresh_user("ada")?;
    let owner = owner(&ada, "")?;
    let touched = create_bound(ctx, &owner, &[], in_millis(800)).await?;
    let updated = create_bound(ctx, &owner, &[], in_millis(800)).await?;
    let later = in_secs(3600);
    ensure!(ctx.store.touch(&touched, later).await?, "touch applied");
    let moved = changes(&[("k", b"v")], &[], later);
    ensure!(ctx.store.update(&updated, &moved).await?, "update applied");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    ctx.store.gc().await?;
    let listing = ctx.store.sessions_of(&ada).await?;
    ensure_eq!(listing.len(), 2, "sessions listed after their first expiry");
    for session in &listing {
        ensure_eq!(
            session.expires_at,
            later,
            "the listed expiry after the move"
        );
    }
    Ok(())
}

/// The index stays bounded: entries of sessions that were deleted, rebound, expired and
/// collected are pruned, so after a `gc` and a listing the store keeps no more entries
/// for a user than their live sessions.
pub(crate) async fn user_index_stays_bounded(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    let (ada, bob) = (fresh_user("ada")?, fresh_user("bob")?);
    let ada_owner = owner(&ada, "")?;
    let mut live = Vec::new();
    for round in 0..4 {
        let key = create_bound(ctx, &ada_owner, &[], in_secs(3600)).await?;
        ctx.store.delete(&key).await?;
        create_bound(ctx, &ada_owner, &[], in_millis(200)).await?;
        let rebound = create_bound(ctx, &ada_owner, &[], in_secs(3600)).await?;
        let mut to_bob = changes(&[], &[], in_secs(3600));
        to_bob.owner = Some(owner(&bob, "")?);
        ctx.store.update(&rebound, &to_bob).await?;
        if round % 2 == 0 {
            live.push(create_bound(ctx, &ada_owner, &[], in_secs(3600)).await?);
        }
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    ctx.store.gc().await?;
    ensure_eq!(
        listed(ctx.store(), &ada).await?,
        sorted(&live),
        "ada's live sessions"
    );
    let kept = ctx.store.user_index_len(&ada).await?;
    ensure!(
        kept <= live.len() as u64,
        "the index keeps {kept} entries for a user with {} live sessions after gc and a \
         listing (16 bound, 4 deleted, 4 expired, 4 rebound): stale entries are never pruned",
        live.len()
    );
    ensure_eq!(ctx.store.user_index_len(&bob).await?, 4, "bob's entries");
    Ok(())
}

/// 100 sessions of one user bound concurrently (and 100 of another user beside them) are
/// all listed, each under its own user.
pub(crate) async fn user_index_lists_concurrent_binds(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    let users = [fresh_user("ada")?, fresh_user("bob")?];
    let mut set = JoinSet::new();
    for i in 0..200usize {
        let store = Arc::clone(&ctx.store);
        let owner = owner(&users[i % 2], "")?;
        set.spawn(async move {
            let key = key()?;
            let record = record(&[], in_secs(3600)).with_owner(Some(owner));
            ensure!(store.create(&key, &record).await?, "a concurrent create");
            Ok((i % 2, key))
        });
    }
    let created = join_all(set).await?;
    for (index, user) in users.iter().enumerate() {
        let keys: Vec<StoreKey> = created
            .iter()
            .filter(|(u, _)| *u == index)
            .map(|(_, key)| key.clone())
            .collect();
        ensure_eq!(
            listed(ctx.store(), user).await?,
            sorted(&keys),
            "the listing of a user with 100 concurrently bound sessions"
        );
    }
    Ok(())
}

/// On a shared store, a session bound through one handle is listed through another, and
/// deleting it through the second takes it out of the first's listing.
pub(crate) async fn user_index_shared_between_handles(ctx: &Ctx) -> CaseResult {
    require_user_index(ctx)?;
    if !ctx.store.capabilities().shared {
        return Err(CaseError::Skip(
            "not shared: the store lives in one process".into(),
        ));
    }
    let Some(second) = &ctx.second else {
        return Err(CaseError::Skip(
            "the fixture offers no second handle on the same namespace".into(),
        ));
    };
    let ada = fresh_user("ada")?;
    let key = create_bound(ctx, &owner(&ada, "laptop")?, &[], in_secs(3600)).await?;
    ensure_eq!(
        listed(second.as_ref(), &ada).await?,
        vec![key.clone()],
        "seen by the second"
    );
    ensure!(
        second.delete(&key).await?,
        "delete through the second handle"
    );
    ensure!(
        listed(ctx.store(), &ada).await?.is_empty(),
        "listed by the first after the second deleted it"
    );
    Ok(())
}

/// `delete_many` removes exactly the live records it names, counts them (not the unknown
/// or expired keys among them), and leaves every other record as it was.
pub(crate) async fn delete_many_removes_exactly_the_named_records(ctx: &Ctx) -> CaseResult {
    let named = [
        create_live(ctx, &[("a", b"1")]).await?,
        create_live(ctx, &[("b", b"2")]).await?,
        create_live(ctx, &[("c", b"3")]).await?,
    ];
    let expired = create_expiring(ctx, &[], ago_secs(5)).await?;
    let other = create_live(ctx, &[("keep", b"me")]).await?;
    let mut keys = named.to_vec();
    keys.push(expired);
    keys.push(key()?);
    let removed = ctx.store.delete_many(&keys).await?;
    ensure_eq!(
        removed,
        3,
        "delete_many of 3 live, 1 expired and 1 unknown key"
    );
    for key in &keys {
        ensure!(
            absent(ctx, key).await?,
            "a record named in delete_many survived"
        );
    }
    expect_data(ctx, &other, &[("keep", b"me")], "a record not named").await?;
    ensure_eq!(
        ctx.store.delete_many(&[]).await?,
        0,
        "delete_many of nothing"
    );
    Ok(())
}
